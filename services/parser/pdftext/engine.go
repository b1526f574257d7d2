package pdftext

import (
	"context"
	"strings"
)

// Engine opens PDFs. Packages mupdf (MuPDF, through cgo) and pdfium
// (PDFium in WebAssembly) implement it; another engine can be added
// without touching Extract.
//
// Open returns errors wrapping ErrNotPDF, ErrCorrupt or ErrEncrypted, or
// fs.ErrNotExist when path does not exist.
type Engine interface {
	Open(path string, password string) (Document, error)
}

// Document is an open PDF. A Document is not safe for concurrent use: use
// one Document per goroutine (open the file again for parallel work).
type Document interface {
	// NumPages returns the number of pages.
	NumPages() int
	// Outline returns the outline (bookmarks) flattened in document order,
	// with Level starting at 1. A document without an outline returns an
	// empty slice and no error.
	Outline() ([]OutlineEntry, error)
	// PageText returns the text of page i (0-based) as the engine lays it
	// out: lines separated by "\n", blocks (paragraphs) by a blank line.
	PageText(i int) (string, error)
	// Close releases the document. It is safe to call more than once.
	Close() error
}

// OutlineEntry is one flattened outline item.
type OutlineEntry struct {
	Level int     // depth, 1 for top-level entries
	Title string  // title as stored in the PDF
	Page  int     // 0-based target page, -1 when unknown or external
	Y     float64 // vertical target position on the page, in points from the top
}

// StructuredDocument is implemented by Documents that can say where text
// sits on a page and how it is set. Extract discovers it with a type
// assertion and then uses it instead of PageText: positions place chapter
// starts inside a page, sizes and weights find headings, and lines at the
// top and bottom of pages find running headers and footers.
type StructuredDocument interface {
	// PageBlocks returns the text blocks of page i (0-based) in reading
	// order. It stops early, returning an error wrapping ctx.Err(), when
	// ctx ends while the page is being read.
	PageBlocks(ctx context.Context, i int) ([]Block, error)
}

// PageBoxer is implemented by StructuredDocuments that report the bounds
// of a page as PageBlocks read it (same coordinates as the blocks), which
// tells running headers and footers in the page's top and bottom bands
// from body text. ok is false unless page i is the page PageBlocks read
// last.
type PageBoxer interface {
	PageBox(i int) (box Rect, ok bool)
}

// LastPage remembers the bounds of the page a Document read last, for
// its PageBox. The zero value knows no page.
type LastPage struct {
	page int
	box  Rect
	ok   bool
}

// Set records that page i, just read, has bounds box (known when it is
// not empty).
func (l *LastPage) Set(i int, box Rect) { *l = LastPage{page: i, box: box, ok: box.Y1 > box.Y0} }

// Box returns the bounds of page i when i is the page read last.
func (l *LastPage) Box(i int) (Rect, bool) {
	if !l.ok || l.page != i {
		return Rect{}, false
	}
	return l.box, true
}

// Rect is a box on the page in points, origin at the top-left corner, y
// growing downward.
type Rect struct{ X0, Y0, X1, Y1 float64 }

// Block is a group of lines the engine sees as one block of text (usually
// a paragraph or a heading).
type Block struct {
	BBox  Rect
	Lines []Line
}

// Line is one line of text.
type Line struct {
	BBox Rect
	Text string  // as extracted: not normalised
	Size float64 // font size of most of its characters, in points
	Bold bool    // most of its non-space characters are in a bold font
}

// BlocksText is a page's plain text as engines without a text mode of
// their own give it: lines joined by a newline, blocks by a blank line.
func BlocksText(blocks []Block) string {
	var b strings.Builder
	for bi, blk := range blocks {
		if bi > 0 {
			b.WriteString("\n\n")
		}
		for li, l := range blk.Lines {
			if li > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(l.Text)
		}
	}
	return b.String()
}
