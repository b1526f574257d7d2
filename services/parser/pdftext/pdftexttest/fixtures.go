package pdftexttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// Fixture is a document the tests of the pdftext core run on: drawn by
// pdfgen, read by each engine of Engines once (by the recorder), and
// replayed from that recording by the tests.
type Fixture struct {
	Name string
	Doc  pdfgen.Doc
	// Engines are the engines whose reading is recorded: MuPDF for every
	// fixture, PDFium too for those the core checks on every engine.
	Engines []string
}

// PDF returns the fixture drawn by pdfgen, and the hex SHA-256 of it.
func (f Fixture) PDF() ([]byte, string, error) {
	var b bytes.Buffer
	if err := pdfgen.Write(&b, f.Doc); err != nil {
		return nil, "", fmt.Errorf("draw fixture %s: %w", f.Name, err)
	}
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:]), nil
}

// Find returns the fixture called name; it panics when there is none (a
// mistake in a test).
func Find(name string) Fixture {
	for _, f := range Fixtures() {
		if f.Name == name {
			return f
		}
	}
	panic("pdftexttest: no fixture " + strconv.Quote(name))
}

// TextPage is a page of one block holding paras, one paragraph each.
func TextPage(paras ...string) pdfgen.Page {
	return pdfgen.Page{Blocks: []pdfgen.Block{{Text: strings.Join(paras, "\n\n")}}}
}

// Heading is a block set as a heading: bold, at size.
func Heading(text string, size float64) pdfgen.Block {
	return pdfgen.Block{Text: text, Size: size, Bold: true}
}

// GarbageLine is what a line looks like when its font has no Unicode
// mapping: replacement characters, a font's private-use codes, a stray
// Latin letter or digit.
var GarbageLine = strings.Repeat("\uFFFD", 20) + " a1 " + strings.Repeat("\uE012\uE0A7\uF8FF", 6)

// LayoutPara is the body paragraph of the layout fixtures about topic.
func LayoutPara(topic string) string {
	return "This paragraph talks about " + topic + " and how the pipeline keeps every page of text in order."
}

// RunningBody is the sentence every page of the running-header fixtures
// repeats in its body.
const RunningBody = "Remember to water the potatoes twice a week."

// RunningPages is the page count of the running-header fixtures.
const RunningPages = 8

