package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// brotliStream is a stream object claiming /BrotliDecode (PDF 2.0's
// proposed filter, which neither engine decodes).
func brotliStream(extra string, data []byte) string {
	return fmt.Sprintf("<< /Length %d /Filter /BrotliDecode%s >>\nstream\n%s\nendstream", len(data), extra, data)
}

// xrefStreamPDF writes objects 1..n where some live in object stream objstm
// (compressed[i] is object i+1's index in it, -1 for a plain object), with
// a cross-reference stream.
func xrefStreamPDF(objs []string, objstm int, compressed []int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		if compressed[i] >= 0 {
			continue
		}
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	var rows []byte
	rows = append(rows, 0, 0, 0, 0, 0, 0xff, 0xff) // object 0
	for i := range objs {
		if k := compressed[i]; k >= 0 {
			rows = append(rows, 2, 0, 0, byte(objstm>>8), byte(objstm), 0, byte(k))
			continue
		}
		o := offsets[i]
		rows = append(rows, 1, byte(o>>24), byte(o>>16), byte(o>>8), byte(o), 0, 0)
	}
	xref := b.Len()
	self := len(objs) + 1
	rows = append(rows, 1, byte(xref>>24), byte(xref>>16), byte(xref>>8), byte(xref), 0, 0)
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n", self, self+1, len(rows))
	b.Write(rows)
	fmt.Fprintf(&b, "\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", xref)
	return b.Bytes()
}

// objStmPDF writes a one-page document whose page tree (objects 2 and 3)
// lives in object stream 5, written by stm from its data and /First.
func objStmPDF(stm func(data []byte, first int) string) []byte {
	pages := "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
	page := "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"
	header := fmt.Sprintf("2 0 3 %d ", len(pages)+1)
	content := "BT /F1 12 Tf 72 700 Td (Hello from an object stream) Tj ET"
	return xrefStreamPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"",
		"",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		stm([]byte(header+pages+" "+page), len(header)),
	}, 5, []int{-1, 0, 1, -1, -1})
}

// TestMissingFilterNamed checks that a document whose content or page tree
// is encoded with a filter the engine lacks fails naming the filter, not
// as having no text layer or no pages.
func TestMissingFilterNamed(t *testing.T) {
	compressedBytes := []byte("\x1b\x2f\x00\xf8\x25\xa2\x4e\x8a\xb9\x31\x9d\x20\x0a\x62\xf7\x3c")
	contentOnly := pdftexttest.RawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
		brotliStream("", compressedBytes),
	}, "")
	pageTree := objStmPDF(func(data []byte, first int) string {
		// What a Brotli encoder makes of data: bytes no other filter reads.
		return brotliStream(fmt.Sprintf(" /Type /ObjStm /N 2 /First %d", first), compressedBytes)
	})
	for name, data := range map[string][]byte{"page content": contentOnly, "page tree in an object stream": pageTree} {
		path := pdftexttest.WriteFile(t, "brotli.pdf", data)
		t.Run(name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				_, err := pdftext.Extract(context.Background(), ne.eng, path, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
				if err == nil {
					t.Fatal("Extract succeeded, want an error")
				}
				if !strings.Contains(err.Error(), "/BrotliDecode, a filter the engine cannot decode") {
					t.Errorf("error %q does not name the filter", err)
				}
				if !errors.Is(err, pdftext.ErrCorrupt) && !errors.Is(err, pdftext.ErrNoText) {
					t.Errorf("error %q: want pdftext.ErrCorrupt or pdftext.ErrNoText", err)
				}
				t.Logf("%v", err)
			})
		})
	}
}
