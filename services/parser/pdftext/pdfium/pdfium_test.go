package pdfium

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// cacheDir keeps the compiled module between test runs (the conformance
// tests use the same one).
func cacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "pdfpipe", "wazero")
	}
	return ""
}

// sharedEngine is the engine of most tests of the package. Compiling the
// WebAssembly module takes seconds, and half a minute under -race, so it
// is compiled once per test binary and kept in a compilation cache.
var sharedEngine = sync.OnceValues(func() (*Engine, error) {
	e := New(Config{MaxInstances: 4, CacheDir: cacheDir()})
	return e, e.Init()
})

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := sharedEngine()
	if err != nil {
		t.Fatalf("start PDFium: %v", err)
	}
	return e
}

// newTestEngine returns a PDFium engine of its own, closed at the end of
// the test; it reuses the compiled module that sharedEngine cached.
func newTestEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	testEngine(t) // fills the compilation cache
	cfg.CacheDir = cacheDir()
	e := New(cfg)
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := e.Init(); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestLoneGlyph pins the one difference the conformance suite
// tolerates: PDFium drops a text object whose glyphs have no box, which
// is what a one-character CJK run in pdfgen's unembedded CJK font is.
// When this test fails because PDFium kept the characters, drop
// dropsLoneGlyphs from the conformance suite.
func TestLoneGlyph(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Doc{Pages: []pdfgen.Page{{Blocks: []pdfgen.Block{
		{Text: "中文 A 字 B 提取 C"},
		{Text: "把"},
	}}}})
	doc, err := testEngine(t).Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	text, err := doc.PageText(0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pdftexttest.Norm(text), "中文A B提取C"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPoolLimit(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Sample(2))
	e := newTestEngine(t, Config{MaxInstances: 1, OpenTimeout: 100 * time.Millisecond})
	first, err := e.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if doc, err := e.Open(path, ""); err == nil {
		doc.Close()
		t.Fatal("second Open with MaxInstances 1: got no error, want a timeout")
	} else if errors.Is(err, pdftext.ErrCorrupt) || errors.Is(err, pdftext.ErrNotPDF) {
		t.Errorf("second Open: got %v, want an error that is not about the PDF (retryable)", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := e.Open(path, "")
	if err != nil {
		t.Fatalf("Open after Close freed the instance: %v", err)
	}
	if second.NumPages() != 2 {
		t.Errorf("got %d pages, want 2", second.NumPages())
	}
	second.Close()
}

func TestClose(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Sample(2))
	e := New(Config{})
	if err := e.Close(); err != nil {
		t.Fatalf("Close before use: %v", err)
	}
	if _, err := e.Open(path, ""); !errors.Is(err, errEngineClosed) {
		t.Errorf("Open after Close: got %v, want %v", err, errEngineClosed)
	}

	e = newTestEngine(t, Config{})
	doc, err := e.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := doc.PageText(0); err == nil {
		t.Error("PageText after the engine closed: got no error")
	}
	if err := doc.Close(); err != nil {
		t.Errorf("document Close after the engine closed: %v", err)
	}
	if err := doc.Close(); err != nil {
		t.Errorf("second document Close: %v", err)
	}
	if _, err := doc.PageText(0); !errors.Is(err, pdftext.ErrClosed) {
		t.Errorf("PageText after Close: got %v, want %v", err, pdftext.ErrClosed)
	}
}

// TestCallTimeout runs calls that hang until the test ends, and
// checks that the document gives up on them at the time limit or when
// the context ends, and reopens itself for the next call.
func TestCallTimeout(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Sample(2))
	doc, err := testEngine(t).Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	d := doc.(*document)
	want, err := d.PageText(1)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	cause := errors.New("test cancelled the call")
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    error
	}{
		{"time limit", 50 * time.Millisecond, false, pdftext.ErrCorrupt},
		{"context", time.Minute, true, cause},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.timeout = tc.timeout
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			hung := d.s
			err := d.call(ctx, func(s *session) error {
				if tc.cancel {
					cancel(cause)
				}
				<-release
				return nil
			})
			if !errors.Is(err, tc.want) || !errors.Is(err, errAbandoned) {
				t.Fatalf("got %v, want %v for an abandoned call", err, tc.want)
			}
			d.timeout = time.Minute
			got, err := d.PageText(1)
			if err != nil {
				t.Fatalf("PageText after giving up: %v", err)
			}
			if got != want {
				t.Errorf("PageText after giving up: got %q, want %q", got, want)
			}
			if d.s == hung {
				t.Error("the document still uses the abandoned session")
			}
		})
	}
}

// TestDamaged overwrites bytes all over a valid PDF and checks that
// PDFium's complaints come back as nil or pdftext.ErrCorrupt, never a crash.
func TestDamaged(t *testing.T) {
	_, src := pdftexttest.WritePDF(t, pdfgen.Sample(2))
	dir := t.TempDir()
	eng := testEngine(t)
	const runs = 16
	for i := range runs {
		b := bytes.Clone(src)
		at := 16 + i*(len(b)-40)/runs
		copy(b[at:], "]>> obj 9 0 R (\\")
		path := filepath.Join(dir, fmt.Sprintf("damaged%d.pdf", i))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		err := func() error {
			doc, err := eng.Open(path, "")
			if err != nil {
				return err
			}
			defer doc.Close()
			if _, err := doc.Outline(); err != nil {
				return err
			}
			for p := range doc.NumPages() {
				if _, err := doc.PageText(p); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil && !errors.Is(err, pdftext.ErrCorrupt) {
			t.Errorf("damage at byte %d: got error %v, want nil or pdftext.ErrCorrupt", at, err)
		}
	}
}

// TestConcurrent extracts one file from several goroutines at once
// and checks they all get what a lone run gets.
func TestConcurrent(t *testing.T) {
	path, _ := pdftexttest.WritePDF(t, pdfgen.Sample(3))
	eng := testEngine(t)
	extract := func() ([]pdftext.Chunk, error) {
		var chunks []pdftext.Chunk
		_, err := pdftext.Extract(context.Background(), eng, path, pdftext.Options{}, func(c pdftext.Chunk) error {
			chunks = append(chunks, c)
			return nil
		})
		return chunks, err
	}
	want, err := extract()
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	results := make([][]pdftext.Chunk, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { results[w], errs[w] = extract() })
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

func TestNewBlock(t *testing.T) {
	tests := []struct {
		name                     string
		prevY, prevSize, y, size float64
		want                     bool
	}{
		{"next line, 1.4 spacing", 700, 11, 684.6, 11, false},
		{"next line, 1.2 spacing", 700, 10, 688, 10, false},
		{"paragraph gap", 700, 11, 675.4, 11, true},
		{"new column", 100, 11, 700, 11, true},
		{"same line, next object", 700, 11, 700, 11, false},
		{"heading then body", 700, 18, 680, 11, true},
		{"superscript size change", 700, 11, 703, 10, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newBlock(tc.prevY, tc.prevSize, tc.y, tc.size); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
