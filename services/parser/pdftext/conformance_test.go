package pdftext

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// The conformance suite runs every Engine on the same generated fixtures
// and checks each against what pdfgen drew, so the engines agree with the
// source and therefore with each other.

// sharedPDFium is the PDFium engine of every test in the package.
// Compiling the WebAssembly module takes seconds, and half a minute under
// -race, so it is compiled once per test binary and kept in a compilation
// cache under the user cache directory for later runs.
var sharedPDFium = sync.OnceValues(func() (*PDFiumEngine, error) {
	cfg := PDFiumConfig{MaxInstances: 4}
	if dir, err := os.UserCacheDir(); err == nil {
		cfg.CacheDir = filepath.Join(dir, "pdfpipe", "wazero")
	}
	e := NewPDFiumEngine(cfg)
	return e, e.Init()
})

func testPDFium(t testing.TB) *PDFiumEngine {
	t.Helper()
	e, err := sharedPDFium()
	if err != nil {
		t.Fatalf("start PDFium: %v", err)
	}
	return e
}

type namedEngine struct {
	name string
	eng  Engine
	// dropsLoneGlyphs: the engine loses a text object made of a single
	// glyph that the font cannot draw (see TestPDFiumLoneGlyph).
	dropsLoneGlyphs bool
}

// conformanceEngines lists every engine the suite checks.
func conformanceEngines(t testing.TB) []namedEngine {
	return []namedEngine{
		{name: "mupdf", eng: NewFitzEngine()},
		{name: "pdfium", eng: testPDFium(t), dropsLoneGlyphs: true},
	}
}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, ne namedEngine)) {
	for _, ne := range conformanceEngines(t) {
		t.Run(ne.name, func(t *testing.T) { f(t, ne) })
	}
}

func confWrite(t testing.TB, d pdfgen.Doc) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, d); err != nil {
		t.Fatalf("pdfgen.Write: %v", err)
	}
	return confFile(t, "doc.pdf", buf.Bytes()), buf.Bytes()
}

func confFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func confIsCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF) || r == '“' || r == '”' || r == '…'
}

// confNorm collapses whitespace runs to one space and drops the spaces
// next to CJK characters, where line breaks fall inside Chinese text.
func confNorm(s string) string {
	rs := []rune(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for i, r := range rs {
		if r == ' ' && ((i > 0 && confIsCJK(rs[i-1])) || (i+1 < len(rs) && confIsCJK(rs[i+1]))) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lostLoneGlyphs reports whether got is want less a few CJK characters
// (spaces aside), and returns them. pdfgen sets CJK text in an unembedded
// font that PDFium has no glyphs for, and PDFium skips text objects
// without a glyph box wider than 0.01 pt: a CJK run of one character
// (between two Latin words, or alone at a line end) disappears.
func lostLoneGlyphs(got, want string) (string, bool) {
	g := []rune(strings.ReplaceAll(got, " ", ""))
	w := []rune(strings.ReplaceAll(want, " ", ""))
	var lost []rune
	i := 0
	for _, r := range w {
		if i < len(g) && g[i] == r {
			i++
			continue
		}
		if !confIsCJK(r) {
			return "", false
		}
		lost = append(lost, r)
	}
	return string(lost), i == len(g) && len(lost) <= max(3, len(w)/100)
}

// wantPageText is what page p draws, normalised.
func wantPageText(p pdfgen.Page) string {
	var parts []string
	for _, b := range p.Blocks {
		parts = append(parts, b.Text)
	}
	return confNorm(strings.Join(parts, "\n"))
}

func wantOutline(items []pdfgen.OutlineItem, level int) []OutlineEntry {
	var out []OutlineEntry
	for _, it := range items {
		out = append(out, OutlineEntry{Level: level, Title: it.Title, Page: it.Page, Y: it.Y})
		out = append(out, wantOutline(it.Children, level+1)...)
	}
	return out
}

// conformanceDocs are the fixtures: Latin and Chinese text, two-column
// pages, a page without text, nested outlines with Chinese titles.
func conformanceDocs() map[string]pdfgen.Doc {
	compressed := pdfgen.Sample(9)
	compressed.Compress = true
	return map[string]pdfgen.Doc{
		"sample": pdfgen.Sample(12),
		"compressed sample, letter size": func() pdfgen.Doc {
			d := compressed
			d.PageWidth, d.PageHeight = 612, 792
			return d
		}(),
		"mixed without outline": {Pages: []pdfgen.Page{
			{Blocks: []pdfgen.Block{
				{Text: "Heading in bold", Size: 16, Bold: true},
				{Text: "Latin text in Helvetica, with accents: café, naïve, Ærø.\n\n中文文本使用 Type0 字体，标点符号也要保留。"},
				{Text: "Left column: the first of two.", X: 56, Y: 300, Width: 230},
				{Text: "Right column: 第二栏的文字。", X: 310, Y: 300, Width: 230},
			}},
			{}, // a page without text
			{Blocks: []pdfgen.Block{{Text: "纯中文页面。没有任何拉丁字母！真的吗？是的；确实如此。"}}},
		}},
		"outline": {
			Pages: []pdfgen.Page{
				{Blocks: []pdfgen.Block{{Text: "Cover"}}},
				{Blocks: []pdfgen.Block{{Text: "1 第一章", Size: 18, Bold: true}, {Text: "Body of chapter one."}}},
				{Blocks: []pdfgen.Block{{Text: "1.1 Section", Size: 14, Bold: true}, {Text: "Body.", Y: 400}}},
				{Blocks: []pdfgen.Block{{Text: "2 Second chapter", Size: 18, Bold: true}}},
			},
			Outline: []pdfgen.OutlineItem{
				{Title: "1 第一章", Page: 1, Y: pdfgen.Margin, Children: []pdfgen.OutlineItem{
					{Title: "1.1 Section", Page: 2, Y: 123.5, Children: []pdfgen.OutlineItem{
						{Title: "1.1.1 Deep", Page: 2, Y: 400},
					}},
				}},
				{Title: "2 Second chapter", Page: 3, Y: 0},
				{Title: "Appendix «A» & ‘quotes’", Page: 3, Y: 700},
			},
		},
	}
}

// TestConformanceText checks page count, every page's text and the
// outline of each fixture, on every engine.
func TestConformanceText(t *testing.T) {
	for name, d := range conformanceDocs() {
		path, _ := confWrite(t, d)
		t.Run(name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				doc, err := ne.eng.Open(path, "")
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer doc.Close()
				checkDoc(t, ne, doc, d)
			})
		})
	}
}

