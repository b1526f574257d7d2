package pdftext

import (
	"math"
	"slices"
	"strings"
	"unicode"
)

// Running headers and footers: a line among the two topmost or the two
// bottommost of a page, in an engine block of at most two lines and inside
// the page's top or bottom band (hfBand of its height), is removed when
// the same text (digits ignored) sits at about the same place (hfSlack) on
// at least hfMinPages pages and on at least 40 % of the pages with text
// within hfWindow pages before and after it. Removal never empties a page:
// a page whose every line would go keeps them all (a document of one short
// line per page has no running header, only text).
const (
	hfWindow   = 6
	hfMinPages = 3
	hfEdge     = 2
	hfBand     = 0.12
	hfSlack    = 6.0 // points
)

// hfMark is an edge line that may be a running header or footer: its key,
// which edge it is at, and its distance from that edge.
type hfMark struct {
	line   int
	key    string
	bottom bool
	pos    float64
}

// hfFilter marks running headers and footers. Pages go through it in
// order and come out hfWindow pages later (or at the end).
type hfFilter struct {
	queue []*pageData      // pages not yet released
	marks map[int][]hfMark // page → candidate lines, for pages with text
}

func newHFFilter() *hfFilter { return &hfFilter{marks: make(map[int][]hfMark)} }

// hfKey is the text of a line with digit runs reduced to "#", letters
// lower-cased and everything else dropped: "Page 12 of 40" → "page#of#".
func hfKey(s string) string {
	var b strings.Builder
	digit := false
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			if !digit {
				b.WriteByte('#')
			}
			digit = true
			continue
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		}
		digit = false
	}
	return b.String()
}

// edgeLines returns the indexes of the topmost lines and of the bottommost
// lines (a line may be in both).
func edgeLines(lines []pline) (top, bottom []int) {
	for i, l := range lines {
		top = insertEdge(top, i, func(j int) bool { return l.y0 < lines[j].y0 })
		bottom = insertEdge(bottom, i, func(j int) bool { return l.y1 > lines[j].y1 })
	}
	return top, bottom
}

// insertEdge inserts i into the at most hfEdge indexes of edge, before the
// first j for which before(j) holds.
func insertEdge(edge []int, i int, before func(j int) bool) []int {
	k := 0
	for k < len(edge) && !before(edge[k]) {
		k++
	}
	if k == hfEdge {
		return edge
	}
	edge = slices.Insert(edge, k, i)
	return edge[:min(len(edge), hfEdge)]
}

// candidates returns the lines of pd that may be running headers or
// footers: short edge lines inside the page's top or bottom band.
func candidates(pd *pageData) []hfMark {
	top, bottom := edgeLines(pd.lines)
	var out []hfMark
	add := func(i int, atBottom bool) {
		l := &pd.lines[i]
		k := hfKey(l.text)
		if k == "" || !l.short {
			return
		}
		pos := l.y0 - pd.box.Y0
		if atBottom {
			pos = pd.box.Y1 - l.y1
		}
		if pd.boxed && pos > hfBand*(pd.box.Y1-pd.box.Y0) {
			return
		}
		out = append(out, hfMark{line: i, key: k, bottom: atBottom, pos: pos})
	}
	for _, i := range top {
		add(i, false)
	}
	for _, i := range bottom {
		add(i, true)
	}
	return out
}

// push adds the next page and returns the pages that are ready.
func (f *hfFilter) push(pd *pageData) []*pageData {
	if pd.layout && len(pd.lines) > 0 {
		f.marks[pd.index] = candidates(pd)
	}
	f.queue = append(f.queue, pd)
	var out []*pageData
	for len(f.queue) > 0 && f.queue[0].index+hfWindow <= pd.index {
		out = append(out, f.release())
	}
	return out
}

// drain returns the pages still held, at the end of the document.
func (f *hfFilter) drain() []*pageData {
	var out []*pageData
	for len(f.queue) > 0 {
		out = append(out, f.release())
	}
	return out
}

func (f *hfFilter) release() *pageData {
	pd := f.queue[0]
	f.queue = f.queue[1:]
	delete(f.marks, pd.index-hfWindow-1)
	mine := f.marks[pd.index]
	if len(mine) == 0 {
		return pd
	}
	withText := 0
	count := make([]int, len(mine))
	for p := pd.index - hfWindow; p <= pd.index+hfWindow; p++ {
		ms, ok := f.marks[p]
		if !ok {
			continue
		}
		withText++
		for k, m := range mine {
			if slices.ContainsFunc(ms, func(o hfMark) bool {
				return o.key == m.key && o.bottom == m.bottom && math.Abs(o.pos-m.pos) <= hfSlack
			}) {
				count[k]++
			}
		}
	}
	removed := 0
	for k, m := range mine {
		if c := count[k]; c >= hfMinPages && 5*c >= 2*withText && !pd.lines[m.line].remove {
			pd.lines[m.line].remove = true
			removed++
		}
	}
	if removed == len(pd.lines) { // never empty a page that has text
		for _, m := range mine {
			pd.lines[m.line].remove = false
		}
	}
	return pd
}

