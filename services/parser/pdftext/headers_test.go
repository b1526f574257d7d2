package pdftext

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// extractText runs Extract with eng and returns the text of every chunk
// (overlap off) joined by "\n\n", and the Info.
func extractText(t *testing.T, eng Engine, path string) (string, Info) {
	t.Helper()
	var parts []string
	info, err := Extract(context.Background(), eng, path, Options{ChunkSize: 100000, ChunkOverlap: -1}, func(c Chunk) error {
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
// and footer go.
func TestRunningHeadersKeepText(t *testing.T) {
	const pages = 8
	const body = "Remember to water the potatoes twice a week."
	tests := []struct {
		name     string
		page     func(i int) pdfgen.Page
		want     func(i int) []string // text each page keeps, in order
		wantGone []string             // text that must be removed
	}{
		{
			name: "one short numbered line per page",
			page: func(i int) pdfgen.Page {
				return pdfgen.Page{Blocks: []pdfgen.Block{{Text: fmt.Sprintf("Potato %d", i+1)}}}
			},
			want: func(i int) []string { return []string{fmt.Sprintf("Potato %d", i+1)} },
		},
		{
			name: "the same greeting on every page",
			page: func(int) pdfgen.Page { return pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Hello, world!", Y: 400}}} },
			want: func(int) []string { return []string{"Hello, world!"} },
		},
		{
			name: "the same greeting at the top of every page",
			page: func(int) pdfgen.Page { return pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Hello, world!"}}} },
			want: func(int) []string { return []string{"Hello, world!"} },
		},
		{
			name: "a sentence repeated in the body of every page",
			page: func(i int) pdfgen.Page {
				return pdfgen.Page{Blocks: []pdfgen.Block{
					{Text: fmt.Sprintf("Day %d in the garden.", i+1), Y: 300},
					{Text: body, Y: 340},
					{Text: fmt.Sprintf("Harvest %d kilograms.", 3*i+2), Y: 380},
				}}
			},
			want: func(i int) []string {
				return []string{fmt.Sprintf("Day %d in the garden.", i+1), body, fmt.Sprintf("Harvest %d kilograms.", 3*i+2)}
			},
		},
		{
			name: "a real header and footer",
			page: func(i int) pdfgen.Page {
				return pdfgen.Page{Blocks: []pdfgen.Block{
					{Text: "Potato Growers Monthly", Size: 8, Y: 24},
					{Text: fmt.Sprintf("Day %d in the garden.", i+1), Y: 300},
					{Text: body, Y: 340},
					{Text: fmt.Sprintf("Page %d", i+1), Size: 8, Y: 810},
				}}
			},
			want: func(i int) []string {
				return []string{fmt.Sprintf("Day %d in the garden.", i+1), body}
			},
			wantGone: []string{"Potato Growers Monthly", "Page "},
		},
	}
	for _, tc := range tests {
		var d pdfgen.Doc
		var want []string
		for i := range pages {
			d.Pages = append(d.Pages, tc.page(i))
			want = append(want, tc.want(i)...)
		}
		path := writePDF(t, d)
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				text, info := extractText(t, ne.eng, path)
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