func checkDoc(t *testing.T, ne namedEngine, doc Document, d pdfgen.Doc) {
	t.Helper()
	if got, want := doc.NumPages(), len(d.Pages); got != want {
		t.Fatalf("got %d pages, want %d", got, want)
	}
	for i, p := range d.Pages {
		text, err := doc.PageText(i)
		if err != nil {
			t.Fatalf("PageText(%d): %v", i, err)
		}
		got, want := confNorm(text), wantPageText(p)
		if got == want {
			continue
		}
		if lost, ok := lostLoneGlyphs(got, want); ne.dropsLoneGlyphs && ok {
			t.Logf("page %d: lost %q (undrawable single-glyph text objects, a known PDFium limitation)", i, lost)
			continue
		}
		t.Errorf("page %d:\ngot  %q\nwant %q", i, got, want)
	}
	outline, err := doc.Outline()
	if err != nil {
		t.Fatalf("Outline: %v", err)
	}
	want := wantOutline(d.Outline, 1)
	if len(outline) != len(want) {
		t.Fatalf("got %d outline entries %+v, want %d %+v", len(outline), outline, len(want), want)
	}
	for i := range want {
		g, w := outline[i], want[i]
		if g.Level != w.Level || g.Title != w.Title || g.Page != w.Page || math.Abs(g.Y-w.Y) > 0.05 {
			t.Errorf("outline entry %d: got %+v, want %+v", i, g, w)
		}
	}
}

// TestConformancePageText checks what the interface promises beyond the
// words: lines end with "\n", paragraphs of one block are separated by a
// blank line, and headings are their own paragraph.
func TestConformancePageText(t *testing.T) {
	d := pdfgen.Doc{Pages: []pdfgen.Page{{Blocks: []pdfgen.Block{
		{Text: "2.1 A heading", Size: 16, Bold: true},
		{Text: "First paragraph, one line.\n\nSecond paragraph, which is long enough to wrap onto a second line of the block at the default size.\n\n第三段。"},
	}}}}
	path, _ := confWrite(t, d)
	forEachEngine(t, func(t *testing.T, ne namedEngine) {
		doc, err := ne.eng.Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer doc.Close()
		text, err := doc.PageText(0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
			got = append(got, confNorm(p))
		}
		want := []string{
			"2.1 A heading",
			"First paragraph, one line.",
			"Second paragraph, which is long enough to wrap onto a second line of the block at the default size.",
			"第三段。",
		}
		if !slices.Equal(got, want) {
			t.Errorf("got paragraphs %q, want %q (page text %q)", got, want, text)
		}
	})
}

