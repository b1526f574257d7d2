package pdftext

import (
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// chapterSep joins the titles of a chapter path.
const chapterSep = " › "

// chapter is an outline entry resolved for chunk labels.
type chapter struct {
	path string // "2 Methods › 2.1 Data"
	num  string // "2.1"
}

// chapterIndex maps pages to chapters.
type chapterIndex struct {
	pages    []int // target pages, ascending
	chapters []chapter
	entries  []chapterEntry // the same entries with their targets, by page
}

// chapterEntry is a placeable outline entry.
type chapterEntry struct {
	page   int
	y      float64 // target position from the top of the page
	key    string  // titleKey of the title
	bare   string  // titleKey of the title without its leading number ("" when it has none)
	ch     chapter
	titled bool // ch.num comes from the title, not the outline position
}

// headingNum matches a heading's own numbering: "2", "2.1", "3.2.1." followed
// by a space or the end. Parts have at most three digits so that titles
// like "2024 Annual Report" are not taken for numbers.
var headingNum = regexp.MustCompile(`^(\d{1,3}(?:\.\d{1,3})*)\.?(?:\s|$)`)

// lineNum is a section number that starts a heading line: "2", "2.1",
// "2.1.3" or an appendix's "A.1", followed by space.
var lineNum = regexp.MustCompile(`^(\d{1,3}(?:\.\d{1,3})*|[A-Z](?:\.\d{1,3})+)\.?\s+`)

// tocLine is a table-of-contents line: dot leaders, then a page number.
var tocLine = regexp.MustCompile(`(?:\.\s?){4,}\s*[0-9ivxlc]+\s*$`)

// appendixNum matches an appendix's own letter: "Appendix B", "APPENDIX
// B:", "Annex C." (rest follows).
var appendixNum = regexp.MustCompile(`^(?i:appendix|annex)\s+([A-Z])(?:[.:]|\s|$)\s*`)

// letterNum matches a lettered section number: "B.1", "C.2.3".
var letterNum = regexp.MustCompile(`^([A-Z](?:\.\d{1,3})+)\.?(?:\s|$)`)

// bareLetter matches a title that may start with an appendix letter, as
// Texinfo writes them ("A A sample session", "B Invoking R"): taken as a
// number only when its siblings or children confirm it (see
// newChapterIndex).
var bareLetter = regexp.MustCompile(`^([A-Z])\.?\s+`)

// ownNumber returns the number a title gives itself ("2.1", "B", "B.1")
// and the length of its prefix that carries it, or ok false.
func ownNumber(title string) (num string, prefix int, ok bool) {
	for _, re := range []*regexp.Regexp{headingNum, letterNum, appendixNum} {
		if m := re.FindStringSubmatchIndex(title); m != nil {
			return title[m[2]:m[3]], m[1], true
		}
	}
	return "", 0, false
}

// frontMatter are titles of unnumbered front and back matter: they get no
// number, and do not shift the positions of the chapters after them.
var frontMatter = map[string]bool{
	"preface": true, "foreword": true, "contents": true, "tableofcontents": true,
	"acknowledgements": true, "acknowledgments": true, "acknowledgement": true, "abstract": true,
	"dedication": true, "prologue": true, "epilogue": true, "afterword": true, "index": true,
	"bibliography": true, "references": true, "glossary": true, "colophon": true,
	"abouttheauthor": true, "abouttheauthors": true, "listoffigures": true, "listoftables": true,
	"notation": true, "nomenclature": true, "copyright": true, "titlepage": true, "cover": true,
}

// isFrontMatter reports whether title names front or back matter.
func isFrontMatter(title string) bool { return frontMatter[titleKey(title)] }

// outlineNode is an outline entry while its number is worked out.
type outlineNode struct {
	OutlineEntry
	level  int
	title  string // normalised
	path   string
	parent int    // index of the parent node, -1 at the top
	num    string // its own number ("" when none)
	prefix int    // length of the title's prefix that carries num
	letter string // a bare leading letter that may be an appendix's
}

// newChapterIndex numbers the outline's entries the way a reader would: an
// entry whose title carries a number ("2.1 Data", "Appendix B Invoking R",
// "B.1 Options") has that number; in an outline without any such numbers,
// entries are numbered by position (1-based at every level). Otherwise an
// entry without a number gets none when its siblings have numbers (front
// matter such as a Preface, an index), and its parent's number with its
// position when they have none. Front and back matter (Preface, Contents,
// Index, …) never get a number and do not shift the others' positions.
func newChapterIndex(outline []OutlineEntry) chapterIndex {
	nodes := make([]outlineNode, 0, len(outline))
	var (
		titles []string // title path of the current entry
		stack  []int    // node index at each level
	)
	for _, o := range outline {
		level := max(o.Level, 1)
		level = min(level, len(titles)+1) // a jump of more than one level nests one deeper
		n := outlineNode{OutlineEntry: o, level: level, title: normaliseLine(o.Title), parent: -1}
		titles = append(titles[:level-1], n.title)
		n.path = strings.Join(titles, chapterSep)
		stack = append(stack[:level-1], len(nodes))
		if level > 1 {
			n.parent = stack[level-2]
		}
		if num, prefix, ok := ownNumber(n.title); ok {
			n.num, n.prefix = num, prefix
		} else if m := bareLetter.FindStringSubmatchIndex(n.title); m != nil && m[1] < len(n.title) {
			n.letter, n.prefix = n.title[m[2]:m[3]], m[1]
		}
		nodes = append(nodes, n)
	}
	confirmLetters(nodes)

	numbered := false
	for _, n := range nodes {
		numbered = numbered || n.num != ""
	}
	// Positions, per parent, of the entries that are not front matter.
	pos := make([]int, len(nodes))
	next := make(map[int]int)
	siblingsNumbered := make(map[int]bool)
	for i, n := range nodes {
		if !isFrontMatter(n.title) || n.num != "" {
			next[n.parent]++
			pos[i] = next[n.parent]
		}
		if n.num != "" {
			siblingsNumbered[n.parent] = true
		}
	}
	nums := make([]string, len(nodes))
	var entries []chapterEntry
	for i, n := range nodes {
		num := n.num
		switch {
		case num != "" || pos[i] == 0:
		case !numbered:
			num = strconv.Itoa(pos[i])
			if n.parent >= 0 {
				if nums[n.parent] == "" {
					num = ""
				} else {
					num = nums[n.parent] + "." + num
				}
			}
		case siblingsNumbered[n.parent]:
		case n.parent >= 0 && nums[n.parent] != "":
			num = nums[n.parent] + "." + strconv.Itoa(pos[i])
		}
		nums[i] = num
		if n.Page < 0 {
			continue // cannot be placed; still counts for paths and numbering
		}
		bare := ""
		if n.num != "" {
			bare = titleKey(n.title[n.prefix:])
		}
		entries = append(entries, chapterEntry{page: n.Page, y: n.Y, key: titleKey(n.title), bare: bare, titled: n.num != "",
			ch: chapter{path: n.path, num: num}})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].page < entries[j].page })

	idx := chapterIndex{entries: entries}
	for _, e := range entries {
		idx.pages = append(idx.pages, e.page)
		idx.chapters = append(idx.chapters, e.ch)
	}
	return idx
}

