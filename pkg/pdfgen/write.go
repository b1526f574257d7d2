package pdfgen

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"unicode/utf16"
)

// Fixed object numbers; outline items and pages follow.
const (
	objCatalog = iota + 1
	objPages
	objInfo
	objFontRegular
	objFontBold
	objFontCJK
	objCIDFont
	objFontDescriptor
	objToUnicode
	objOutlines
	objFirstFree
)

// Write writes d as a PDF file to w. Pages are laid out and written one at a
// time, so memory use does not grow with the page count (beyond the
// document itself and 8 bytes per object for the xref table). The output is
// a deterministic function of d.
func Write(w io.Writer, d Doc) error {
	if len(d.Pages) == 0 {
		return ErrNoPages
	}
	if d.PageWidth == 0 {
		d.PageWidth = A4Width
	}
	if d.PageHeight == 0 {
		d.PageHeight = A4Height
	}
	if d.PageWidth < 0 || d.PageHeight < 0 || math.IsNaN(d.PageWidth) || math.IsNaN(d.PageHeight) {
		return fmt.Errorf("page size %vx%v: %w", d.PageWidth, d.PageHeight, ErrPageSize)
	}
	outline := flattenOutline(d.Outline, 0)
	for _, it := range outline {
		if it.item.Page < 0 || it.item.Page >= len(d.Pages) {
			return fmt.Errorf("outline item %q page %d of %d: %w", it.item.Title, it.item.Page, len(d.Pages), ErrOutlinePage)
		}
	}
	firstPage := objFirstFree + len(outline)
	pageObj := func(i int) int { return firstPage + 2*i }

	pw := newPDFWriter(w, firstPage+2*len(d.Pages))
	pw.raw("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

	// Catalog, page tree, info, fonts.
	pw.begin(objCatalog)
	if len(outline) > 0 {
		pw.printf("<< /Type /Catalog /Pages %d 0 R /Outlines %d 0 R /PageMode /UseOutlines >>", objPages, objOutlines)
	} else {
		pw.printf("<< /Type /Catalog /Pages %d 0 R >>", objPages)
	}
	pw.end()

	pw.begin(objPages)
	pw.printf("<< /Type /Pages /Count %d /MediaBox [0 0 %s %s]\n/Resources << /ProcSet [/PDF /Text] /Font << /F1 %d 0 R /F2 %d 0 R /F3 %d 0 R >> >>\n/Kids [",
		len(d.Pages), num(d.PageWidth), num(d.PageHeight), objFontRegular, objFontBold, objFontCJK)
	for i := range d.Pages {
		if i > 0 {
			pw.raw(" ")
			if i%16 == 0 {
				pw.raw("\n")
			}
		}
		pw.printf("%d 0 R", pageObj(i))
	}
	pw.raw("] >>")
	pw.end()

	pw.begin(objInfo)
	pw.printf("<< /Title %s /Producer (pdfpipe pdfgen) >>", textString(d.Title))
	pw.end()

	pw.begin(objFontRegular)
	pw.raw("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	pw.end()
	pw.begin(objFontBold)
	pw.raw("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	pw.end()
	pw.begin(objFontCJK)
	pw.printf("<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H /DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>",
		cjkFontName, objCIDFont, objToUnicode)
	pw.end()
	pw.begin(objCIDFont)
	pw.printf("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /DW 1000 /CIDToGIDMap /Identity >>",
		cjkFontName, objFontDescriptor)
	pw.end()
	pw.begin(objFontDescriptor)
	pw.printf("<< /Type /FontDescriptor /FontName /%s /Flags 4 /FontBBox [0 -120 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>", cjkFontName)
	pw.end()

	// Outline.
	if len(outline) > 0 {
		writeOutline(pw, d.Outline, outline, d.PageHeight, pageObj)
	}

	// Pages, one at a time.
	var (
		used    cjkSet
		content bytes.Buffer
		zbuf    bytes.Buffer
		zw      *zlib.Writer
	)
	if d.Compress {
		zw = zlib.NewWriter(&zbuf)
	}
	for i, p := range d.Pages {
		content.Reset()
		renderPage(&content, p, d.PageWidth, d.PageHeight, &used)
		data, filter := content.Bytes(), ""
		if zw != nil {
			zbuf.Reset()
			zw.Reset(&zbuf)
			if _, err := zw.Write(data); err != nil {
				return fmt.Errorf("compress page %d: %w", i, err)
			}
			if err := zw.Close(); err != nil {
				return fmt.Errorf("compress page %d: %w", i, err)
			}
			data, filter = zbuf.Bytes(), " /Filter /FlateDecode"
		}
		pw.begin(pageObj(i) + 1)
		pw.printf("<< /Length %d%s >>\nstream\n", len(data), filter)
		pw.write(data)
		pw.raw("\nendstream")
		pw.end()
		pw.begin(pageObj(i))
		pw.printf("<< /Type /Page /Parent %d 0 R /Contents %d 0 R >>", objPages, pageObj(i)+1)
		pw.end()
		if pw.err != nil {
			return fmt.Errorf("write page %d: %w", i, pw.err)
		}
	}

	// The ToUnicode CMap comes last: only now are all used characters known.
	cmap := toUnicodeCMap(&used)
	pw.begin(objToUnicode)
	pw.printf("<< /Length %d >>\nstream\n", len(cmap))
	pw.write(cmap)
	pw.raw("\nendstream")
	pw.end()

	pw.finish()
	if pw.err != nil {
		return fmt.Errorf("write pdf: %w", pw.err)
	}
	return nil
}

// cjkFontName is the /BaseFont of the (unembedded) CJK font.
const cjkFontName = "PdfgenCJK"

// pdfWriter tracks byte offsets of objects while streaming the file.
type pdfWriter struct {
	bw      *bufio.Writer
	sum     hash.Hash // over everything written, for the trailer /ID
	n       int64
	offsets []int64 // by object number; 0 = not written
	err     error
}

func newPDFWriter(w io.Writer, objects int) *pdfWriter {
	return &pdfWriter{bw: bufio.NewWriterSize(w, 64<<10), sum: md5.New(), offsets: make([]int64, objects)}
}

func (p *pdfWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.bw.Write(b)
	p.sum.Write(b[:n])
	p.n += int64(n)
	p.err = err
}

func (p *pdfWriter) raw(s string) { p.write([]byte(s)) }

func (p *pdfWriter) printf(format string, args ...any) {
	p.write(fmt.Appendf(nil, format, args...))
}

func (p *pdfWriter) begin(obj int) {
	p.offsets[obj] = p.n
	p.printf("%d 0 obj\n", obj)
}

func (p *pdfWriter) end() { p.raw("\nendobj\n") }

// finish writes the xref table and trailer and flushes.
func (p *pdfWriter) finish() { p.finishRoot(objCatalog, objInfo) }

// finishRoot writes the xref table and a trailer naming root and info (0:
// none) and flushes.
func (p *pdfWriter) finishRoot(root, info int) {
	id := fmt.Sprintf("%x", p.sum.Sum(nil))
	xref := p.n
	p.printf("xref\n0 %d\n0000000000 65535 f \n", len(p.offsets))
	for i := 1; i < len(p.offsets); i++ {
		if p.offsets[i] == 0 {
			p.raw("0000000000 65535 f \n") // unused number (no outline)
			continue
		}
		p.printf("%010d 00000 n \n", p.offsets[i])
	}
	infoRef := ""
	if info != 0 {
		infoRef = fmt.Sprintf(" /Info %d 0 R", info)
	}
	p.printf("trailer\n<< /Size %d /Root %d 0 R%s /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n",
		len(p.offsets), root, infoRef, id, id, xref)
	if p.err == nil {
		p.err = p.bw.Flush()
	}
}

// cjkSet records which BMP characters were drawn with the CJK font.
type cjkSet [0x10000 / 64]uint64

func (s *cjkSet) add(r rune)      { s[r>>6] |= 1 << (r & 63) }
func (s *cjkSet) has(r rune) bool { return s[r>>6]&(1<<(r&63)) != 0 }

// toUnicodeCMap returns a ToUnicode CMap mapping each used CID (= code
// point) to its Unicode value.
func toUnicodeCMap(used *cjkSet) []byte {
	var b bytes.Buffer
	b.WriteString("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n" +
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	var chars []rune
	for r := rune(1); r < 0x10000; r++ {
		if used.has(r) {
			chars = append(chars, r)
		}
	}
	for len(chars) > 0 {
		n := min(len(chars), 100) // at most 100 entries per section
		fmt.Fprintf(&b, "%d beginbfchar\n", n)
		for _, r := range chars[:n] {
			fmt.Fprintf(&b, "<%04X> <%04X>\n", r, r)
		}
		b.WriteString("endbfchar\n")
		chars = chars[n:]
	}
	b.WriteString("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend")
	return b.Bytes()
}

// renderPage appends the content stream of p to b.
func renderPage(b *bytes.Buffer, p Page, pageW, pageH float64, used *cjkSet) {
	cursor, placed := Margin, false
	for _, blk := range p.Blocks {
		size := blk.Size
		if size <= 0 {
			size = DefaultSize
		}
		x := blk.X
		if x == 0 {
			x = Margin
		}
		width := blk.Width
		if width <= 0 {
			width = pageW - Margin - x
		}
		y := blk.Y
		if y == 0 {
			y = cursor
			if placed {
				y += lineHeight(size) * ParagraphGap
			}
		}
		src := normalize(blk.Text)
		lines := wrap(src, size, width, blk.Bold)
		top := y
		for _, l := range lines {
			if l.blank {
				top += lineHeight(size) * ParagraphGap
				continue
			}
			baseline := pageH - (top + (lineHeight(size)+0.6*size)/2)
			drawLine(b, src[l.start:l.end], x, baseline, size, blk.Bold, used)
			top += lineHeight(size)
		}
		cursor = max(cursor, top)
		placed = true
	}
}

// drawLine appends a BT/ET text object drawing rs at (x, baseline).
func drawLine(b *bytes.Buffer, rs []rune, x, baseline, size float64, bold bool, used *cjkSet) {
	b.WriteString("BT\n" + num(x) + " " + num(baseline) + " Td\n")
	cur := font(255)
	for i := 0; i < len(rs); {
		f := fontFor(rs[i], bold)
		j := i
		for j < len(rs) && fontFor(rs[j], bold) == f {
			j++
		}
		if f != cur {
			b.WriteString("/F" + strconv.Itoa(int(f)+1) + " " + num(size) + " Tf\n")
			cur = f
		}
		if f == fontCJK {
			b.WriteByte('<')
			for _, r := range rs[i:j] {
				used.add(r)
				const digits = "0123456789ABCDEF"
				b.Write([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
			}
			b.WriteString("> Tj\n")
		} else {
			b.WriteByte('(')
			for _, r := range rs[i:j] {
				c, _ := winAnsiCode(r)
				switch {
				case c == '(' || c == ')' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c >= 0x80:
					b.Write([]byte{'\\', '0' + c>>6, '0' + c>>3&7, '0' + c&7})
				default:
					b.WriteByte(c)
				}
			}
			b.WriteString(") Tj\n")
		}
		i = j
	}
	b.WriteString("ET\n")
}

// num formats a coordinate with at most two decimals.
func num(f float64) string {
	f = math.Round(f*100) / 100
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// textString encodes s as a PDF text string: a literal string when it is
// printable ASCII, otherwise UTF-16BE with a byte order mark.
func textString(s string) string {
	ascii := true
	for _, r := range s {
		if r < 0x20 || r > 0x7E {
			ascii = false
			break
		}
	}
	if ascii {
		var b bytes.Buffer
		b.WriteByte('(')
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == '(' || c == ')' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		b.WriteByte(')')
		return b.String()
	}
	var b bytes.Buffer
	b.WriteString("<FEFF")
	for _, u := range utf16.Encode([]rune(s)) {
		fmt.Fprintf(&b, "%04X", u)
	}
	b.WriteByte('>')
	return b.String()
}

// flatItem is an outline item with its depth, in pre-order.
type flatItem struct {
	item  OutlineItem
	depth int
}

func flattenOutline(items []OutlineItem, depth int) []flatItem {
	var out []flatItem
	for _, it := range items {
		out = append(out, flatItem{item: it, depth: depth})
		out = append(out, flattenOutline(it.Children, depth+1)...)
	}
	return out
}

// countItems returns the number of items in the subtrees of items.
func countItems(items []OutlineItem) int {
	n := len(items)
	for _, it := range items {
		n += countItems(it.Children)
	}
	return n
}

// writeOutline writes the /Outlines dictionary and its items. Object
// numbers are assigned in pre-order starting at objFirstFree, matching
// flattenOutline.
func writeOutline(pw *pdfWriter, roots []OutlineItem, flat []flatItem, pageH float64, pageObj func(int) int) {
	next := objFirstFree
	var walk func(items []OutlineItem, parent int) (first, last int)
	walk = func(items []OutlineItem, parent int) (first, last int) {
		nums := make([]int, len(items))
		for i, it := range items {
			nums[i] = next
			next += 1 + countItems(it.Children)
		}
		for i, it := range items {
			obj := nums[i]
			var kidFirst, kidLast int
			if len(it.Children) > 0 {
				// Children are numbered right after their parent.
				save := next
				next = obj + 1
				kidFirst, kidLast = walk(it.Children, obj)
				next = save
			}
			pw.begin(obj)
			pw.printf("<< /Title %s /Parent %d 0 R", textString(it.Title), parent)
			if i > 0 {
				pw.printf(" /Prev %d 0 R", nums[i-1])
			}
			if i < len(items)-1 {
				pw.printf(" /Next %d 0 R", nums[i+1])
			}
			if kidFirst != 0 {
				pw.printf(" /First %d 0 R /Last %d 0 R /Count %d", kidFirst, kidLast, countItems(it.Children))
			}
			pw.printf(" /Dest [%d 0 R /XYZ 0 %s null] >>", pageObj(it.Page), num(pageH-it.Y))
			pw.end()
		}
		return nums[0], nums[len(nums)-1]
	}
	first, last := walk(roots, objOutlines)
	pw.begin(objOutlines)
	pw.printf("<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>", first, last, len(flat))
	pw.end()
}
