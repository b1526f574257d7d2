package pdfgen

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
)

// mixedDoc exercises Latin, WinAnsi extras, CJK, explicit positions,
// columns and a nested outline.
func mixedDoc() Doc {
	return Doc{
		Title: "Mixed 混合 (test)",
		Pages: []Page{
			{Blocks: []Block{
				{Text: "1 Introduction", Size: 18, Bold: true},
				{Text: "Plain text with Café, naïve, – dashes, “quotes”, (parens) and back\\slash. " +
					"This sentence is long enough to wrap several times across the page so that line breaking is exercised."},
				{Text: "中文文本的提取必须准确无误。我们使用 PDF 格式保存文档！这是第三句话吗？" +
					"这是一个很长的句子，用来测试中文的自动换行功能是否正常工作，并且不会在标点符号之前断行。"},
				{Text: "First line\nSecond line\n\nNew paragraph after a blank line."},
			}},
			{Blocks: []Block{
				{Text: "1.1 两栏页面", Size: 14, Bold: true},
				{Text: "Left column text that is fairly long and wraps inside the narrow column width.", X: Margin, Y: 120, Width: 230},
				{Text: "右栏的中文内容，同样需要自动换行并且保持顺序。Right column text.", X: 310, Y: 120, Width: 230},
			}},
		},
		Outline: []OutlineItem{
			{Title: "1 Introduction", Page: 0, Y: Margin, Children: []OutlineItem{
				{Title: "1.1 两栏页面", Page: 1, Y: Margin},
			}},
			{Title: "Appendix", Page: 1, Y: 120},
		},
	}
}

func write(t testing.TB, d Doc) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, d); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.Bytes()
}

