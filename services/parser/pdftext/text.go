package pdftext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// paragraphs splits engine page text into normalised paragraphs: blocks
// separated by blank lines, the lines of a block joined with a space (none
// between two CJK characters, none after a hyphen that ends a word), all
// whitespace runs collapsed to one space, control characters dropped.
// Empty paragraphs are omitted.
func paragraphs(page string) []string {
	page = strings.ReplaceAll(page, "\r\n", "\n")
	page = strings.ReplaceAll(page, "\r", "\n")

	var out []string
	var lines []string
	flush := func() {
		if p := joinLines(lines); p != "" {
			out = append(out, p)
		}
		lines = lines[:0]
	}
	for _, line := range strings.Split(page, "\n") {
		line = normaliseLine(line)
		if line == "" {
			flush()
			continue
		}
		lines = append(lines, line)
	}
	flush()
	return out
}

// joinLines joins the normalised lines of one paragraph: with a space, with
// none between two CJK characters, and without the hyphen when a word is
// hyphenated across the line break ("exam-" + "ple"). A hyphen is kept
// when the first part already holds one ("state-of-" + "the-art") or is a
// single letter ("e-" + "mail").
func joinLines(lines []string) string {
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return lines[0]
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(lines[0])
	for _, line := range lines[1:] {
		prev := b.String()
		last, _ := utf8.DecodeLastRuneInString(prev)
		first, _ := utf8.DecodeRuneInString(line)
		switch {
		case isCJK(last) && isCJK(first):
			// no space between CJK characters
		case (last == '-' || last == '\u2010') && unicode.IsLower(first):
			if w := lastWord(prev[:len(prev)-utf8.RuneLen(last)]); utf8.RuneCountInString(w) > 1 && !strings.ContainsAny(w, "-\u2010") && isLetters(w) {
				b.Reset()
				b.WriteString(prev[:len(prev)-utf8.RuneLen(last)])
			}
		default:
			b.WriteByte(' ')
		}
		b.WriteString(line)
	}
	return b.String()
}

// lastWord returns the text after the last space of s.
func lastWord(s string) string {
	return s[strings.LastIndexByte(s, ' ')+1:]
}

func isLetters(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && r != '-' && r != '\u2010' {
			return false
		}
	}
	return true
}

// normaliseLine makes invalid UTF-8 U+FFFD, collapses whitespace to
// single spaces, trims, drops control and invisible formatting characters,
// and spells out Latin ligatures (ﬁ → fi).
func normaliseLine(s string) string {
	if isPlainLine(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\u00AD', r == '\u200B', r == '\u200C', r == '\u200D', r == '\u2060', r == '\uFEFF':
			continue // soft hyphen, zero-width characters, BOM
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if r >= 0xFB00 && r <= 0xFB06 {
			b.WriteString(ligatures[r-0xFB00])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

var ligatures = [...]string{"ff", "fi", "fl", "ffi", "ffl", "st", "st"}

// isPlainLine reports whether s is printable ASCII with single inner
// spaces and no space at either end: already normalised (the common case).
func isPlainLine(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || (c == ' ' && s[i+1] == ' ') {
			return false
		}
	}
	return true
}

func endsInLetterHyphen(s string) bool {
	s = strings.TrimSuffix(s, "-")
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsLetter(r)
}

// isCJK reports whether r is a Chinese/Japanese character or CJK
// punctuation, i.e. text written without spaces between words.
func isCJK(r rune) bool {
	switch {
	case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
		return true
	case r >= 0x3000 && r <= 0x303F: // CJK symbols and punctuation
		return true
	case r >= 0xFF00 && r <= 0xFFEF: // half- and full-width forms
		return true
	case r >= 0x30FC && r <= 0x30FF, r >= 0x31F0 && r <= 0x31FF: // prolonged sound mark, small kana
		return true
	}
	return false
}

// isSentenceEnd reports whether a sentence ends after rs[i]: a CJK full
// stop, exclamation, question mark or semicolon, or . ! ? followed by
// whitespace or the end of the text (closing quotes and brackets may sit
// in between).
func isSentenceEnd(rs []rune, i int) bool {
	switch rs[i] {
	case '。', '！', '？', '；', '．':
		return !(i+1 < len(rs) && isClosing(rs[i+1]))
	case '.', '!', '?':
	default:
		if !isClosing(rs[i]) {
			return false
		}
		j := i
		for j >= 0 && isClosing(rs[j]) {
			j--
		}
		if j < 0 || !strings.ContainsRune(".!?。！？；", rs[j]) {
			return false
		}
	}
	if i+1 < len(rs) && isClosing(rs[i+1]) {
		return false
	}
	return i+1 == len(rs) || unicode.IsSpace(rs[i+1]) || isCJK(rs[i+1])
}

func isClosing(r rune) bool {
	return strings.ContainsRune(`)]}"'”’」』）】》`, r)
}

// garbleCount tallies the non-space characters of a page's text and the
// undecodable ones among them: U+FFFD (a character the engine could not
// map), private-use characters (a font's own codes, with no meaning
// outside it) and control characters (raw codes passed through).
type garbleCount struct{ total, bad int }

// countGarble tallies s.
func countGarble(s string) garbleCount {
	var g garbleCount
	g.add(s)
	return g
}

func (g *garbleCount) add(s string) {
	if isPrintableASCII(s) {
		for i := 0; i < len(s); i++ {
			if s[i] != ' ' {
				g.total++
			}
		}
		return
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			continue
		case r == utf8.RuneError, unicode.Is(unicode.Co, r), unicode.IsControl(r),
			r >= 0xFFF0 && r <= 0xFFFF: // specials and noncharacters
			g.bad++
		}
		g.total++
	}
}

// garbled reports whether most of the text is undecodable: such a page
// counts as unreadable, like a page without text.
func (g garbleCount) garbled() bool { return g.total > 0 && 2*g.bad > g.total }

// garbled reports whether most of text is undecodable (see garbleCount).
func garbled(text string) bool { return countGarble(text).garbled() }

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
