package pdfgen

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteCIDMuPDF checks each collection and encoding against mutool,
// which reads unembedded CID fonts through the collections' CMaps.
func TestWriteCIDMuPDF(t *testing.T) {
	needTool(t, "mutool")
	for _, ord := range CIDOrderings {
		for _, enc := range []string{"Identity-H", CIDUCS2Encoding(ord)} {
			t.Run(ord+" "+enc, func(t *testing.T) {
				want := CIDSample(ord)
				var b bytes.Buffer
				if err := WriteCID(&b, CIDDoc{Ordering: ord, Encoding: enc, Pages: [][]string{{want}}}); err != nil {
					t.Fatalf("WriteCID: %v", err)
				}
				path := filepath.Join(t.TempDir(), "cid.pdf")
				if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
					t.Fatal(err)
				}
				out, _ := runTool(t, "mutool", "draw", "-F", "txt", path)
				if got := strings.Join(strings.Fields(out), " "); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(want, " ", "") {
					t.Errorf("mutool reads %q, want %q", got, want)
				}
			})
		}
	}
}

func TestWriteCIDErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  CIDDoc
		want error
	}{
		{"no pages", CIDDoc{Ordering: "Japan1", Encoding: "Identity-H"}, ErrNoPages},
		{"unknown collection", CIDDoc{Ordering: "Japan9", Encoding: "Identity-H", Pages: [][]string{{"x"}}}, ErrCIDFont},
		{"other collection's cmap", CIDDoc{Ordering: "GB1", Encoding: "UniJIS-UCS2-H", Pages: [][]string{{"x"}}}, ErrCIDFont},
		{"character without a known CID", CIDDoc{Ordering: "GB1", Encoding: "Identity-H", Pages: [][]string{{"中x"}}}, ErrCIDFont},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteCID(&bytes.Buffer{}, tc.doc); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}
