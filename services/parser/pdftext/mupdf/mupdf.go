//go:build !nomupdf

package mupdf

/*
#include <stdlib.h>
#include "mupdf_shim.h"
*/
import "C"

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	// go-fitz supplies the MuPDF 1.24.9 static libraries this package links
	// against. Its Go API is not used: it calls MuPDF outside fz_try in
	// places (page count, outline, page bounds), where a damaged PDF makes
	// MuPDF exit the process, and it cannot apply passwords.
	_ "github.com/gen2brain/go-fitz"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// Engine opens PDFs with MuPDF, as bundled by go-fitz (cgo; both are
// AGPL-3.0), through a small C shim that runs every MuPDF call inside
// fz_try, so MuPDF errors come back as errors instead of ending the
// process. Each Document has its own MuPDF context, so different
// documents can be used from different goroutines at the same time. MuPDF's own
// warnings are discarded; the errors that matter are returned.
type Engine struct {
	// MaxStore bounds MuPDF's resource cache (fonts, colour spaces) per
	// open document, in bytes; 0 means DefaultMaxStore.
	MaxStore int

	// fullPageTree makes MuPDF build its map of every page on the first
	// page load, as it does by default (tests compare both ways).
	fullPageTree bool

	// memLimit, when not 0, is the most MuPDF may hold per document, in
	// bytes: past it allocations fail (tests run pages out of memory).
	memLimit uint64
}

// Allocator names the allocator behind MuPDF in this build: "malloc", the
// default, or "pool" when built with -tags mupdfpool (see pt_mem.h).
func Allocator() string { return C.GoString(C.pt_allocator()) }

// LimitMallocArenas caps the C library's malloc arenas for the whole
// process (glibc's M_ARENA_MAX; a no-op elsewhere) and reports whether it
// applied. Go runs cgo calls on many OS threads over a process's life, and
// glibc gives threads arenas of their own, so a long-running parser's
// MuPDF memory ends up spread over many half-empty arenas; 2 keeps the
// resident size close to what the documents need. Call it once at start.
func LimitMallocArenas(n int) bool { return C.pt_set_malloc_arenas(C.int(n)) == 1 }

// DefaultEngine is the engine a parser uses unless configured otherwise.
// Build with -tags nomupdf for a binary without MuPDF (AGPL-3.0), whose
// default is PDFium.
const DefaultEngine = "mupdf"

// New returns a MuPDF engine with default settings.
func New() *Engine { return &Engine{} }

const (
	errBufLen = 256
)

