// Package pdfium is a pdftext engine built on PDFium compiled to
// WebAssembly and run by the pure-Go wazero runtime (no cgo, no AGPL
// code): the engine of a parser built without MuPDF (-tags nomupdf), and
// PDF_ENGINE=pdfium in any build.
package pdfium

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	gopdfium "github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	wazeroexp "github.com/tetratelabs/wazero/experimental"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// Defaults for Config fields left zero.
const (
	DefaultInstances   = 4
	DefaultOpenTimeout = time.Minute
	DefaultCallTimeout = time.Minute
)

// Config configures a Engine. The zero value uses the defaults.
type Config struct {
	// MaxInstances bounds the PDFium WebAssembly instances alive at once.
	// Every open pdftext.Document holds one (with its own linear memory, which
	// only grows while the document is open), so it is also the number of
	// documents open at once; 0 means DefaultInstances.
	MaxInstances int
	// OpenTimeout is how long Open waits for a free instance when
	// MaxInstances documents are open already; 0 means
	// DefaultOpenTimeout.
	OpenTimeout time.Duration
	// CallTimeout bounds one PDFium call (open, outline, one page): past
	// it the call fails with pdftext.ErrCorrupt and the document is reopened on a
	// fresh instance for the next call; 0 means DefaultCallTimeout.
	// WebAssembly code cannot be stopped from outside without slowing
	// every call threefold (wazero's CloseOnContextDone), so the stuck
	// instance is abandoned: it keeps its memory, a slot of MaxInstances
	// and a CPU until PDFium returns, and is closed then.
	CallTimeout time.Duration
	// CacheDir, when set, keeps the compiled module on disk (wazero's
	// compilation cache) so that a restart skips compiling it again. The
	// directory is created if needed and must not be writable by anyone
	// untrusted: its contents are executed.
	CacheDir string
}

// Engine opens PDFs with PDFium compiled to WebAssembly, run by the
// pure-Go wazero runtime through go-pdfium (no cgo; PDFium is
// BSD-3-Clause, go-pdfium MIT, wazero Apache-2.0: no AGPL code). Each
// open Document owns one sandboxed PDFium instance that sees no file
// system: the file is streamed to it through a reader. A PDFium crash, or a call
// that runs past CallTimeout or its context, ends that instance only.
//
// The module is compiled on Init or the first Open (seconds; see
// CacheDir). The engine is safe for concurrent use; Close releases it.
type Engine struct {
	cfg Config

	mu     sync.Mutex
	pool   gopdfium.Pool
	cache  wazero.CompilationCache // nil without CacheDir
	err    error                   // the start-up error, returned by every later Open
	closed bool
	calls  sync.WaitGroup // PDFium calls running, abandoned ones included
}

// New returns a PDFium engine. It does no work until Init or the first
// Open.
func New(cfg Config) *Engine {
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = DefaultInstances
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	return &Engine{cfg: cfg}
}

var (
	errEngineClosed = errors.New("pdfium engine is closed")
	errKilled       = errors.New("pdfium instance was stopped")
)

// Init compiles the PDFium module if that was not done yet. It returns
// the error every Open would return if that failed.
func (e *Engine) Init() error {
	_, err := e.getPool()
	return err
}

func (e *Engine) getPool() (gopdfium.Pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errEngineClosed
	}
	if e.pool != nil || e.err != nil {
		return e.pool, e.err
	}
	// The bundled PDFium lowers setjmp/longjmp to exception handling.
	rc := wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2 | wazeroexp.CoreFeaturesExceptionHandling)
	if e.cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(e.cfg.CacheDir)
		if err != nil {
			e.err = fmt.Errorf("start pdfium: compilation cache: %w", err)
			return nil, e.err
		}
		e.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	pool, err := webassembly.Init(webassembly.Config{
		// Compile with up to four goroutines: the module is large.
		Context:       wazeroexp.WithCompilationWorkers(context.Background(), max(1, min(4, runtime.NumCPU()))),
		MaxTotal:      e.cfg.MaxInstances,
		RuntimeConfig: rc,
		// No mounts: PDFium reads the document through a reader only.
		FSConfig: wazero.NewFSConfig(),
		Stdout:   io.Discard,
		Stderr:   io.Discard,
	})
	if err != nil {
		e.err = fmt.Errorf("start pdfium: %w", err)
		return nil, e.err
	}
	e.pool = pool
	return pool, nil
}

// closeWait is how long Close waits for PDFium calls still running.
const closeWait = 5 * time.Second

