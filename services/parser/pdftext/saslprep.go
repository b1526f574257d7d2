package pdftext

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// saslprep prepares a password as PDF 2.0 requires for AES-256 (revision
// 6) encryption: the SASLprep profile of stringprep (RFC 4013, tables of
// RFC 3454). Non-ASCII spaces become U+0020, characters "commonly mapped
// to nothing" (soft hyphen, zero-width joiners, variation selectors, BOM)
// are removed, the result is NFKC-normalised ("Ⅳ" → "IV", full-width
// "ｐａｓｓ" → "pass"). ok is false when the result holds a character
// SASLprep prohibits (controls, private use, non-characters, surrogates,
// bidi and tagging controls) or breaks its bidi rule: no conforming tool
// would have encrypted with it.
func saslprep(s string) (_ string, ok bool) {
	mapped := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case mappedToNothing(r):
			continue
		case nonASCIISpace(r):
			r = ' '
		}
		mapped = append(mapped, r)
	}
	out := norm.NFKC.String(string(mapped))
	var randAL, l bool
	for _, r := range out {
		if r == utf8.RuneError || prohibited(r) {
			return "", false
		}
		randAL = randAL || unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko)
		l = l || unicode.IsLetter(r) && !unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko)
	}
	if randAL {
		// RFC 3454 section 6: no left-to-right characters, and the
		// string starts and ends with a right-to-left one.
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		rtl := func(r rune) bool {
			return unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko)
		}
		if l || !rtl(first) || !rtl(last) {
			return "", false
		}
	}
	return out, true
}

// mappedToNothing is RFC 3454 table B.1.
func mappedToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x1806, r >= 0x180B && r <= 0x180D,
		r >= 0x200B && r <= 0x200D, r == 0x2060, r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF:
		return true
	}
	return false
}

// nonASCIISpace is RFC 3454 table C.1.2.
func nonASCIISpace(r rune) bool {
	switch {
	case r == 0x00A0, r == 0x1680, r >= 0x2000 && r <= 0x200B, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// prohibited is RFC 4013's prohibited output: RFC 3454 tables C.1.2 and
// C.2.1 to C.9.
func prohibited(r rune) bool {
	switch {
	case nonASCIISpace(r),
		r < 0x20, r == 0x7F, r >= 0x80 && r <= 0x9F, // C.2.1, C.2.2
		r == 0x06DD, r == 0x070F, r == 0x180E, r == 0x200C, r == 0x200D, r == 0x2028, r == 0x2029,
		r >= 0x2060 && r <= 0x2063, r >= 0x206A && r <= 0x206F, r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFD,
		r >= 0x1D173 && r <= 0x1D17A,
		unicode.Is(unicode.Co, r),                      // C.3 private use
		r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE, // C.4 non-characters
		r >= 0xD800 && r <= 0xDFFF,                                                     // C.5 surrogates
		r >= 0x2FF0 && r <= 0x2FFB,                                                     // C.7 ideographic description
		r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, // C.8
		r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9 tagging
		return true
	}
	return false
}

// Passwords returns the password as given and, when it differs, its
// SASLprep form: AES-256 (revision 6) files are encrypted with the
// prepared password, older revisions with the bytes as typed, and the
// engine knows which one applies only by trying.
func Passwords(password string) []string {
	if p, ok := saslprep(password); ok && p != password {
		return []string{password, p}
	}
	return []string{password}
}
