// Package pdfgen writes simple, deterministic PDF files from plain text
// blocks. It exists so that pdfpipe can ship its own test fixtures and demo
// documents without third-party dependencies.
//
// Latin text is set in the standard 14 fonts Helvetica and Helvetica-Bold
// with WinAnsiEncoding. Every other character (Chinese, Japanese, symbols
// outside WinAnsi) is set in an unembedded Type0 font with Identity-H
// encoding whose CIDs are the Unicode code points, plus a ToUnicode CMap, so
// text extraction (MuPDF, poppler) returns the exact Unicode text even though
// the glyphs may render with a substitute font.
package pdfgen

// Default page geometry and typography, in PDF points (1/72 inch).
const (
	// A4Width and A4Height are the default page size.
	A4Width  = 595.0
	A4Height = 842.0
	// Margin is the page margin on every side used for default block
	// positions and widths.
	Margin = 56.0
	// DefaultSize is the font size used when Block.Size is zero.
	DefaultSize = 11.0
	// LineSpacing is the line height as a multiple of the font size.
	LineSpacing = 1.4
	// ParagraphGap is the extra vertical space, as a multiple of the line
	// height, that a blank line inside Block.Text and the gap between two
	// flow-layout blocks take.
	ParagraphGap = 0.6
)

// Doc is a document to write. Pages must not be empty.
type Doc struct {
	// Title goes into the /Info dictionary (it is not drawn on any page).
	Title string
	// Pages are written in order.
	Pages []Page
	// Outline is the document outline (bookmarks). When empty, the file has
	// no /Outlines dictionary.
	Outline []OutlineItem
	// PageWidth and PageHeight set the /MediaBox of every page; zero means
	// A4 (595x842).
	PageWidth, PageHeight float64
	// Compress Flate-encodes the page content streams. Output stays
	// deterministic either way.
	Compress bool
}

// Page is one page of text blocks.
type Page struct {
	Blocks []Block
}

// Block is a piece of text laid out as lines wrapped to a width.
type Block struct {
	// Text may mix Latin and CJK. Each '\n' starts a new line; an empty
	// line adds a paragraph gap. Lines are wrapped at spaces and between
	// CJK characters; a word wider than the block is broken anywhere.
	Text string
	// Size is the font size in points; zero means DefaultSize.
	Size float64
	// Bold selects Helvetica-Bold for Latin text.
	Bold bool
	// X and Y place the top-left corner of the block, in points from the
	// top-left of the page (Y grows downward). X == 0 means the left
	// margin; Y == 0 means flow layout: the block starts below the lowest
	// block placed so far on the page (plus a paragraph gap), or at the top
	// margin for the first block.
	X, Y float64
	// Width is the wrap width; zero means up to the right margin.
	Width float64
}

// OutlineItem is one outline (bookmark) entry. All items are written open.
type OutlineItem struct {
	Title string
	// Page is the 0-based target page index.
	Page int
	// Y is the target position in points from the top of the page.
	Y        float64
	Children []OutlineItem
}
