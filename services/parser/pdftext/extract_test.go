package pdftext

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"crypto/rc4"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// writePDF writes d with pdfgen into a temp file and returns its path.
func writePDF(t testing.TB, d pdfgen.Doc) string {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, d); err != nil {
		t.Fatalf("pdfgen.Write: %v", err)
	}
	return writeFile(t, "doc.pdf", buf.Bytes())
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func collect(t *testing.T, path string, opts Options) ([]Chunk, Info) {
	t.Helper()
	var chunks []Chunk
	info, err := Extract(context.Background(), NewFitzEngine(), path, opts, func(c Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return chunks, info
}

func page(paras ...string) pdfgen.Page {
	return pdfgen.Page{Blocks: []pdfgen.Block{{Text: strings.Join(paras, "\n\n")}}}
}

type chunkLabel struct {
	Chapter, ChapterNum string
	PageStart, PageEnd  int
}

func labels(chunks []Chunk) []chunkLabel {
	out := make([]chunkLabel, len(chunks))
	for i, c := range chunks {
		out[i] = chunkLabel{c.Chapter, c.ChapterNum, c.PageStart, c.PageEnd}
	}
	return out
}

// checkLabels reports (as an error at the caller's line) and returns
// false when the chunks' labels are not want.
func checkLabels(t *testing.T, chunks []Chunk, want []chunkLabel) bool {
	t.Helper()
	if got := labels(chunks); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got chunks %+v, want %+v", got, want)
		return false
	}
	return true
}

func TestExtractChapters(t *testing.T) {
	pages := []pdfgen.Page{
		page("Cover page before any chapter."),
		page("1 Introduction", "Why we do this."),
		page("2 Methods", "How we do it."),
		page("2.1 Data", "Where the data comes from."),
		page("Model details", "What the model is."),
		page("Results", "First results page."),
		page("Second results page."),
	}
	outline := []pdfgen.OutlineItem{
		{Title: "1 Introduction", Page: 1},
		{Title: "2 Methods", Page: 2, Children: []pdfgen.OutlineItem{
			{Title: "2.1 Data", Page: 3},
			{Title: "Model details", Page: 4},
		}},
		{Title: "Results", Page: 5},
	}
	tests := []struct {
		name      string
		outline   []pdfgen.OutlineItem
		want      []chunkLabel
		wantTexts []string
		wantInfo  Info
	}{
		{
			name:    "with outline",
			outline: outline,
			want: []chunkLabel{
				{"", "", 1, 1},
				{"1 Introduction", "1", 2, 2},
				{"2 Methods", "2", 3, 3},
				{"2 Methods › 2.1 Data", "2.1", 4, 4},
				{"2 Methods › Model details", "", 5, 5}, // unnumbered among numbered siblings
				{"Results", "", 6, 7},
			},
			wantTexts: []string{
				"Cover page before any chapter.",
				"1 Introduction\n\nWhy we do this.",
				"2 Methods\n\nHow we do it.",
				"2.1 Data\n\nWhere the data comes from.",
				"Model details\n\nWhat the model is.",
				"Results\n\nFirst results page.\n\nSecond results page.",
			},
			wantInfo: Info{Pages: 7, Chunks: 6, Chapters: 5},
		},
		{
			name: "without outline",
			want: []chunkLabel{{"", "", 1, 7}},
			wantTexts: []string{strings.Join([]string{
				"Cover page before any chapter.",
				"1 Introduction", "Why we do this.",
				"2 Methods", "How we do it.",
				"2.1 Data", "Where the data comes from.",
				"Model details", "What the model is.",
				"Results", "First results page.",
				"Second results page.",
			}, "\n\n")},
			wantInfo: Info{Pages: 7, Chunks: 1, Chapters: 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writePDF(t, pdfgen.Doc{Pages: pages, Outline: tc.outline})
			chunks, info := collect(t, path, Options{})
			checkLabels(t, chunks, tc.want)
			for i, c := range chunks {
				if i < len(tc.wantTexts) && c.Text != tc.wantTexts[i] {
					t.Errorf("chunk %d: got text %q, want %q", i, c.Text, tc.wantTexts[i])
				}
			}
			if info != tc.wantInfo {
				t.Errorf("got info %+v, want %+v", info, tc.wantInfo)
			}
		})
	}
}

func TestExtractPagesWithoutOutline(t *testing.T) {
	// Four pages of 400-rune paragraphs, target 1000, no overlap: the first
	// chunk ends at the paragraph end after page 2 (802 runes).
	sentence := "Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do. " // 64 runes
	para := func(n int) string {
		s := strings.Repeat(sentence, 6) + fmt.Sprintf("Page %d ends here.", n)
		return s[:len(s)-18] + fmt.Sprintf("Page %d ends it.", n)
	}
	var pages []pdfgen.Page
	for i := 1; i <= 4; i++ {
		pages = append(pages, page(para(i)))
	}
	chunks, info := collect(t, writePDF(t, pdfgen.Doc{Pages: pages}), Options{ChunkOverlap: -1})
	want := []chunkLabel{{"", "", 1, 2}, {"", "", 3, 4}}
	if !checkLabels(t, chunks, want) {
		t.FailNow()
	}
	if got, want := chunks[0].Text, para(1)+"\n\n"+para(2); got != want {
		t.Errorf("chunk 0: got %q, want %q", got, want)
	}
	if got, want := chunks[1].Text, para(3)+"\n\n"+para(4); got != want {
		t.Errorf("chunk 1: got %q, want %q", got, want)
	}
	if want := (Info{Pages: 4, Chunks: 2}); info != want {
		t.Errorf("got info %+v, want %+v", info, want)
	}
}

func TestExtractChinese(t *testing.T) {
	paraZH := "这是一个测试文档，用来检查中文文本能否完整地往返。PDF文本提取应该保留每一个中文字符！第二句话是否也在？" +
		"最后一句包含全角标点：（括号）和“引号”；结束。"
	mixed := "混合段落 with English words 和中文。"
	d := pdfgen.Doc{
		Pages:   []pdfgen.Page{page("第一章 引言", paraZH, mixed)},
		Outline: []pdfgen.OutlineItem{{Title: "第一章 引言", Page: 0}},
	}
	chunks, _ := collect(t, writePDF(t, d), Options{})
	if len(chunks) != 1 {
		t.Fatalf("got %d chunks, want 1: %+v", len(chunks), chunks)
	}
	want := Chunk{
		Index: 0, Text: "第一章 引言\n\n" + paraZH + "\n\n" + mixed,
		Chapter: "第一章 引言", ChapterNum: "1", PageStart: 1, PageEnd: 1,
	}
	if chunks[0] != want {
		t.Errorf("got %+v, want %+v", chunks[0], want)
	}
}

// sampleText returns the text of d without whitespace, in reading order,
// with the 1-based page and the chapter (path and number, from the outline
// titles, which Sample sets as heading blocks) of each rune.
func sampleText(d pdfgen.Doc) (full []rune, runePage []int, runeChapter []chapter) {
	type flat struct {
		page  int
		title string
		path  []string
	}
	var items []flat
	var walk func(its []pdfgen.OutlineItem, parent []string)
	walk = func(its []pdfgen.OutlineItem, parent []string) {
		for _, it := range its {
			p := append(append([]string(nil), parent...), it.Title)
			items = append(items, flat{it.Page, it.Title, p})
			walk(it.Children, p)
		}
	}
	walk(d.Outline, nil)
	next := 0
	var cur chapter
	for i, pg := range d.Pages {
		for _, b := range pg.Blocks {
			if next < len(items) && items[next].page == i && b.Text == items[next].title {
				cur = chapter{path: strings.Join(items[next].path, chapterSep), num: headingNum.FindStringSubmatch(b.Text)[1]}
				next++
			}
			for _, r := range b.Text {
				if !unicode.IsSpace(r) {
					full = append(full, r)
					runePage = append(runePage, i+1)
					runeChapter = append(runeChapter, cur)
				}
			}
		}
	}
	return full, runePage, runeChapter
}

// checkCoverage checks that chunks cover full exactly, in order, with at
// most the overlap repeated (none across chapters), never more than the
// target size, with the pages and chapter of every rune they hold.
func checkCoverage(t *testing.T, chunks []Chunk, opts Options, full []rune, runePage []int, runeChapter []chapter) {
	t.Helper()
	eff := opts.withDefaults()
	pos := 0 // runes of full covered so far
	for i, c := range chunks {
		if c.Index != i {
			t.Fatalf("chunk %d has Index %d", i, c.Index)
		}
		if strings.TrimSpace(c.Text) == "" {
			t.Fatalf("chunk %d is empty", i)
		}
		if !utf8.ValidString(c.Text) {
			t.Fatalf("chunk %d is not valid UTF-8", i)
		}
		if n := utf8.RuneCountInString(c.Text); n > eff.ChunkSize {
			t.Errorf("chunk %d has %d runes, want <= %d", i, n, eff.ChunkSize)
		}
		text := []rune(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, c.Text))
		// The chunk must start inside the overlap window (no gap, at
		// most ChunkOverlap repeated, none across chapters).
		from := pos - eff.ChunkOverlap
		if i == 0 || chunks[i-1].Chapter != c.Chapter {
			from = pos
		}
		start := -1
		for s := max(from, 0); s <= pos; s++ {
			if s+len(text) <= len(full) && string(full[s:s+len(text)]) == string(text) {
				start = s
				break
			}
		}
		if start < 0 {
			t.Fatalf("chunk %d %q does not continue the text at rune %d (window %d): %q",
				i, c.Text, pos, pos-from, string(full[pos:min(pos+80, len(full))]))
		}
		end := start + len(text)
		if end <= pos {
			t.Fatalf("chunk %d adds no new text", i)
		}
		if got, want := [2]int{c.PageStart, c.PageEnd}, [2]int{runePage[start], runePage[end-1]}; got != want {
			t.Errorf("chunk %d: got pages %v, want %v", i, got, want)
		}
		for r := start; r < end; r++ {
			if ch := runeChapter[r]; ch.path != c.Chapter || ch.num != c.ChapterNum {
				t.Errorf("chunk %d holds text of chapter %q (%s) on page %d, but is labelled %q (%s)",
					i, ch.path, ch.num, runePage[r], c.Chapter, c.ChapterNum)
				break
			}
		}
		pos = end
	}
	if pos != len(full) {
		t.Errorf("chunks cover %d of %d runes; text after: %q", pos, len(full), string(full[pos:min(pos+80, len(full))]))
	}
}