// Close releases the WebAssembly runtime and every instance, which ends
// the documents still open: their calls fail. Later Opens fail too. It
// waits up to five seconds for calls still running (abandoned ones
// included); if some still run then, it leaves the runtime to the
// garbage collector rather than free code they execute. It is safe to
// call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()

	idle := make(chan struct{})
	go func() {
		e.calls.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-time.After(closeWait):
		return fmt.Errorf("close pdfium: calls still running after %v: runtime left open", closeWait)
	}
	var errs []error
	if e.pool != nil {
		errs = append(errs, e.pool.Close())
	}
	if e.cache != nil {
		errs = append(errs, e.cache.Close(context.Background()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close pdfium: %w", err)
	}
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Open implements pdftext.Engine.
func (e *Engine) Open(path string, password string) (_ pdftext.Document, err error) {
	defer pdftext.RecoverAs(&err, "open pdf")

	sn, err := pdftext.SniffFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := e.getPool(); err != nil {
		return nil, fmt.Errorf("open pdf: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pdf: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open pdf: %w", err)
	}
	d := &document{eng: e, file: f, size: st.Size(), password: password, timeout: e.cfg.CallTimeout}
	// The password as given, then its SASLprep form (AES-256 files); the
	// one that opens is kept for reopening.
	pws := pdftext.Passwords(password)
	for i, pw := range pws {
		d.password = pw
		if err = d.open(context.Background()); !errors.Is(err, pdftext.ErrEncrypted) || i == len(pws)-1 {
			break
		}
	}
	if err != nil {
		d.Close()
		if errors.Is(err, pdftext.ErrCorrupt) {
			err = sn.OpenFailed(err)
		}
		return nil, err
	}
	d.pages = d.s.pages
	if d.pages <= 0 {
		d.Close()
		return nil, fmt.Errorf("open pdf: %w", sn.OpenFailed(fmt.Errorf("no pages: %w", pdftext.ErrCorrupt)))
	}
	return d, nil
}

// document is a pdftext.Document backed by one PDFium instance. It implements
// pdftext.StructuredDocument. The mutex only keeps misuse from corrupting state.
type document struct {
	mu       sync.Mutex
	eng      *Engine
	file     *os.File
	size     int64
	password string
	timeout  time.Duration
	pages    int

	s      *session // nil after an abandoned call, until reopened
	closed bool
	box    pdftext.LastPage // of the page PageBlocks read last
}

// session is the document open in one instance. A call gets its
// own pointer, so an abandoned call never sees the next session.
type session struct {
	inst  gopdfium.Pdfium
	doc   references.FPDF_DOCUMENT
	pages int
}

// open gets an instance and opens the document in it as d.s.
func (d *document) open(ctx context.Context) error {
	pool, err := d.eng.getPool()
	if err != nil {
		return fmt.Errorf("open pdf: %w", err)
	}
	inst, err := pool.GetInstance(d.eng.cfg.OpenTimeout)
	if err != nil {
		return fmt.Errorf("open pdf: pdfium instance: %w", err)
	}
	// A reader of its own: an abandoned session may still be reading.
	req := &requests.OpenDocument{FileReader: io.NewSectionReader(d.file, 0, d.size), FileReaderSize: d.size}
	if d.password != "" {
		req.Password = &d.password
	}
	s := &session{inst: inst}
	err = d.run(ctx, s, func(s *session) error {
		res, err := s.inst.OpenDocument(req)
		if err != nil {
			return err
		}
		s.doc = res.Document
		n, err := s.inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: s.doc})
		if err != nil {
			return err
		}
		s.pages = n.PageCount
		return nil
	})
	if err == nil {
		d.s = s
		return nil
	}
	if !errors.Is(err, errAbandoned) {
		s.inst.Close()
	}
	switch {
	case errors.Is(err, pdfiumerrors.ErrPassword):
		if d.password == "" {
			return fmt.Errorf("open pdf: password required: %w", pdftext.ErrEncrypted)
		}
		return fmt.Errorf("open pdf: wrong password: %w", pdftext.ErrEncrypted)
	case errors.Is(err, pdfiumerrors.ErrSecurity):
		return fmt.Errorf("open pdf: unsupported encryption: %w", pdftext.ErrEncrypted)
	}
	return classify("open pdf", err)
}

// errAbandoned marks the errors of calls left running.
var errAbandoned = errors.New("pdfium call abandoned")

// call runs f on the open session, reopening the document first if an
// earlier call was abandoned.
func (d *document) call(ctx context.Context, f func(s *session) error) error {
	if d.s == nil {
		if err := d.open(ctx); err != nil {
			return fmt.Errorf("reopen after an abandoned call: %w", err)
		}
	}
	err := d.run(ctx, d.s, f)
	if errors.Is(err, errAbandoned) {
		d.s = nil
	}
	return err
}