// Fixtures returns every fixture, in a fixed order. Each is built anew,
// so a caller may change what it gets.
func Fixtures() []Fixture {
	both := []string{MuPDF, PDFium}
	var fs []Fixture
	add := func(name string, d pdfgen.Doc, engines ...string) {
		if len(engines) == 0 {
			engines = []string{MuPDF}
		}
		fs = append(fs, Fixture{Name: name, Doc: d, Engines: engines})
	}

	// Chapters from an outline, and the same pages without one.
	chapters := []pdfgen.Page{
		TextPage("Cover page before any chapter."),
		TextPage("1 Introduction", "Why we do this."),
		TextPage("2 Methods", "How we do it."),
		TextPage("2.1 Data", "Where the data comes from."),
		TextPage("Model details", "What the model is."),
		TextPage("Results", "First results page."),
		TextPage("Second results page."),
	}
	add("chapters", pdfgen.Doc{Pages: chapters, Outline: []pdfgen.OutlineItem{
		{Title: "1 Introduction", Page: 1},
		{Title: "2 Methods", Page: 2, Children: []pdfgen.OutlineItem{
			{Title: "2.1 Data", Page: 3},
			{Title: "Model details", Page: 4},
		}},
		{Title: "Results", Page: 5},
	}})
	add("chapters-no-outline", pdfgen.Doc{Pages: chapters})

	// Four pages of one paragraph of about 400 runes each.
	var long []pdfgen.Page
	for i := 1; i <= 4; i++ {
		long = append(long, TextPage(LongPara(i)))
	}
	add("long-paragraphs", pdfgen.Doc{Pages: long})

	add("chinese", pdfgen.Doc{
		Pages:   []pdfgen.Page{TextPage("第一章 引言", ChinesePara, MixedPara)},
		Outline: []pdfgen.OutlineItem{{Title: "第一章 引言", Page: 0}},
	})

	// pdfgen's sample report, with its outline, without one, and with an
	// outline whose titles are not in the text.
	add("sample-6", pdfgen.Sample(6))
	add("sample-20", pdfgen.Sample(20))
	noOutline := pdfgen.Sample(20)
	noOutline.Outline = nil
	add("sample-20-no-outline", noOutline)
	add("sample-60", pdfgen.Sample(60))
	noOutline = pdfgen.Sample(24)
	noOutline.Outline = nil
	add("sample-24-no-outline", noOutline)
	bogus := pdfgen.Sample(24)
	bogus.Outline = []pdfgen.OutlineItem{{Title: "Wrong title", Page: 0}, {Title: "Nothing like this", Page: 5}, {Title: "\u0001\u0002", Page: 9}}
	add("sample-24-bogus-outline", bogus)

	blank := pdfgen.Page{}
	add("some-empty", pdfgen.Doc{Pages: []pdfgen.Page{blank, TextPage("Text on page two."), blank, TextPage("Text on page four.")}})
	add("all-empty", pdfgen.Doc{Pages: []pdfgen.Page{blank, blank}})

	layout := layoutDoc()
	add("layout-headings", layout)
	layout = layoutDoc()
	layout.Outline = []pdfgen.OutlineItem{{Title: "1 Overview", Page: 0, Y: 300}, {Title: "2 Results", Page: 2, Y: 300}}
	add("layout-outline", layout)

	// A table of contents with dot leaders, numbered headings, and an
	// outline without the numbers.
	body := func(text string) pdfgen.Block { return pdfgen.Block{Text: text} }
	toc := []pdfgen.Page{
		{Blocks: []pdfgen.Block{Heading("Contents", 16),
			body("Preface . . . . . . . . . . . . . . 2\n1 Getting started . . . . . . . . . 3\n1.1 Installing . . . . . . . . . . . . 3\n2 Using it . . . . . . . . . . . . . . 4")}},
		{Blocks: []pdfgen.Block{Heading("Preface", 16), body("Why this manual exists.")}},
		{Blocks: []pdfgen.Block{Heading("1 Getting started", 16), body("First steps."), Heading("1.1 Installing", 16), body("Install it like this.")}},
		{Blocks: []pdfgen.Block{Heading("2 Using it", 16), body("Daily use.")}},
	}
	add("toc-outline-without-numbers", pdfgen.Doc{Pages: toc, Outline: []pdfgen.OutlineItem{
		{Title: "Preface", Page: 1},
		{Title: "Getting started", Page: 2, Children: []pdfgen.OutlineItem{{Title: "Installing", Page: 2}}},
		{Title: "Using it", Page: 3},
	}})
	add("toc-no-outline", pdfgen.Doc{Pages: toc})

	// Section numbers on a line of their own, mid-page, before titles
	// that say more than the outline's.
	lead := strings.Repeat("Some words before the heading on this page. ", 30)
	var own []pdfgen.Page
	for _, h := range [][2]string{
		{"1\nGetting the sources (draft)", "Clone the repository first."},
		{"2\nInstalling the tools (draft)", "Run the installer."},
		{"3\nRunning the pipeline (draft)", "Start every stage."},
	} {
		own = append(own, pdfgen.Page{Blocks: []pdfgen.Block{body(lead), Heading(h[0], 14), body(h[1]), body(lead)}})
	}
	add("number-own-line", pdfgen.Doc{Pages: own, Outline: []pdfgen.OutlineItem{
		{Title: "1 Getting the sources", Page: 0},
		{Title: "2 Installing the tools", Page: 1},
		{Title: "3 Running the pipeline", Page: 2},
	}})

	add("r-intro", rIntroDoc())

	// Running headers and footers, and text that only looks like them.
	running := func(name string, page func(i int) pdfgen.Page) {
		var d pdfgen.Doc
		for i := range RunningPages {
			d.Pages = append(d.Pages, page(i))
		}
		add(name, d, both...)
	}
	running("running-numbered-lines", func(i int) pdfgen.Page {
		return pdfgen.Page{Blocks: []pdfgen.Block{{Text: fmt.Sprintf("Potato %d", i+1)}}}
	})
	running("running-greeting", func(int) pdfgen.Page {
		return pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Hello, world!", Y: 400}}}
	})
	running("running-greeting-top", func(int) pdfgen.Page {
		return pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Hello, world!"}}}
	})
	running("running-body-sentence", func(i int) pdfgen.Page {
		return pdfgen.Page{Blocks: []pdfgen.Block{
			{Text: fmt.Sprintf("Day %d in the garden.", i+1), Y: 300},
			{Text: RunningBody, Y: 340},
			{Text: fmt.Sprintf("Harvest %d kilograms.", 3*i+2), Y: 380},
		}}
	})
	running("running-header-footer", func(i int) pdfgen.Page {
		return pdfgen.Page{Blocks: []pdfgen.Block{
			{Text: "Potato Growers Monthly", Size: 8, Y: 24},
			{Text: fmt.Sprintf("Day %d in the garden.", i+1), Y: 300},
			{Text: RunningBody, Y: 340},
			{Text: fmt.Sprintf("Page %d", i+1), Size: 8, Y: 810},
		}}
	})

	// Pages whose text is mostly undecodable.
	garbage := pdfgen.Page{Blocks: []pdfgen.Block{{Text: GarbageLine}, {Text: GarbageLine}}}
	readable := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "A readable page about potatoes, with one odd \uFFFD character."}}}
	score := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "Jesu, meine Freude"}, {Text: GarbageLine}, {Text: GarbageLine}, {Text: GarbageLine}}}
	add("unreadable-all", pdfgen.Doc{Pages: []pdfgen.Page{garbage, garbage, garbage}}, both...)
	add("unreadable-and-empty", pdfgen.Doc{Pages: []pdfgen.Page{garbage, {}, garbage}}, both...)
	add("unreadable-some", pdfgen.Doc{Pages: []pdfgen.Page{garbage, readable, {}, garbage, readable}}, both...)
	add("unreadable-score", pdfgen.Doc{Pages: []pdfgen.Page{score}}, both...)
	add("no-text", pdfgen.Doc{Pages: []pdfgen.Page{{}, {}}}, both...)
	return fs
}

