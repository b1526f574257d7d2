package pdfgen

import "unicode"

// font identifies one of the three fonts every generated file carries.
type font uint8

const (
	fontRegular font = iota // Helvetica, WinAnsiEncoding
	fontBold                // Helvetica-Bold, WinAnsiEncoding
	fontCJK                 // Type0, Identity-H, CID = Unicode code point
)

// winAnsiCode returns the WinAnsiEncoding code of r, if it has one.
func winAnsiCode(r rune) (byte, bool) {
	switch {
	case r >= 0x20 && r <= 0x7E:
		return byte(r), true
	case r >= 0xA0 && r <= 0xFF:
		return byte(r), true
	case r < 0x152 || r > 0x2122:
		return 0, false
	}
	for i := 0x80; i < 0xA0; i++ {
		if winAnsi[i-0x20] == r {
			return byte(i), true
		}
	}
	return 0, false
}

// fontFor returns the font that draws r.
func fontFor(r rune, bold bool) font {
	if _, ok := winAnsiCode(r); !ok {
		return fontCJK
	}
	if bold {
		return fontBold
	}
	return fontRegular
}

// runeWidth returns the advance width of r in 1/1000 em.
func runeWidth(r rune, bold bool) float64 {
	c, ok := winAnsiCode(r)
	if !ok {
		return 1000
	}
	if bold {
		return float64(helveticaBoldWidths[c-0x20])
	}
	return float64(helveticaWidths[c-0x20])
}

// normalize maps text to the runes the generator can draw: tabs become
// spaces, other control characters and '\r' are dropped, and characters
// outside the Basic Multilingual Plane (which do not fit a 2-byte CID)
// become U+FFFD.
func normalize(text string) []rune {
	out := make([]rune, 0, len(text))
	for _, r := range text {
		switch {
		case r == '\n':
			out = append(out, r)
		case r == '\t':
			out = append(out, ' ')
		case unicode.IsControl(r):
		case r > 0xFFFF:
			out = append(out, unicode.ReplacementChar)
		default:
			out = append(out, r)
		}
	}
	return out
}

// noLineStart reports whether r must not begin a line (closing punctuation).
func noLineStart(r rune) bool {
	switch r {
	case '。', '，', '、', '；', '：', '！', '？', '）', '」', '』', '》', '〉', '】', '”', '’', '…',
		'.', ',', ';', ':', '!', '?', ')', ']', '}':
		return true
	}
	return false
}

// noLineEnd reports whether r must not end a line (opening punctuation).
func noLineEnd(r rune) bool {
	switch r {
	case '（', '「', '『', '《', '〈', '【', '“', '‘':
		return true
	}
	return false
}

// wrappedLine is one output line of a block: src[start:end] of the
// normalized block text. blank lines have start == end.
type wrappedLine struct {
	start, end int
	blank      bool
}

// unit is an unbreakable piece of a line: a space run, a Latin word, or a
// CJK character with its attached punctuation.
type unit struct {
	start, end int
	width      float64 // in points
	space      bool
	breakable  bool // a Latin word wider than the line may be split anywhere
}

// wrap splits src (normalized runes) into lines no wider than width points
// at the given font size.
func wrap(src []rune, size, width float64, bold bool) []wrappedLine {
	var lines []wrappedLine
	start := 0
	for i := 0; i <= len(src); i++ {
		if i < len(src) && src[i] != '\n' {
			continue
		}
		if i == start {
			lines = append(lines, wrappedLine{start: i, end: i, blank: true})
		} else {
			lines = wrapParagraph(lines, src, start, i, size, width, bold)
		}
		start = i + 1
	}
	return lines
}

func wrapParagraph(lines []wrappedLine, src []rune, from, to int, size, width float64, bold bool) []wrappedLine {
	scale := size / 1000
	units := splitUnits(src, from, to, scale, bold)
	lineStart, lineEnd := -1, -1
	var w, pending float64
	flush := func() {
		if lineStart >= 0 {
			lines = append(lines, wrappedLine{start: lineStart, end: lineEnd})
		}
		lineStart, lineEnd, w, pending = -1, -1, 0, 0
	}
	for _, u := range units {
		if u.space {
			if lineStart >= 0 {
				pending += u.width
			}
			continue
		}
		if lineStart >= 0 && w+pending+u.width > width {
			flush()
		}
		if lineStart < 0 && u.width > width && u.breakable {
			// Break an over-long word at character boundaries.
			for i := u.start; i < u.end; i++ {
				rw := runeWidth(src[i], bold) * scale
				if lineStart >= 0 && w+rw > width {
					flush()
				}
				if lineStart < 0 {
					lineStart = i
				}
				lineEnd = i + 1
				w += rw
			}
			continue
		}
		if lineStart < 0 {
			lineStart = u.start
		}
		w += pending + u.width
		pending = 0
		lineEnd = u.end
	}
	flush()
	return lines
}

func splitUnits(src []rune, from, to int, scale float64, bold bool) []unit {
	var units []unit
	for i := from; i < to; {
		u := unit{start: i}
		switch r := src[i]; {
		case r == ' ':
			for i < to && src[i] == ' ' {
				i++
			}
			u.space = true
		case fontFor(r, bold) == fontCJK:
			i++
		default:
			for i < to && src[i] != ' ' && fontFor(src[i], bold) != fontCJK {
				i++
			}
			u.breakable = true
		}
		for !u.space && i < to && noLineStart(src[i]) {
			i++
		}
		u.end = i
		for j := u.start; j < u.end; j++ {
			u.width += runeWidth(src[j], bold) * scale
		}
		// Keep opening punctuation with the unit that follows it.
		if n := len(units); n > 0 && !u.space && !units[n-1].space && noLineEnd(src[units[n-1].end-1]) {
			units[n-1].end = u.end
			units[n-1].width += u.width
			units[n-1].breakable = units[n-1].breakable && u.breakable
			continue
		}
		units = append(units, u)
	}
	return units
}

// lineHeight returns the distance between baselines for a font size.
func lineHeight(size float64) float64 { return size * LineSpacing }

// linesHeight returns the height of laid-out lines.
func linesHeight(lines []wrappedLine, size float64) float64 {
	var h float64
	for _, l := range lines {
		if l.blank {
			h += lineHeight(size) * ParagraphGap
		} else {
			h += lineHeight(size)
		}
	}
	return h
}

// textWidth returns the width of runes in points.
func textWidth(rs []rune, size float64, bold bool) float64 {
	var w float64
	for _, r := range rs {
		w += runeWidth(r, bold)
	}
	return w * size / 1000
}
