//go:build !nomupdf

package mupdf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// fuzzSeeds are the project's fixtures (pdfgen documents: plain and
// compressed, with an outline, Chinese text, two columns; the page-tree
// and out-of-memory fixtures of these tests) and damaged copies of them:
// cut short, bytes overwritten in the middle, a broken xref offset.
func fuzzSeeds(t testing.TB) [][]byte {
	t.Helper()
	var fixtures [][]byte
	for _, d := range []pdfgen.Doc{pdfgen.Sample(1), pdfgen.Sample(3), func() pdfgen.Doc { d := pdfgen.Sample(2); d.Compress = true; return d }()} {
		var b bytes.Buffer
		if err := pdfgen.Write(&b, d); err != nil {
			t.Fatal(err)
		}
		fixtures = append(fixtures, b.Bytes())
	}
	fixtures = append(fixtures, treePDF(12, 3, 0), treePDF(20, 4, 25), oomPDF(20))
	seeds := append([][]byte{}, fixtures...)
	for _, f := range fixtures {
		n := len(f)
		seeds = append(seeds, f[:n/2], f[:n*9/10])
		mid := append([]byte{}, f...)
		copy(mid[n/2:], bytes.Repeat([]byte{0xff, '(', ']', '>'}, 16))
		seeds = append(seeds, mid)
		if i := bytes.LastIndex(f, []byte("startxref\n")); i >= 0 {
			xref := append(append([]byte{}, f[:i]...), "startxref\n999999\n%%EOF\n"...)
			seeds = append(seeds, xref)
		}
	}
	return seeds
}

// FuzzExtract runs hostile bytes through MuPDF and the shim: open,
// outline, every page's layout, chunking. Whatever the input, pdftext.Extract
// returns (a C fault ends the fuzzing process, and Go records the input
// under testdata/fuzz/FuzzExtract), and what it returns is consistent.
// scripts/test.sh runs it for a bounded time; scripts/sanitize.sh runs
// the shim under AddressSanitizer over mutated inputs.
func FuzzExtract(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, pdf []byte) {
		path := filepath.Join(dir, "in.pdf")
		if err := os.WriteFile(path, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := pdftext.Options{MaxPages: 200, Workers: 1, PageTimeout: time.Second, DocTimeout: 5 * time.Second}
		var chunks []pdftext.Chunk
		info, err := pdftext.Extract(context.Background(), New(), path, opts, func(c pdftext.Chunk) error {
			chunks = append(chunks, c)
			return nil
		})
		if info.Chunks != len(chunks) {
			t.Fatalf("Info.Chunks %d, %d emitted", info.Chunks, len(chunks))
		}
		if err == nil && len(chunks) == 0 {
			t.Fatalf("no error and no chunk (info %+v)", info)
		}
		for i, c := range chunks {
			if c.Index != i || c.PageStart < 1 || c.PageEnd < c.PageStart || c.PageEnd > info.Pages {
				t.Fatalf("chunk %d: index %d, pages %d-%d of %d", i, c.Index, c.PageStart, c.PageEnd, info.Pages)
			}
		}
	})
}

// TestWriteFuzzSeeds writes FuzzExtract's seeds and the inputs kept under
// testdata/fuzz/FuzzExtract into $PDFTEXT_SEED_DIR, one PDF each, for
// scripts/sanitize.sh; without that variable it is skipped.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := os.Getenv("PDFTEXT_SEED_DIR")
	if dir == "" {
		t.Skip("PDFTEXT_SEED_DIR not set (scripts/sanitize.sh sets it)")
	}
	seeds := fuzzSeeds(t)
	kept, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzExtract", "*"))
	for _, k := range kept {
		b, err := readCorpusFile(k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		seeds = append(seeds, b)
	}
	for i, s := range seeds {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%03d.pdf", i)), s, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d seeds (%d kept inputs) in %s", len(seeds), len(kept), dir)
}

// readCorpusFile reads the []byte value of a file in Go's fuzzing corpus
// format ("go test fuzz v1", then one value a line).
func readCorpusFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a one-value fuzz corpus file")
	}
	v, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok || !strings.HasSuffix(v, ")") {
		return nil, fmt.Errorf("value is not a []byte")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}
