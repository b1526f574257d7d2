package pdftext

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pdfpipe/pdfpipe/pkg/tokens"
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
	c := newChunker(target, overlap, false, func(text string, ps, pe int) error {
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

// TestEstimateTokens checks that chunks are measured with the estimate the
// embedder budgets requests with (pkg/tokens, tested there): a chunk cut
// to N tokens must fit an N-token input limit.
func TestEstimateTokens(t *testing.T) {
	for _, text := range []string{"", "abcd", "文档处理", "héllo wörld 中文"} {
		if got, want := EstimateTokens(text), tokens.Estimate(text); got != want {
			t.Errorf("EstimateTokens(%q) = %d, tokens.Estimate = %d", text, got, want)
		}
	}
}

func TestChunkerTokens(t *testing.T) {
	latin := "Alpha beta gamma delta. Epsilon zeta eta theta. Iota kappa lambda mu. Nu xi omicron pi."
	cjk := "一二三四五六七八。九十一二三四五六！七八九十一二三四？五六七八九十一二。"
	tests := []struct {
		name            string
		target, overlap int
		paras           []para
	}{
		{"latin, no overlap", 10, 0, []para{{1, latin}, {2, latin}}},
		{"latin, overlap", 12, 5, []para{{1, latin}, {2, latin}}},
		{"cjk", 10, 0, []para{{1, cjk}}},
		{"mixed, overlap", 15, 6, []para{{1, latin}, {1, cjk}, {2, latin + " " + cjk}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			c := newChunker(tc.target, tc.overlap, true, func(text string, ps, pe int) error {
				got = append(got, text)
				return nil
			})
			for _, p := range tc.paras {
				if err := c.add(p.page, p.text); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			if len(got) < 2 {
				t.Fatalf("got %d chunks, want several", len(got))
			}
			runes := 0
			for i, text := range got {
				if n := EstimateTokens(text); n > tc.target {
					t.Errorf("chunk %d %q: got %d tokens, want <= %d", i, text, n, tc.target)
				}
				// Cut by runes, the same target would give much larger
				// chunks of Latin text: tokens must be what is counted.
				runes = max(runes, utf8.RuneCountInString(text))
			}
			if !strings.ContainsRune(tc.paras[0].text, '一') && runes <= tc.target {
				t.Errorf("largest Latin chunk has %d runes, want more than %d (tokens, not runes)", runes, tc.target)
			}
			// Without overlap, the chunks are the text, in order.
			if tc.overlap == 0 {
				var want []string
				for _, p := range tc.paras {
					want = append(want, strings.Fields(p.text)...)
				}
				if g := strings.Fields(strings.Join(got, " ")); strings.Join(g, "") != strings.Join(want, "") {
					t.Errorf("chunks %q do not add up to the text", got)
				}
			}
		})
	}
}

func TestOptionsDigest(t *testing.T) {
	base := Options{}.Digest("mupdf")
	if len(base) != 64 {
		t.Fatalf("got digest %q, want 64 hex digits", base)
	}
	if got := (Options{ChunkSize: DefaultTargetRunes, ChunkOverlap: DefaultOverlapRunes, Unit: UnitRunes}).Digest("mupdf"); got != base {
		t.Errorf("explicit defaults: got %s, want %s (the effective settings count)", got, base)
	}
	for name, d := range map[string]string{
		"size":    Options{ChunkSize: 2000}.Digest("mupdf"),
		"overlap": Options{ChunkOverlap: -1}.Digest("mupdf"),
		"unit":    Options{Unit: UnitTokens}.Digest("mupdf"),
		"engine":  Options{}.Digest("pdfium"),
	} {
		if d == base {
			t.Errorf("changing the %s leaves the digest unchanged", name)
		}
	}
	if got := (Options{Workers: 3, Password: "x"}).Digest("mupdf"); got != base {
		t.Errorf("workers and password changed the digest: got %s, want %s", got, base)
	}
}
