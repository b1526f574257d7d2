package conformance

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

// TestCIDCollections checks that text set in an unembedded CID
// font of each Adobe collection (Japan1, GB1, CNS1, Korea1), without a
// ToUnicode CMap, comes out as the collection's CMaps say, on every
// engine: by CID (Identity-H) and by UCS-2 code (Uni…-UCS2-H).
func TestCIDCollections(t *testing.T) {
	for _, ord := range pdfgen.CIDOrderings {
		for _, enc := range []string{"Identity-H", pdfgen.CIDUCS2Encoding(ord)} {
			want := pdfgen.CIDSample(ord)
			lines := []string{want, want + "\n" + reverse(want)}
			var buf bytes.Buffer
			if err := pdfgen.WriteCID(&buf, pdfgen.CIDDoc{Ordering: ord, Encoding: enc, Pages: [][]string{{want}, {want, reverse(want)}}}); err != nil {
				t.Fatalf("WriteCID: %v", err)
			}
			path := pdftexttest.WriteFile(t, "cid.pdf", buf.Bytes())
			t.Run(ord+" "+enc, func(t *testing.T) {
				forEachEngine(t, func(t *testing.T, ne namedEngine) {
					doc, err := ne.eng.Open(path, "")
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					defer doc.Close()
					for i := range lines {
						text, err := doc.PageText(i)
						if err != nil {
							t.Fatalf("PageText(%d): %v", i, err)
						}
						if got, w := pdftexttest.Norm(text), pdftexttest.Norm(lines[i]); got != w {
							t.Errorf("page %d: got %q, want %q", i, got, w)
						}
					}
				})
			})
		}
	}
}
