package pdftext

import (
	"errors"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
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

// TestConformanceSASLprepPasswords opens AES-256 (revision 6) files,
// encrypted with the SASLprep form of a password as PDF 2.0 requires,
// with the password as a person types it, on every engine. A file whose
// password was not prepared (mutool does not prepare it) still opens with
// the password as typed.
func TestConformanceSASLprepPasswords(t *testing.T) {
	d := pdfgen.Sample(2)
	plain, _ := confWrite(t, d)
	tests := []struct {
		name, encryptedWith, typed string
		wantErr                    error
	}{
		{"roman numeral", "IV pass", "\u2163 pass", nil},
		{"no-break space", "pass word", "pass\u00A0word", nil},
		{"soft hyphen", "password", "pass\u00ADword", nil},
		{"full-width letters", "pass", "\uFF50\uFF41\uFF53\uFF53", nil},
		{"decomposed accent", "café", "cafe\u0301", nil},
		{"prepared password typed prepared", "IV pass", "IV pass", nil},
		{"unprepared password typed as is", "\u2163 pass", "\u2163 pass", nil},
		{"wrong password", "IV pass", "\u2162 pass", ErrEncrypted},
	}
	for _, tc := range tests {
		path := mutoolEncrypt(t, plain, "aes-256", tc.encryptedWith, "owner-"+tc.name)
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, ne namedEngine) {
				doc, err := ne.eng.Open(path, tc.typed)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if err != nil {
					return
				}
				defer doc.Close()
				checkDoc(t, ne, doc, d)
			})
		})
	}
}