// TestExtractInvariants checks on a larger document (headings mid-page,
// two-column pages, Chinese and Latin text), for several sizes and worker
// counts, that the chunks cover the text exactly, in order, with bounded
// overlap, the right pages and exactly the right chapters, and never
// exceed the target.
func TestExtractInvariants(t *testing.T) {
	d := pdfgen.Sample(60)
	path := writePDF(t, d)
	full, runePage, runeChapter := sampleText(d)

	tests := []struct {
		name            string
		target, overlap int
		workers         int
	}{
		{"defaults", 0, 0, 1},
		{"small with overlap", 200, 50, 1},
		{"tiny without overlap", 60, -1, 1},
		{"tiny with overlap", 60, 30, 1},
		{"large", 5000, 100, 1},
		{"defaults, 3 workers", 0, 0, 3},
		{"small with overlap, 2 workers", 200, 50, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{ChunkSize: tc.target, ChunkOverlap: tc.overlap, Workers: tc.workers}
			chunks, info := collect(t, path, opts)
			if want := len(d.Outline); info.Chunks != len(chunks) || info.Pages != len(d.Pages) || info.EmptyPages != 0 || info.Chapters < want {
				t.Errorf("got info %+v, want %d chunks, %d pages, 0 empty, at least %d chapters", info, len(chunks), len(d.Pages), want)
			}
			checkCoverage(t, chunks, opts, full, runePage, runeChapter)
		})
	}
}