// Open implements pdftext.Engine. It hands every non-empty file to
// MuPDF's PDF handler (which repairs what it can); a look at the file's
// start and end names the likely reason when MuPDF cannot open it.
func (e *Engine) Open(path string, password string) (_ pdftext.Document, err error) {
	defer pdftext.RecoverAs(&err, "open pdf")

	sn, err := pdftext.SniffFile(path)
	if err != nil {
		return nil, err
	}
	maxStore := e.MaxStore
	if maxStore <= 0 {
		maxStore = DefaultMaxStore
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var (
		ctx   *C.fz_context
		doc   *C.fz_document
		pages C.int
		ebuf  [errBufLen]C.char
		rc    C.int
	)
	full := C.int(0)
	if e.fullPageTree {
		full = 1
	}
	// The password as given, then its SASLprep form (AES-256 files).
	for _, pw := range pdftext.Passwords(password) {
		cpass := C.CString(pw)
		rc = C.pt_open(cpath, cpass, C.size_t(maxStore), full, &ctx, &doc, &pages, &ebuf[0], errBufLen)
		C.free(unsafe.Pointer(cpass))
		if rc != C.PT_ERR_PASSWORD {
			break
		}
	}
	msg := C.GoString(&ebuf[0])
	switch rc {
	case C.PT_OK:
	case C.PT_ERR_PASSWORD:
		if password == "" {
			return nil, fmt.Errorf("open pdf: password required: %w", pdftext.ErrEncrypted)
		}
		return nil, fmt.Errorf("open pdf: wrong password: %w", pdftext.ErrEncrypted)
	case C.PT_ERR_CONTEXT:
		return nil, fmt.Errorf("open pdf: %s", msg)
	default:
		return nil, fmt.Errorf("open pdf: %w", sn.OpenFailed(fmt.Errorf("mupdf: %s: %w", msg, pdftext.ErrCorrupt)))
	}
	if e.memLimit > 0 {
		C.pt_set_memory_limit(ctx, C.size_t(e.memLimit))
	}
	d := &document{ctx: ctx, doc: doc, pages: int(pages)}
	d.trimmedAt = uint64(C.pt_live_bytes(ctx))
	if d.pages <= 0 {
		d.Close()
		return nil, fmt.Errorf("open pdf: %w", sn.OpenFailed(fmt.Errorf("no pages: %w", pdftext.ErrCorrupt)))
	}
	return d, nil
}

// document is a pdftext.Document backed by the MuPDF shim. The mutex only keeps
// misuse from corrupting MuPDF state; it is not an invitation to share a
// pdftext.Document between goroutines.
type document struct {
	mu     sync.Mutex
	ctx    *C.fz_context
	doc    *C.fz_document
	pages  int
	closed bool

	trimmedAt uint64 // bytes MuPDF held just after the last trim
	box       pdftext.LastPage
}

// PageBox implements pdftext.PageBoxer.
func (d *document) PageBox(i int) (pdftext.Rect, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.box.Box(i)
}

// MuPDF keeps every PDF object it parses until told to forget those
// nothing else uses (pt_trim). Forgetting too often costs time: objects
// come in streams of a hundred or so, and a stream is parsed again for any
// one of them. The reader trims when MuPDF's memory has grown by
// pageTrimBudget since the last trim; resolving the outline's targets
// trims by outlineTrimBudget, as that phase's peak is lower than the
// pages' (a 2,415-page manual, one worker: 4 MiB for pages: 8 trims,
// MuPDF's memory peaks at 9.4 MiB, 3 MiB of it the xref table; 2 MiB: the
// process peaks 2 MiB lower for 2-3 % more CPU time; 1 MiB: no lower,
// 8 % more; link-heavy index pages grow 0.3 MiB each).
const (
	pageTrimBudget    = 2 << 20
	outlineTrimBudget = 4 << 20
)

// maybeTrim trims after a page when the budget is spent.
func (d *document) maybeTrim() {
	if uint64(C.pt_live_bytes(d.ctx)) > d.trimmedAt+pageTrimBudget {
		d.trim(false)
	}
}

// trim lets MuPDF forget the objects nothing uses (pt_trim); with
// giveBack, the pool's emptied pages go back to the system too.
func (d *document) trim(giveBack bool) {
	gb := C.int(0)
	if giveBack {
		gb = 1
	}
	C.pt_trim(d.ctx, d.doc, gb)
	d.trimmedAt = uint64(C.pt_live_bytes(d.ctx))
}

// memory reports the bytes MuPDF holds for d and the size of its pool of
// small blocks (0 unless built with -tags mupdfpool).
func (d *document) memory() (live, pooled uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(C.pt_live_bytes(d.ctx)), uint64(C.pt_pooled_bytes(d.ctx))
}

func (d *document) NumPages() int { return d.pages }

func (d *document) Outline() (_ []pdftext.OutlineEntry, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("read outline: %w", pdftext.ErrClosed)
	}
	defer pdftext.RecoverAs(&err, "read outline")

	var (
		failed C.int
		ebuf   [errBufLen]C.char
	)
	buf := C.pt_outline_records(d.ctx, d.doc, maxOutlineItems, maxOutlineDepth, &failed, &ebuf[0], errBufLen)
	if failed != 0 {
		return nil, fmt.Errorf("read outline: mupdf: %s: %w", C.GoString(&ebuf[0]), pdftext.ErrCorrupt)
	}
	if buf == nil {
		return nil, nil
	}
	defer C.pt_drop_buffer(d.ctx, buf)
	var data *C.uchar
	n := C.pt_buffer_data(d.ctx, buf, &data)
	b := unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n))
	var out []pdftext.OutlineEntry
	var uris []string
	for len(b) >= 8 {
		level := int(int32(binary.NativeEndian.Uint32(b)))
		tl := int(binary.NativeEndian.Uint32(b[4:]))
		if len(b) < 12+tl {
			return nil, fmt.Errorf("read outline: %w", errBadLayout)
		}
		title := string(b[8 : 8+tl])
		b = b[8+tl:]
		ul := int(binary.NativeEndian.Uint32(b))
		if len(b) < 4+ul {
			return nil, fmt.Errorf("read outline: %w", errBadLayout)
		}
		uris = append(uris, string(b[4:4+ul]))
		b = b[4+ul:]
		out = append(out, pdftext.OutlineEntry{Level: level, Title: title, Page: -1})
	}
	// Resolving destinations parses the objects around them; the shim
	// trims as it goes.
	if len(uris) > 0 {
		curis := make([]*C.char, len(uris))
		for i, u := range uris {
			if u != "" {
				curis[i] = C.CString(u)
			}
		}
		// The URI pointers live in C memory, so the array may be passed.
		carr := (**C.char)(C.calloc(C.size_t(len(uris)), C.size_t(unsafe.Sizeof(curis[0]))))
		copy(unsafe.Slice(carr, len(uris)), curis)
		pages := make([]C.int, len(uris))
		ys := make([]C.float, len(uris))
		C.pt_resolve_links(d.ctx, d.doc, C.int(len(uris)), carr, &pages[0], &ys[0], C.size_t(outlineTrimBudget))
		C.free(unsafe.Pointer(carr))
		for _, c := range curis {
			C.free(unsafe.Pointer(c)) // free(NULL) is fine
		}
		for i, p := range pages {
			if p >= 0 && int(p) < d.pages {
				out[i].Page, out[i].Y = int(p), float64(ys[i])
			}
		}
	}
	// Most of what resolving parsed is of no use to the pages: give the
	// pool's emptied pages back too.
	d.trim(true)
	return out, nil
}

