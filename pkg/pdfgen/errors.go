package pdfgen

import "errors"

var (
	// ErrNoPages is returned by Write for a Doc without pages.
	ErrNoPages = errors.New("pdfgen: document has no pages")
	// ErrPageSize is returned by Write for a negative page size.
	ErrPageSize = errors.New("pdfgen: invalid page size")
	// ErrOutlinePage is returned by Write when an outline item targets a
	// page that does not exist.
	ErrOutlinePage = errors.New("pdfgen: outline item targets a missing page")
)

// ErrCIDFont is returned by WriteCID for an unknown collection or
// encoding, or a character its encoding cannot express.
var ErrCIDFont = errors.New("pdfgen: cannot set text in this CID font")
