package pdftext_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// These tests run Extract on what the engines read from the project's
// fixtures, replayed from recordings (pdftexttest.Replay): no engine, no
// cgo. The conformance tests check that the engines still read what was
// recorded.

// collect runs Extract on what MuPDF read from fixture.
func collect(t *testing.T, fixture string, opts pdftext.Options) ([]pdftext.Chunk, pdftext.Info) {
	t.Helper()
	return collectWith(t, pdftexttest.Replay{}, fixture, opts)
}

// collectWith runs Extract with eng on fixture.
func collectWith(t *testing.T, eng pdftext.Engine, fixture string, opts pdftext.Options) ([]pdftext.Chunk, pdftext.Info) {
	t.Helper()
	var chunks []pdftext.Chunk
	info, err := pdftext.Extract(context.Background(), eng, fixture, opts, func(c pdftext.Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return chunks, info
}

// forEachEngine runs f as a subtest per engine that read fixture.
func forEachEngine(t *testing.T, fixture string, f func(t *testing.T, eng pdftext.Engine)) {
	for _, name := range pdftexttest.Find(fixture).Engines {
		t.Run(name, func(t *testing.T) { f(t, pdftexttest.Replay{Engine: name}) })
	}
}

type chunkLabel struct {
	Chapter, ChapterNum string
	PageStart, PageEnd  int
}

func labels(chunks []pdftext.Chunk) []chunkLabel {
	out := make([]chunkLabel, len(chunks))
	for i, c := range chunks {
		out[i] = chunkLabel{c.Chapter, c.ChapterNum, c.PageStart, c.PageEnd}
	}
	return out
}

// checkLabels reports (as an error at the caller's line) and returns
// false when the chunks' labels are not want.
func checkLabels(t *testing.T, chunks []pdftext.Chunk, want []chunkLabel) bool {
	t.Helper()
	if got := labels(chunks); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got chunks %+v, want %+v", got, want)
		return false
	}
	return true
}

// TestExtractChapters: seven pages, the first a cover, with an outline
// of numbered chapters, a section, an unnumbered section among numbered
// ones and an unnumbered chapter over two pages; and without it.
func TestExtractChapters(t *testing.T) {
	tests := []struct {
		name      string
		fixture   string
		want      []chunkLabel
		wantTexts []string
		wantInfo  pdftext.Info
	}{
		{
			name:    "with outline",
			fixture: "chapters",
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
			wantInfo: pdftext.Info{Pages: 7, Chunks: 6, Chapters: 5},
		},
		{
			name:    "without outline",
			fixture: "chapters-no-outline",
			want:    []chunkLabel{{"", "", 1, 7}},
			wantTexts: []string{strings.Join([]string{
				"Cover page before any chapter.",
				"1 Introduction", "Why we do this.",
				"2 Methods", "How we do it.",
				"2.1 Data", "Where the data comes from.",
				"Model details", "What the model is.",
				"Results", "First results page.",
				"Second results page.",
			}, "\n\n")},
			wantInfo: pdftext.Info{Pages: 7, Chunks: 1, Chapters: 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chunks, info := collect(t, tc.fixture, pdftext.Options{})
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
	para := pdftexttest.LongPara
	chunks, info := collect(t, "long-paragraphs", pdftext.Options{ChunkOverlap: -1})
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
	if want := (pdftext.Info{Pages: 4, Chunks: 2}); info != want {
		t.Errorf("got info %+v, want %+v", info, want)
	}
}

func TestExtractChinese(t *testing.T) {
	chunks, _ := collect(t, "chinese", pdftext.Options{})
	if len(chunks) != 1 {
		t.Fatalf("got %d chunks, want 1: %+v", len(chunks), chunks)
	}
	want := pdftext.Chunk{
		Index: 0, Text: "第一章 引言\n\n" + pdftexttest.ChinesePara + "\n\n" + pdftexttest.MixedPara,
		Chapter: "第一章 引言", ChapterNum: "1", PageStart: 1, PageEnd: 1,
	}
	if chunks[0] != want {
		t.Errorf("got %+v, want %+v", chunks[0], want)
	}
}

// chapterOf is the chapter a chunk must be labelled with: path and number.
type chapterOf struct{ path, num string }

// headingNum is the number a heading of pdfgen.Sample starts with.
var headingNum = regexp.MustCompile(`^(\d{1,3}(?:\.\d{1,3})*)\.?(?:\s|$)`)

// sampleText returns the text of d without whitespace, in reading order,
// with the 1-based page and the chapter (path and number, from the outline
// titles, which Sample sets as heading blocks) of each rune.
func sampleText(d pdfgen.Doc) (full []rune, runePage []int, runeChapter []chapterOf) {
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
	var cur chapterOf
	for i, pg := range d.Pages {
		for _, b := range pg.Blocks {
			if next < len(items) && items[next].page == i && b.Text == items[next].title {
				cur = chapterOf{path: strings.Join(items[next].path, " › "), num: headingNum.FindStringSubmatch(b.Text)[1]}
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
func checkCoverage(t *testing.T, chunks []pdftext.Chunk, opts pdftext.Options, full []rune, runePage []int, runeChapter []chapterOf) {
	t.Helper()
	eff := opts.WithDefaults()
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
	const fixture = "sample-60"
	d := pdftexttest.Find(fixture).Doc
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
			opts := pdftext.Options{ChunkSize: tc.target, ChunkOverlap: tc.overlap, Workers: tc.workers}
			chunks, info := collect(t, fixture, opts)
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
	// The fixtures are this document, less its outline or with a wrong
	// one; its outline says which chapter each rune is in.
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
		runeChapter[i] = chapterOf{path: d.Title + " › " + "文档处理流水线示例报告", num: "1.1"}
		if i < titleRunes {
			runeChapter[i] = chapterOf{path: d.Title, num: "1"}
		}
	}
	for name, fixture := range map[string]string{"no outline": "sample-24-no-outline", "untrusted outline": "sample-24-bogus-outline"} {
		t.Run(name, func(t *testing.T) {
			for _, workers := range []int{1, 2} {
				opts := pdftext.Options{ChunkSize: 300, ChunkOverlap: 60, Workers: workers}
				chunks, _ := collect(t, fixture, opts)
				checkCoverage(t, chunks, opts, full, runePage, runeChapter)
			}
		})
	}
}

// pageCounter wraps an Engine and counts PageText calls.
type pageCounter struct {
	pdftext.Engine
	read int
}

func (e *pageCounter) Open(path, password string) (pdftext.Document, error) {
	d, err := e.Engine.Open(path, password)
	if err != nil {
		return nil, err
	}
	return &countingDoc{Document: d, e: e}, nil
}

// countingDoc is not a StructuredDocument: Extract reads its pages as
// plain text.
type countingDoc struct {
	pdftext.Document
	e *pageCounter
}

func (d *countingDoc) PageText(i int) (string, error) {
	d.e.read++
	return d.Document.PageText(i)
}

func TestExtractStreams(t *testing.T) {
	const path = "sample-20"
	d := pdftexttest.Find(path).Doc

	t.Run("first chunk before last page", func(t *testing.T) {
		eng := &pageCounter{Engine: pdftexttest.Replay{}}
		firstAt := -1
		info, err := pdftext.Extract(context.Background(), eng, path, pdftext.Options{}, func(c pdftext.Chunk) error {
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
		eng := &pageCounter{Engine: pdftexttest.Replay{}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := pdftext.Extract(ctx, eng, path, pdftext.Options{}, func(pdftext.Chunk) error {
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
		info, err := pdftext.Extract(context.Background(), pdftexttest.Replay{}, path, pdftext.Options{}, func(pdftext.Chunk) error {
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
	tests := []struct {
		fixture   string
		wantErr   error
		wantInfo  pdftext.Info
		wantPages []chunkLabel
	}{
		{
			fixture:   "some-empty", // pages 1 and 3 are blank
			wantInfo:  pdftext.Info{Pages: 4, Chunks: 1, EmptyPages: 2},
			wantPages: []chunkLabel{{"", "", 2, 4}},
		},
		{
			fixture:  "all-empty",
			wantErr:  pdftext.ErrNoText,
			wantInfo: pdftext.Info{Pages: 2, EmptyPages: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			var chunks []pdftext.Chunk
			info, err := pdftext.Extract(context.Background(), pdftexttest.Replay{}, tc.fixture, pdftext.Options{},
				func(c pdftext.Chunk) error { chunks = append(chunks, c); return nil })
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

// TestExtractConcurrent runs several extractions at once (one Document per
// goroutine, as documented) and checks they all produce the same chunks.
func TestExtractConcurrent(t *testing.T) {
	const path = "sample-6"
	want, _ := collect(t, path, pdftext.Options{})
	const workers = 4
	results := make([][]pdftext.Chunk, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			_, errs[w] = pdftext.Extract(context.Background(), pdftexttest.Replay{}, path, pdftext.Options{}, func(c pdftext.Chunk) error {
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
	para := func(id string) string { return pdftexttest.LayoutPara(pdftexttest.LayoutTopics[id]) }
	want := []pdftext.Chunk{
		{Index: 0, Text: para("0a"), PageStart: 1, PageEnd: 1},
		{Index: 1, Text: strings.Join([]string{"1 Overview", "An example of hyphenation and a fine ligature.",
			para("1"), para("2L1"), para("2L2"), para("2R1")}, "\n\n"),
			Chapter: "1 Overview", ChapterNum: "1", PageStart: 1, PageEnd: 3},
		{Index: 2, Text: strings.Join([]string{"2 Results", para("2R2"), para("3"), para("4"), para("5")}, "\n\n"),
			Chapter: "2 Results", ChapterNum: "2", PageStart: 3, PageEnd: 6},
	}
	for name, fixture := range map[string]string{"headings": "layout-headings", "outline": "layout-outline"} {
		t.Run(name, func(t *testing.T) {
			chunks, info := collect(t, fixture, pdftext.Options{ChunkSize: 5000, ChunkOverlap: -1})
			if !reflect.DeepEqual(chunks, want) {
				t.Errorf("got chunks\n%+v\nwant\n%+v", chunks, want)
			}
			if want := (pdftext.Info{Pages: pdftexttest.LayoutPages, Chunks: 3, Chapters: 2}); info != want {
				t.Errorf("got info %+v, want %+v", info, want)
			}
		})
	}
}

// blockCounter wraps an Engine whose documents are structured and counts
// PageBlocks calls per page.
type blockCounter struct {
	pdftext.Engine
	reads map[int]int
}

func (e *blockCounter) Open(path, password string) (pdftext.Document, error) {
	d, err := e.Engine.Open(path, password)
	if err != nil {
		return nil, err
	}
	return &blockCountingDoc{Document: d, e: e}, nil
}

type blockCountingDoc struct {
	pdftext.Document
	e *blockCounter
}

func (d *blockCountingDoc) PageBlocks(ctx context.Context, i int) ([]pdftext.Block, error) {
	d.e.reads[i]++
	return d.Document.(pdftext.StructuredDocument).PageBlocks(ctx, i)
}

// TestExtractReadsPagesOnce checks that the pages sampled before the text
// is read (outline check, body size) are not read a second time by a
// single worker, and that the chunks are those of a fresh read.
func TestExtractReadsPagesOnce(t *testing.T) {
	for name, fixture := range map[string]string{"outline": "sample-20", "headings": "sample-20-no-outline"} {
		t.Run(name, func(t *testing.T) {
			eng := &blockCounter{Engine: pdftexttest.Replay{}, reads: map[int]int{}}
			var got []pdftext.Chunk
			info, err := pdftext.Extract(context.Background(), eng, fixture, pdftext.Options{Workers: 1}, func(c pdftext.Chunk) error {
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
			want, _ := collect(t, fixture, pdftext.Options{Workers: 1})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chunks differ from a plain extraction:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestExtractRIntroChapterNumbers runs Extract on a document laid out like
// R's "An Introduction to R": the Preface has no number, chapter 1 is 1,
// appendices keep their letters ("A", "B.1") on the pages that show
// "Appendix A …", and the indexes at the end are lettered appendices too.
func TestExtractRIntroChapterNumbers(t *testing.T) {
	chunks, _ := collect(t, "r-intro", pdftext.Options{ChunkOverlap: -1})
	nums := make(map[string]string)
	for _, c := range chunks {
		nums[c.Chapter] = c.ChapterNum
	}
	want := map[string]string{
		"Preface":                          "",
		"1 Introduction and preliminaries": "1",
		"1 Introduction and preliminaries › 1.1 The R environment": "1.1",
		"2 Simple manipulations; numbers and vectors":              "2",
		"A A sample session": "A",
		"B Invoking R":       "B",
		"B Invoking R › B.1 Invoking R from the command line": "B.1",
		"D Function and variable index":                       "D",
	}
	if !maps.Equal(nums, want) {
		t.Errorf("got chapter numbers %v, want %v", nums, want)
	}
	for _, c := range chunks {
		if c.Chapter == "A A sample session" && !strings.HasPrefix(c.Text, "Appendix A A sample session") {
			t.Errorf("appendix A starts at %q, want its heading", c.Text)
		}
	}
}

// TestExtractOutlineWithoutNumbers: many producers (texinfo, for one)
// number their headings in the text but leave the numbers out of the
// outline. The outline is still trusted, each chapter starts at its
// numbered heading line, and chapter_num is the heading's own number,
// not the outline position (an unnumbered preface comes first here). A
// table of contents with dot leaders is not mistaken for headings.
func TestExtractOutlineWithoutNumbers(t *testing.T) {
	// Pages: a contents page with dot leaders; "Preface"; "1 Getting
	// started" and "1.1 Installing" on one page; "2 Using it". The outline
	// says "Preface", "Getting started" › "Installing", "Using it".
	chunks, _ := collect(t, "toc-outline-without-numbers", pdftext.Options{})
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
	chunks, _ = collect(t, "toc-no-outline", pdftext.Options{})
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
	// Headings ("2\nInstalling the tools (draft)") sit mid-page: a lone
	// number at the top or bottom of every page is a page number, and is
	// dropped as one. The printed titles say more than the outline's
	// ("2 Installing the tools"), so chapters named as the outline names
	// them come from the outline, not from heading detection.
	chunks, _ := collect(t, "number-own-line", pdftext.Options{ChunkSize: 5000})
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

// TestTimeLimits checks, on a page that never finishes on its own
// (pdftexttest.Replay's Slow), that a page past Options.PageTimeout is
// skipped and counted, that a document past Options.DocTimeout fails with
// ErrTimeout, that every page past its limit fails the document with
// ErrTimeout, and that the caller's cancel is not a timeout.
func TestTimeLimits(t *testing.T) {
	const fixture = "chapters-no-outline" // seven pages, one chunk
	slow := pdftexttest.Replay{Slow: map[int]bool{2: true}}

	t.Run("slow page skipped", func(t *testing.T) {
		chunks, info := collectWith(t, slow, fixture, pdftext.Options{PageTimeout: 30 * time.Millisecond})
		if want := (pdftext.Info{Pages: 7, Chunks: 1, SkippedPages: 1}); info != want {
			t.Errorf("got info %+v, want %+v", info, want)
		}
		if len(chunks) != 1 || chunks[0].PageStart != 1 || chunks[0].PageEnd != 7 ||
			strings.Contains(chunks[0].Text, "How we do it.") || !strings.Contains(chunks[0].Text, "Why we do this.\n\n2.1 Data") {
			t.Errorf("got chunks %+v, want pages 1-7 without page 3", chunks)
		}
	})
	t.Run("every page too slow", func(t *testing.T) {
		all := pdftexttest.Replay{Slow: map[int]bool{}}
		for i := range 7 {
			all.Slow[i] = true
		}
		info, err := pdftext.Extract(context.Background(), all, fixture, pdftext.Options{PageTimeout: 10 * time.Millisecond},
			func(pdftext.Chunk) error { return nil })
		if !errors.Is(err, pdftext.ErrTimeout) || info.SkippedPages != 7 {
			t.Errorf("got %+v, error %v; want 7 skipped pages and ErrTimeout", info, err)
		}
	})
	t.Run("document limit", func(t *testing.T) {
		_, err := pdftext.Extract(context.Background(), slow, fixture, pdftext.Options{DocTimeout: 30 * time.Millisecond},
			func(pdftext.Chunk) error { return nil })
		if !errors.Is(err, pdftext.ErrTimeout) || errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want ErrTimeout", err)
		}
	})
	t.Run("caller cancel is not a timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(30*time.Millisecond, cancel) // while page 3 is read
		_, err := pdftext.Extract(ctx, slow, fixture, pdftext.Options{}, func(pdftext.Chunk) error { return nil })
		if !errors.Is(err, context.Canceled) || errors.Is(err, pdftext.ErrTimeout) {
			t.Errorf("got error %v, want context.Canceled only", err)
		}
	})
}

func TestRecoverAs(t *testing.T) {
	err := func() (err error) {
		defer pdftext.RecoverAs(&err, "op")
		panic("boom")
	}()
	if !errors.Is(err, pdftext.ErrCorrupt) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("got %v, want an ErrCorrupt mentioning the panic", err)
	}
}

func TestProbe(t *testing.T) {
	eng := &pageCounter{Engine: pdftexttest.Replay{}}
	pages, err := pdftext.Probe(context.Background(), eng, "sample-6", pdftext.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 6 || eng.read != 0 {
		t.Errorf("got %d pages after reading %d, want 6 pages without reading any", pages, eng.read)
	}
	pages, err = pdftext.Probe(context.Background(), eng, "sample-6", pdftext.Options{MaxPages: 5})
	if !errors.Is(err, pdftext.ErrTooManyPages) || pages != 6 {
		t.Errorf("got (%d, %v), want (6, ErrTooManyPages)", pages, err)
	}
}
