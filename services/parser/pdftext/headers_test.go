package pdftext_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// extractText runs Extract with eng and returns the text of every chunk
// (overlap off) joined by "\n\n", and the Info.
func extractText(t *testing.T, eng pdftext.Engine, path string) (string, pdftext.Info) {
	t.Helper()
	var parts []string
	info, err := pdftext.Extract(context.Background(), eng, path, pdftext.Options{ChunkSize: 100000, ChunkOverlap: -1}, func(c pdftext.Chunk) error {
		parts = append(parts, c.Text)
		return nil
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return strings.Join(parts, "\n\n"), info
}

// TestRunningHeadersKeepText checks that text repeated on every page is
// only removed as a running header or footer when it sits in the page's
// top or bottom band, and that removal never empties a page: documents of
// one short line per page, a greeting on every page, and a sentence
// repeated in the body of every page keep all of it, while a real header
// and footer go. The fixtures are pdftexttest.RunningPages pages long.
func TestRunningHeadersKeepText(t *testing.T) {
	body := pdftexttest.RunningBody
	tests := []struct {
		fixture  string
		want     func(i int) []string // text each page keeps, in order
		wantGone []string             // text that must be removed
	}{
		{
			fixture: "running-numbered-lines", // "Potato N", one line per page
			want:    func(i int) []string { return []string{fmt.Sprintf("Potato %d", i+1)} },
		},
		{
			fixture: "running-greeting", // mid-page
			want:    func(int) []string { return []string{"Hello, world!"} },
		},
		{
			fixture: "running-greeting-top",
			want:    func(int) []string { return []string{"Hello, world!"} },
		},
		{
			fixture: "running-body-sentence",
			want: func(i int) []string {
				return []string{fmt.Sprintf("Day %d in the garden.", i+1), body, fmt.Sprintf("Harvest %d kilograms.", 3*i+2)}
			},
		},
		{
			fixture: "running-header-footer", // "Potato Growers Monthly" and "Page N" in 8 pt at the edges
			want: func(i int) []string {
				return []string{fmt.Sprintf("Day %d in the garden.", i+1), body}
			},
			wantGone: []string{"Potato Growers Monthly", "Page "},
		},
	}
	for _, tc := range tests {
		var want []string
		for i := range pdftexttest.RunningPages {
			want = append(want, tc.want(i)...)
		}
		t.Run(tc.fixture, func(t *testing.T) {
			forEachEngine(t, tc.fixture, func(t *testing.T, eng pdftext.Engine) {
				text, info := extractText(t, eng, tc.fixture)
				if got, w := strings.Join(strings.Fields(text), " "), strings.Join(want, " "); got != w {
					t.Errorf("got text\n%q\nwant\n%q", got, w)
				}
				for _, g := range tc.wantGone {
					if strings.Contains(text, g) {
						t.Errorf("%q was not removed: %q", g, text)
					}
				}
				if info.EmptyPages != 0 {
					t.Errorf("got %d empty pages, want 0", info.EmptyPages)
				}
			})
		})
	}
}
