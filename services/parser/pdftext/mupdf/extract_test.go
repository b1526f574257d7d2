//go:build !nomupdf

package mupdf

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// What Extract makes of MuPDF's reading of damaged, encrypted, slow and
// oversized files. (Extract's work on what MuPDF reads from sound files
// is tested in pdftext, on recordings of it.)

// collect runs Extract with MuPDF on path and returns the chunks.
func collect(t *testing.T, path string, opts pdftext.Options) ([]pdftext.Chunk, pdftext.Info) {
	t.Helper()
	var chunks []pdftext.Chunk
	info, err := pdftext.Extract(context.Background(), New(), path, opts, func(c pdftext.Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return chunks, info
}

func TestExtractErrors(t *testing.T) {
	var good bytes.Buffer
	if err := pdfgen.Write(&good, pdfgen.Sample(3)); err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde")
	tests := []struct {
		name    string
		data    []byte // nil: the file does not exist
		opts    pdftext.Options
		wantErr error
	}{
		{"not a pdf", []byte("hello, this is plain text and not a PDF at all\n"), pdftext.Options{}, pdftext.ErrNotPDF},
		{"png image", png, pdftext.Options{}, pdftext.ErrNotPDF},
		{"zero bytes", []byte{}, pdftext.Options{}, pdftext.ErrNotPDF},
		{"header only", []byte("%PDF-1.7\n"), pdftext.Options{}, pdftext.ErrCorrupt},
		{"header and garbage", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage \x00\xff"), 500)...), pdftext.Options{}, pdftext.ErrCorrupt},
		{"truncated to 200 bytes", good.Bytes()[:200], pdftext.Options{}, pdftext.ErrCorrupt},
		{"truncated before %%EOF, read whole by mupdf", good.Bytes()[:good.Len()-8], pdftext.Options{}, nil},
		{"garbage between header and %%EOF", []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"), pdftext.Options{}, pdftext.ErrCorrupt},
		{"encrypted", pdftexttest.EncryptedPDF(), pdftext.Options{}, pdftext.ErrEncrypted},
		{"encrypted, wrong password", pdftexttest.EncryptedPDF(), pdftext.Options{Password: "guess"}, pdftext.ErrEncrypted},
		{"too many pages", good.Bytes(), pdftext.Options{MaxPages: 2}, pdftext.ErrTooManyPages},
		{"missing file", nil, pdftext.Options{}, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.pdf")
			if tc.data != nil {
				path = pdftexttest.WriteFile(t, "in.pdf", tc.data)
			}
			emitted := 0
			_, err := pdftext.Extract(context.Background(), New(), path, tc.opts, func(pdftext.Chunk) error {
				emitted++
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Extract: got error %v, want %v", err, tc.wantErr)
			}
			if emitted != 0 && tc.wantErr != nil && !errors.Is(tc.wantErr, pdftext.ErrCorrupt) {
				t.Errorf("Extract emitted %d chunks before failing, want 0", emitted)
			}
			if !errors.Is(tc.wantErr, pdftext.ErrCorrupt) || strings.HasPrefix(tc.name, "header") {
				if _, err := pdftext.Probe(context.Background(), New(), path, tc.opts); !errors.Is(err, tc.wantErr) {
					t.Errorf("Probe: got error %v, want %v", err, tc.wantErr)
				}
			}
		})
	}
}

// TestExtractDamaged overwrites bytes all over a valid PDF (header and
// %%EOF kept) and checks that MuPDF's complaints come back as nil or a typed
// error, never as a crash.
func TestExtractDamaged(t *testing.T) {
	var good bytes.Buffer
	if err := pdfgen.Write(&good, pdfgen.Sample(2)); err != nil {
		t.Fatal(err)
	}
	src := good.Bytes()
	dir := t.TempDir()
	const runs = 150
	for i := range runs {
		b := bytes.Clone(src)
		at := 16 + i*(len(b)-40)/runs
		copy(b[at:], "]>> obj 9 0 R (\\")
		path := filepath.Join(dir, fmt.Sprintf("damaged%d.pdf", i))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pdftext.Extract(context.Background(), New(), path, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
		if err != nil && !errors.Is(err, pdftext.ErrCorrupt) && !errors.Is(err, pdftext.ErrNoText) {
			t.Errorf("damage at byte %d: got error %v, want nil, pdftext.ErrCorrupt or pdftext.ErrNoText", at, err)
		}
	}
}

func TestEncrypted(t *testing.T) {
	tests := []struct {
		name     string
		pdf      []byte
		password string
		wantErr  error
	}{
		{"no password", pdftexttest.EncryptedPDF(), "", pdftext.ErrEncrypted},
		{"wrong password", pdftexttest.EncryptedPDF(), "wrong", pdftext.ErrEncrypted},
		{"user password", pdftexttest.EncryptedPDF(), "secret", nil},
		{"owner password", pdftexttest.EncryptedPDF(), "owner", nil},
		{"text, user password", pdftexttest.EncryptedTextPDF("secret", "owner", "Encrypted page text."), "secret", nil},
		{"text, empty user password", pdftexttest.EncryptedTextPDF("", "owner", "Encrypted page text."), "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := pdftexttest.WriteFile(t, "enc.pdf", tc.pdf)
			pages, err := pdftext.Probe(context.Background(), New(), path, pdftext.Options{Password: tc.password})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && pages != 1 {
				t.Errorf("got %d pages, want 1", pages)
			}
			if !strings.HasPrefix(tc.name, "text") {
				return
			}
			chunks, _ := collect(t, path, pdftext.Options{Password: tc.password})
			if len(chunks) != 1 || chunks[0].Text != "Encrypted page text." {
				t.Errorf("got chunks %+v, want one with the decrypted text", chunks)
			}
		})
	}
}

// slowPDF returns a PDF whose page 2 shows n tiny strings (MuPDF needs a
// while for it) between two ordinary pages.
func slowPDF(t testing.TB, n int) []byte {
	t.Helper()
	var raw bytes.Buffer
	raw.WriteString("BT /F1 1 Tf\n")
	for i := range n {
		fmt.Fprintf(&raw, "1 0 0 1 %d %d Tm (slow glyphs) Tj\n", 10+i%150, 10+i/150%150)
	}
	raw.WriteString("ET\n")
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	font := "/Resources << /Font << /F1 8 0 R >> >>"
	return pdftexttest.RawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 6 0 R " + font + " >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 7 0 R " + font + " >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 9 0 R " + font + " >>",
		"<< /Length 37 >>\nstream\nBT /F1 10 Tf 10 100 Td (First.) Tj ET\nendstream",
		fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", z.Len(), z.Bytes()),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		"<< /Length 36 >>\nstream\nBT /F1 10 Tf 10 100 Td (Third.) Tj ET\nendstream",
	}, "")
}

func TestTimeLimits(t *testing.T) {
	path := pdftexttest.WriteFile(t, "slow.pdf", slowPDF(t, 100000))

	t.Run("slow page skipped", func(t *testing.T) {
		start := time.Now()
		chunks, info := collect(t, path, pdftext.Options{PageTimeout: 30 * time.Millisecond})
		if info.SkippedPages != 1 || info.EmptyPages != 0 {
			t.Errorf("got info %+v, want 1 skipped page, 0 empty", info)
		}
		if len(chunks) != 1 || chunks[0].Text != "First.\n\nThird." || chunks[0].PageStart != 1 || chunks[0].PageEnd != 3 {
			t.Errorf("got chunks %+v, want pages 1 and 3", chunks)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s, want the slow page abandoned after its limit", d)
		}
	})
	t.Run("without limit it is read", func(t *testing.T) {
		_, info := collect(t, path, pdftext.Options{})
		if info.SkippedPages != 0 {
			t.Errorf("got info %+v, want no skipped page", info)
		}
	})
	t.Run("document limit", func(t *testing.T) {
		_, err := pdftext.Extract(context.Background(), New(), path, pdftext.Options{DocTimeout: 30 * time.Millisecond},
			func(pdftext.Chunk) error { return nil })
		if !errors.Is(err, pdftext.ErrTimeout) || errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want pdftext.ErrTimeout", err)
		}
	})
	t.Run("caller cancel is not a timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		_, err := pdftext.Extract(ctx, New(), path, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
		if !errors.Is(err, context.Canceled) || errors.Is(err, pdftext.ErrTimeout) {
			t.Errorf("got error %v, want context.Canceled only", err)
		}
	})
}