var (
	startxrefRE = regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`)
	trailerRE   = regexp.MustCompile(`trailer\n<< /Size (\d+) /Root (\d+) 0 R /Info (\d+) 0 R`)
	objRE       = regexp.MustCompile(`(?m)^(\d+) 0 obj\n`)
)

// xrefOffsets parses the xref table and checks every in-use entry points
// at "N 0 obj".
func xrefOffsets(t *testing.T, pdf []byte) map[int]int {
	t.Helper()
	m := startxrefRE.FindSubmatch(pdf)
	if m == nil {
		t.Fatalf("no startxref at end of file")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if xref >= len(pdf) || !bytes.HasPrefix(pdf[xref:], []byte("xref\n0 ")) {
		t.Fatalf("startxref %d does not point at an xref table", xref)
	}
	rest := pdf[xref+len("xref\n"):]
	var first, count int
	if _, err := fmt.Sscanf(string(rest), "%d %d\n", &first, &count); err != nil {
		t.Fatalf("xref subsection header: %v", err)
	}
	rest = rest[bytes.IndexByte(rest, '\n')+1:]
	offsets := map[int]int{}
	for i := range count {
		entry := rest[i*20 : i*20+20]
		if entry[18] != ' ' && entry[19] != '\n' {
			t.Fatalf("xref entry %d is not 20 bytes: %q", i, entry)
		}
		if entry[17] == 'f' {
			continue
		}
		off, err := strconv.Atoi(string(entry[:10]))
		if err != nil {
			t.Fatalf("xref entry %d: %v", i, err)
		}
		want := fmt.Sprintf("%d 0 obj\n", first+i)
		if off >= len(pdf) || !bytes.HasPrefix(pdf[off:], []byte(want)) {
			t.Errorf("xref entry %d: offset %d does not point at %q", first+i, off, want)
		}
		offsets[first+i] = off
	}
	tm := trailerRE.FindSubmatch(pdf)
	if tm == nil {
		t.Fatalf("no trailer with /Size /Root /Info")
	}
	if size, _ := strconv.Atoi(string(tm[1])); size != count {
		t.Errorf("got trailer /Size %d, want %d (xref entries)", size, count)
	}
	return offsets
}

func TestWriteStructure(t *testing.T) {
	noOutline := mixedDoc()
	noOutline.Outline = nil
	compressed := Sample(5)
	compressed.Compress = true
	tests := []struct {
		name  string
		doc   Doc
		pages int
	}{
		{"one empty page", Doc{Pages: []Page{{}}}, 1},
		{"mixed", mixedDoc(), 2},
		{"no outline", noOutline, 2},
		{"sample", Sample(7), 7},
		{"compressed sample", compressed, 5},
		{"letter size", Doc{PageWidth: 612, PageHeight: 792, Pages: []Page{{Blocks: []Block{{Text: "x"}}}}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pdf := write(t, tc.doc)
			if !bytes.HasPrefix(pdf, []byte("%PDF-1.7\n")) {
				t.Fatalf("got header %q, want %%PDF-1.7", pdf[:9])
			}
			offsets := xrefOffsets(t, pdf)
			objs := objRE.FindAllSubmatchIndex(pdf, -1)
			if len(objs) != len(offsets) {
				t.Errorf("got %d objects in file, want %d (in-use xref entries)", len(objs), len(offsets))
			}
			for _, o := range objs {
				n, _ := strconv.Atoi(string(pdf[o[2]:o[3]]))
				if offsets[n] != o[0] {
					t.Errorf("object %d at offset %d, xref says %d", n, o[0], offsets[n])
				}
			}
			if got := bytes.Count(pdf, []byte("/Type /Page ")); got != tc.pages {
				t.Errorf("got %d page objects, want %d", got, tc.pages)
			}
			w, h := tc.doc.PageWidth, tc.doc.PageHeight
			if w == 0 {
				w, h = A4Width, A4Height
			}
			if box := fmt.Sprintf("/MediaBox [0 0 %s %s]", num(w), num(h)); !bytes.Contains(pdf, []byte(box)) {
				t.Errorf("no %s", box)
			}
			if got, want := bytes.Contains(pdf, []byte("/Outlines")), len(tc.doc.Outline) > 0; got != want {
				t.Errorf("got /Outlines present %v, want %v", got, want)
			}
			if !bytes.Contains(pdf, []byte("/Title "+textString(tc.doc.Title))) {
				t.Errorf("no /Title %s in /Info", textString(tc.doc.Title))
			}
			if tc.doc.Compress && !bytes.Contains(pdf, []byte("/FlateDecode")) {
				t.Errorf("compressed document has no /FlateDecode stream")
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			a, b := Sample(12), Sample(12)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("Sample(12) differs between calls")
			}
			a.Compress, b.Compress = compress, compress
			if pa, pb := write(t, a), write(t, b); !bytes.Equal(pa, pb) {
				t.Errorf("Write output differs between calls (%d vs %d bytes)", len(pa), len(pb))
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  Doc
		want error
	}{
		{"no pages", Doc{Title: "x"}, ErrNoPages},
		{"negative size", Doc{PageWidth: -1, Pages: []Page{{}}}, ErrPageSize},
		{"outline page past end", Doc{Pages: []Page{{}}, Outline: []OutlineItem{{Title: "a", Page: 1}}}, ErrOutlinePage},
		{"nested outline page negative", Doc{Pages: []Page{{}}, Outline: []OutlineItem{
			{Title: "a", Children: []OutlineItem{{Title: "b", Page: -1}}}}}, ErrOutlinePage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Write(io.Discard, tc.doc); !errors.Is(err, tc.want) {
				t.Errorf("got error %v, want %v", err, tc.want)
			}
		})
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWritePropagatesWriterError(t *testing.T) {
	if err := Write(&failWriter{n: 100 << 10}, Sample(50)); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("got error %v, want %v", err, io.ErrShortWrite)
	}
}

// countingWriter records how the output arrives.
type countingWriter struct{ calls, bytes int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls++
	c.bytes += len(p)
	return len(p), nil
}

func TestWriteStreamsLargeDocuments(t *testing.T) {
	d := Sample(1001)
	if len(d.Pages) != 1001 {
		t.Fatalf("got %d pages, want 1001", len(d.Pages))
	}
	var w countingWriter
	if err := Write(&w, d); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Output must reach w in buffer-sized pieces as pages are produced, not
	// in one piece at the end.
	if min := w.bytes / (128 << 10); w.calls < min || w.calls < 10 {
		t.Errorf("got %d writes for %d bytes, want at least %d (streaming)", w.calls, w.bytes, max(min, 10))
	}
}

// pdfObjects returns the body of each "N 0 obj ... endobj".
func pdfObjects(pdf []byte) map[int]string {
	objs := map[int]string{}
	for _, m := range objRE.FindAllSubmatchIndex(pdf, -1) {
		n, _ := strconv.Atoi(string(pdf[m[2]:m[3]]))
		end := bytes.Index(pdf[m[1]:], []byte("\nendobj\n"))
		objs[n] = string(pdf[m[1] : m[1]+end])
	}
	return objs
}

var refRE = regexp.MustCompile(`/(\w+) (\d+) 0 R`)

func refs(dict string) map[string]int {
	out := map[string]int{}
	for _, m := range refRE.FindAllStringSubmatch(dict, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

func decodeTextString(t *testing.T, s string) string {
	t.Helper()
	if strings.HasPrefix(s, "<FEFF") {
		raw, err := hex.DecodeString(s[5 : len(s)-1])
		if err != nil {
			t.Fatalf("bad hex string %q: %v", s, err)
		}
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		return string(utf16.Decode(u))
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "("), ")")
	return regexp.MustCompile(`\\(.)`).ReplaceAllString(s, "$1")
}

var (
	titleRE = regexp.MustCompile(`/Title (\(.*?[^\\]\)|<[0-9A-F]+>)`)
	countRE = regexp.MustCompile(`/Count (-?\d+)`)
	destRE  = regexp.MustCompile(`/Dest \[(\d+) 0 R /XYZ 0 ([\d.]+) null\]`)
)

// TestOutlineLinks walks /First /Next and checks /Last /Prev /Parent
// /Count and /Dest against the input tree.
func TestOutlineLinks(t *testing.T) {
	docs := map[string]Doc{"mixed": mixedDoc(), "sample": Sample(9)}
	for name, d := range docs {
		t.Run(name, func(t *testing.T) {
			objs := pdfObjects(write(t, d))
			catalog := objs[objCatalog]
			root, ok := refs(catalog)["Outlines"]
			if !ok {
				t.Fatalf("catalog has no /Outlines: %s", catalog)
			}
			pageObjs := refKids(t, objs[objPages])
			var walk func(parent int, want []OutlineItem, path string)
			walk = func(parent int, want []OutlineItem, path string) {
				pr := refs(objs[parent])
				if len(want) == 0 {
					if _, ok := pr["First"]; ok {
						t.Errorf("%s: unexpected /First", path)
					}
					return
				}
				if got := atoi(countRE.FindStringSubmatch(objs[parent])); got != countItems(want) {
					t.Errorf("%s: got /Count %d, want %d", path, got, countItems(want))
				}
				cur, prev := pr["First"], 0
				for i, w := range want {
					p := fmt.Sprintf("%s/%d", path, i)
					body, ok := objs[cur]
					if !ok {
						t.Fatalf("%s: missing outline object %d", p, cur)
					}
					r := refs(body)
					if got := decodeTextString(t, titleRE.FindStringSubmatch(body)[1]); got != w.Title {
						t.Errorf("%s: got title %q, want %q", p, got, w.Title)
					}
					if r["Parent"] != parent {
						t.Errorf("%s: got /Parent %d, want %d", p, r["Parent"], parent)
					}
					if r["Prev"] != prev {
						t.Errorf("%s: got /Prev %d, want %d", p, r["Prev"], prev)
					}
					dm := destRE.FindStringSubmatch(body)
					if dm == nil {
						t.Fatalf("%s: no /Dest [p /XYZ 0 top null] in %s", p, body)
					}
					if pg, _ := strconv.Atoi(dm[1]); pg != pageObjs[w.Page] {
						t.Errorf("%s: got dest page obj %d, want %d", p, pg, pageObjs[w.Page])
					}
					if top, _ := strconv.ParseFloat(dm[2], 64); math.Abs(top-(A4Height-w.Y)) > 0.01 {
						t.Errorf("%s: got dest top %v, want %v", p, top, A4Height-w.Y)
					}
					walk(cur, w.Children, p)
					if i == len(want)-1 {
						if pr["Last"] != cur {
							t.Errorf("%s: parent /Last %d, want %d", p, pr["Last"], cur)
						}
						if _, ok := r["Next"]; ok {
							t.Errorf("%s: last item has /Next", p)
						}
					}
					prev, cur = cur, r["Next"]
				}
			}
			walk(root, d.Outline, "outline")
		})
	}
}

func atoi(m []string) int {
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func refKids(t *testing.T, pages string) []int {
	t.Helper()
	i := strings.Index(pages, "/Kids [")
	if i < 0 {
		t.Fatalf("no /Kids in %s", pages)
	}
	var kids []int
	for _, m := range regexp.MustCompile(`(\d+) 0 R`).FindAllStringSubmatch(pages[i:], -1) {
		n, _ := strconv.Atoi(m[1])
		kids = append(kids, n)
	}
	return kids
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		width float64
		want  []string
	}{
		{"fits", "hello world", 200, []string{"hello world"}},
		{"breaks at spaces", "aaaa bbbb cccc", 55, []string{"aaaa bbbb", "cccc"}},
		{"newlines and blank line", "one\ntwo\n\nthree", 200, []string{"one", "two", "", "three"}},
		{"long word broken", "abcdefghijkl", 20, []string{"abc", "def", "ghij", "kl"}},
		{"cjk per character", "一二三四五六", 33, []string{"一二三", "四五六"}},
		{"no line starts with 。", "一二三。四五", 33, []string{"一二", "三。四", "五"}},
		{"opening bracket kept with next", "一二《三》", 33, []string{"一二", "《三》"}},
		{"mixed", "使用 PDF 格式", 50, []string{"使用 PDF", "格式"}},
		{"tab is a space, control dropped", "a\tb\x07c", 200, []string{"a bc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := normalize(tc.text)
			var got []string
			for _, l := range wrap(src, 11, tc.width, false) {
				got = append(got, string(src[l.start:l.end]))
				if w := textWidth(src[l.start:l.end], 11, false); w > tc.width && l.end-l.start > 1 {
					t.Errorf("line %q is %.1fpt wide, limit %.1f", string(src[l.start:l.end]), w, tc.width)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTextString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Plain (a)\\b", `(Plain \(a\)\\b)`},
		{"中", "<FEFF4E2D>"},
		{"", "()"},
	}
	for _, tc := range tests {
		if got := textString(tc.in); got != tc.want {
			t.Errorf("textString(%q): got %s, want %s", tc.in, got, tc.want)
		}
	}
}

var headingRE = regexp.MustCompile(`^\d+(\.\d+)* \S`)

func TestSampleShape(t *testing.T) {
	for _, n := range []int{-3, 1, 3, 10, 40} {
		t.Run(fmt.Sprintf("pages=%d", n), func(t *testing.T) {
			d := Sample(n)
			if want := max(n, 1); len(d.Pages) != want {
				t.Fatalf("got %d pages, want %d", len(d.Pages), want)
			}
			if len(d.Outline) == 0 {
				t.Fatalf("no outline")
			}
			// Every outline item is a bold heading block at its page and Y.
			depth := 0
			var check func(items []OutlineItem, level int)
			check = func(items []OutlineItem, level int) {
				depth = max(depth, level)
				for _, it := range items {
					if !headingRE.MatchString(it.Title) {
						t.Errorf("outline title %q is not numbered", it.Title)
					}
					if dots := strings.Count(strings.Fields(it.Title)[0], "."); dots != level-1 {
						t.Errorf("outline title %q at level %d", it.Title, level)
					}
					if !hasBlock(d.Pages[it.Page], it.Title, it.Y) {
						t.Errorf("no bold block %q at page %d y %v", it.Title, it.Page, it.Y)
					}
					check(it.Children, level+1)
				}
			}
			check(d.Outline, 1)
			var zh, en, twoCol bool
			for _, p := range d.Pages {
				xs := map[float64]bool{}
				for _, b := range p.Blocks {
					xs[b.X] = true
					if b.Bold {
						continue
					}
					last := []rune(b.Text)[len([]rune(b.Text))-1]
					zh = zh || strings.ContainsAny(string(last), "。！？") && unicode.Is(unicode.Han, []rune(b.Text)[0])
					en = en || last == '.' && b.Text[0] >= 'A' && b.Text[0] <= 'Z'
				}
				twoCol = twoCol || len(xs) > 1
			}
			if !zh || !en {
				t.Errorf("got Chinese paragraph %v, English paragraph %v, want both", zh, en)
			}
			if n >= 3 && !twoCol {
				t.Errorf("no two-column page in %d pages", n)
			}
			if n >= 10 && depth < 3 {
				t.Errorf("got outline depth %d, want 3", depth)
			}
		})
	}
}

func hasBlock(p Page, text string, y float64) bool {
	for _, b := range p.Blocks {
		if b.Bold && b.Text == text && b.Y == y {
			return true
		}
	}
	return false
}

func BenchmarkWrite1000(b *testing.B) {
	d := Sample(1000)
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}
