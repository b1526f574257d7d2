package pdftext

import "errors"

// Sentinel errors. Every error returned by Extract, Probe and the engines
// wraps at most one of them; callers match with errors.Is.
var (
	// ErrEncrypted means the document is encrypted and the password is
	// missing, wrong, or cannot be applied by the engine.
	ErrEncrypted = errors.New("pdf is encrypted")
	// ErrNotPDF means the file is empty or is not a PDF at all.
	ErrNotPDF = errors.New("not a pdf")
	// ErrCorrupt means the file looks like a PDF but the engine cannot
	// open or read it.
	ErrCorrupt = errors.New("pdf is corrupt")
	// ErrTooManyPages means the document has more pages than Options.MaxPages.
	ErrTooManyPages = errors.New("pdf has too many pages")
	// ErrNoText means no page of the document has any extractable text
	// (for example a scan without a text layer).
	ErrNoText = errors.New("pdf has no extractable text")
	// ErrUnreadable means pages have text but none of it can be read: each
	// page's text is mostly U+FFFD, private-use or control characters (fonts
	// without a Unicode mapping), so there is nothing worth embedding.
	ErrUnreadable = errors.New("pdf text is unreadable")
	// ErrTimeout means the document took longer than Options.DocTimeout,
	// or every page with content took longer than Options.PageTimeout.
	ErrTimeout = errors.New("pdf takes too long to parse")
)

// ErrClosed is the error of a call on a closed Document.
var ErrClosed = errors.New("document is closed")

// ErrOutOfMemory is what an engine's page call wraps when the engine ran
// out of memory on the page (an allocation was refused), so what it read
// of the page is not the whole page. Extract skips such a page and counts
// it in Info.SkippedPages.
var ErrOutOfMemory = errors.New("out of memory")
