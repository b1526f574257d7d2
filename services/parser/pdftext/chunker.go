package pdftext

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// chunker accumulates paragraphs and cuts them into chunks of at most
// target runes (or estimated tokens), carrying up to overlap of each
// chunk's tail into the next one. It never holds more than target plus one
// paragraph.
type chunker struct {
	target  int
	overlap int
	tokens  bool // sizes are EstimateTokens, not runes
	out     func(text string, pageStart, pageEnd int) error

	buf []rune
	// With tokens, weight[i] is the weight of buf[:i]: 1 per ASCII rune, 3
	// per other rune, so that the tokens of buf[a:b] are
	// ceil((weight[b]-weight[a])/3), exactly EstimateTokens.
	weight   []int
	paraEnds []int      // offsets in buf right after a paragraph's last rune
	marks    []pageMark // where each page's text starts in buf, ascending
	fresh    int        // buf[fresh:] has not been emitted yet
}

type pageMark struct{ off, page int }

func newChunker(target, overlap int, tokens bool, out func(text string, pageStart, pageEnd int) error) *chunker {
	c := &chunker{target: target, overlap: overlap, tokens: tokens, out: out}
	if tokens {
		c.weight = []int{0}
	}
	return c
}

// size returns the size of buf[a:b].
func (c *chunker) size(a, b int) int {
	if !c.tokens {
		return b - a
	}
	return (c.weight[b] - c.weight[a] + 2) / 3
}

// reach returns the largest end <= len(buf) with size(0, end) <= budget.
func (c *chunker) reach(budget int) int {
	if !c.tokens {
		return min(len(c.buf), budget)
	}
	// size(0, i) grows with i: find the first i where it exceeds budget.
	return sort.Search(len(c.buf)+1, func(i int) bool { return c.size(0, i) > budget }) - 1
}

// back returns the smallest start >= 0 with size(start, end) <= budget.
func (c *chunker) back(end, budget int) int {
	if !c.tokens {
		return max(end-budget, 0)
	}
	return sort.Search(end, func(i int) bool { return c.size(i, end) <= budget })
}

// appendRunes adds s to buf (and its weights).
func (c *chunker) appendRunes(s string) {
	for _, r := range s {
		c.buf = append(c.buf, r)
		if c.tokens {
			w := 3
			if r < utf8.RuneSelf {
				w = 1
			}
			c.weight = append(c.weight, c.weight[len(c.weight)-1]+w)
		}
	}
}

// add appends one normalised, non-empty paragraph from page (1-based) and
// emits every chunk that is complete.
func (c *chunker) add(page int, para string) error {
	if len(c.buf) > 0 {
		c.appendRunes("\n\n")
	}
	if n := len(c.marks); n == 0 || c.marks[n-1].page != page {
		c.marks = append(c.marks, pageMark{off: len(c.buf), page: page})
	}
	c.appendRunes(para)
	c.paraEnds = append(c.paraEnds, len(c.buf))
	for c.size(0, len(c.buf)) > c.target {
		if err := c.cut(); err != nil {
			return err
		}
	}
	return nil
}

// flush emits what is left (unless it is only overlap already emitted) and
// starts afresh without overlap, as at a chapter boundary.
func (c *chunker) flush() error {
	var err error
	if hasText(c.buf[c.fresh:]) {
		err = c.emit(len(c.buf))
	}
	c.buf, c.paraEnds, c.marks, c.fresh = c.buf[:0], c.paraEnds[:0], c.marks[:0], 0
	if c.tokens {
		c.weight = c.weight[:1]
	}
	return err
}

// cut emits buf[:end] for the best end <= target and keeps the overlap and
// the rest.
func (c *chunker) cut() error {
	end := c.cutPoint()
	if err := c.emit(end); err != nil {
		return err
	}
	c.shift(c.overlapStart(end), end)
	return nil
}

