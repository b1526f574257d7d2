package pdftexttest

import (
	"bytes"
	"crypto/md5"
	"crypto/rc4"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// WritePDF writes d with pdfgen into a file in a temporary directory of
// t and returns its path and bytes.
func WritePDF(t testing.TB, d pdfgen.Doc) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, d); err != nil {
		t.Fatalf("pdfgen.Write: %v", err)
	}
	return WriteFile(t, "doc.pdf", buf.Bytes()), buf.Bytes()
}

// WriteFile writes b into a file name in a temporary directory of t and
// returns its path.
func WriteFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// RawPDF writes objects 1..len(objs) (object 1 the catalog) with a
// correct xref table; trailer is added to the trailer dictionary.
func RawPDF(objs []string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, xref)
	return b.Bytes()
}

// EncryptedPDF returns a one-page PDF (without content) encrypted with
// the Standard security handler, revision 2 (RC4, 40 bits), user password
// "secret", owner password "owner".
func EncryptedPDF() []byte { return EncryptedTextPDF("secret", "owner", "") }

// EncryptedTextPDF returns a one-page PDF encrypted with the Standard
// security handler, revision 2 (RC4, 40 bits; PDF 1.7 spec, algorithms 1
// to 4), with the given passwords and, unless text is empty, a content
// stream showing text in Helvetica.
func EncryptedTextPDF(user, owner, text string) []byte {
	pad := func(pw string) []byte {
		padding := []byte("\x28\xbf\x4e\x5e\x4e\x75\x8a\x41\x64\x00\x4e\x56\xff\xfa\x01\x08" +
			"\x2e\x2e\x00\xb6\xd0\x68\x3e\x80\x2f\x0c\xa9\xfe\x64\x53\x69\x7a")
		return append([]byte(pw), padding...)[:32]
	}
	rc4x := func(key, data []byte) []byte {
		c, err := rc4.NewCipher(key)
		if err != nil {
			panic(err)
		}
		out := make([]byte, len(data))
		c.XORKeyStream(out, data)
		return out
	}
	const perms = -4
	id := bytes.Repeat([]byte{0xab}, 16)
	ownerKey := md5.Sum(pad(owner))
	o := rc4x(ownerKey[:5], pad(user))
	h := md5.New()
	h.Write(pad(user))
	h.Write(o)
	h.Write([]byte{byte(perms & 0xff), byte(perms >> 8 & 0xff), byte(perms >> 16 & 0xff), byte(perms >> 24 & 0xff)})
	h.Write(id)
	fileKey := h.Sum(nil)[:5]
	u := rc4x(fileKey, pad(""))

	page := "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		page,
		fmt.Sprintf("<< /Filter /Standard /V 1 /R 2 /Length 40 /P %d /O <%x> /U <%x> >>", perms, o, u),
	}
	if text != "" {
		objs[2] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 5 0 R /Resources << /Font << /F1 6 0 R >> >> >>"
		content := []byte("BT /F1 10 Tf 10 100 Td (" + text + ") Tj ET")
		objKey := md5.Sum(append(append([]byte(nil), fileKey...), 5, 0, 0, 0, 0)) // object 5, generation 0
		enc := rc4x(objKey[:10], content)
		objs = append(objs,
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(enc), enc),
			"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	}
	return RawPDF(objs, fmt.Sprintf("/Encrypt 4 0 R /ID [<%x> <%x>]", id, id))
}

// IsCJK reports whether r is CJK text or punctuation, where Norm drops
// spaces.
func IsCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF) || r == '“' || r == '”' || r == '…'
}

// Norm collapses whitespace runs to one space and drops the spaces next
// to CJK characters, where line breaks fall inside Chinese text: text as
// engines read it compares with text as pdfgen drew it.
func Norm(s string) string {
	rs := []rune(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for i, r := range rs {
		if r == ' ' && ((i > 0 && IsCJK(rs[i-1])) || (i+1 < len(rs) && IsCJK(rs[i+1]))) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
