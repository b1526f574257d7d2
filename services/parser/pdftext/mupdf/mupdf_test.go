//go:build !nomupdf

package mupdf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// TestPageBlocksClipToMediaBox checks that text entirely outside the page's
// media box is left out, that a line running off the page keeps the part
// on it, and that its box is that of what was kept.
func TestPageBlocksClipToMediaBox(t *testing.T) {
	content := "BT /F1 10 Tf 10 100 Td (Inside text.) Tj ET " +
		"BT /F1 10 Tf 300 100 Td (Far right) Tj ET " +
		"BT /F1 10 Tf 10 -50 Td (Below the page) Tj ET " +
		"BT /F1 10 Tf 150 150 Td (Edge runs off the page) Tj ET"
	pdf := pdftexttest.RawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}, "")
	doc, err := New().Open(pdftexttest.WriteFile(t, "clip.pdf", pdf), "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	blocks, err := doc.(pdftext.StructuredDocument).PageBlocks(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []pdftext.Line
	for _, b := range blocks {
		if len(b.Lines) == 0 {
			t.Errorf("block %+v has no lines", b.BBox)
		}
		lines = append(lines, b.Lines...)
	}
	var texts []string
	for _, l := range lines {
		if l.Text == "" {
			t.Errorf("empty line %+v kept", l.BBox)
		}
		texts = append(texts, l.Text)
	}
	all := strings.Join(texts, "|")
	for _, gone := range []string{"Far", "right", "Below", "page"} {
		if strings.Contains(all, gone) {
			t.Errorf("text outside the media box kept: %q in %q", gone, all)
		}
	}
	var edge *pdftext.Line
	for i, l := range lines {
		if strings.HasPrefix(l.Text, "Edge") {
			edge = &lines[i]
		}
	}
	if !strings.Contains(all, "Inside text.") || edge == nil {
		t.Fatalf("text on the page missing: %q", all)
	}
	if edge.BBox.X0 < 149 || edge.BBox.X1 > 210 {
		t.Errorf("line running off the page has box %+v, want x from 150 to about 200", edge.BBox)
	}
}

// layoutRecords builds pt_page_layout's records (see mupdf_shim.h): per
// block a 'B' record, per line an 'L' record with its text.
type layoutRecords []byte

func (r layoutRecords) block(x0, y0, x1, y1 float32) layoutRecords {
	return r.rect('B', x0, y0, x1, y1)
}

func (r layoutRecords) rect(tag byte, x0, y0, x1, y1 float32) layoutRecords {
	r = append(r, tag)
	for _, v := range []float32{x0, y0, x1, y1} {
		r = binary.NativeEndian.AppendUint32(r, math.Float32bits(v))
	}
	return r
}

func (r layoutRecords) line(y0 float32, size float32, bold bool, text string) layoutRecords {
	r = append(r, 'L')
	for _, v := range []float32{10, y0, 100, y0 + size, size} {
		r = binary.NativeEndian.AppendUint32(r, math.Float32bits(v))
	}
	flags := byte(0)
	if bold {
		flags = 1
	}
	r = append(r, flags)
	r = binary.NativeEndian.AppendUint32(r, uint32(len(text)))
	return append(r, text...)
}