// confirmLetters makes a bare leading letter an entry's number when its
// children are numbered from it ("B" with "B.1"), or when its siblings
// with such letters are two or more in alphabetical order ("A A sample
// session", "B Invoking R", …, "F References"): an article such as "A
// Note on Style" alone is not a number.
func confirmLetters(nodes []outlineNode) {
	ordered := make(map[int]bool) // parent → its candidates are in order
	last := make(map[int]byte)
	count := make(map[int]int)
	for _, n := range nodes {
		if n.letter == "" {
			continue
		}
		if count[n.parent] == 0 {
			ordered[n.parent] = true
		} else if n.letter[0] <= last[n.parent] {
			ordered[n.parent] = false
		}
		last[n.parent] = n.letter[0]
		count[n.parent]++
	}
	childNums := make(map[int][]string) // node → its children's own numbers
	for _, n := range nodes {
		if n.parent >= 0 && n.num != "" {
			childNums[n.parent] = append(childNums[n.parent], n.num)
		}
	}
	for i := range nodes {
		n := &nodes[i]
		if n.letter == "" {
			continue
		}
		ok := ordered[n.parent] && count[n.parent] >= 2
		for _, c := range childNums[i] {
			ok = ok || strings.HasPrefix(c, n.letter+".")
		}
		if ok {
			n.num = n.letter
		} else {
			n.prefix = 0
		}
	}
}

// at returns the chapter of page (0-based): the last entry, in page then
// outline order, whose target page is not after it.
func (x chapterIndex) at(page int) chapter {
	i := sort.SearchInts(x.pages, page+1) // first entry after page
	if i == 0 {
		return chapter{}
	}
	return x.chapters[i-1]
}

