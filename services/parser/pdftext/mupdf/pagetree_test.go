//go:build !nomupdf

package mupdf

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// treePDF writes a PDF of n pages whose page tree is nested fanout wide
// (fanout >= n gives a flat tree); page i shows "page <i+1>". The root
// claims claimed pages (n when 0). The outline has three entries: a named
// destination (through the /Dests name tree) to page 5, an explicit one to
// page 2 and a GoTo action to the named destination of page n-1.
func treePDF(n, fanout, claimed int) []byte {
	var (
		b    bytes.Buffer
		offs = map[int]int{}
		next = 1
	)
	obj := func(num int, body string) {
		offs[num] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", num, body)
	}
	alloc := func() int { next++; return next - 1 }
	catalog, font, outlines, o1, o2, o3 := alloc(), alloc(), alloc(), alloc(), alloc(), alloc()
	pageNum := make([]int, n)
	for i := range n {
		pageNum[i] = alloc()
	}
	// Build the tree bottom-up: each level groups up to fanout nodes.
	type node struct{ num, count int }
	level := make([]node, n)
	for i := range n {
		level[i] = node{pageNum[i], 1}
	}
	parent := map[int]int{}
	var bodies = map[int]string{}
	for len(level) > 1 || level[0].num == pageNum[0] {
		var up []node
		for i := 0; i < len(level); i += fanout {
			group := level[i:min(i+fanout, len(level))]
			num := alloc()
			var kids []string
			count := 0
			for _, k := range group {
				kids = append(kids, fmt.Sprintf("%d 0 R", k.num))
				parent[k.num] = num
				count += k.count
			}
			bodies[num] = fmt.Sprintf("/Kids [%s] /Count %d", strings.Join(kids, " "), count)
			up = append(up, node{num, count})
		}
		level = up
		if len(level) == 1 {
			break
		}
	}
	root := level[0].num
	if claimed == 0 {
		claimed = n
	}
	b.WriteString("%PDF-1.7\n")
	dests := fmt.Sprintf("[(p%d) [%d 0 R /XYZ 0 500 0] (p5) [%d 0 R /XYZ 0 600 0]]", n-1, pageNum[n-2], pageNum[4])
	obj(catalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R /Outlines %d 0 R /Names << /Dests << /Names %s >> >> >>", root, outlines, dests))
	obj(font, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	obj(outlines, fmt.Sprintf("<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count 3 >>", o1, o3))
	obj(o1, fmt.Sprintf("<< /Title (Named) /Parent %d 0 R /Next %d 0 R /Dest (p5) >>", outlines, o2))
	obj(o2, fmt.Sprintf("<< /Title (Explicit) /Parent %d 0 R /Prev %d 0 R /Next %d 0 R /Dest [%d 0 R /XYZ 0 700 0] >>", outlines, o1, o3, pageNum[1]))
	obj(o3, fmt.Sprintf("<< /Title (Action) /Parent %d 0 R /Prev %d 0 R /A << /S /GoTo /D (p%d) >> >>", outlines, o2, n-1))
	for num, body := range bodies {
		if num == root {
			body = strings.Replace(body, fmt.Sprintf("/Count %d", n), fmt.Sprintf("/Count %d", claimed), 1)
			obj(num, "<< /Type /Pages "+body+" >>")
			continue
		}
		obj(num, fmt.Sprintf("<< /Type /Pages /Parent %d 0 R %s >>", parent[num], body))
	}
	for i, num := range pageNum {
		content := fmt.Sprintf("BT /F1 12 Tf 72 720 Td (page %d) Tj ET", i+1)
		cnum := alloc()
		obj(num, fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>", parent[num], font, cnum))
		obj(cnum, fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", next)
	for num := 1; num < next; num++ {
		fmt.Fprintf(&b, "%010d 00000 n \n", offs[num])
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", next, catalog, xref)
	return b.Bytes()
}

// Pages are found by walking the page tree (pt_open's lazy tree): reading
// the first page does not build MuPDF's map of every page, which parses
// every page object first. Measured by what MuPDF holds after the first
// page (no trims in between), against the same with the map.
func TestLazyPageTreeSkipsPageMap(t *testing.T) {
	path := pdftexttest.WriteFile(t, "tree.pdf", treePDF(3000, 3000, 0))
	held := func(e *Engine) uint64 {
		t.Helper()
		d, err := e.Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		md := d.(*document)
		md.trimmedAt = 1 << 62 // no trim: keep what the page parsed
		if _, err := md.PageBlocks(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		live, _ := md.memory()
		return live
	}
	lazy, full := held(&Engine{}), held(&Engine{fullPageTree: true})
	t.Logf("MuPDF holds %d KiB after the first page with the lazy tree, %d KiB with the page map", lazy>>10, full>>10)
	// The map parses 3,000 page dictionaries of several hundred bytes.
	if lazy+(1<<20) > full {
		t.Errorf("lazy tree: MuPDF holds %d KiB, page map %d KiB: want at least 1 MiB less (was the map built?)", lazy>>10, full>>10)
	}
}

// pageResult is what a pdftext.Document says about one page.
type pageResult struct {
	text string
	err  bool
}

func readTree(t *testing.T, e *Engine, path string) (int, []pageResult, []pdftext.OutlineEntry) {
	t.Helper()
	d, err := e.Open(path, "")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer d.Close()
	outline, err := d.Outline()
	if err != nil {
		t.Fatalf("outline: %v", err)
	}
	var pages []pageResult
	for i := range d.NumPages() {
		blocks, err := d.(pdftext.StructuredDocument).PageBlocks(context.Background(), i)
		var text []string
		for _, bl := range blocks {
			for _, l := range bl.Lines {
				text = append(text, l.Text)
			}
		}
		pages = append(pages, pageResult{strings.Join(text, " "), err != nil})
	}
	return d.NumPages(), pages, outline
}

// Pages found by walking the tree are the pages MuPDF's map finds, in
// flat and nested trees, with outline targets resolved the same way, and
// a tree that claims more pages than it has fails the same pages.
func TestLazyPageTreeMatchesPageMap(t *testing.T) {
	tests := []struct {
		name                string
		pages, fanout, lies int
	}{
		{"flat", 12, 100, 0},
		{"nested fanout 3", 40, 3, 0},
		{"nested fanout 6", 100, 6, 0},
		{"count claims more", 20, 4, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := pdftexttest.WriteFile(t, "tree.pdf", treePDF(tt.pages, tt.fanout, tt.lies))
			n, lazy, lazyOutline := readTree(t, &Engine{}, path)
			fn, full, fullOutline := readTree(t, &Engine{fullPageTree: true}, path)
			if n != fn || len(lazy) != len(full) {
				t.Fatalf("lazy tree: %d pages, page map: %d", n, fn)
			}
			for i := range lazy {
				if lazy[i] != full[i] {
					t.Errorf("page %d: lazy tree %+v, page map %+v", i+1, lazy[i], full[i])
				}
				if i < tt.pages && (lazy[i].err || lazy[i].text != fmt.Sprintf("page %d", i+1)) {
					t.Errorf("page %d: %+v, want its text", i+1, lazy[i])
				}
				if i >= tt.pages && !lazy[i].err {
					t.Errorf("page %d of %d real ones read without error: %+v", i+1, tt.pages, lazy[i])
				}
			}
			want := []struct {
				title string
				page  int
				y     float64
			}{{"Named", 4, 792 - 600}, {"Explicit", 1, 792 - 700}, {"Action", tt.pages - 2, 792 - 500}}
			if len(lazyOutline) != len(want) {
				t.Fatalf("outline %+v, want %d entries", lazyOutline, len(want))
			}
			for i, w := range want {
				got := lazyOutline[i]
				if got.Title != w.title || got.Page != w.page || got.Y != w.y {
					t.Errorf("outline entry %d = %+v, want %s on page index %d at y %v", i, got, w.title, w.page, w.y)
				}
				if got != fullOutline[i] {
					t.Errorf("outline entry %d: lazy tree %+v, page map %+v", i, got, fullOutline[i])
				}
			}
		})
	}
}