// cutPoint picks where the next chunk ends: the last paragraph end, else
// sentence end, else word boundary in [lo, limit], else limit itself.
// lo keeps chunks from becoming small and guarantees progress past the
// overlap.
func (c *chunker) cutPoint() int {
	limit := c.reach(c.target)
	lo := max(c.reach(c.target/2), c.fresh+1)
	if lo > limit {
		lo = limit
	}
	for i := len(c.paraEnds) - 1; i >= 0; i-- {
		if e := c.paraEnds[i]; e >= lo && e <= limit {
			return e
		}
	}
	for i := limit - 1; i >= lo-1 && i >= 0; i-- {
		if isSentenceEnd(c.buf, i) {
			return i + 1
		}
	}
	for i := limit; i >= lo && i > 0; i-- {
		if c.wordBoundary(i) {
			return i
		}
	}
	return limit
}

// wordBoundary reports whether a cut between buf[i-1] and buf[i] splits no
// word: one side is a space, or one side is CJK.
func (c *chunker) wordBoundary(i int) bool {
	if i <= 0 || i >= len(c.buf) {
		return true
	}
	a, b := c.buf[i-1], c.buf[i]
	return unicode.IsSpace(a) || unicode.IsSpace(b) || isCJK(a) || isCJK(b)
}

// overlapStart returns where the overlap carried over from buf[:end]
// starts: the earliest sentence start within the last c.overlap runes,
// else the earliest word start there, else end (no overlap).
func (c *chunker) overlapStart(end int) int {
	if c.overlap <= 0 {
		return end
	}
	from := c.back(end, c.overlap)
	for j := from; j < end; j++ {
		if !unicode.IsSpace(c.buf[j]) && c.sentenceStartsAt(j) {
			return j
		}
	}
	for j := from; j < end; j++ {
		if !unicode.IsSpace(c.buf[j]) && c.wordBoundary(j) {
			return j
		}
	}
	return end
}

func (c *chunker) sentenceStartsAt(j int) bool {
	k := j - 1
	for k >= 0 && unicode.IsSpace(c.buf[k]) {
		k--
	}
	return k < 0 || isSentenceEnd(c.buf, k)
}

// emit sends buf[:end], trimmed, with the pages its first and last runes
// came from.
func (c *chunker) emit(end int) error {
	first, last := 0, end-1
	for first < end && unicode.IsSpace(c.buf[first]) {
		first++
	}
	for last > first && unicode.IsSpace(c.buf[last]) {
		last--
	}
	if first >= end {
		return nil
	}
	return c.out(string(c.buf[first:last+1]), c.pageAt(first), c.pageAt(last))
}

func (c *chunker) pageAt(off int) int {
	page := 0
	for _, m := range c.marks {
		if m.off > off {
			break
		}
		page = m.page
	}
	return page
}

// shift drops buf[:start]; buf[start:end] is the overlap already emitted.
// Without overlap (start == end) leading whitespace is dropped too.
func (c *chunker) shift(start, end int) {
	if start == end {
		for start < len(c.buf) && unicode.IsSpace(c.buf[start]) {
			start++
		}
	}
	c.fresh = max(end-start, 0)

	c.buf = append(c.buf[:0], c.buf[start:]...)
	if c.tokens {
		base := c.weight[start]
		c.weight = append(c.weight[:0], c.weight[start:]...)
		for i := range c.weight {
			c.weight[i] -= base
		}
	}

	ends := c.paraEnds[:0]
	for _, e := range c.paraEnds {
		if e > start {
			ends = append(ends, e-start)
		}
	}
	c.paraEnds = ends

	marks := c.marks[:0]
	for i, m := range c.marks {
		switch {
		case m.off <= start && (i+1 == len(c.marks) || c.marks[i+1].off > start):
			marks = append(marks, pageMark{off: 0, page: m.page}) // page of buf[start]
		case m.off > start:
			marks = append(marks, pageMark{off: m.off - start, page: m.page})
		}
	}
	c.marks = marks
}

func hasText(rs []rune) bool {
	for _, r := range rs {
		if !unicode.IsSpace(r) {
			return true
		}
	}
	return false
}