// titleKey reduces a title or a line to what survives every PDF producer:
// its letters and digits, lower-cased.
func titleKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// titleMatches reports whether a line (as a titleKey) is where a title
// (as a titleKey) is set: the line starts with the title, or the title
// starts with the line and the line holds at least half of it (a title
// wrapped over two lines).
func titleMatches(lineKey, key string) bool {
	if key == "" || lineKey == "" {
		return false
	}
	if strings.HasPrefix(lineKey, key) {
		return true
	}
	return strings.HasPrefix(key, lineKey) && 2*len(lineKey) >= len(key)
}

// lineHasTitle reports whether a line of text is where the title of e is
// set: also when the line puts a section number before a title the
// outline gives without it ("1.1 The R environment" for "The R
// environment"; num is then that number), and when the engine put the
// title's own number on a line of its own ("The docstrip modules" for "1
// The docstrip modules", as MuPDF does for LaTeX's wide number boxes).
func lineHasTitle(text string, e *chapterEntry) (ok bool, num string) {
	lineKey := titleKey(text)
	if titleMatches(lineKey, e.key) {
		return true, ""
	}
	if m := lineNum.FindStringSubmatch(text); m != nil && titleMatches(titleKey(text[len(m[0]):]), e.key) {
		return true, m[1]
	}
	if len(e.bare) >= minBareKey && titleMatches(lineKey, e.bare) {
		return true, ""
	}
	if m := appendixNum.FindStringSubmatch(text); m != nil { // "Appendix B Invoking R" for "B Invoking R"
		if rest := titleKey(text[len(m[0]):]); titleMatches(rest, e.key) || (e.bare != "" && titleMatches(rest, e.bare)) {
			return true, m[1]
		}
	}
	return false, ""
}

// minBareKey is the shortest title (as a titleKey, its number left out)
// matched without its number: shorter ones would match too many lines.
const minBareKey = 6

// headingLevels assigns levels to headings found by their typography.
type headingLevels struct {
	body     float64         // body text size
	numbered map[float64]int // size (rounded) → level, learned from numbered headings
	sizes    []float64       // heading sizes seen, descending
}

func roundSize(s float64) float64 { return math.Round(s*2) / 2 }

// isHeading reports whether a paragraph set in size and bold, made of
// lines lines and text, looks like a heading.
func (h *headingLevels) isHeading(text string, lines int, size float64, bold bool) bool {
	if h.body <= 0 || lines > 3 || utf8.RuneCountInString(text) > 160 || tocLine.MatchString(text) {
		return false
	}
	big := size >= h.body*1.15
	if !big && !(bold && (size >= h.body*1.05 || headingNum.MatchString(text))) {
		return false
	}
	for _, r := range text {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// level returns the level of a heading: the depth of its own numbering,
// else the level of numbered headings of the same size, else its rank
// among the heading sizes seen so far.
func (h *headingLevels) level(num string, size float64) int {
	size = roundSize(size)
	if i := sort.Search(len(h.sizes), func(i int) bool { return h.sizes[i] <= size }); i == len(h.sizes) || h.sizes[i] != size {
		h.sizes = slices.Insert(h.sizes, i, size)
	}
	if num != "" {
		lvl := strings.Count(num, ".") + 1
		if h.numbered == nil {
			h.numbered = make(map[float64]int)
		}
		if _, ok := h.numbered[size]; !ok {
			h.numbered[size] = lvl
		}
		return lvl
	}
	if lvl, ok := h.numbered[size]; ok {
		return lvl
	}
	return 1 + slices.Index(h.sizes, size)
}

// headingTracker turns detected headings into chapters.
type headingTracker struct {
	levels   headingLevels
	titles   []string
	counter  []int
	numbered map[int]bool // levels where a heading had its own number
}

func (t *headingTracker) open(title string, size float64) chapter {
	num, _, _ := ownNumber(title)
	level := min(t.levels.level(num, size), len(t.titles)+1)
	t.titles = append(t.titles[:level-1], title)
	t.counter = t.counter[:min(len(t.counter), level)]
	for len(t.counter) < level {
		t.counter = append(t.counter, 0)
	}
	if num != "" {
		if t.numbered == nil {
			t.numbered = make(map[int]bool)
		}
		t.numbered[level] = true
	} else if isFrontMatter(title) || t.numbered[level] {
		// A Preface, an index, or an unnumbered heading among numbered
		// ones has no number and does not shift the others.
		return chapter{path: strings.Join(t.titles, chapterSep)}
	}
	t.counter[level-1]++
	if num == "" {
		parts := make([]string, level)
		for i, n := range t.counter {
			parts[i] = strconv.Itoa(n)
		}
		num = strings.Join(parts, ".")
	}
	return chapter{path: strings.Join(t.titles, chapterSep), num: num}
}