func TestHugePageCount(t *testing.T) {
	pdf := pdftexttest.RawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
	}, "")
	path := pdftexttest.WriteFile(t, "huge.pdf", pdf)
	start := time.Now()
	_, err := pdftext.Extract(context.Background(), New(), path, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
	if !errors.Is(err, pdftext.ErrTooManyPages) && !errors.Is(err, pdftext.ErrCorrupt) {
		t.Errorf("got error %v, want pdftext.ErrTooManyPages or pdftext.ErrCorrupt", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s, want a fast failure", d)
	}
	t.Logf("error: %v", err)
}

// TestExtractConcurrent runs several extractions at once, each with a
// Document (and so a MuPDF context) of its own, as documented, and checks
// they all produce the chunks of a lone run.
func TestExtractConcurrent(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Sample(6))
	want, _ := collect(t, path, pdftext.Options{})
	const workers = 4
	results := make([][]pdftext.Chunk, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			_, errs[w] = pdftext.Extract(context.Background(), New(), path, pdftext.Options{}, func(c pdftext.Chunk) error {
				results[w] = append(results[w], c)
				return nil
			})
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if !reflect.DeepEqual(results[w], want) {
			t.Errorf("worker %d: got %d chunks differing from the %d of a lone run", w, len(results[w]), len(want))
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	path, _ := pdftexttest.WritePDF(b, pdfgen.Sample(500))
	eng := New()
	b.ResetTimer()
	pages := 0
	for b.Loop() {
		info, err := pdftext.Extract(context.Background(), eng, path, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		pages += info.Pages
	}
	b.ReportMetric(float64(pages)/b.Elapsed().Seconds(), "pages/s")
}
