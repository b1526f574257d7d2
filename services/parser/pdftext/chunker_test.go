package pdftext

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

type gotChunk struct {
	Text               string
	PageStart, PageEnd int
}

type para struct {
	page int
	text string
}

func runChunker(t *testing.T, target, overlap int, paras []para) []gotChunk {
	t.Helper()
	var got []gotChunk
	c := newChunker(target, overlap, func(text string, ps, pe int) error {
		got = append(got, gotChunk{text, ps, pe})
		return nil
	})
	for _, p := range paras {
		if err := c.add(p.page, p.text); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return got
}

func TestChunkerCuts(t *testing.T) {
	a30 := strings.Repeat("a", 29) + "." // 30 runes, one "sentence"
	b30 := strings.Repeat("b", 29) + "."
	tests := []struct {
		name    string
		target  int
		overlap int
		paras   []para
		want    []gotChunk
	}{
		{
			name: "fits in one chunk", target: 100, overlap: 0,
			paras: []para{{1, "One."}, {2, "Two."}},
			want:  []gotChunk{{"One.\n\nTwo.", 1, 2}},
		},
		{
			name: "cut at paragraph end", target: 70, overlap: 0,
			paras: []para{{1, a30}, {1, b30}, {2, a30}},
			want:  []gotChunk{{a30 + "\n\n" + b30, 1, 1}, {a30, 2, 2}},
		},
		{
			name: "cut at sentence end inside a paragraph", target: 40, overlap: 0,
			paras: []para{{3, "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."}},
			want: []gotChunk{
				{"Alpha beta gamma. Delta epsilon zeta.", 3, 3},
				{"Eta theta iota.", 3, 3},
			},
		},
		{
			name: "CJK sentence ends", target: 8, overlap: 0,
			paras: []para{{1, "一二三。四五六！七八九？十"}},
			want:  []gotChunk{{"一二三。四五六！", 1, 1}, {"七八九？十", 1, 1}},
		},
		{
			name: "word boundary without sentence end", target: 20, overlap: 0,
			paras: []para{{1, "aaaa bbbb cccc dddd eeee ffff"}},
			want:  []gotChunk{{"aaaa bbbb cccc dddd", 1, 1}, {"eeee ffff", 1, 1}},
		},
		{
			name: "hard cut keeps runes whole", target: 4, overlap: 0,
			paras: []para{{1, "éééééééééé"}},
			want:  []gotChunk{{"éééé", 1, 1}, {"éééé", 1, 1}, {"éé", 1, 1}},
		},
		{
			name: "overlap carries whole sentences", target: 40, overlap: 20,
			paras: []para{{1, "Alpha beta gamma. Delta epsilon zeta."}, {2, "Eta theta iota."}},
			want: []gotChunk{
				{"Alpha beta gamma. Delta epsilon zeta.", 1, 1},
				{"Delta epsilon zeta.\n\nEta theta iota.", 1, 2},
			},
		},
		{
			name: "overlap falls back to words", target: 20, overlap: 10,
			paras: []para{{1, "aaaa bbbb cccc dddd eeee ffff"}},
			want: []gotChunk{
				{"aaaa bbbb cccc dddd", 1, 1},
				{"cccc dddd eeee ffff", 1, 1},
			},
		},
		{
			name: "overlap alone is not emitted again", target: 40, overlap: 20,
			paras: []para{{1, "Alpha beta gamma. Delta epsilon zeta. Eta."}},
			want: []gotChunk{
				{"Alpha beta gamma. Delta epsilon zeta.", 1, 1},
				{"Delta epsilon zeta. Eta.", 1, 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runChunker(t, tc.target, tc.overlap, tc.paras)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			for _, c := range got {
				if n := utf8.RuneCountInString(c.Text); n > tc.target {
					t.Errorf("chunk %q has %d runes, want <= %d", c.Text, n, tc.target)
				}
				if !utf8.ValidString(c.Text) {
					t.Errorf("chunk %q is not valid UTF-8", c.Text)
				}
			}
		})
	}
}
