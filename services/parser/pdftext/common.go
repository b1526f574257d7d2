package pdftext

// What engines share: the look at a file before opening it, the classes
// of their errors, page checks, and the recovery from their panics.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// pdfHeaderWindow is how far into the file the "%PDF-" header may start,
// and how close to the end "%%EOF" must be; readers such as Acrobat accept
// up to 1024 bytes of junk at either end.
const pdfHeaderWindow = 1024

// Sniff is what a look at the start and end of a file found: reasons to
// name should the engine fail to open it, never reasons to refuse a file
// the engine opens (MuPDF repairs a file whose last %%EOF is followed by
// padding, or whose startxref is cut off, and reads every page).
type Sniff struct {
	NoEOF bool // no "%%EOF" within the last 1024 bytes
}

// SniffFile reads the start and end of the file, as engines do before
// they open it. It fails for a file that
// cannot be read, and with ErrNotPDF for one that is empty or has no
// "%PDF-" header within its first pdfHeaderWindow bytes (MuPDF would open
// an image or an e-book by its content).
func SniffFile(path string) (Sniff, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sniff{}, fmt.Errorf("open pdf: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Sniff{}, fmt.Errorf("open pdf: %w", err)
	}
	if st.Size() == 0 {
		return Sniff{}, fmt.Errorf("empty file: %w", ErrNotPDF)
	}
	buf := make([]byte, min(st.Size(), pdfHeaderWindow))
	if _, err := io.ReadFull(f, buf); err != nil {
		return Sniff{}, fmt.Errorf("read pdf header: %w", err)
	}
	var s Sniff
	if !bytes.Contains(buf, []byte("%PDF-")) {
		// Not a PDF: MuPDF would open a PNG or an EPUB by its content.
		return Sniff{}, fmt.Errorf("no %%PDF- header: %w", ErrNotPDF)
	}
	if _, err := f.ReadAt(buf, st.Size()-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return Sniff{}, fmt.Errorf("read pdf trailer: %w", err)
	}
	s.NoEOF = !bytes.Contains(buf, []byte("%%EOF"))
	return s, nil
}

// OpenFailed is the error for a file the engine could not open (err,
// wrapping ErrCorrupt), naming what the sniff found: a file without %%EOF
// at the end was probably truncated.
func (s Sniff) OpenFailed(err error) error {
	if s.NoEOF {
		return fmt.Errorf("truncated: no %%%%EOF marker at the end: %w", err)
	}
	return err
}

// engineFilters are stream filters of PDF 2.0 and its extensions that
// neither engine decodes: a file using them opens, but what they encode
// (page contents, object streams holding the page tree) reads as nothing.
var engineFilters = []string{"/BrotliDecode"}

// filterNote returns "the file uses /BrotliDecode, a filter the engine
// cannot decode" when path uses a filter of engineFilters, else "". It
// reads the file in blocks.
func filterNote(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const block = 1 << 20
	longest := 0
	for _, n := range engineFilters {
		longest = max(longest, len(n))
	}
	buf := make([]byte, longest+block)
	found := make(map[string]bool)
	carry := 0
	for {
		n, err := io.ReadFull(f, buf[carry:])
		data := buf[:carry+n]
		for _, name := range engineFilters {
			if !found[name] && bytes.Contains(data, []byte(name)) {
				found[name] = true
			}
		}
		if err != nil {
			break
		}
		carry = copy(buf, data[len(data)-longest:])
	}
	var names []string
	for _, name := range engineFilters {
		if found[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("the file uses %s, a filter the engine cannot decode", strings.Join(names, ", "))
}

// RecoverAs turns a panic inside an engine into an error wrapping ErrCorrupt.
// It must be deferred directly.
func RecoverAs(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: engine panic: %v: %w", op, r, ErrCorrupt)
	}
}

// CheckPage refuses a page of a closed document or out of range.
func CheckPage(closed bool, i, pages int) error {
	if closed {
		return fmt.Errorf("page %d: %w", i+1, ErrClosed)
	}
	if i < 0 || i >= pages {
		return fmt.Errorf("page %d of %d: out of range", i+1, pages)
	}
	return nil
}
