package pdftext

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// garbageLine is what a page looks like when its fonts have no Unicode
// mapping: replacement characters, a font's private-use codes, a stray
// Latin letter or digit.
var garbageLine = strings.Repeat("\uFFFD", 20) + " a1 " + strings.Repeat("\uE012\uE0A7\uF8FF", 6)

// TestExtractUnreadablePages checks that pages whose text is mostly
// U+FFFD, private-use or control characters are counted as unreadable,
// that undecodable lines are never chunked while the readable lines of
// such a page are kept, and that a document with no readable line fails
// with ErrUnreadable naming the reason, on every engine.
func TestExtractUnreadablePages(t *testing.T) {
	garbage := pdfgen.Page{Blocks: []pdfgen.Block{{Text: garbageLine}, {Text: garbageLine}}}
	readable := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "A readable page about potatoes, with one odd \uFFFD character."}}}
	// A page of music: its notes are glyphs without Unicode, its title is text.
	score := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Jesu, meine Freude"}, {Text: garbageLine}, {Text: garbageLine}, {Text: garbageLine}}}
	tests := []struct {
		name           string
		pages          []pdfgen.Page
		wantErr        error
		wantUnreadable int
		wantEmpty      int
	}{
		{"all unreadable", []pdfgen.Page{garbage, garbage, garbage}, ErrUnreadable, 3, 0},
		{"unreadable and empty", []pdfgen.Page{garbage, {}, garbage}, ErrUnreadable, 2, 1},
		{"some readable", []pdfgen.Page{garbage, readable, {}, garbage, readable}, nil, 2, 1},
		{"mostly undecodable, with a readable title", []pdfgen.Page{score}, nil, 1, 0},
		{"no text at all", []pdfgen.Page{{}, {}}, ErrNoText, 0, 2},
	}
	for _, tc := range tests {
		path := writePDF(t, pdfgen.Doc{Pages: tc.pages})
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				var chunks []Chunk
				info, err := Extract(context.Background(), ne.eng, path, Options{}, func(c Chunk) error {
					chunks = append(chunks, c)
					return nil
				})
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if errors.Is(err, ErrUnreadable) && !strings.Contains(err.Error(), "U+FFFD, private-use or control characters") {
					t.Errorf("error %q does not say why the text is unreadable", err)
				}
				if errors.Is(err, ErrNoText) && !strings.Contains(err.Error(), "has a text layer") {
					t.Errorf("error %q does not say there is no text layer", err)
				}
				if info.UnreadablePages != tc.wantUnreadable || info.EmptyPages != tc.wantEmpty {
					t.Errorf("got %d unreadable and %d empty pages, want %d and %d", info.UnreadablePages, info.EmptyPages, tc.wantUnreadable, tc.wantEmpty)
				}
				for _, c := range chunks {
					if g := garbled(c.Text); g || strings.Contains(c.Text, "\uE012") {
						t.Errorf("chunk %d holds undecodable text: %q", c.Index, c.Text)
					}
				}
				if tc.wantErr == nil && len(chunks) == 0 {
					t.Error("no chunk from the readable pages")
				}
				if tc.name == "mostly undecodable, with a readable title" && (len(chunks) != 1 || chunks[0].Text != "Jesu, meine Freude") {
					t.Errorf("got chunks %+v, want the title alone", chunks)
				}
			})
		})
	}
}

func TestGarbled(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"", false},
		{"   \n ", false},
		{"plain text", false},
		{"日本語の説明書です。", false},
		{"\uFFFD", true},
		{"\uFFFD\uFFFD\uFFFD ab", true},
		{"\uFFFD\uFFFD abc", false}, // a few odd characters in a readable line
		{"\uE000\uE001\uE002 x", true},
		{"\x01\x02\x03\x04 ok", true},
		{"\xff\xfe\xfd ab", true}, // invalid UTF-8
	}
	for _, tc := range tests {
		if got := garbled(tc.text); got != tc.want {
			t.Errorf("garbled(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