func TestDecodeLayout(t *testing.T) {
	rec := layoutRecords{}.rect('P', 0, 0, 595, 842).
		block(0, 0, 200, 40).line(10, 12, true, "Héading").line(24, 10, false, "").
		block(0, 50, 200, 90).line(60, 10, false, "body ✓").line(72, 10, false, "more")
	got, page, err := decodeLayout(rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := (pdftext.Rect{X0: 0, Y0: 0, X1: 595, Y1: 842}); page != want {
		t.Errorf("page box %v, want %v", page, want)
	}
	want := []pdftext.Block{
		{BBox: pdftext.Rect{X0: 0, Y0: 0, X1: 200, Y1: 40}, Lines: []pdftext.Line{
			{BBox: pdftext.Rect{X0: 10, Y0: 10, X1: 100, Y1: 22}, Text: "Héading", Size: 12, Bold: true},
			{BBox: pdftext.Rect{X0: 10, Y0: 24, X1: 100, Y1: 34}, Text: "", Size: 10},
		}},
		{BBox: pdftext.Rect{X0: 0, Y0: 50, X1: 200, Y1: 90}, Lines: []pdftext.Line{
			{BBox: pdftext.Rect{X0: 10, Y0: 60, X1: 100, Y1: 70}, Text: "body ✓", Size: 10},
			{BBox: pdftext.Rect{X0: 10, Y0: 72, X1: 100, Y1: 82}, Text: "more", Size: 10},
		}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}
	// The blocks share one array of lines: growing one block's lines must
	// not overwrite the next block's.
	_ = append(got[0].Lines, pdftext.Line{Text: "appended"})
	if got[1].Lines[0].Text != "body ✓" {
		t.Errorf("appending to block 0 changed block 1: %q", got[1].Lines[0].Text)
	}
	if got, _, err := decodeLayout(nil); err != nil || got != nil {
		t.Errorf("no records: %v, %v; want none", got, err)
	}

	full := layoutRecords{}.block(0, 0, 1, 1).line(0, 10, false, "text")
	for name, b := range map[string][]byte{
		"line before any block": layoutRecords{}.line(0, 10, false, "x"),
		"unknown record":        append(layoutRecords{}.block(0, 0, 1, 1), 'X'),
		"block cut short":       layoutRecords{}.block(0, 0, 1, 1)[:10],
		"line header cut short": full[:1+16+10],
		"text cut short":        full[:len(full)-1],
		"text length past the end": func() []byte {
			b := append([]byte(nil), full...)
			binary.NativeEndian.PutUint32(b[1+16+1+21:], 1<<31)
			return b
		}(),
	} {
		if _, _, err := decodeLayout(b); !errors.Is(err, errBadLayout) {
			t.Errorf("%s: err %v, want errBadLayout", name, err)
		}
	}
}

// oomPDF is three pages: "First page." and "Third page." on small pages
// 1 and 3, and lines lines of "Overflow" words on page 2.
func oomPDF(lines int) []byte {
	small := func(text string) string {
		c := fmt.Sprintf("BT /F1 12 Tf 72 720 Td (%s) Tj ET", text)
		return fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(c), c)
	}
	var big strings.Builder
	big.WriteString("BT /F1 10 Tf 10 780 Td 11 TL ")
	for range lines {
		big.WriteString("(Overflow Overflow Overflow Overflow Overflow) ' ")
	}
	big.WriteString("ET")
	pg := func(contents int) string {
		return fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 9 0 R >> >> >>", contents)
	}
	return pdftexttest.RawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>",
		pg(6), pg(7), pg(8),
		small("First page."),
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", big.Len(), big.String()),
		small("Third page."),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}, "")
}

// A page on which MuPDF runs out of memory is not passed on cut short:
// PageBlocks fails with pdftext.ErrOutOfMemory, the document stays usable, and
// pdftext.Extract skips the page and counts it, as it does a page that times out.
func TestPageOutOfMemorySkipped(t *testing.T) {
	path := pdftexttest.WriteFile(t, "oom.pdf", oomPDF(3000))
	// What MuPDF holds for the small pages, without a limit.
	d, err := New().Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	md := d.(*document)
	var small uint64
	for _, i := range []int{0, 2} {
		if _, err := md.PageBlocks(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		small = max(small, func() uint64 { l, _ := md.memory(); return l }())
	}
	d.Close()
	eng := &Engine{memLimit: small + 2<<20}

	d, err = eng.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sd := d.(pdftext.StructuredDocument)
	if blocks, err := sd.PageBlocks(context.Background(), 1); !errors.Is(err, pdftext.ErrOutOfMemory) {
		t.Fatalf("page 2 with a limit of %d KiB: %d blocks, err %v; want pdftext.ErrOutOfMemory", eng.memLimit>>10, len(blocks), err)
	}
	for _, i := range []int{0, 2} {
		if blocks, err := sd.PageBlocks(context.Background(), i); err != nil || len(blocks) != 1 {
			t.Errorf("page %d after the out-of-memory page: %d blocks, err %v; want its one block", i+1, len(blocks), err)
		}
	}

	var text []string
	info, err := pdftext.Extract(context.Background(), eng, path, pdftext.Options{}, func(c pdftext.Chunk) error {
		text = append(text, c.Text)
		return nil
	})
	all := strings.Join(text, "\n")
	if err != nil || info.SkippedPages != 1 || !strings.Contains(all, "First page.") || !strings.Contains(all, "Third page.") ||
		strings.Contains(all, "Overflow") {
		t.Errorf("Extract: err %v, %d pages skipped, text %.200q; want page 2 skipped and counted, pages 1 and 3 read", err, info.SkippedPages, all)
	}
}