// TestConformanceExtract runs Extract with each engine on the sample and
// checks both see the same document: pages, chapters in order, chunks.
func TestConformanceExtract(t *testing.T) {
	path, _ := confWrite(t, pdfgen.Sample(8))
	type result struct {
		info     Info
		chapters []string
	}
	var results []result
	for _, ne := range conformanceEngines(t) {
		var r result
		info, err := Extract(context.Background(), ne.eng, path, Options{}, func(c Chunk) error {
			if n := len(r.chapters); n == 0 || r.chapters[n-1] != c.Chapter {
				r.chapters = append(r.chapters, c.Chapter)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Extract: %v", ne.name, err)
		}
		r.info = info
		if info.Pages != 8 || info.Chunks == 0 || len(r.chapters) < 3 {
			t.Errorf("%s: got %+v with chapters %q, want 8 pages, chunks and at least 3 chapters", ne.name, info, r.chapters)
		}
		results = append(results, r)
	}
	for i := 1; i < len(results); i++ {
		if results[i].info.Pages != results[0].info.Pages || results[i].info.EmptyPages != results[0].info.EmptyPages ||
			!slices.Equal(results[i].chapters, results[0].chapters) {
			t.Errorf("engines disagree: %+v %q vs %+v %q", results[0].info, results[0].chapters, results[i].info, results[i].chapters)
		}
	}
}

// mutoolEncrypt encrypts src with mutool clean; user may be empty.
func mutoolEncrypt(t *testing.T, src, method, user, owner string) string {
	t.Helper()
	return testenv.EncryptPDF(t, src, method, user, owner)
}

// TestConformanceEncrypted opens encrypted copies of a document with and
// without passwords.
func TestConformanceEncrypted(t *testing.T) {
	d := pdfgen.Sample(3)
	plain, _ := confWrite(t, d)
	files := map[string]string{
		"aes-256 user password":       mutoolEncrypt(t, plain, "aes-256", "user", "owner"),
		"rc4-128 user password":       mutoolEncrypt(t, plain, "rc4-128", "user", "owner"),
		"aes-128 empty user password": mutoolEncrypt(t, plain, "aes-128", "", "owner"),
		"aes-256 empty user password": mutoolEncrypt(t, plain, "aes-256", "", "owner"),
	}
	tests := []struct {
		file, password string
		wantErr        error
	}{
		{"aes-256 user password", "", ErrEncrypted},
		{"aes-256 user password", "wrong", ErrEncrypted},
		{"aes-256 user password", "user", nil},
		{"aes-256 user password", "owner", nil},
		{"rc4-128 user password", "", ErrEncrypted},
		{"rc4-128 user password", "user", nil},
		{"aes-128 empty user password", "", nil},
		{"aes-256 empty user password", "", nil},
		{"aes-256 empty user password", "owner", nil},
	}
	for _, tc := range tests {
		t.Run(tc.file+", password "+tc.password, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				doc, err := ne.eng.Open(files[tc.file], tc.password)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if err != nil {
					return
				}
				defer doc.Close()
				checkDoc(t, ne, doc, d)
			})
		})
	}
}

// TestConformanceErrors checks that both engines classify broken input
// the same way.
func TestConformanceErrors(t *testing.T) {
	_, good := confWrite(t, pdfgen.Sample(3))
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde")
	tests := []struct {
		name    string
		data    []byte // nil: the file does not exist
		wantErr error
	}{
		{"zero bytes", []byte{}, ErrNotPDF},
		{"plain text", []byte("hello, this is plain text and not a PDF at all\n"), ErrNotPDF},
		{"png image", png, ErrNotPDF},
		{"html", []byte("<!doctype html><html><body>%PDF</body></html>\n%%EOF\n"), ErrNotPDF},
		{"header only", []byte("%PDF-1.7\n"), ErrCorrupt},
		{"header and garbage", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage \x00\xff"), 500)...), ErrCorrupt},
		{"header, garbage and %%EOF", append(append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage \x00\xff"), 500)...), "\n%%EOF\n"...), ErrCorrupt},
		{"truncated to 200 bytes", good[:200], ErrCorrupt},
		{"catalog without pages", []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"), ErrCorrupt},
		{"missing file", nil, fs.ErrNotExist},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "missing.pdf")
		if tc.data != nil {
			path = confFile(t, "in.pdf", tc.data)
		}
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				doc, err := ne.eng.Open(path, "")
				if err == nil {
					doc.Close()
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("got error %v, want %v", err, tc.wantErr)
				}
				if strings.HasPrefix(tc.name, "truncated") && !strings.Contains(fmt.Sprint(err), "truncated: no %%EOF marker at the end") {
					t.Errorf("error %q does not name the truncation", err)
				}
			})
		})
	}
}

// TestConformanceRepairable checks that files the engines repair and read
// whole are not refused by the checks before them: a cut-off trailer, and
// a second %%EOF followed by more than a kilobyte of padding. A file cut
// in half is read as far as the engine can, or refused naming the
// truncation.
func TestConformanceRepairable(t *testing.T) {
	d := pdfgen.Sample(3)
	_, good := confWrite(t, d)
	whole := map[string][]byte{
		"truncated before %%EOF": good[:len(good)-8],
		"two %%EOF markers and padding": append(append(slices.Clip(good), "\n%%EOF\n"...),
			bytes.Repeat([]byte("\x00\x00\x00 padding\r\n"), 300)...),
	}
	for name, b := range whole {
		path := confFile(t, "in.pdf", b)
		t.Run(name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				doc, err := ne.eng.Open(path, "")
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer doc.Close()
				checkDoc(t, ne, doc, d)
			})
		})
	}
	half := confFile(t, "half.pdf", good[:len(good)/2])
	t.Run("truncated to half", func(t *testing.T) {
		forEachEngine(t, func(t *testing.T, ne namedEngine) {
			_, err := Extract(context.Background(), ne.eng, half, Options{}, func(Chunk) error { return nil })
			if err != nil && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated")) {
				t.Errorf("got error %v, want none or one naming the truncation", err)
			}
		})
	})
}