// run runs f on s in a goroutine. When f takes longer than d.timeout, or
// ctx ends first, run returns an error wrapping errAbandoned and
// pdftext.ErrCorrupt or ctx's cause, and leaves f running; s's instance is closed
// when f returns.
func (d *document) run(ctx context.Context, s *session, f func(s *session) error) error {
	e := d.eng
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errEngineClosed
	}
	e.calls.Add(1)
	e.mu.Unlock()
	if err := ctx.Err(); err != nil {
		e.calls.Done()
		return context.Cause(ctx)
	}

	var (
		mu       sync.Mutex
		finished bool // f returned
		left     bool // run returned without waiting for f
	)
	done := make(chan error, 1)
	go func() {
		defer e.calls.Done()
		var err error
		func() {
			defer pdftext.RecoverAs(&err, "pdfium")
			err = f(s)
		}()
		mu.Lock()
		finished = true
		abandoned := left
		mu.Unlock()
		done <- err
		if abandoned {
			s.inst.Close()
		}
	}()
	timer := time.NewTimer(d.timeout)
	defer timer.Stop()
	var cause error
	select {
	case err := <-done:
		return err
	case <-timer.C:
		cause = fmt.Errorf("pdfium call took more than %v: %w", d.timeout, pdftext.ErrCorrupt)
	case <-ctx.Done():
		cause = context.Cause(ctx)
	}
	mu.Lock()
	defer mu.Unlock()
	if finished { // just in time
		return <-done
	}
	left = true
	return fmt.Errorf("%w: %w", errAbandoned, cause)
}

// classify wraps an error of call as pdftext.ErrCorrupt, unless it already has
// its class or comes from a context or the engine's end, which say
// nothing about the document.
func classify(op string, err error) error {
	for _, keep := range []error{errEngineClosed, pdftext.ErrCorrupt, pdftext.ErrEncrypted, context.Canceled, context.DeadlineExceeded, pdftext.ErrTimeout} {
		if errors.Is(err, keep) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return fmt.Errorf("%s: pdfium: %v: %w", op, err, pdftext.ErrCorrupt)
}

func (d *document) NumPages() int { return d.pages }

// Outline bounds: PDFium does not detect cycles among outline items.
const (
	maxOutlineEntries = 200000
	maxOutlineDepth   = 32
)

func (d *document) Outline() (_ []pdftext.OutlineEntry, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("read outline: %w", pdftext.ErrClosed)
	}
	defer pdftext.RecoverAs(&err, "read outline")

	var out []pdftext.OutlineEntry
	err = d.call(context.Background(), func(s *session) error {
		out = out[:0]
		tops := map[int]float64{}
		var walk func(parent *references.FPDF_BOOKMARK, level int) error
		walk = func(parent *references.FPDF_BOOKMARK, level int) error {
			if level > maxOutlineDepth {
				return nil
			}
			first, err := s.inst.FPDFBookmark_GetFirstChild(&requests.FPDFBookmark_GetFirstChild{Document: s.doc, Bookmark: parent})
			if err != nil {
				return err
			}
			for bm := first.Bookmark; bm != nil && len(out) < maxOutlineEntries; {
				e, err := s.outlineEntry(*bm, level, tops)
				if err != nil {
					return err
				}
				out = append(out, e)
				if err := walk(bm, level+1); err != nil {
					return err
				}
				next, err := s.inst.FPDFBookmark_GetNextSibling(&requests.FPDFBookmark_GetNextSibling{Document: s.doc, Bookmark: *bm})
				if err != nil {
					return err
				}
				bm = next.Bookmark
			}
			return nil
		}
		return walk(nil, 1)
	})
	if err != nil {
		return nil, classify("read outline", err)
	}
	return out, nil
}

// outlineEntry reads one bookmark. tops caches the top edge of pages (PDF
// user space, y upwards) to turn destinations into points from the top.
func (s *session) outlineEntry(bm references.FPDF_BOOKMARK, level int, tops map[int]float64) (pdftext.OutlineEntry, error) {
	e := pdftext.OutlineEntry{Level: level, Page: -1}
	title, err := s.inst.FPDFBookmark_GetTitle(&requests.FPDFBookmark_GetTitle{Bookmark: bm})
	if err != nil {
		return e, err
	}
	e.Title = title.Title
	dest := s.bookmarkDest(bm)
	if dest == nil {
		return e, nil
	}
	idx, err := s.inst.FPDFDest_GetDestPageIndex(&requests.FPDFDest_GetDestPageIndex{Document: s.doc, Dest: *dest})
	if err != nil || idx.Index < 0 || idx.Index >= s.pages {
		return e, nil // not a page of this document
	}
	e.Page = idx.Index
	loc, err := s.inst.FPDFDest_GetLocationInPage(&requests.FPDFDest_GetLocationInPage{Dest: *dest})
	if err != nil || loc.Y == nil {
		return e, nil
	}
	top, ok := tops[e.Page]
	if !ok {
		box, err := s.pageBox(e.Page)
		if err != nil {
			return e, nil
		}
		top = box.top
		tops[e.Page] = top
	}
	e.Y = max(0, top-float64(*loc.Y))
	return e, nil
}

