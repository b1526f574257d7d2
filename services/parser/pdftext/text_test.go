package pdftext

import (
	"reflect"
	"testing"
)

func TestParagraphs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only whitespace", " \n\t\n\f\n", nil},
		{"lines joined with a space", "First line\nsecond line.\n", []string{"First line second line."}},
		{"blank line splits", "One.\n\nTwo\nlines.\n\n\n", []string{"One.", "Two lines."}},
		{"whitespace collapsed", "  a \t b\u00a0\u00a0c  \n", []string{"a b c"}},
		{"CJK lines joined without space", "这是第一行\n第二行。\n", []string{"这是第一行第二行。"}},
		{"CJK then Latin gets a space", "中文\nEnglish\n", []string{"中文 English"}},
		{"hyphenated word joined", "an exam-\nple of it\n", []string{"an example of it"}},
		{"hyphen of a compound kept", "state-of-\nthe-art\n", []string{"state-of-the-art"}},
		{"hyphen after one letter kept", "an e-\nmail\n", []string{"an e-mail"}},
		{"hyphen after digits kept", "COVID-19-\nrelated\n", []string{"COVID-19-related"}},
		{"ligatures spelled out", "\ufb01nal e\ufb00ort, \ufb02ow\n", []string{"final effort, flow"}},
		{"dash before capital keeps space", "range 1 -\nNext\n", []string{"range 1 - Next"}},
		{"control and zero-width dropped", "a\x00b\u200bc\u00adx\r\nd", []string{"abcx d"}},
		{"CRLF blank line", "a\r\n\r\nb", []string{"a", "b"}},
		{"invalid UTF-8 replaced", "a\xffb", []string{"a\uFFFDb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := paragraphs(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("paragraphs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsSentenceEnd(t *testing.T) {
	tests := []struct {
		text string
		at   int // rune index
		want bool
	}{
		{"Hi. There", 2, true},
		{"Hi.", 2, true},
		{"3.14 is pi", 1, false},
		{"Why? No", 3, true},
		{`He said "stop." Then`, 13, false},
		{`He said "stop." Then`, 14, true},
		{"中文。后面", 2, true},
		{"问题？答案", 2, true},
		{"分号；后面", 2, true},
		{"「引用。」后面", 3, false},
		{"「引用。」后面", 4, true},
		{"word, more", 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			if got := isSentenceEnd([]rune(tc.text), tc.at); got != tc.want {
				t.Errorf("isSentenceEnd(%q, %d) = %v, want %v", tc.text, tc.at, got, tc.want)
			}
		})
	}
}

func TestGarbled(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"", false},
		{"   \n ", false},
		{"plain text", false},
		{"日本語の説明書です。", false},
		{"\uFFFD", true},
		{"\uFFFD\uFFFD\uFFFD ab", true},
		{"\uFFFD\uFFFD abc", false}, // a few odd characters in a readable line
		{"\uE000\uE001\uE002 x", true},
		{"\x01\x02\x03\x04 ok", true},
		{"\xff\xfe\xfd ab", true}, // invalid UTF-8
	}
	for _, tc := range tests {
		if got := garbled(tc.text); got != tc.want {
			t.Errorf("garbled(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