// TestExtractHeadingsWithoutOutline checks that, without an outline, the
// same chapters are found from the headings' size and weight, and an
// outline whose titles are not in the text is not used.
func TestExtractHeadingsWithoutOutline(t *testing.T) {
	d := pdfgen.Sample(24)
	full, runePage, runeChapter := sampleText(d)
	// Before chapter 1: the document title (22 pt, an unnumbered level 1)
	// and its Chinese subtitle (14 pt, the size of numbered level-2
	// headings) are headings too.
	titleRunes := len([]rune(strings.ReplaceAll(d.Title, " ", "")))
	for i := range runeChapter {
		if runeChapter[i].path != "" {
			break
		}
		runeChapter[i] = chapter{path: d.Title + chapterSep + "文档处理流水线示例报告", num: "1.1"}
		if i < titleRunes {
			runeChapter[i] = chapter{path: d.Title, num: "1"}
		}
	}
	bogus := d
	bogus.Outline = []pdfgen.OutlineItem{{Title: "Wrong title", Page: 0}, {Title: "Nothing like this", Page: 5}, {Title: "\u0001\u0002", Page: 9}}
	noOutline := d
	noOutline.Outline = nil
	for name, doc := range map[string]pdfgen.Doc{"no outline": noOutline, "untrusted outline": bogus} {
		t.Run(name, func(t *testing.T) {
			path := writePDF(t, doc)
			for _, workers := range []int{1, 2} {
				opts := Options{ChunkSize: 300, ChunkOverlap: 60, Workers: workers}
				chunks, _ := collect(t, path, opts)
				checkCoverage(t, chunks, opts, full, runePage, runeChapter)
			}
		})
	}
}

