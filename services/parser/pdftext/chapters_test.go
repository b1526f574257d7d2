package pdftext

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

func TestChapterIndex(t *testing.T) {
	outline := []OutlineEntry{
		{Level: 1, Title: "Preface", Page: 1},
		{Level: 1, Title: "2 Methods", Page: 2},
		{Level: 2, Title: "2.1  Data", Page: 3},
		{Level: 2, Title: "Models", Page: 3},
		{Level: 4, Title: "Deep jump", Page: 4}, // more than one level deeper
		{Level: 1, Title: "Lost", Page: -1},     // unknown target: numbered, never chosen
		{Level: 1, Title: "2024 Annual Report", Page: 6},
		{Level: 2, Title: "4.2. Numbered", Page: 7},
	}
	tests := []struct {
		page     int
		wantPath string
		wantNum  string
	}{
		{0, "", ""},
		{1, "Preface", ""}, // front matter: no number
		{2, "2 Methods", "2"},
		{3, "2 Methods › Models", ""}, // two entries on one page: the later one; its sibling has a number, it has none
		{4, "2 Methods › Models › Deep jump", ""},
		{5, "2 Methods › Models › Deep jump", ""},
		{6, "2024 Annual Report", ""}, // a year is not a number; its numbered siblings say it has none
		{7, "2024 Annual Report › 4.2. Numbered", "4.2"},
		{100, "2024 Annual Report › 4.2. Numbered", "4.2"},
	}
	idx := newChapterIndex(outline)
	for _, tc := range tests {
		got := idx.at(tc.page)
		if got.path != tc.wantPath || got.num != tc.wantNum {
			t.Errorf("page %d: got (%q, %q), want (%q, %q)", tc.page, got.path, got.num, tc.wantPath, tc.wantNum)
		}
	}
	if got := newChapterIndex(nil).at(3); got != (chapter{}) {
		t.Errorf("no outline: got %+v, want empty chapter", got)
	}
}

// rIntroOutline mimics the outline of R's "An Introduction to R" (Texinfo):
// an unnumbered Preface, numbered chapters and sections, appendices whose
// titles start with their letter ("A A sample session") and whose
// sections are lettered ("B.1 …"), and unnumbered indexes.
func rIntroOutline() []OutlineEntry {
	var o []OutlineEntry
	add := func(level int, title string) {
		o = append(o, OutlineEntry{Level: level, Title: title, Page: len(o)})
	}
	add(1, "Preface")
	add(1, "1 Introduction and preliminaries")
	add(2, "1.1 The R environment")
	add(2, "1.2 Related software and documentation")
	add(1, "2 Simple manipulations; numbers and vectors")
	add(2, "2.1 Vectors and assignment")
	add(1, "14 Operating system facilities")
	add(2, "14.1 Files and directories")
	add(1, "A A sample session")
	add(1, "B Invoking R")
	add(2, "B.1 Invoking R from the command line")
	add(2, "B.2 Invoking R under Windows")
	add(1, "C The command-line editor")
	add(2, "C.1 Preliminaries")
	add(1, "D Function and variable index")
	add(1, "E Concept index")
	add(1, "F References")
	return o
}

