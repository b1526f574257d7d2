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
	page = strings.ToValidUTF8(page, "\uFFFD")
	page = strings.ReplaceAll(page, "\r\n", "\n")
	page = strings.ReplaceAll(page, "\r", "\n")

	var out []string
	var para strings.Builder
	flush := func() {
		if para.Len() > 0 {
			out = append(out, para.String())
			para.Reset()
		}
	}
	for _, line := range strings.Split(page, "\n") {
		line = normaliseLine(line)
		if line == "" {
			flush()
			continue
		}
		if para.Len() > 0 {
			prev := para.String()
			last, _ := utf8.DecodeLastRuneInString(prev)
			first, _ := utf8.DecodeRuneInString(line)
			switch {
			case isCJK(last) && isCJK(first):
				// no space between CJK characters
			case last == '-' && endsInLetterHyphen(prev) && unicode.IsLower(first):
				// "well-" + "known": keep the hyphen, no space
			default:
				para.WriteByte(' ')
			}
		}
		para.WriteString(line)
	}
	flush()
	return out
}

// normaliseLine collapses whitespace to single spaces, trims, and drops
// control and invisible formatting characters.
func normaliseLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
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
		b.WriteRune(r)
	}
	return b.String()
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