// assembler is the sequential stage: pages in order → chapters and
// paragraphs → chunker.
type assembler struct {
	info     *Info
	ck       *chunker
	cur      *chapter // chapter of the text being chunked
	outline  []chapterEntry
	nextOut  int             // first outline entry not yet placed
	carry    []chapter       // entries to open at the next line of text
	headings *headingTracker // nil when the outline is used
}

// lineStart is a chapter opening at a line of a page.
type lineStart struct {
	line int
	ch   chapter
}

// starts places the outline entries that target page pd on its lines.
func (a *assembler) starts(pd *pageData) []lineStart {
	var out []lineStart
	for _, ch := range a.carry {
		out = append(out, lineStart{0, ch})
	}
	a.carry = a.carry[:0]
	pos := 0
	for a.nextOut < len(a.outline) && a.outline[a.nextOut].page <= pd.index {
		e := a.outline[a.nextOut]
		a.nextOut++
		if e.page < pd.index || !pd.layout {
			out = append(out, lineStart{pos, e.ch})
			continue
		}
		at := -1
		for j := pos; j < len(pd.lines); j++ {
			if pd.lines[j].remove {
				continue
			}
			if ok, num := lineHasTitle(pd.lines[j].text, &e); ok {
				if num != "" && !e.titled {
					e.ch.num = num // the heading's own number beats the outline position
				}
				at = j
				if e.titled && j > pos && strings.TrimSuffix(pd.lines[j-1].text, ".") == e.ch.num {
					at = j - 1 // the title's number, on a line of its own
				}
				break
			}
		}
		if at < 0 { // title not found: place by the target's position
			for j := pos; j < len(pd.lines); j++ {
				if pd.lines[j].y1 > e.y {
					at = j
					break
				}
			}
		}
		if at < 0 { // below all text: the chapter starts on the next page
			a.carry = append(a.carry, e.ch)
			continue
		}
		out = append(out, lineStart{at, e.ch})
		pos = at
	}
	return out
}

// page feeds one page, in order.
func (a *assembler) page(pd *pageData) error {
	if pd.unreadable {
		a.info.UnreadablePages++
	}
	if len(pd.lines) == 0 {
		switch {
		case pd.skipped:
			a.info.SkippedPages++
		case !pd.unreadable:
			a.info.EmptyPages++
		}
		return nil // its outline entries open at the next page with text
	}
	var starts []lineStart
	if a.headings == nil {
		starts = a.starts(pd)
	}
	page := pd.index + 1
	var (
		para    []string
		first   *pline   // first line of para
		open    *chapter // chapter that para opens
		pending *chapter // chapter to open with the next paragraph
	)
	flush := func() error {
		if len(para) == 0 {
			return nil
		}
		text := joinLines(para)
		if a.headings != nil && pd.layout && a.headings.levels.isHeading(text, len(para), first.size, first.bold) {
			ch := a.headings.open(text, first.size)
			open = &ch
		}
		if open != nil {
			if err := a.ck.flush(); err != nil {
				return err
			}
			a.cur, open = open, nil
		}
		para = para[:0]
		return a.ck.add(page, text)
	}
	si := 0
	for j := range pd.lines {
		l := &pd.lines[j]
		for si < len(starts) && starts[si].line <= j {
			pending = &starts[si].ch
			si++
		}
		if l.remove {
			continue
		}
		if len(para) > 0 && (pending != nil || l.block || (pd.layout && styleChanges(first, l))) {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(para) == 0 {
			first, open, pending = l, pending, nil
		}
		para = append(para, l.text)
	}
	if err := flush(); err != nil {
		return err
	}
	if pending != nil { // its line was a removed header or footer
		a.carry = append(a.carry, *pending)
	}
	return nil
}

// styleChanges reports whether l is set differently from the paragraph
// that starts with first: a heading within an engine block.
func styleChanges(first, l *pline) bool {
	return first.bold != l.bold || math.Abs(first.size-l.size) > 0.08*max(first.size, l.size)
}