// bookmarkDest returns the bookmark's destination, direct or through a
// GoTo action; nil when it has none in this document.
func (s *session) bookmarkDest(bm references.FPDF_BOOKMARK) *references.FPDF_DEST {
	dest, err := s.inst.FPDFBookmark_GetDest(&requests.FPDFBookmark_GetDest{Document: s.doc, Bookmark: bm})
	if err == nil && dest.Dest != nil {
		return dest.Dest
	}
	act, err := s.inst.FPDFBookmark_GetAction(&requests.FPDFBookmark_GetAction{Bookmark: bm})
	if err != nil || act.Action == nil {
		return nil
	}
	ad, err := s.inst.FPDFAction_GetDest(&requests.FPDFAction_GetDest{Document: s.doc, Action: *act.Action})
	if err != nil {
		return nil
	}
	return ad.Dest
}

// cropBox is a page's crop box in PDF user space.
type cropBox struct{ left, top, right, bottom float64 }

func (s *session) pageBox(i int) (cropBox, error) {
	p, err := s.inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: s.doc, Index: i})
	if err != nil {
		return cropBox{}, err
	}
	defer s.inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: p.Page})
	return s.loadedPageBox(p.Page)
}

func (s *session) loadedPageBox(p references.FPDF_PAGE) (cropBox, error) {
	box, err := s.inst.FPDF_GetPageBoundingBox(&requests.FPDF_GetPageBoundingBox{Page: requests.Page{ByReference: &p}})
	if err != nil {
		return cropBox{}, err
	}
	return cropBox{left: float64(box.Rect.Left), top: float64(box.Rect.Top),
		right: float64(box.Rect.Right), bottom: float64(box.Rect.Bottom)}, nil
}

// PageText implements Document: the lines of PageBlocks, blocks separated
// by a blank line.
func (d *document) PageText(i int) (string, error) {
	blocks, err := d.PageBlocks(context.Background(), i)
	if err != nil {
		return "", err
	}
	return pdftext.BlocksText(blocks), nil
}

// PageBlocks implements pdftext.StructuredDocument. PDFium's text API has lines
// but no blocks: a line starts a new block when newBlock says so.
// Page rotation is not applied to the boxes.
func (d *document) PageBlocks(ctx context.Context, i int) (_ []pdftext.Block, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := pdftext.CheckPage(d.closed, i, d.pages); err != nil {
		return nil, err
	}
	defer pdftext.RecoverAs(&err, fmt.Sprintf("page %d", i+1))

	var (
		blocks []pdftext.Block
		page   pdftext.Rect
	)
	err = d.call(ctx, func(s *session) error {
		var err error
		blocks, page, err = s.pageBlocks(i)
		return err
	})
	if err != nil {
		return nil, classify(fmt.Sprintf("page %d", i+1), err)
	}
	d.box.Set(i, page)
	return blocks, nil
}

// PageBox implements PageBoxer.
func (d *document) PageBox(i int) (pdftext.Rect, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.box.Box(i)
}

