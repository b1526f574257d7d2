package conformance

import (
	"errors"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// TestSASLprepPasswords opens AES-256 (revision 6) files,
// encrypted with the SASLprep form of a password as PDF 2.0 requires,
// with the password as a person types it, on every engine. A file whose
// password was not prepared (mutool does not prepare it) still opens with
// the password as typed.
func TestSASLprepPasswords(t *testing.T) {
	d := pdfgen.Sample(2)
	plain, _ := pdftexttest.WritePDF(t, d)
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
		{"wrong password", "IV pass", "\u2162 pass", pdftext.ErrEncrypted},
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
