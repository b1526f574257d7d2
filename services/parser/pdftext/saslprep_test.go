package pdftext

import (
	"testing"
)

func TestSASLprep(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		// RFC 4013 section 3's examples.
		{"I\u00ADX", "IX", true},
		{"user", "user", true},
		{"USER", "USER", true},
		{"\u00AA", "a", true},
		{"\u2168", "IX", true},
		{"\u0007", "", false},
		{"\u0627\u0031", "", false},
		// Spaces, width, joiners.
		{"pass\u00A0word", "pass word", true},
		{"\uFF50\uFF41\uFF53\uFF53", "pass", true},
		{"caf\u0065\u0301", "café", true},
		{"a\u200Db", "ab", true},
		{"\uE000", "", false},
		{"\u05D0\u05D1", "\u05D0\u05D1", true},
	}
	for _, tc := range tests {
		got, ok := saslprep(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("saslprep(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