// pageCounter wraps an Engine and counts PageText calls.
type pageCounter struct {
	Engine
	read int
}

func (e *pageCounter) Open(path, password string) (Document, error) {
	d, err := e.Engine.Open(path, password)
	if err != nil {
		return nil, err
	}
	return &countingDoc{Document: d, e: e}, nil
}

type countingDoc struct {
	Document
	e *pageCounter
}

func (d *countingDoc) PageText(i int) (string, error) {
	d.e.read++
	return d.Document.PageText(i)
}

func TestExtractStreams(t *testing.T) {
	d := pdfgen.Sample(20)
	path := writePDF(t, d)

	t.Run("first chunk before last page", func(t *testing.T) {
		eng := &pageCounter{Engine: NewFitzEngine()}
		firstAt := -1
		info, err := Extract(context.Background(), eng, path, Options{}, func(c Chunk) error {
			if firstAt < 0 {
				firstAt = eng.read
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if firstAt < 1 || firstAt >= info.Pages {
			t.Errorf("first chunk emitted after reading %d of %d pages, want fewer than all", firstAt, info.Pages)
		}
		if eng.read != info.Pages {
			t.Errorf("read %d pages, want %d", eng.read, info.Pages)
		}
	})

	t.Run("cancel stops between pages", func(t *testing.T) {
		eng := &pageCounter{Engine: NewFitzEngine()}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := Extract(ctx, eng, path, Options{}, func(Chunk) error {
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got error %v, want context.Canceled", err)
		}
		if eng.read >= len(d.Pages) {
			t.Errorf("read %d pages after cancel, want fewer than %d", eng.read, len(d.Pages))
		}
	})

	t.Run("emit error stops extraction", func(t *testing.T) {
		errStop := errors.New("stop")
		calls := 0
		info, err := Extract(context.Background(), NewFitzEngine(), path, Options{}, func(Chunk) error {
			calls++
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("got error %v, want errStop", err)
		}
		if calls != 1 || info.Chunks != 0 {
			t.Errorf("got %d emit calls and %d chunks, want 1 and 0", calls, info.Chunks)
		}
	})
}

func TestExtractEmptyPages(t *testing.T) {
	blank := pdfgen.Page{}
	tests := []struct {
		name      string
		pages     []pdfgen.Page
		wantErr   error
		wantInfo  Info
		wantPages []chunkLabel
	}{
		{
			name:      "some empty",
			pages:     []pdfgen.Page{blank, page("Text on page two."), blank, page("Text on page four.")},
			wantInfo:  Info{Pages: 4, Chunks: 1, EmptyPages: 2},
			wantPages: []chunkLabel{{"", "", 2, 4}},
		},
		{
			name:     "all empty",
			pages:    []pdfgen.Page{blank, blank},
			wantErr:  ErrNoText,
			wantInfo: Info{Pages: 2, EmptyPages: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var chunks []Chunk
			info, err := Extract(context.Background(), NewFitzEngine(), writePDF(t, pdfgen.Doc{Pages: tc.pages}), Options{},
				func(c Chunk) error { chunks = append(chunks, c); return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if info != tc.wantInfo {
				t.Errorf("got info %+v, want %+v", info, tc.wantInfo)
			}
			checkLabels(t, chunks, tc.wantPages)
		})
	}
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
		opts    Options
		wantErr error
	}{
		{"not a pdf", []byte("hello, this is plain text and not a PDF at all\n"), Options{}, ErrNotPDF},
		{"png image", png, Options{}, ErrNotPDF},
		{"zero bytes", []byte{}, Options{}, ErrNotPDF},
		{"header only", []byte("%PDF-1.7\n"), Options{}, ErrCorrupt},
		{"header and garbage", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage \x00\xff"), 500)...), Options{}, ErrCorrupt},
		{"truncated to 200 bytes", good.Bytes()[:200], Options{}, ErrCorrupt},
		{"truncated before %%EOF, read whole by mupdf", good.Bytes()[:good.Len()-8], Options{}, nil},
		{"garbage between header and %%EOF", []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"), Options{}, ErrCorrupt},
		{"encrypted", encryptedPDF(), Options{}, ErrEncrypted},
		{"encrypted, wrong password", encryptedPDF(), Options{Password: "guess"}, ErrEncrypted},
		{"too many pages", good.Bytes(), Options{MaxPages: 2}, ErrTooManyPages},
		{"missing file", nil, Options{}, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.pdf")
			if tc.data != nil {
				path = writeFile(t, "in.pdf", tc.data)
			}
			emitted := 0
			_, err := Extract(context.Background(), NewFitzEngine(), path, tc.opts, func(Chunk) error {
				emitted++
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Extract: got error %v, want %v", err, tc.wantErr)
			}
			if emitted != 0 && tc.wantErr != nil && !errors.Is(tc.wantErr, ErrCorrupt) {
				t.Errorf("Extract emitted %d chunks before failing, want 0", emitted)
			}
			if !errors.Is(tc.wantErr, ErrCorrupt) || strings.HasPrefix(tc.name, "header") {
				if _, err := Probe(context.Background(), NewFitzEngine(), path, tc.opts); !errors.Is(err, tc.wantErr) {
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
		_, err := Extract(context.Background(), NewFitzEngine(), path, Options{}, func(Chunk) error { return nil })
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNoText) {
			t.Errorf("damage at byte %d: got error %v, want nil, ErrCorrupt or ErrNoText", at, err)
		}
	}
}

func TestRecoverAs(t *testing.T) {
	err := func() (err error) {
		defer recoverAs(&err, "op")
		panic("boom")
	}()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("got %v, want an ErrCorrupt mentioning the panic", err)
	}
}

func TestProbe(t *testing.T) {
	path := writePDF(t, pdfgen.Sample(7))
	eng := &pageCounter{Engine: NewFitzEngine()}
	pages, err := Probe(context.Background(), eng, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 7 || eng.read != 0 {
		t.Errorf("got %d pages after reading %d, want 7 pages without reading any", pages, eng.read)
	}
	pages, err = Probe(context.Background(), eng, path, Options{MaxPages: 6})
	if !errors.Is(err, ErrTooManyPages) || pages != 7 {
		t.Errorf("got (%d, %v), want (7, ErrTooManyPages)", pages, err)
	}
}

// encryptedPDF returns a one-page PDF (without content) encrypted with
// the Standard security handler, revision 2 (RC4, 40 bits), user password
// "secret", owner password "owner".
func encryptedPDF() []byte { return encryptedTextPDF("secret", "owner", "") }

// encryptedTextPDF returns a one-page PDF encrypted with the Standard
// security handler, revision 2 (RC4, 40 bits; PDF 1.7 spec, algorithms 1
// to 4), with the given passwords and, unless text is empty, a content
// stream showing text in Helvetica.
func encryptedTextPDF(user, owner, text string) []byte {
	pad := func(pw string) []byte {
		padding := []byte("\x28\xbf\x4e\x5e\x4e\x75\x8a\x41\x64\x00\x4e\x56\xff\xfa\x01\x08" +
			"\x2e\x2e\x00\xb6\xd0\x68\x3e\x80\x2f\x0c\xa9\xfe\x64\x53\x69\x7a")
		return append([]byte(pw), padding...)[:32]
	}
	rc4x := func(key, data []byte) []byte {
		c, err := rc4.NewCipher(key)
		if err != nil {
			panic(err)
		}
		out := make([]byte, len(data))
		c.XORKeyStream(out, data)
		return out
	}
	const perms = -4
	id := bytes.Repeat([]byte{0xab}, 16)
	ownerKey := md5.Sum(pad(owner))
	o := rc4x(ownerKey[:5], pad(user))
	h := md5.New()
	h.Write(pad(user))
	h.Write(o)
	h.Write([]byte{byte(perms & 0xff), byte(perms >> 8 & 0xff), byte(perms >> 16 & 0xff), byte(perms >> 24 & 0xff)})
	h.Write(id)
	fileKey := h.Sum(nil)[:5]
	u := rc4x(fileKey, pad(""))

	page := "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		page,
		fmt.Sprintf("<< /Filter /Standard /V 1 /R 2 /Length 40 /P %d /O <%x> /U <%x> >>", perms, o, u),
	}
	if text != "" {
		objs[2] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 5 0 R /Resources << /Font << /F1 6 0 R >> >> >>"
		content := []byte("BT /F1 10 Tf 10 100 Td (" + text + ") Tj ET")
		objKey := md5.Sum(append(append([]byte(nil), fileKey...), 5, 0, 0, 0, 0)) // object 5, generation 0
		enc := rc4x(objKey[:10], content)
		objs = append(objs,
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(enc), enc),
			"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	}
	return rawPDF(objs, fmt.Sprintf("/Encrypt 4 0 R /ID [<%x> <%x>]", id, id))
}

// rawPDF writes objects 1..len(objs) (object 1 the catalog) with a
// correct xref table; trailer is added to the trailer dictionary.
func rawPDF(objs []string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, xref)
	return b.Bytes()
}

func TestEncrypted(t *testing.T) {
	tests := []struct {
		name     string
		pdf      []byte
		password string
		wantErr  error
	}{
		{"no password", encryptedPDF(), "", ErrEncrypted},
		{"wrong password", encryptedPDF(), "wrong", ErrEncrypted},
		{"user password", encryptedPDF(), "secret", nil},
		{"owner password", encryptedPDF(), "owner", nil},
		{"text, user password", encryptedTextPDF("secret", "owner", "Encrypted page text."), "secret", nil},
		{"text, empty user password", encryptedTextPDF("", "owner", "Encrypted page text."), "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "enc.pdf", tc.pdf)
			pages, err := Probe(context.Background(), NewFitzEngine(), path, Options{Password: tc.password})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && pages != 1 {
				t.Errorf("got %d pages, want 1", pages)
			}
			if !strings.HasPrefix(tc.name, "text") {
				return
			}
			chunks, _ := collect(t, path, Options{Password: tc.password})
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
	return rawPDF([]string{
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
	path := writeFile(t, "slow.pdf", slowPDF(t, 100000))

	t.Run("slow page skipped", func(t *testing.T) {
		start := time.Now()
		chunks, info := collect(t, path, Options{PageTimeout: 30 * time.Millisecond})
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
		_, info := collect(t, path, Options{})
		if info.SkippedPages != 0 {
			t.Errorf("got info %+v, want no skipped page", info)
		}
	})
	t.Run("document limit", func(t *testing.T) {
		_, err := Extract(context.Background(), NewFitzEngine(), path, Options{DocTimeout: 30 * time.Millisecond},
			func(Chunk) error { return nil })
		if !errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want ErrTimeout", err)
		}
	})
	t.Run("caller cancel is not a timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		_, err := Extract(ctx, NewFitzEngine(), path, Options{}, func(Chunk) error { return nil })
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
			t.Errorf("got error %v, want context.Canceled only", err)
		}
	})
}

func TestHugePageCount(t *testing.T) {
	pdf := rawPDF([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
	}, "")
	path := writeFile(t, "huge.pdf", pdf)
	start := time.Now()
	_, err := Extract(context.Background(), NewFitzEngine(), path, Options{}, func(Chunk) error { return nil })
	if !errors.Is(err, ErrTooManyPages) && !errors.Is(err, ErrCorrupt) {
		t.Errorf("got error %v, want ErrTooManyPages or ErrCorrupt", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s, want a fast failure", d)
	}
	t.Logf("error: %v", err)
}

func BenchmarkExtract(b *testing.B) {
	path := writePDF(b, pdfgen.Sample(500))
	eng := NewFitzEngine()
	b.ResetTimer()
	pages := 0
	for b.Loop() {
		info, err := Extract(context.Background(), eng, path, Options{}, func(Chunk) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		pages += info.Pages
	}
	b.ReportMetric(float64(pages)/b.Elapsed().Seconds(), "pages/s")
}

// TestExtractConcurrent runs several extractions at once (one Document per
// goroutine, as documented) and checks they all produce the same chunks.
func TestExtractConcurrent(t *testing.T) {
	path := writePDF(t, pdfgen.Sample(6))
	want, _ := collect(t, path, Options{})
	const workers = 4
	results := make([][]Chunk, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			_, errs[w] = Extract(context.Background(), NewFitzEngine(), path, Options{}, func(c Chunk) error {
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

// TestExtractLayout checks, with and without an outline, on pages with a
// running header and footer, a heading mid-page, a heading at the top of
// the right column of a two-column page, a word hyphenated across lines
// and a ligature: exactly where chapters start, that headers and footers
// are gone, and that the body text is complete and in reading order.
func TestExtractLayout(t *testing.T) {
	const pages = 6
	topics := map[string]string{"0a": "the preface", "1": "parsing", "2L1": "left columns", "2L2": "more left columns",
		"2R1": "right columns", "2R2": "results", "3": "chunking", "4": "embedding", "5": "ingesting"}
	para := func(id string) string {
		return "This paragraph talks about " + topics[id] + " and how the pipeline keeps every page of text in order."
	}
	var doc pdfgen.Doc
	for i := range pages {
		p := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "ACME Corp Annual Report", Size: 8, Y: 20}}}
		switch i {
		case 0:
			p.Blocks = append(p.Blocks,
				pdfgen.Block{Text: para("0a"), Y: 80},
				pdfgen.Block{Text: "1 Overview", Size: 16, Bold: true, Y: 300},
				pdfgen.Block{Text: "An exam-\nple of hyphenation and a \ufb01ne ligature.", Y: 340})
		case 2:
			p.Blocks = append(p.Blocks,
				pdfgen.Block{Text: para("2L1"), X: 56, Width: 230, Y: 80},
				pdfgen.Block{Text: para("2L2"), X: 56, Width: 230, Y: 400},
				pdfgen.Block{Text: para("2R1"), X: 310, Width: 230, Y: 80},
				pdfgen.Block{Text: "2 Results", Size: 16, Bold: true, X: 310, Width: 230, Y: 300},
				pdfgen.Block{Text: para("2R2"), X: 310, Width: 230, Y: 340})
		default:
			p.Blocks = append(p.Blocks, pdfgen.Block{Text: para(strconv.Itoa(i)), Y: 80})
		}
		p.Blocks = append(p.Blocks, pdfgen.Block{Text: fmt.Sprintf("Page %d of %d", i+1, pages), Size: 8, Y: 800})
		doc.Pages = append(doc.Pages, p)
	}
	want := []Chunk{
		{Index: 0, Text: para("0a"), PageStart: 1, PageEnd: 1},
		{Index: 1, Text: strings.Join([]string{"1 Overview", "An example of hyphenation and a fine ligature.",
			para("1"), para("2L1"), para("2L2"), para("2R1")}, "\n\n"),
			Chapter: "1 Overview", ChapterNum: "1", PageStart: 1, PageEnd: 3},
		{Index: 2, Text: strings.Join([]string{"2 Results", para("2R2"), para("3"), para("4"), para("5")}, "\n\n"),
			Chapter: "2 Results", ChapterNum: "2", PageStart: 3, PageEnd: 6},
	}
	withOutline := doc
	withOutline.Outline = []pdfgen.OutlineItem{{Title: "1 Overview", Page: 0, Y: 300}, {Title: "2 Results", Page: 2, Y: 300}}
	for name, d := range map[string]pdfgen.Doc{"headings": doc, "outline": withOutline} {
		t.Run(name, func(t *testing.T) {
			chunks, info := collect(t, writePDF(t, d), Options{ChunkSize: 5000, ChunkOverlap: -1})
			if !reflect.DeepEqual(chunks, want) {
				t.Errorf("got chunks\n%+v\nwant\n%+v", chunks, want)
			}
			if want := (Info{Pages: pages, Chunks: 3, Chapters: 2}); info != want {
				t.Errorf("got info %+v, want %+v", info, want)
			}
		})
	}
}

// blockCounter wraps an Engine whose documents are structured and counts
// PageBlocks calls per page.
type blockCounter struct {
	Engine
	reads map[int]int
}

func (e *blockCounter) Open(path, password string) (Document, error) {
	d, err := e.Engine.Open(path, password)
	if err != nil {
		return nil, err
	}
	return &blockCountingDoc{Document: d, e: e}, nil
}

type blockCountingDoc struct {
	Document
	e *blockCounter
}

func (d *blockCountingDoc) PageBlocks(ctx context.Context, i int) ([]Block, error) {
	d.e.reads[i]++
	return d.Document.(StructuredDocument).PageBlocks(ctx, i)
}

// TestExtractReadsPagesOnce checks that the pages sampled before the text
// is read (outline check, body size) are not read a second time by a
// single worker, and that the chunks are those of a fresh read.
func TestExtractReadsPagesOnce(t *testing.T) {
	withOutline := pdfgen.Sample(20)
	noOutline := pdfgen.Sample(20)
	noOutline.Outline = nil
	for name, d := range map[string]pdfgen.Doc{"outline": withOutline, "headings": noOutline} {
		t.Run(name, func(t *testing.T) {
			path := writePDF(t, d)
			eng := &blockCounter{Engine: NewFitzEngine(), reads: map[int]int{}}
			var got []Chunk
			info, err := Extract(context.Background(), eng, path, Options{Workers: 1}, func(c Chunk) error {
				got = append(got, c)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range info.Pages {
				if eng.reads[i] != 1 {
					t.Errorf("page %d read %d times, want 1", i+1, eng.reads[i])
				}
			}
			want, _ := collect(t, path, Options{Workers: 1})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chunks differ from a plain extraction:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestExtractOutlineWithoutNumbers: many producers (texinfo, for one)
// number their headings in the text but leave the numbers out of the
// outline. The outline is still trusted, each chapter starts at its
// numbered heading line, and chapter_num is the heading's own number,
// not the outline position (an unnumbered preface comes first here). A
// table of contents with dot leaders is not mistaken for headings.
func TestExtractOutlineWithoutNumbers(t *testing.T) {
	heading := func(text string) pdfgen.Block { return pdfgen.Block{Text: text, Size: 16, Bold: true} }
	body := func(text string) pdfgen.Block { return pdfgen.Block{Text: text} }
	pages := []pdfgen.Page{
		{Blocks: []pdfgen.Block{heading("Contents"),
			body("Preface . . . . . . . . . . . . . . 2\n1 Getting started . . . . . . . . . 3\n1.1 Installing . . . . . . . . . . . . 3\n2 Using it . . . . . . . . . . . . . . 4")}},
		{Blocks: []pdfgen.Block{heading("Preface"), body("Why this manual exists.")}},
		{Blocks: []pdfgen.Block{heading("1 Getting started"), body("First steps."), heading("1.1 Installing"), body("Install it like this.")}},
		{Blocks: []pdfgen.Block{heading("2 Using it"), body("Daily use.")}},
	}
	outline := []pdfgen.OutlineItem{
		{Title: "Preface", Page: 1},
		{Title: "Getting started", Page: 2, Children: []pdfgen.OutlineItem{{Title: "Installing", Page: 2}}},
		{Title: "Using it", Page: 3},
	}
	path := writePDF(t, pdfgen.Doc{Pages: pages, Outline: outline})
	chunks, _ := collect(t, path, Options{})
	want := []chunkLabel{
		{"", "", 1, 1},
		{"Preface", "", 2, 2}, // unnumbered front matter: no number, chapter 1 stays 1
		{"Getting started", "1", 3, 3},
		{"Getting started › Installing", "1.1", 3, 3},
		{"Using it", "2", 4, 4},
	}
	checkLabels(t, chunks, want) // with the outline

	// Without an outline, the headings are found by their typography; the
	// contents lines, set in body type with leaders, are not headings.
	path = writePDF(t, pdfgen.Doc{Pages: pages})
	chunks, _ = collect(t, path, Options{})
	for _, c := range chunks {
		if strings.Contains(c.Chapter, ". . .") {
			t.Errorf("chunk %d: chapter %q is a table-of-contents line", c.Index, c.Chapter)
		}
	}
	if got := labels(chunks); len(got) == 0 || got[len(got)-1].Chapter != "2 Using it" || got[len(got)-1].ChapterNum != "2" {
		t.Errorf("without outline: got chunks %+v, want the last in chapter \"2 Using it\" (2)", got)
	}
}

// TestExtractOutlineNumberOnOwnLine: LaTeX sets a section's number in a
// box of its own, which MuPDF may return as a line of its own before the
// title. The outline's "2 Installing the tools" still finds its heading
// (so the outline is trusted), and the chapter starts at the number.
func TestExtractOutlineNumberOnOwnLine(t *testing.T) {
	heading := func(text string) pdfgen.Block { return pdfgen.Block{Text: text, Size: 14, Bold: true} }
	body := func(text string) pdfgen.Block { return pdfgen.Block{Text: text} }
	// Headings sit mid-page: a lone number at the top or bottom of every
	// page is a page number, and is dropped as one. The printed titles
	// say more than the outline's, so chapters named as the outline names
	// them come from the outline, not from heading detection.
	lead := strings.Repeat("Some words before the heading on this page. ", 30)
	pages := []pdfgen.Page{
		{Blocks: []pdfgen.Block{body(lead), heading("1\nGetting the sources (draft)"), body("Clone the repository first."), body(lead)}},
		{Blocks: []pdfgen.Block{body(lead), heading("2\nInstalling the tools (draft)"), body("Run the installer."), body(lead)}},
		{Blocks: []pdfgen.Block{body(lead), heading("3\nRunning the pipeline (draft)"), body("Start every stage."), body(lead)}},
	}
	outline := []pdfgen.OutlineItem{
		{Title: "1 Getting the sources", Page: 0},
		{Title: "2 Installing the tools", Page: 1},
		{Title: "3 Running the pipeline", Page: 2},
	}
	chunks, _ := collect(t, writePDF(t, pdfgen.Doc{Pages: pages, Outline: outline}), Options{ChunkSize: 5000})
	want := []chunkLabel{
		{"", "", 1, 1},
		{"1 Getting the sources", "1", 1, 2},
		{"2 Installing the tools", "2", 2, 3},
		{"3 Running the pipeline", "3", 3, 3},
	}
	if !checkLabels(t, chunks, want) {
		t.FailNow()
	}
	if !strings.HasPrefix(chunks[2].Text, "2 Installing the tools") || strings.HasSuffix(chunks[1].Text, "2") {
		t.Errorf("chapter 2 should start at its number: chunk texts\n%q\n%q", chunks[1].Text, chunks[2].Text)
	}
}
