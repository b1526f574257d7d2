package pdftext

// Engine opens PDFs. FitzEngine implements it with MuPDF (go-fitz); another
// engine (for example PDFium) can be added without touching Extract.
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
