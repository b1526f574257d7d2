package pdftext

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
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
}

// headingNum matches a heading's own numbering: "2", "2.1", "3.2.1." followed
// by a space or the end. Parts have at most three digits so that titles
// like "2024 Annual Report" are not taken for numbers.
var headingNum = regexp.MustCompile(`^(\d{1,3}(?:\.\d{1,3})*)\.?(?:\s|$)`)

func newChapterIndex(outline []OutlineEntry) chapterIndex {
	type entry struct {
		page int
		ch   chapter
	}
	var (
		entries []entry
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
		if m := headingNum.FindStringSubmatch(title); m != nil {
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
		entries = append(entries, entry{page: o.Page, ch: chapter{path: strings.Join(titles, chapterSep), num: num}})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].page < entries[j].page })

	var idx chapterIndex
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
