package source

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// pdfMagic is the PDF header. The spec lets it start anywhere in the first
// 1024 bytes (readers tolerate leading junk).
var pdfMagic = []byte("%PDF-")

// sniffLen is how much of the stream is read to look for pdfMagic: enough for
// a header starting at byte 1023.
const sniffLen = 1024 + 4

// guardedBody wraps a source body. It checks the PDF header on the first
// Read (buffering at most sniffLen bytes), fails with ErrTooLarge as soon as
// more than max bytes arrive whatever the server declared, and maps read
// errors through mapErr. Errors are sticky.
type guardedBody struct {
	src         io.ReadCloser
	max         int64
	name        string // redacted URL, for messages
	contentType string
	mapErr      func(error) error // classifies errors from src.Read (not io.EOF)
	onClose     func()

	read    int64  // bytes taken from src
	head    []byte // sniffed bytes not yet handed out
	sniffed bool
	srcEOF  bool
	err     error

	closeOnce sync.Once
	closeErr  error
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if !b.sniffed {
		b.sniffed = true
		if err := b.sniff(); err != nil {
			b.err = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if b.srcEOF {
		return 0, io.EOF
	}
	n, err := b.readSrc(p)
	if err != nil {
		if err == io.EOF {
			b.srcEOF = true
		} else {
			b.err = err
		}
	}
	return n, err
}

// readSrc reads from src into p, at most one byte past the limit, and turns
// that byte into ErrTooLarge (the excess is never handed out).
func (b *guardedBody) readSrc(p []byte) (int, error) {
	if room := b.max - b.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.src.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		return 0, fmt.Errorf("read %s: more than the %s limit arrived: %w",
			b.name, humanBytes(b.max), ErrTooLarge)
	}
	if err != nil && err != io.EOF {
		return n, b.mapErr(err)
	}
	return n, err
}

// sniff fills head with up to sniffLen bytes and checks for the PDF header.
func (b *guardedBody) sniff() error {
	buf := make([]byte, sniffLen)
	n := 0
	for n < len(buf) {
		m, err := b.readSrc(buf[n:])
		n += m
		if err == io.EOF {
			b.srcEOF = true
			break
		}
		if err != nil {
			return err
		}
	}
	buf = buf[:n]
	if n == 0 {
		return fmt.Errorf("read %s: 0 bytes: %w", b.name, ErrEmpty)
	}
	if !bytes.Contains(buf, pdfMagic) {
		return fmt.Errorf("read %s: no %%PDF- header in the first 1024 bytes (%s): %w",
			b.name, describe(buf, b.contentType), ErrNotPDF)
	}
	b.head = buf
	return nil
}

// Close closes the source body and releases the request. It is safe to call
// more than once; reads after Close fail.
func (b *guardedBody) Close() error {
	b.closeOnce.Do(func() {
		b.closeErr = b.src.Close()
		if b.onClose != nil {
			b.onClose()
		}
	})
	return b.closeErr
}

// describe says what the bytes look like instead, so a person can tell an
// HTML login page or an XML error from a corrupt file.
func describe(head []byte, contentType string) string {
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	kind := "unknown content"
	switch {
	case len(trimmed) > 0 && trimmed[0] == '<':
		if bytes.HasPrefix(trimmed, []byte("<?xml")) {
			kind = "looks like XML"
		} else {
			kind = "looks like HTML"
		}
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		kind = "looks like JSON"
	}
	if contentType != "" {
		kind += ", content-type " + contentType
	}
	return fmt.Sprintf("%s, %d bytes", kind, len(head))
}

// humanBytes formats n as B, KiB or MiB for error messages.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