// Outline bounds: a deeper or larger outline is cut (a malicious one can
// be cyclic).
const (
	maxOutlineItems = 200000
	maxOutlineDepth = 32
)

func (d *document) PageText(i int) (_ string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := pdftext.CheckPage(d.closed, i, d.pages); err != nil {
		return "", err
	}
	defer pdftext.RecoverAs(&err, fmt.Sprintf("page %d", i+1))

	var (
		oom  C.int
		ebuf [errBufLen]C.char
	)
	buf := C.pt_page_text(d.ctx, d.doc, C.int(i), &oom, &ebuf[0], errBufLen)
	d.maybeTrim()
	if buf == nil {
		return "", pageError(i, oom, &ebuf[0])
	}
	defer C.pt_drop_buffer(d.ctx, buf)
	var data *C.uchar
	n := C.pt_buffer_data(d.ctx, buf, &data)
	if n == 0 || data == nil {
		return "", nil
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(data)), C.int(n)), nil
}

func (d *document) Close() error {
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

// pageError is the error of page i that the shim could not read: out of
// memory when oom is set, else corrupt, with MuPDF's message msg.
func pageError(i int, oom C.int, msg *C.char) error {
	if oom != 0 {
		return fmt.Errorf("page %d: mupdf: %s: %w", i+1, C.GoString(msg), pdftext.ErrOutOfMemory)
	}
	return fmt.Errorf("page %d: mupdf: %s: %w", i+1, C.GoString(msg), pdftext.ErrCorrupt)
}

// stextFlags are the MuPDF structured-text options: ligatures expanded and
// whitespace made plain (both by leaving their PRESERVE flags off), images
// not kept (the device then tells the interpreter not to decode them).
// Text outside the page's media box is left out by the shim
// (pt_serialise), not by MuPDF's FZ_STEXT_MEDIABOX_CLIP, which bounds
// every glyph's outline. No FZ_NO_CACHE hint: fonts and resources stay in
// the store between pages, which is much faster.
const stextFlags = 0

// PageBlocks implements pdftext.StructuredDocument with MuPDF's structured text.
// When ctx ends during the page, MuPDF is told to abort through its cookie
// and the error wraps ctx.Err().
func (d *document) PageBlocks(ctx context.Context, i int) (_ []pdftext.Block, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := pdftext.CheckPage(d.closed, i, d.pages); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("page %d: %w", i+1, err)
	}
	defer pdftext.RecoverAs(&err, fmt.Sprintf("page %d", i+1))

	cookie := (*C.fz_cookie)(C.calloc(1, C.sizeof_fz_cookie))
	if cookie == nil {
		return nil, fmt.Errorf("page %d: out of memory", i+1)
	}
	defer C.free(unsafe.Pointer(cookie))
	aborting := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		atomic.StoreInt32((*int32)(unsafe.Pointer(&cookie.abort)), 1)
		close(aborting)
	})
	var (
		aborted, oom C.int
		ebuf         [errBufLen]C.char
	)
	buf := C.pt_page_layout(d.ctx, d.doc, C.int(i), stextFlags, cookie, &aborted, &oom, &ebuf[0], errBufLen)
	d.maybeTrim()
	if !stop() {
		<-aborting // the abort has been written; the cookie may be freed
	}
	if buf != nil {
		defer C.pt_drop_buffer(d.ctx, buf)
	}
	if aborted != 0 || ctx.Err() != nil {
		return nil, fmt.Errorf("page %d: %w", i+1, context.Cause(ctx))
	}
	if buf == nil {
		return nil, pageError(i, oom, &ebuf[0])
	}
	var data *C.uchar
	n := C.pt_buffer_data(d.ctx, buf, &data)
	if n == 0 || data == nil {
		return nil, nil
	}
	blocks, box, err := decodeLayout(unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n)))
	if err != nil {
		return nil, fmt.Errorf("page %d: %w", i+1, err)
	}
	d.box.Set(i, box)
	return blocks, nil
}