func TestChapterNumbers(t *testing.T) {
	tests := []struct {
		name    string
		outline []OutlineEntry
		want    []string // "path = num" per entry, in outline order
	}{
		{"an introduction to R", rIntroOutline(), []string{
			"Preface = ",
			"1 Introduction and preliminaries = 1",
			"1 Introduction and preliminaries › 1.1 The R environment = 1.1",
			"1 Introduction and preliminaries › 1.2 Related software and documentation = 1.2",
			"2 Simple manipulations; numbers and vectors = 2",
			"2 Simple manipulations; numbers and vectors › 2.1 Vectors and assignment = 2.1",
			"14 Operating system facilities = 14",
			"14 Operating system facilities › 14.1 Files and directories = 14.1",
			"A A sample session = A",
			"B Invoking R = B",
			"B Invoking R › B.1 Invoking R from the command line = B.1",
			"B Invoking R › B.2 Invoking R under Windows = B.2",
			"C The command-line editor = C",
			"C The command-line editor › C.1 Preliminaries = C.1",
			"D Function and variable index = D",
			"E Concept index = E",
			"F References = F",
		}},
		{"appendices named as such", []OutlineEntry{
			{Level: 1, Title: "Foreword"}, {Level: 1, Title: "1 Start"}, {Level: 1, Title: "2 End"},
			{Level: 1, Title: "Appendix A: Tables"}, {Level: 2, Title: "A.1 Sizes"}, {Level: 1, Title: "APPENDIX B Proofs"},
			{Level: 1, Title: "Index"},
		}, []string{
			"Foreword = ", "1 Start = 1", "2 End = 2", "Appendix A: Tables = A", "Appendix A: Tables › A.1 Sizes = A.1",
			"APPENDIX B Proofs = B", "Index = ",
		}},
		{"no numbers: by position, front matter skipped", []OutlineEntry{
			{Level: 1, Title: "Preface"}, {Level: 2, Title: "Thanks"}, {Level: 1, Title: "Introduction"}, {Level: 2, Title: "Scope"},
			{Level: 2, Title: "Terms"}, {Level: 1, Title: "Methods"}, {Level: 1, Title: "Bibliography"},
		}, []string{
			"Preface = ", "Preface › Thanks = ", "Introduction = 1", "Introduction › Scope = 1.1", "Introduction › Terms = 1.2",
			"Methods = 2", "Bibliography = ",
		}},
		{"a title starting with an article is not an appendix", []OutlineEntry{
			{Level: 1, Title: "1 Start"}, {Level: 1, Title: "A Note on Style"}, {Level: 1, Title: "2 End"},
		}, []string{"1 Start = 1", "A Note on Style = ", "2 End = 2"}},
		{"unnumbered sections of a numbered chapter", []OutlineEntry{
			{Level: 1, Title: "3 Results"}, {Level: 2, Title: "Overview"}, {Level: 2, Title: "Details"},
		}, []string{"3 Results = 3", "3 Results › Overview = 3.1", "3 Results › Details = 3.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.outline {
				tc.outline[i].Page = i
			}
			idx := newChapterIndex(tc.outline)
			var got []string
			for _, e := range idx.entries {
				got = append(got, e.ch.path+" = "+e.ch.num)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestHeadingNumbers(t *testing.T) {
	var tr headingTracker
	var got []string
	for _, h := range []string{"Preface", "1 Introduction", "Contents", "2 Methods", "Appendix A Data", "A.1 Sources", "Summary"} {
		ch := tr.open(h, 12)
		got = append(got, ch.num)
	}
	if want := []string{"", "1", "", "2", "A", "A.1", ""}; !slices.Equal(got, want) {
		t.Errorf("got numbers %q, want %q", got, want)
	}
}

// TestExtractRIntroChapterNumbers runs Extract on a document laid out like
// R's "An Introduction to R": the Preface has no number, chapter 1 is 1,
// appendices keep their letters ("A", "B.1") on the pages that show
// "Appendix A …", and the indexes at the end are lettered appendices too.
func TestExtractRIntroChapterNumbers(t *testing.T) {
	heading := func(text string) pdfgen.Block { return pdfgen.Block{Text: text, Size: 16, Bold: true} }
	body := func(text string) pdfgen.Block { return pdfgen.Block{Text: text} }
	var (
		pages   []pdfgen.Page
		outline []pdfgen.OutlineItem
	)
	chapter := func(shown, title, text string, sections ...string) {
		item := pdfgen.OutlineItem{Title: title, Page: len(pages)}
		p := pdfgen.Page{Blocks: []pdfgen.Block{heading(shown), body(text)}}
		for _, s := range sections {
			item.Children = append(item.Children, pdfgen.OutlineItem{Title: s, Page: len(pages), Y: 300})
			p.Blocks = append(p.Blocks, pdfgen.Block{Text: s, Size: 13, Bold: true, Y: 300}, pdfgen.Block{Text: "Section text about " + s + ".", Y: 330})
		}
		pages = append(pages, p)
		outline = append(outline, item)
	}
	chapter("Preface", "Preface", "This introduction to R is derived from notes.")
	chapter("1 Introduction and preliminaries", "1 Introduction and preliminaries", "R is an integrated suite.", "1.1 The R environment")
	chapter("2 Simple manipulations; numbers and vectors", "2 Simple manipulations; numbers and vectors", "R operates on data structures.")
	chapter("Appendix A A sample session", "A A sample session", "The following session introduces features.")
	chapter("Appendix B Invoking R", "B Invoking R", "Users of R on Windows or macOS should read the OS-specific section.", "B.1 Invoking R from the command line")
	chapter("Appendix D Function and variable index", "D Function and variable index", "abs, acos, add1, anova.")
	path := writePDF(t, pdfgen.Doc{Pages: pages, Outline: outline})
	chunks, _ := collect(t, path, Options{ChunkOverlap: -1})
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
