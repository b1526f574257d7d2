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

func newChapterIndex(outline []OutlineEntry) chapterIndex {
	var (
		entries []chapterEntry
		titles  []string // title path of the current entry
		counter []int    // position of the current entry at each level
	)
	for _, o := range outline {
		level := max(o.Level, 1)
		level = min(level, len(titles)+1) // a jump of more than one level nests one deeper
		title := normaliseLine(o.Title)
		titles = append(titles[:level-1], title)
		counter = counter[:min(len(counter), level)]
		for len(counter) < level {
			counter = append(counter, 0)
		}
		counter[level-1]++

		num := ""
		m := headingNum.FindStringSubmatch(title)
		if m != nil {
			num = m[1]
		} else {
			parts := make([]string, level)
			for i, n := range counter {
				parts[i] = strconv.Itoa(n)
			}
			num = strings.Join(parts, ".")
		}
		if o.Page < 0 {
			continue // cannot be placed; still counts for paths and numbering
		}
		bare := ""
		if m != nil {
			bare = titleKey(title[len(m[0]):])
		}
		entries = append(entries, chapterEntry{page: o.Page, y: o.Y, key: titleKey(title), bare: bare, titled: m != nil,
			ch: chapter{path: strings.Join(titles, chapterSep), num: num}})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].page < entries[j].page })

	idx := chapterIndex{entries: entries}
	for _, e := range entries {
		idx.pages = append(idx.pages, e.page)
		idx.chapters = append(idx.chapters, e.ch)
	}
	return idx
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
	levels  headingLevels
	titles  []string
	counter []int
}

func (t *headingTracker) open(title string, size float64) chapter {
	num := ""
	if m := headingNum.FindStringSubmatch(title); m != nil {
		num = m[1]
	}
	level := min(t.levels.level(num, size), len(t.titles)+1)
	t.titles = append(t.titles[:level-1], title)
	t.counter = t.counter[:min(len(t.counter), level)]
	for len(t.counter) < level {
		t.counter = append(t.counter, 0)
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
