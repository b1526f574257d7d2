package pdftext

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// pageData is one page read by the engine, ready for the sequential stage.
type pageData struct {
	index   int
	lines   []pline
	layout  bool // lines carry positions and typography
	box     Rect // the page's bounds, when boxed
	boxed   bool
	skipped bool // the page took longer than Options.PageTimeout or ran out of memory
	// unreadable: the page's text is mostly undecodable (see garbled).
	// Its undecodable lines, like those of any page, are dropped; what
	// remains (a score's title among its notes) is kept.
	unreadable bool
	err        error
}

// pline is one non-empty, normalised line of a page.
type pline struct {
	text   string
	y0, y1 float64
	size   float64
	bold   bool
	block  bool // first line of an engine block (a paragraph start)
	short  bool // its engine block has at most two lines (headers and footers do)
	remove bool // running header or footer
}

var errPageTimeout = fmt.Errorf("page time limit: %w", ErrTimeout)

// readPage reads page i of doc, within opts.PageTimeout. A page that takes
// longer, or on which the engine runs out of memory, is skipped.
func readPage(ctx context.Context, doc Document, i int, opts Options) pageData {
	pd := pageData{index: i}
	sd, ok := doc.(StructuredDocument)
	if !ok {
		text, err := doc.PageText(i)
		if errors.Is(err, ErrOutOfMemory) {
			pd.skipped = true
			return pd
		}
		if err != nil {
			pd.err = fmt.Errorf("extract: %w", err)
			return pd
		}
		var page garbleCount
		lines := strings.Split(text, "\n")
		for j, l := range lines {
			lc := countGarble(l)
			page.total, page.bad = page.total+lc.total, page.bad+lc.bad
			if lc.garbled() {
				lines[j] = "" // never chunked
			}
		}
		pd.unreadable = page.garbled()
		for _, p := range paragraphs(strings.Join(lines, "\n")) {
			pd.lines = append(pd.lines, pline{text: p, block: true, y0: -1, y1: -1})
		}
		return pd
	}
	pd.layout = true
	pctx, cancel := context.WithTimeoutCause(ctx, opts.PageTimeout, errPageTimeout)
	blocks, err := sd.PageBlocks(pctx, i)
	cancel()
	if err != nil {
		if ctx.Err() == nil && (errors.Is(context.Cause(pctx), errPageTimeout) || errors.Is(err, ErrOutOfMemory)) {
			pd.skipped = true
			return pd
		}
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		pd.err = fmt.Errorf("extract page %d: %w", i+1, err)
		return pd
	}
	if pb, ok := doc.(PageBoxer); ok {
		pd.box, pd.boxed = pb.PageBox(i)
	}
	n := 0
	for _, b := range blocks {
		n += len(b.Lines)
	}
	var page garbleCount
	pd.lines = make([]pline, 0, n)
	for _, b := range blocks {
		from := len(pd.lines)
		for _, l := range b.Lines {
			lc := countGarble(l.Text)
			page.total, page.bad = page.total+lc.total, page.bad+lc.bad
			if lc.garbled() {
				continue // never chunked
			}
			t := normaliseLine(l.Text)
			if t == "" {
				continue
			}
			pd.lines = append(pd.lines, pline{text: t, y0: l.BBox.Y0, y1: l.BBox.Y1, size: l.Size, bold: l.Bold, block: len(pd.lines) == from})
		}
		if len(pd.lines)-from <= 2 {
			for j := from; j < len(pd.lines); j++ {
				pd.lines[j].short = true
			}
		}
	}
	pd.unreadable = page.garbled()
	return pd
}

// Page-range parallelism.
const (
	batchPages       = 32 // pages a worker reads in a row
	minParallelPages = 64 // smaller documents are read by one worker
)

// pageReader reads pages [0, n) of a document in order. With more than
// one worker (and a structured engine), the other workers open the
// document again as soon as the reader is made and start reading batches
// of pages, while the caller still uses the first Document (for the
// outline); run then reads with the first Document too. Pages are handed
// to each in order as soon as their turn comes, and at most a few batches
// per worker are held at any time.
type pageReader struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	first   Document
	n       int
	opts    Options
	workers int

	// sampled holds pages read by sample before run, for run to use
	// instead of reading them again (sequential reading only).
	sampled map[int]pageData

	batches int
	tokens  chan struct{}   // one per batch claimed and not yet consumed
	results chan []pageData // batches, in any order
	next    atomic.Int64    // next batch to claim
	wg      sync.WaitGroup
}

