package pdftext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

var errClosed = errors.New("document is closed")

// pdfHeaderWindow is how far into the file the "%PDF-" header may start,
// and how close to the end "%%EOF" must be; readers such as Acrobat accept
// up to 1024 bytes of junk at either end.
const pdfHeaderWindow = 1024

// sniffPDF returns ErrNotPDF unless the file has a PDF header within its
// first pdfHeaderWindow bytes, and ErrCorrupt when it has no %%EOF marker
// within its last pdfHeaderWindow bytes: a truncated upload. MuPDF would
// "repair" such a file and silently return only the pages it still finds.
func sniffPDF(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open pdf: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open pdf: %w", err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("empty file: %w", ErrNotPDF)
	}
	buf := make([]byte, min(st.Size(), pdfHeaderWindow))
	if _, err := io.ReadFull(f, buf); err != nil {
		return fmt.Errorf("read pdf header: %w", err)
	}
	if !bytes.Contains(buf, []byte("%PDF-")) {
		return fmt.Errorf("no %%PDF- header: %w", ErrNotPDF)
	}
	if _, err := f.ReadAt(buf, st.Size()-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read pdf trailer: %w", err)
	}
	if !bytes.Contains(buf, []byte("%%EOF")) {
		return fmt.Errorf("truncated: no %%%%EOF marker at the end: %w", ErrCorrupt)
	}
	return nil
}

// recoverAs turns a panic inside an engine into an error wrapping ErrCorrupt.
// It must be deferred directly.
func recoverAs(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: engine panic: %v: %w", op, r, ErrCorrupt)
	}
}

// checkPage refuses a page of a closed document or out of range.
func checkPage(closed bool, i, pages int) error {
	if closed {
		return fmt.Errorf("page %d: %w", i+1, errClosed)
	}
	if i < 0 || i >= pages {
		return fmt.Errorf("page %d of %d: out of range", i+1, pages)
	}
	return nil
}
