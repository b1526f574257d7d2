//go:build !nomupdf

package pdftext

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestPageBlocksClipToMediaBox checks that text entirely outside the page's
// media box is left out, that a line running off the page keeps the part
// on it, and that its box is that of what was kept.
func TestPageBlocksClipToMediaBox(t *testing.T) {
	content := "BT /F1 10 Tf 10 100 Td (Inside text.) Tj ET " +
		"BT /F1 10 Tf 300 100 Td (Far right) Tj ET " +
		"BT /F1 10 Tf 10 -50 Td (Below the page) Tj ET " +
		"BT /F1 10 Tf 150 150 Td (Edge runs off the page) Tj ET"
	pdf := rawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}, "")
	doc, err := NewFitzEngine().Open(writeFile(t, "clip.pdf", pdf), "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	blocks, err := doc.(StructuredDocument).PageBlocks(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []Line
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
	var edge *Line
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