func newPageReader(ctx context.Context, eng Engine, path string, first Document, n int, opts Options) *pageReader {
	r := &pageReader{first: first, n: n, opts: opts, workers: opts.Workers}
	if _, structured := first.(StructuredDocument); !structured || n < minParallelPages {
		r.workers = 1
	}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	if r.workers <= 1 {
		return r
	}
	r.batches = (n + batchPages - 1) / batchPages
	window := 4 * r.workers
	r.tokens = make(chan struct{}, window)
	r.results = make(chan []pageData, window)
	for range r.workers - 1 {
		r.wg.Go(func() {
			// An extra copy waits for a free place, and opens only if
			// batches are left to read by then.
			if b := opts.Readers; b != nil {
				if !b.acquire(r.ctx) {
					return
				}
				defer b.release()
				if int(r.next.Load()) >= r.batches {
					return
				}
			}
			doc, err := eng.Open(path, opts.Password)
			if err != nil {
				return // the others read its share
			}
			defer doc.Close()
			r.work(doc)
		})
	}
	return r
}

// work reads batches with doc until there are none left. It keeps its
// OS thread: otherwise the page calls into MuPDF hop between threads, and
// on return from each one wait for the scheduler (two workers on
// fullrefman: 1.14-1.16 s without, 1.06-1.09 s with).
func (r *pageReader) work(doc Document) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		select {
		case r.tokens <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		k := int(r.next.Add(1)) - 1
		if k >= r.batches {
			return
		}
		out := make([]pageData, 0, batchPages)
		for i := k * batchPages; i < min(r.n, (k+1)*batchPages); i++ {
			out = append(out, readPage(r.ctx, doc, i, r.opts))
		}
		select {
		case r.results <- out:
		case <-r.ctx.Done():
			return
		}
	}
}

// sample reads page i with the first Document before run, for a look at
// the document (outline check, body text size). With one worker the page
// is kept for run, which then does not read it again.
func (r *pageReader) sample(i int) pageData {
	if pd, ok := r.sampled[i]; ok {
		return pd
	}
	pd := readPage(r.ctx, r.first, i, r.opts)
	if r.workers <= 1 && pd.err == nil {
		if r.sampled == nil {
			r.sampled = make(map[int]pageData)
		}
		r.sampled[i] = pd
	}
	return pd
}

// close stops the workers and waits for them; it is safe to call twice.
func (r *pageReader) close() {
	r.cancel(nil)
	r.wg.Wait()
}

// ReaderBudget bounds the open copies of documents that Extract calls
// sharing it read at once (Options.Readers): one per CPU in a process that
// parses several documents at once. A document's first copy takes a place
// when one is free and reads anyway when none is; the extra copies of a
// large document (Options.Workers) wait for a free place, so at most
// places + documents - 1 copies are open at once: two large documents on
// two places, three copies at most instead of four with two page workers
// each (less memory held by MuPDF, less oversubscription of the cores),
// and the last large document of a batch gets every place once the others
// are done.
type ReaderBudget struct {
	places chan struct{}
}

// NewReaderBudget returns a budget of n places (at least 1).
func NewReaderBudget(n int) *ReaderBudget {
	return &ReaderBudget{places: make(chan struct{}, max(n, 1))}
}

func (b *ReaderBudget) tryAcquire() bool {
	select {
	case b.places <- struct{}{}:
		return true
	default:
		return false
	}
}

func (b *ReaderBudget) acquire(ctx context.Context) bool {
	select {
	case b.places <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *ReaderBudget) release() { <-b.places }

// run calls each for every page in order, in the calling goroutine, and
// then closes the reader.
func (r *pageReader) run(each func(*pageData) error) error {
	defer r.close()
	if r.workers <= 1 {
		for i := range r.n {
			if err := r.ctx.Err(); err != nil {
				return fmt.Errorf("extract page %d: %w", i+1, context.Cause(r.ctx))
			}
			pd, ok := r.sampled[i]
			if ok {
				delete(r.sampled, i)
			} else {
				pd = readPage(r.ctx, r.first, i, r.opts)
			}
			if err := each(&pd); err != nil {
				return err
			}
		}
		return nil
	}
	r.wg.Go(func() { r.work(r.first) })
	pending := make(map[int][]pageData, cap(r.tokens))
	for k := 0; k < r.batches; {
		if b, ok := pending[k]; ok {
			delete(pending, k)
			for i := range b {
				if err := each(&b[i]); err != nil {
					return err
				}
			}
			<-r.tokens
			k++
			continue
		}
		select {
		case b := <-r.results:
			pending[b[0].index/batchPages] = b
		case <-r.ctx.Done():
			return fmt.Errorf("extract: %w", context.Cause(r.ctx))
		}
	}
	return nil
}