func (s *session) pageBlocks(i int) ([]pdftext.Block, pdftext.Rect, error) {
	p, err := s.inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: s.doc, Index: i})
	if err != nil {
		return nil, pdftext.Rect{}, err
	}
	defer s.inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: p.Page})
	box, err := s.loadedPageBox(p.Page)
	if err != nil {
		return nil, pdftext.Rect{}, err
	}
	page := pdftext.Rect{X1: box.right - box.left, Y1: box.top - box.bottom}
	tp, err := s.inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &p.Page}})
	if err != nil {
		return nil, page, err
	}
	defer s.inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	n, err := s.inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil || n.Count <= 0 {
		return nil, page, err
	}
	res, err := s.inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, StartIndex: 0, Count: n.Count})
	if err != nil {
		return nil, page, err
	}
	// PDFium ends every line but the last with a generated "\r\n" (two
	// characters); text indexes and character indexes agree in UTF-16.
	raw := strings.TrimRight(res.Text, "\x00")
	var (
		blocks []pdftext.Block
		prev   textLine
		idx    int
	)
	for _, text := range strings.Split(raw, "\r\n") {
		start := idx
		idx += utf16Len(text) + 2
		trimmed := strings.TrimSpace(text)
		if trimmed == "" {
			continue
		}
		first := start + utf16Len(text[:len(text)-len(strings.TrimLeft(text, " \t"))])
		last := first + utf16Len(trimmed) - 1
		l, ok := s.lineInfo(tp.TextPage, first, last, box)
		l.line.Text = text
		if len(blocks) == 0 || !ok || !prev.ok || newBlock(prev.baseline, prev.line.Size, l.baseline, l.line.Size) {
			blocks = append(blocks, pdftext.Block{BBox: l.line.BBox})
		}
		b := &blocks[len(blocks)-1]
		b.Lines = append(b.Lines, l.line)
		b.BBox = union(b.BBox, l.line.BBox)
		l.ok = ok
		prev = l
	}
	return blocks, page, nil
}

// textLine is a pdftext.Line with its baseline in PDF user space (y upwards).
type textLine struct {
	line     pdftext.Line
	baseline float64
	ok       bool // position and size are known
}

// lineInfo measures the line whose first and last non-space characters
// are at indexes first and last: its box from the two characters' origins
// and the font size (ascent 0.8, descent 0.2 em), its size, boldness and
// baseline from the first character.
func (s *session) lineInfo(tp references.FPDF_TEXTPAGE, first, last int, box cropBox) (textLine, bool) {
	var l textLine
	o, err := s.inst.FPDFText_GetCharOrigin(&requests.FPDFText_GetCharOrigin{TextPage: tp, Index: first})
	if err != nil {
		return l, false
	}
	fs, err := s.inst.FPDFText_GetFontSize(&requests.FPDFText_GetFontSize{TextPage: tp, Index: first})
	if err != nil || fs.FontSize <= 0 {
		return l, false
	}
	size := fs.FontSize
	x1 := o.X + size/2
	if cb, err := s.inst.FPDFText_GetCharBox(&requests.FPDFText_GetCharBox{TextPage: tp, Index: last}); err == nil && cb.Right > o.X {
		x1 = cb.Right
	}
	l.baseline = o.Y
	l.line.Size = size
	l.line.BBox = pdftext.Rect{
		X0: o.X - box.left, Y0: box.top - (o.Y + 0.8*size),
		X1: x1 - box.left, Y1: box.top - (o.Y - 0.2*size),
	}
	if w, err := s.inst.FPDFText_GetFontWeight(&requests.FPDFText_GetFontWeight{TextPage: tp, Index: first}); err == nil && w.FontWeight >= 600 {
		l.line.Bold = true
	} else if fi, err := s.inst.FPDFText_GetFontInfo(&requests.FPDFText_GetFontInfo{TextPage: tp, Index: first}); err == nil {
		name := strings.ToLower(fi.FontName)
		l.line.Bold = fi.Flags&(1<<18) != 0 || strings.Contains(name, "bold") || strings.Contains(name, "black") || strings.Contains(name, "heavy")
	}
	return l, true
}

func union(a, b pdftext.Rect) pdftext.Rect {
	return pdftext.Rect{X0: min(a.X0, b.X0), Y0: min(a.Y0, b.Y0), X1: max(a.X1, b.X1), Y1: max(a.Y1, b.Y1)}
}

// paraGap is the baseline distance, in font sizes, beyond which two
// lines belong to different blocks. Single-spaced text sits at 1.1 to 1.5.
const paraGap = 1.75

// newBlock reports whether a line with baseline y and font size
// size starts a new block after a line at prevY with prevSize (PDF user
// space, y upwards): it sits higher on the page (a new column or frame),
// lower by more than paraGap font sizes (a paragraph gap), or its
// font size differs by more than 15 % (a heading and its body).
func newBlock(prevY, prevSize, y, size float64) bool {
	big := max(size, prevSize)
	return y > prevY+0.5*prevSize || prevY-y > paraGap*big || big-min(size, prevSize) > 0.15*big
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func (d *document) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	// Abandoned calls close their instance when they return, and closing
	// the engine closed every instance.
	if d.s == nil || d.eng.isClosed() {
		d.file.Close()
		return nil
	}
	// Closing the instance releases the document and all of its memory.
	err := d.s.inst.Close()
	d.file.Close()
	if err != nil {
		return fmt.Errorf("close pdf: pdfium: %w", err)
	}
	return nil
}
