package pdftext

/*
#include <stdlib.h>
#include "mupdf_shim.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	// go-fitz supplies the MuPDF 1.24.9 static libraries this package links
	// against. Its Go API is not used: it calls MuPDF outside fz_try in
	// places (page count, outline, page bounds), where a damaged PDF makes
	// MuPDF exit the process, and it cannot apply passwords.
	_ "github.com/gen2brain/go-fitz"
)

// FitzEngine opens PDFs with MuPDF, as bundled by go-fitz (cgo; both are
// AGPL-3.0), through a small C shim that runs every MuPDF call inside
// fz_try, so MuPDF errors come back as errors instead of ending the
// process. Each Document has its own MuPDF context, so different documents
// can be used from different goroutines at the same time. MuPDF's own
// warnings are discarded; the errors that matter are returned.
type FitzEngine struct {
	// MaxStore bounds MuPDF's resource cache (fonts, images) per open
	// document, in bytes; 0 means 64 MiB.
	MaxStore int
}

// NewFitzEngine returns a MuPDF engine with default settings.
func NewFitzEngine() *FitzEngine { return &FitzEngine{} }

// pdfHeaderWindow is how far into the file the "%PDF-" header may start,
// and how close to the end "%%EOF" must be; readers such as Acrobat accept
// up to 1024 bytes of junk at either end.
const pdfHeaderWindow = 1024

const (
	defaultMaxStore = 64 << 20
	errBufLen       = 256
)

// Open implements Engine. It checks the PDF header and trailer itself before
// handing the file to MuPDF's PDF handler.
func (e *FitzEngine) Open(path string, password string) (_ Document, err error) {
	defer recoverAs(&err, "open pdf")

	if err := sniffPDF(path); err != nil {
		return nil, err
	}
	maxStore := e.MaxStore
	if maxStore <= 0 {
		maxStore = defaultMaxStore
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cpass := C.CString(password)
	defer C.free(unsafe.Pointer(cpass))
	var (
		ctx   *C.fz_context
		doc   *C.fz_document
		pages C.int
		ebuf  [errBufLen]C.char
	)
	rc := C.pt_open(cpath, cpass, C.size_t(maxStore), &ctx, &doc, &pages, &ebuf[0], errBufLen)
	msg := C.GoString(&ebuf[0])
	switch rc {
	case C.PT_OK:
	case C.PT_ERR_PASSWORD:
		if password == "" {
			return nil, fmt.Errorf("open pdf: password required: %w", ErrEncrypted)
		}
		return nil, fmt.Errorf("open pdf: wrong password: %w", ErrEncrypted)
	case C.PT_ERR_CONTEXT:
		return nil, fmt.Errorf("open pdf: %s", msg)
	default:
		return nil, fmt.Errorf("open pdf: mupdf: %s: %w", msg, ErrCorrupt)
	}
	d := &mupdfDoc{ctx: ctx, doc: doc, pages: int(pages)}
	if d.pages <= 0 {
		d.Close()
		return nil, fmt.Errorf("open pdf: no pages: %w", ErrCorrupt)
	}
	return d, nil
}

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

// recoverAs turns a panic inside go-fitz into an error wrapping ErrCorrupt.
// It must be deferred directly.
func recoverAs(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: engine panic: %v: %w", op, r, ErrCorrupt)
	}
}

// mupdfDoc is a Document backed by the MuPDF shim. The mutex only keeps
// misuse from corrupting MuPDF state; it is not an invitation to share a
// Document between goroutines.
type mupdfDoc struct {
	mu     sync.Mutex
	ctx    *C.fz_context
	doc    *C.fz_document
	pages  int
	closed bool
}

var errClosed = errors.New("document is closed")

func (d *mupdfDoc) NumPages() int { return d.pages }

func (d *mupdfDoc) Outline() (_ []OutlineEntry, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("read outline: %w", errClosed)
	}
	defer recoverAs(&err, "read outline")

	var (
		failed C.int
		ebuf   [errBufLen]C.char
	)
	root := C.pt_load_outline(d.ctx, d.doc, &failed, &ebuf[0], errBufLen)
	if failed != 0 {
		return nil, fmt.Errorf("read outline: mupdf: %s: %w", C.GoString(&ebuf[0]), ErrCorrupt)
	}
	if root == nil {
		return nil, nil
	}
	defer C.pt_drop_outline(d.ctx, root)

	var out []OutlineEntry
	var walk func(o *C.fz_outline, level int)
	walk = func(o *C.fz_outline, level int) {
		for ; o != nil; o = o.next {
			page := int(o.page.page)
			if page < 0 || page >= d.pages || o.page.chapter != 0 {
				page = -1
			}
			out = append(out, OutlineEntry{Level: level, Title: C.GoString(o.title), Page: page, Y: float64(o.y)})
			walk(o.down, level+1)
		}
	}
	walk(root, 1)
	return out, nil
}

func (d *mupdfDoc) PageText(i int) (_ string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", fmt.Errorf("page %d: %w", i+1, errClosed)
	}
	if i < 0 || i >= d.pages {
		return "", fmt.Errorf("page %d of %d: out of range", i+1, d.pages)
	}
	defer recoverAs(&err, fmt.Sprintf("page %d", i+1))

	var ebuf [errBufLen]C.char
	buf := C.pt_page_text(d.ctx, d.doc, C.int(i), &ebuf[0], errBufLen)
	if buf == nil {
		return "", fmt.Errorf("page %d: mupdf: %s: %w", i+1, C.GoString(&ebuf[0]), ErrCorrupt)
	}
	defer C.pt_drop_buffer(d.ctx, buf)
	var data *C.uchar
	n := C.pt_buffer_data(d.ctx, buf, &data)
	if n == 0 || data == nil {
		return "", nil
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(data)), C.int(n)), nil
}

func (d *mupdfDoc) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	C.pt_close(d.ctx, d.doc)
	d.ctx, d.doc = nil, nil
	return nil
}
