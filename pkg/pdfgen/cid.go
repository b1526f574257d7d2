package pdfgen

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// CIDDoc is a document set in one CID-keyed font of an Adobe character
// collection (Adobe-Japan1, -GB1, -CNS1 or -Korea1), not embedded and
// without a ToUnicode CMap: the way pTeX/dvipdfmx and older Asian PDF
// producers write Japanese, Chinese and Korean. A reader can only find the
// text through the collection's CMaps (CID → Unicode), as Acrobat, mutool
// and poppler do.
type CIDDoc struct {
	// Ordering is the collection: "Japan1", "GB1", "CNS1" or "Korea1".
	Ordering string
	// Encoding is the font's CMap: "Identity-H" (codes are CIDs; only the
	// characters of CIDSample's texts can be encoded) or the collection's
	// UCS-2 CMap, "UniJIS-UCS2-H", "UniGB-UCS2-H", "UniCNS-UCS2-H",
	// "UniKS-UCS2-H" (codes are UTF-16 units).
	Encoding string
	// Pages holds the lines of each page, set from the top margin down.
	Pages [][]string
}

// cidFonts are the collections' standard (unembedded) Acrobat fonts.
var cidFonts = map[string]string{
	"Japan1": "Ryumin-Light",
	"GB1":    "STSong-Light",
	"CNS1":   "MSung-Light",
	"Korea1": "HYSMyeongJo-Medium",
}

// cidSamples are a sentence per collection with the CIDs of its characters
// (from the collections' UCS-2 CMaps), for Identity-H documents.
var cidSamples = map[string]struct {
	text string
	cids map[rune]uint16
}{
	"Japan1": {"日本語の説明書です。第一章", map[rune]uint16{
		'。': 635, 'す': 866, 'で': 880, 'の': 887, '一': 1200, '日': 3284, '明': 3788,
		'書': 2427, '本': 3722, '章': 2487, '第': 2888, '語': 1952, '説': 2694}},
	"GB1": {"中文文档说明。第一章", map[rune]uint16{
		'。': 98, '一': 4162, '中': 4559, '文': 3795, '明': 2812, '档': 1430, '章': 4451,
		'第': 1467, '说': 3498}},
	"CNS1": {"中文文件說明。第一章", map[rune]uint16{
		'。': 102, '一': 595, '中': 661, '件': 897, '文': 726, '明': 1532, '章': 3037,
		'第': 2891, '說': 4269}},
	"Korea1": {"한국어 설명서입니다. 제일장", map[rune]uint16{
		' ': 1, '.': 15, '국': 1204, '니': 1508, '다': 1518, '명': 1914, '서': 2226,
		'설': 2232, '어': 2479, '일': 2636, '입': 2641, '장': 2658, '제': 2689, '한': 3296}},
}

// CIDOrderings lists the collections WriteCID supports.
var CIDOrderings = []string{"Japan1", "GB1", "CNS1", "Korea1"}

// CIDUCS2Encoding returns the UCS-2 CMap of a collection ("UniJIS-UCS2-H"
// for "Japan1"), or "" for an unknown one.
func CIDUCS2Encoding(ordering string) string {
	return map[string]string{"Japan1": "UniJIS-UCS2-H", "GB1": "UniGB-UCS2-H",
		"CNS1": "UniCNS-UCS2-H", "Korea1": "UniKS-UCS2-H"}[ordering]
}

// CIDSample returns a short sentence of the collection that WriteCID can
// encode with Identity-H, or "" for an unknown collection.
func CIDSample(ordering string) string { return cidSamples[ordering].text }

// WriteCID writes d as a PDF file to w. It returns ErrCIDFont for an
// unknown collection or encoding, or a character the encoding cannot
// express.
func WriteCID(w io.Writer, d CIDDoc) error {
	if len(d.Pages) == 0 {
		return ErrNoPages
	}
	font, ok := cidFonts[d.Ordering]
	if !ok {
		return fmt.Errorf("collection %q: %w", d.Ordering, ErrCIDFont)
	}
	var code func(r rune) ([]uint16, bool)
	switch d.Encoding {
	case "Identity-H":
		cids := cidSamples[d.Ordering].cids
		code = func(r rune) ([]uint16, bool) { c, ok := cids[r]; return []uint16{c}, ok }
	case CIDUCS2Encoding(d.Ordering):
		code = func(r rune) ([]uint16, bool) { return utf16.Encode([]rune{r}), r < 0x10000 }
	default:
		return fmt.Errorf("encoding %q for %s: %w", d.Encoding, d.Ordering, ErrCIDFont)
	}
	const (
		catalog = iota + 1
		pages
		type0
		cidFont
		descriptor
		firstPage
	)
	pw := newPDFWriter(w, firstPage+2*len(d.Pages))
	pw.raw("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	pw.begin(catalog)
	pw.printf("<< /Type /Catalog /Pages %d 0 R >>", pages)
	pw.end()
	pw.begin(pages)
	pw.printf("<< /Type /Pages /Count %d /MediaBox [0 0 %s %s] /Resources << /Font << /F1 %d 0 R >> >> /Kids [",
		len(d.Pages), num(A4Width), num(A4Height), type0)
	for i := range d.Pages {
		pw.printf(" %d 0 R", firstPage+2*i)
	}
	pw.raw(" ] >>")
	pw.end()
	pw.begin(type0)
	pw.printf("<< /Type /Font /Subtype /Type0 /BaseFont /%s-%s /Encoding /%s /DescendantFonts [%d 0 R] >>",
		font, d.Encoding, d.Encoding, cidFont)
	pw.end()
	pw.begin(cidFont)
	pw.printf("<< /Type /Font /Subtype /CIDFontType0 /BaseFont /%s /CIDSystemInfo << /Registry (Adobe) /Ordering (%s) /Supplement 2 >> /FontDescriptor %d 0 R /DW 1000 >>",
		font, d.Ordering, descriptor)
	pw.end()
	pw.begin(descriptor)
	pw.printf("<< /Type /FontDescriptor /FontName /%s /Flags 6 /FontBBox [-170 -331 1024 903] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>", font)
	pw.end()
	const size = 12.0
	for i, lines := range d.Pages {
		var b strings.Builder
		for j, l := range lines {
			fmt.Fprintf(&b, "BT /F1 %s Tf %s %s Td <", num(size), num(Margin), num(A4Height-Margin-size-float64(j)*lineHeight(size)))
			for _, r := range l {
				units, ok := code(r)
				if !ok {
					return fmt.Errorf("page %d: %q in %s: %w", i, r, d.Encoding, ErrCIDFont)
				}
				for _, u := range units {
					fmt.Fprintf(&b, "%04X", u)
				}
			}
			b.WriteString("> Tj ET\n")
		}
		pw.begin(firstPage + 2*i + 1)
		pw.printf("<< /Length %d >>\nstream\n%s\nendstream", b.Len(), b.String())
		pw.end()
		pw.begin(firstPage + 2*i)
		pw.printf("<< /Type /Page /Parent %d 0 R /Contents %d 0 R >>", pages, firstPage+2*i+1)
		pw.end()
	}
	pw.finishRoot(catalog, 0)
	if pw.err != nil {
		return fmt.Errorf("write pdf: %w", pw.err)
	}
	return nil
}
