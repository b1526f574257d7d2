package pdftext

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rc4"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
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
				{"2 Methods › Model details", "2.2", 5, 5},
				{"Results", "3", 6, 7},
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
			if got := labels(chunks); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got chunks %+v, want %+v", got, tc.want)
			}
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
	chunks, info := collect(t, writePDF(t, pdfgen.Doc{Pages: pages}), Options{OverlapRunes: -1})
	want := []chunkLabel{{"", "", 1, 2}, {"", "", 3, 4}}
	if got := labels(chunks); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got chunks %+v, want %+v", got, want)
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

// TestExtractInvariants checks on a larger document, for several sizes, that
// the chunks cover the text exactly, in order, with bounded overlap, the
// right pages and chapters, and never exceed the target.
func TestExtractInvariants(t *testing.T) {
	d := pdfgen.Sample(12)
	path := writePDF(t, d)

	// The expected text, without whitespace, with the 1-based page of each rune.
	var full []rune
	var runePage []int
	doc, err := NewFitzEngine().Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range doc.NumPages() {
		for _, b := range d.Pages[i].Blocks {
			for _, r := range b.Text {
				if !unicode.IsSpace(r) {
					full = append(full, r)
					runePage = append(runePage, i+1)
				}
			}
		}
	}
	outline, err := doc.Outline()
	doc.Close()
	if err != nil {
		t.Fatal(err)
	}
	chapters := newChapterIndex(outline)

	tests := []struct {
		name            string
		target, overlap int
	}{
		{"defaults", 0, 0},
		{"small with overlap", 200, 50},
		{"tiny without overlap", 60, -1},
		{"tiny with overlap", 60, 30},
		{"large", 5000, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{TargetRunes: tc.target, OverlapRunes: tc.overlap}
			eff := opts.withDefaults()
			chunks, info := collect(t, path, opts)
			if info.Chunks != len(chunks) || info.Pages != len(d.Pages) || info.EmptyPages != 0 {
				t.Errorf("got info %+v, want %d chunks, %d pages, 0 empty", info, len(chunks), len(d.Pages))
			}
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
				if n := utf8.RuneCountInString(c.Text); n > eff.TargetRunes {
					t.Errorf("chunk %d has %d runes, want <= %d", i, n, eff.TargetRunes)
				}
				text := []rune(strings.Map(func(r rune) rune {
					if unicode.IsSpace(r) {
						return -1
					}
					return r
				}, c.Text))
				// The chunk must start inside the overlap window (no gap, at
				// most OverlapRunes repeated, none across chapters).
				from := pos - eff.OverlapRunes
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
				for p := c.PageStart; p <= c.PageEnd; p++ {
					if ch := chapters.at(p - 1); ch.path != c.Chapter || ch.num != c.ChapterNum {
						t.Errorf("chunk %d covers page %d of chapter %q (%s), but is labelled %q (%s)",
							i, p, ch.path, ch.num, c.Chapter, c.ChapterNum)
					}
				}
				pos = end
			}
			if pos != len(full) {
				t.Errorf("chunks cover %d of %d runes; text after: %q", pos, len(full), string(full[pos:min(pos+80, len(full))]))
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
			if got := labels(chunks); fmt.Sprint(got) != fmt.Sprint(tc.wantPages) {
				t.Errorf("got chunks %+v, want %+v", got, tc.wantPages)
			}
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
		{"truncated to half", good.Bytes()[:good.Len()/2], Options{}, ErrCorrupt},
		{"truncated before %%EOF", good.Bytes()[:good.Len()-8], Options{}, ErrCorrupt},
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
			if emitted != 0 && !errors.Is(tc.wantErr, ErrCorrupt) {
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
// "secret", owner password "owner" (PDF 1.7 spec, algorithms 2, 3 and 4).
func encryptedPDF() []byte {
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
	ownerKey := md5.Sum(pad("owner"))
	o := rc4x(ownerKey[:5], pad("secret"))
	h := md5.New()
	h.Write(pad("secret"))
	h.Write(o)
	h.Write([]byte{byte(perms & 0xff), byte(perms >> 8 & 0xff), byte(perms >> 16 & 0xff), byte(perms >> 24 & 0xff)})
	h.Write(id)
	u := rc4x(h.Sum(nil)[:5], pad(""))

	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
		fmt.Sprintf("<< /Filter /Standard /V 1 /R 2 /Length 40 /P %d /O <%x> /U <%x> >>", perms, o, u),
	}
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
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<%x> <%x>] >>\nstartxref\n%d\n%%%%EOF\n",
		len(objs)+1, id, id, xref)
	return b.Bytes()
}

func TestEncrypted(t *testing.T) {
	path := writeFile(t, "enc.pdf", encryptedPDF())
	tests := []struct {
		password string
		wantErr  error
	}{
		{"", ErrEncrypted},
		{"wrong", ErrEncrypted},
		{"secret", nil},
		{"owner", nil},
	}
	for _, tc := range tests {
		t.Run("password "+tc.password, func(t *testing.T) {
			pages, err := Probe(context.Background(), NewFitzEngine(), path, Options{Password: tc.password})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && pages != 1 {
				t.Errorf("got %d pages, want 1", pages)
			}
		})
	}
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