// decodeLayout reads pt_page_layout's records. A first pass checks them
// and counts blocks, lines and text bytes, so that a page costs three
// allocations: its blocks, its lines (each block's Lines a slice of one
// array) and its text (each line's Text a slice of one string). This is
// most of what the Go side allocates per page, and so sets how often the
// collector runs.
func decodeLayout(b []byte) ([]pdftext.Block, pdftext.Rect, error) {
	const rectLen, lineLen = 16, 16 + 4 + 1 + 4
	f32 := func(b []byte) float64 { return float64(math.Float32frombits(binary.NativeEndian.Uint32(b))) }
	rect := func(b []byte) pdftext.Rect {
		return pdftext.Rect{X0: f32(b), Y0: f32(b[4:]), X1: f32(b[8:]), Y1: f32(b[12:])}
	}
	var page pdftext.Rect
	if len(b) >= 1+rectLen && b[0] == C.PT_REC_PAGE {
		page = rect(b[1:])
		b = b[1+rectLen:]
	}
	nb, nl, nt := 0, 0, 0
	for p := b; len(p) > 0; {
		switch p[0] {
		case C.PT_REC_BLOCK:
			if len(p) < 1+rectLen {
				return nil, page, errBadLayout
			}
			nb++
			p = p[1+rectLen:]
		case C.PT_REC_LINE:
			if len(p) < 1+lineLen || nb == 0 {
				return nil, page, errBadLayout
			}
			n := uint64(binary.NativeEndian.Uint32(p[1+21:]))
			if uint64(len(p)-(1+lineLen)) < n {
				return nil, page, errBadLayout
			}
			nl++
			nt += int(n)
			p = p[1+lineLen+int(n):]
		default:
			return nil, page, errBadLayout
		}
	}
	if nb == 0 {
		return nil, page, nil
	}
	blocks := make([]pdftext.Block, 0, nb)
	lines := make([]pdftext.Line, nl)
	// The builder never grows past nt, so the strings taken from it stay
	// valid while more is written.
	var text strings.Builder
	text.Grow(nt)
	first, li := 0, 0 // the current block's first line, the next line
	for len(b) > 0 {
		if b[0] == C.PT_REC_BLOCK {
			blocks = append(blocks, pdftext.Block{BBox: rect(b[1:])})
			first = li
			b = b[1+rectLen:]
			continue
		}
		n := int(binary.NativeEndian.Uint32(b[1+21:]))
		off := text.Len()
		text.Write(b[1+lineLen : 1+lineLen+n])
		lines[li] = pdftext.Line{
			BBox: rect(b[1:]), Size: f32(b[1+16:]), Bold: b[1+20]&C.PT_LINE_BOLD != 0,
			Text: text.String()[off:],
		}
		li++
		blocks[len(blocks)-1].Lines = lines[first:li:li]
		b = b[1+lineLen+n:]
	}
	return blocks, page, nil
}

var errBadLayout = errors.New("malformed layout from the mupdf shim")