// LongPara is page n's paragraph of the long-paragraphs fixture: 400
// runes, the last sentence naming the page.
func LongPara(n int) string {
	const sentence = "Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do. " // 64 runes
	s := strings.Repeat(sentence, 6) + fmt.Sprintf("Page %d ends here.", n)
	return s[:len(s)-18] + fmt.Sprintf("Page %d ends it.", n)
}

// Paragraphs of the chinese fixture.
const (
	ChinesePara = "这是一个测试文档，用来检查中文文本能否完整地往返。PDF文本提取应该保留每一个中文字符！第二句话是否也在？" +
		"最后一句包含全角标点：（括号）和“引号”；结束。"
	MixedPara = "混合段落 with English words 和中文。"
)

// LayoutPages is the page count of the layout fixtures.
const LayoutPages = 6

// layoutDoc has a running header and footer on every page, a heading
// mid-page, a heading at the top of the right column of a two-column
// page, a word hyphenated across lines and a ligature.
func layoutDoc() pdfgen.Doc {
	var doc pdfgen.Doc
	for i := range LayoutPages {
		p := pdfgen.Page{Blocks: []pdfgen.Block{{Text: "ACME Corp Annual Report", Size: 8, Y: 20}}}
		switch i {
		case 0:
			p.Blocks = append(p.Blocks,
				pdfgen.Block{Text: LayoutPara(LayoutTopics["0a"]), Y: 80},
				pdfgen.Block{Text: "1 Overview", Size: 16, Bold: true, Y: 300},
				pdfgen.Block{Text: "An exam-\nple of hyphenation and a \ufb01ne ligature.", Y: 340})
		case 2:
			p.Blocks = append(p.Blocks,
				pdfgen.Block{Text: LayoutPara(LayoutTopics["2L1"]), X: 56, Width: 230, Y: 80},
				pdfgen.Block{Text: LayoutPara(LayoutTopics["2L2"]), X: 56, Width: 230, Y: 400},
				pdfgen.Block{Text: LayoutPara(LayoutTopics["2R1"]), X: 310, Width: 230, Y: 80},
				pdfgen.Block{Text: "2 Results", Size: 16, Bold: true, X: 310, Width: 230, Y: 300},
				pdfgen.Block{Text: LayoutPara(LayoutTopics["2R2"]), X: 310, Width: 230, Y: 340})
		default:
			p.Blocks = append(p.Blocks, pdfgen.Block{Text: LayoutPara(LayoutTopics[strconv.Itoa(i)]), Y: 80})
		}
		p.Blocks = append(p.Blocks, pdfgen.Block{Text: fmt.Sprintf("Page %d of %d", i+1, LayoutPages), Size: 8, Y: 800})
		doc.Pages = append(doc.Pages, p)
	}
	return doc
}

// LayoutTopics names the topic of each body paragraph of the layout
// fixtures, by page (and column and place, on the two-column page 2).
var LayoutTopics = map[string]string{"0a": "the preface", "1": "parsing", "2L1": "left columns", "2L2": "more left columns",
	"2R1": "right columns", "2R2": "results", "3": "chunking", "4": "embedding", "5": "ingesting"}

// rIntroDoc is laid out like R's "An Introduction to R": an unnumbered
// Preface, numbered chapters and sections, and appendices shown as
// "Appendix A …" whose outline titles start with their letter.
func rIntroDoc() pdfgen.Doc {
	var d pdfgen.Doc
	chapter := func(shown, title, text string, sections ...string) {
		item := pdfgen.OutlineItem{Title: title, Page: len(d.Pages)}
		p := pdfgen.Page{Blocks: []pdfgen.Block{Heading(shown, 16), {Text: text}}}
		for _, s := range sections {
			item.Children = append(item.Children, pdfgen.OutlineItem{Title: s, Page: len(d.Pages), Y: 300})
			p.Blocks = append(p.Blocks, pdfgen.Block{Text: s, Size: 13, Bold: true, Y: 300}, pdfgen.Block{Text: "Section text about " + s + ".", Y: 330})
		}
		d.Pages = append(d.Pages, p)
		d.Outline = append(d.Outline, item)
	}
	chapter("Preface", "Preface", "This introduction to R is derived from notes.")
	chapter("1 Introduction and preliminaries", "1 Introduction and preliminaries", "R is an integrated suite.", "1.1 The R environment")
	chapter("2 Simple manipulations; numbers and vectors", "2 Simple manipulations; numbers and vectors", "R operates on data structures.")
	chapter("Appendix A A sample session", "A A sample session", "The following session introduces features.")
	chapter("Appendix B Invoking R", "B Invoking R", "Users of R on Windows or macOS should read the OS-specific section.", "B.1 Invoking R from the command line")
	chapter("Appendix D Function and variable index", "D Function and variable index", "abs, acos, add1, anova.")
	return d
}
