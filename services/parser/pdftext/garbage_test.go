package pdftext_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// TestExtractUnreadablePages checks that pages whose text is mostly
// U+FFFD, private-use or control characters are counted as unreadable,
// that undecodable lines are never chunked while the readable lines of
// such a page are kept, and that a document with no readable line fails
// with ErrUnreadable naming the reason, on what every engine reads.
func TestExtractUnreadablePages(t *testing.T) {
	// Pages of pdftexttest.GarbageLine twice ("garbage"), a readable page
	// with one U+FFFD, blank pages, and a page of music: its notes are
	// glyphs without Unicode, its title is text.
	tests := []struct {
		name           string
		fixture        string
		wantErr        error
		wantUnreadable int
		wantEmpty      int
	}{
		{"all unreadable", "unreadable-all", pdftext.ErrUnreadable, 3, 0},             // garbage ×3
		{"unreadable and empty", "unreadable-and-empty", pdftext.ErrUnreadable, 2, 1}, // garbage, blank, garbage
		{"some readable", "unreadable-some", nil, 2, 1},                               // garbage, readable, blank, garbage, readable
		{"mostly undecodable, with a readable title", "unreadable-score", nil, 1, 0},
		{"no text at all", "no-text", pdftext.ErrNoText, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, tc.fixture, func(t *testing.T, eng pdftext.Engine) {
				var chunks []pdftext.Chunk
				info, err := pdftext.Extract(context.Background(), eng, tc.fixture, pdftext.Options{}, func(c pdftext.Chunk) error {
					chunks = append(chunks, c)
					return nil
				})
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if errors.Is(err, pdftext.ErrUnreadable) && !strings.Contains(err.Error(), "U+FFFD, private-use or control characters") {
					t.Errorf("error %q does not say why the text is unreadable", err)
				}
				if errors.Is(err, pdftext.ErrNoText) && !strings.Contains(err.Error(), "has a text layer") {
					t.Errorf("error %q does not say there is no text layer", err)
				}
				if info.UnreadablePages != tc.wantUnreadable || info.EmptyPages != tc.wantEmpty {
					t.Errorf("got %d unreadable and %d empty pages, want %d and %d", info.UnreadablePages, info.EmptyPages, tc.wantUnreadable, tc.wantEmpty)
				}
				for _, c := range chunks {
					if g := pdftext.Garbled(c.Text); g || strings.Contains(c.Text, "\uE012") {
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
