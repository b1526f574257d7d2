// Package pdftext extracts the text of a PDF page by page and cuts it into
// chunks of about Options.ChunkSize runes (or estimated tokens, see
// Options.Unit), labelled with the chapter and the pages they came from.
//
// The PDF engine sits behind the small Engine/Document interfaces, in a
// package of its own: mupdf (MuPDF through cgo, the default) and pdfium
// (PDFium in WebAssembly). This package is the engine-independent core,
// pure Go: reading pages (in parallel for large documents), chapters
// from the outline or from headings, running headers and footers,
// undecodable text, normalisation and chunking. Engines whose documents
// also implement StructuredDocument (both do) give positions and
// typography: chapters then start at their heading inside a page,
// headings are found by size and weight when the outline is missing or
// cannot be trusted, and running headers and footers are removed.
// Extract streams: each chunk is handed to the caller as soon as it is
// complete, and memory stays bounded by a few batches of pages plus one
// chunk whatever the document's size.
//
// Its tests run on recordings of what the engines read from the
// project's fixtures (package pdftexttest), so they need neither an
// engine nor cgo (CGO_ENABLED=0 go test in services/parser/pdftext).
package pdftext

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/tokens"
)

// Defaults for Options fields left zero.
const (
	DefaultTargetRunes   = 1000
	DefaultOverlapRunes  = 100
	DefaultTargetTokens  = 400 // with UnitTokens
	DefaultOverlapTokens = 40  // with UnitTokens
	DefaultMaxPages      = 100000
	DefaultPageTimeout   = 20 * time.Second
	DefaultDocTimeout    = 30 * time.Minute
)

// Unit is what chunk sizes are measured in.
type Unit string

// Units.
const (
	// UnitRunes counts Unicode code points (the default).
	UnitRunes Unit = "runes"
	// UnitTokens counts estimated tokens, as EstimateTokens does: one per
	// three ASCII bytes (rounded up) plus one per other rune.
	UnitTokens Unit = "tokens"
)

// ChunkerVersion changes whenever the same document and Options may be
// cut into different chunks; it is part of Options.Digest.
const ChunkerVersion = 1

// Options control Extract and Probe. The zero value uses the defaults.
type Options struct {
	// Unit is what ChunkSize and ChunkOverlap count: UnitRunes (also
	// when empty) or UnitTokens.
	Unit Unit
	// ChunkSize is the maximum chunk size in Unit (default 1000 runes or
	// 400 tokens). Chunks are cut at a paragraph end, else a sentence end,
	// else a word boundary between ChunkSize/2 and ChunkSize.
	ChunkSize int
	// ChunkOverlap is how much of a chunk's tail (whole sentences if
	// possible, else whole words), in Unit, is repeated at the start of the
	// next chunk of the same chapter: 0 means the default (100 runes or 40
	// tokens), negative means none. It is capped at ChunkSize/2.
	ChunkOverlap int
	// MaxPages refuses documents with more pages (ErrTooManyPages);
	// 0 means 100000.
	MaxPages int
	// Password opens encrypted documents, where the engine supports it.
	// Documents encrypted with an empty user password open without one.
	Password string
	// Workers is how many page ranges of one document are read at once,
	// each with its own open copy of the document (structured engines, 64
	// pages or more). 0 means GOMAXPROCS, at most 4; 1 reads sequentially.
	Workers int
	// Readers, when set, is shared by every Extract of the process and
	// bounds the open copies they read at once (see ReaderBudget); the
	// extra copies of Workers then start only as places free up.
	Readers *ReaderBudget
	// PageTimeout bounds the time the engine may spend on one page (0: 20s).
	// A page that takes longer, or on which the engine runs out of memory,
	// is skipped and counted in Info.SkippedPages;
	// when every page with content is skipped the document fails with
	// ErrTimeout. Only engines with StructuredDocument can be stopped.
	PageTimeout time.Duration
	// DocTimeout bounds the whole extraction (0: 30 min); past it Extract
	// fails with ErrTimeout.
	DocTimeout time.Duration
}

func (o Options) withDefaults() Options {
	target, overlap := DefaultTargetRunes, DefaultOverlapRunes
	if o.Unit == UnitTokens {
		target, overlap = DefaultTargetTokens, DefaultOverlapTokens
	} else {
		o.Unit = UnitRunes
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = target
	}
	switch {
	case o.ChunkOverlap == 0:
		o.ChunkOverlap = overlap
	case o.ChunkOverlap < 0:
		o.ChunkOverlap = 0
	}
	o.ChunkOverlap = min(o.ChunkOverlap, o.ChunkSize/2)
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.Workers <= 0 {
		o.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.PageTimeout <= 0 {
		o.PageTimeout = DefaultPageTimeout
	}
	if o.DocTimeout <= 0 {
		o.DocTimeout = DefaultDocTimeout
	}
	return o
}

// Digest identifies how Extract cuts a document with these options and
// the named engine: equal digests (with the same document) mean the same
// chunks. It is the lowercase hex SHA-256 of the unit, the effective size
// and overlap, the engine and ChunkerVersion.
func (o Options) Digest(engine string) string {
	o = o.withDefaults()
	sum := sha256.Sum256(fmt.Appendf(nil, "pdftext chunks v%d unit=%s size=%d overlap=%d engine=%s",
		ChunkerVersion, o.Unit, o.ChunkSize, o.ChunkOverlap, engine))
	return hex.EncodeToString(sum[:])
}

// EstimateTokens is tokens.Estimate, the count the embedder uses too;
// UnitTokens measures chunks with it.
func EstimateTokens(text string) int { return tokens.Estimate(text) }

// Chunk is a piece of a document's text.
type Chunk struct {
	Index int    // 0-based position within the document, without gaps
	Text  string // normalised text; paragraphs separated by "\n\n"
	// Chapter is the title path of the enclosing section, for example
	// "2 Methods › 2.1 Data", from the outline or else from headings found
	// by their typography; "" before the first one.
	Chapter string
	// ChapterNum is the section's number as a reader knows it, for example
	// "2.1" or an appendix's "B.1": taken from its title when the title
	// carries one ("Appendix B …" gives "B"), or from its heading on the
	// page. An unnumbered section gets none when its siblings are
	// numbered (a Preface, an index), else its position (1-based at every
	// level) in an outline without any numbers; front and back matter
	// (Preface, Contents, Index, …) never get one nor shift the others.
	// "" when Chapter is "".
	ChapterNum string
	// PageStart and PageEnd are the 1-based pages of the chunk's first and
	// last character.
	PageStart, PageEnd int
}

// Info summarises a document.
type Info struct {
	Pages        int // pages in the document
	Chunks       int // chunks emitted
	Chapters     int // distinct non-empty chapters among the emitted chunks
	EmptyPages   int // pages without any text (no text layer)
	SkippedPages int // pages skipped: longer than Options.PageTimeout, or out of memory
	// UnreadablePages are pages whose text is mostly U+FFFD, private-use or
	// control characters (fonts without a Unicode mapping, music glyphs).
	// Lines made mostly of such characters, on any page, are never chunked;
	// what else such a page holds is kept.
	UnreadablePages int
}

// Sampling before the text is read.
const (
	outlineSample = 6  // outline entries checked against their pages' text
	bodySample    = 12 // pages whose typography gives the body text size
)

// Extract opens path with eng, reads it page by page and calls emit for
// each chunk as soon as it is complete, in Index order, so the first chunk
// leaves before the last page is read. Large documents are read by
// Options.Workers page ranges at once; chunks still come out in order.
//
// Chapters come from the outline when the document has one and its titles
// are found in the text of their target pages (checked on a sample): an
// entry opens its chapter at the line that carries its title, else at its
// target position, on its target page. Without a usable outline, headings
// are found by their font size and weight relative to the body text (and
// their numbering gives their level). A new chapter always starts a new
// chunk, and overlap never crosses chapters. Running headers and footers
// are removed (never the only text of a page); words hyphenated across
// lines are joined. Pages without text are counted in Info.EmptyPages and
// produce no chunk; pages whose text is mostly undecodable are counted in
// Info.UnreadablePages, and undecodable lines are never chunked. A
// document without any text fails with ErrNoText, one with no readable
// line with ErrUnreadable. An error from emit stops
// extraction and is returned wrapped. On error, the returned Info
// describes the work done so far.
func Extract(ctx context.Context, eng Engine, path string, opts Options, emit func(Chunk) error) (Info, error) {
	opts = opts.withDefaults()
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("extract: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.DocTimeout,
		fmt.Errorf("document time limit of %s: %w", opts.DocTimeout, ErrTimeout))
	defer cancel()
	info, err := extract(ctx, eng, path, opts, emit)
	return info, explain(path, err)
}

// explain adds to an error about what the engine read what the file says
// about it: first a filter the engine lacks (the likely reason for no
// pages or no text), then a missing %%EOF (truncated?).
func explain(path string, err error) error {
	if err == nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoText) || errors.Is(err, ErrUnreadable)) {
		return err
	}
	if sn, serr := SniffFile(path); serr == nil && sn.NoEOF && errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "truncated") {
		err = fmt.Errorf("%w (the file may be truncated: no %%%%EOF marker at the end)", err)
	}
	if note := filterNote(path); note != "" {
		err = fmt.Errorf("%s: %w", note, err)
	}
	return err
}

func extract(ctx context.Context, eng Engine, path string, opts Options, emit func(Chunk) error) (Info, error) {
	// The first copy takes a place in the budget when one is free (given
	// back once it is closed), and reads anyway when none is: a document
	// is never kept waiting.
	if b := opts.Readers; b != nil && b.tryAcquire() {
		defer b.release()
	}
	doc, err := eng.Open(path, opts.Password)
	if err != nil {
		return Info{}, fmt.Errorf("extract: %w", err)
	}
	defer doc.Close()

	info := Info{Pages: doc.NumPages()}
	if info.Pages > opts.MaxPages {
		return info, fmt.Errorf("extract: %d pages, limit is %d: %w", info.Pages, opts.MaxPages, ErrTooManyPages)
	}
	// Other page-range workers start reading while the outline is loaded.
	pr := newPageReader(ctx, eng, path, doc, info.Pages, opts)
	defer pr.close()
	outline, err := doc.Outline()
	if err != nil {
		return info, fmt.Errorf("extract: %w", err)
	}
	chapters := newChapterIndex(outline)

	a := &assembler{info: &info}
	_, structured := doc.(StructuredDocument)
	switch {
	case len(chapters.entries) > 0 && (!structured || outlineTrusted(doc, chapters.entries, pr.sample)):
		a.outline = chapters.entries
	case structured:
		a.headings = &headingTracker{levels: headingLevels{body: bodySize(info.Pages, pr.sample)}}
	}

	seen := make(map[string]struct{})
	a.ck = newChunker(opts.ChunkSize, opts.ChunkOverlap, opts.Unit == UnitTokens, func(text string, pageStart, pageEnd int) error {
		c := Chunk{Index: info.Chunks, Text: text, PageStart: pageStart, PageEnd: pageEnd}
		if a.cur != nil {
			c.Chapter, c.ChapterNum = a.cur.path, a.cur.num
		}
		if err := emit(c); err != nil {
			return fmt.Errorf("emit chunk %d: %w", c.Index, err)
		}
		info.Chunks++
		if _, ok := seen[c.Chapter]; !ok && c.Chapter != "" {
			seen[c.Chapter] = struct{}{}
			info.Chapters++
		}
		return nil
	})

	hf := newHFFilter()
	feed := func(pds []*pageData) error {
		for _, pd := range pds {
			if err := a.page(pd); err != nil {
				return fmt.Errorf("extract page %d: %w", pd.index+1, err)
			}
		}
		return nil
	}
	err = pr.run(func(pd *pageData) error {
		if pd.err != nil {
			return pd.err
		}
		return feed(hf.push(pd))
	})
	if err == nil {
		err = feed(hf.drain())
	}
	if err == nil {
		err = a.ck.flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return info, err
	}
	if info.Chunks == 0 {
		if info.SkippedPages > 0 {
			return info, fmt.Errorf("extract: %d of %d pages took longer than %s each or ran out of memory, the others have no text: %w",
				info.SkippedPages, info.Pages, opts.PageTimeout, ErrTimeout)
		}
		if info.UnreadablePages > 0 {
			return info, fmt.Errorf("extract: no page has readable text: the text of %d of %d pages is mostly U+FFFD, private-use or control characters (fonts without a Unicode mapping)%s: %w",
				info.UnreadablePages, info.Pages, emptyNote(info), ErrUnreadable)
		}
		if info.EmptyPages == info.Pages {
			return info, fmt.Errorf("extract: none of the %d pages has a text layer (scanned?): %w", info.Pages, ErrNoText)
		}
		return info, fmt.Errorf("extract: no text to chunk on any of the %d pages: %w", info.Pages, ErrNoText)
	}
	return info, nil
}

func emptyNote(info Info) string {
	if info.EmptyPages == 0 {
		return ""
	}
	return fmt.Sprintf(", %d have no text layer", info.EmptyPages)
}

// outlineTrusted reports whether the titles of a sample of outline entries
// appear on their target pages (or the page after): an outline that does
// not match the text (undecodable titles, stale targets) is not used.
// read returns a page of doc.
func outlineTrusted(doc Document, entries []chapterEntry, read func(i int) pageData) bool {
	n := min(len(entries), outlineSample)
	found := 0
	for s := range n {
		e := entries[s*len(entries)/n]
		for p := e.page; p <= min(e.page+1, doc.NumPages()-1); p++ {
			pd := read(p)
			if pageHasTitle(pd.lines, &e) {
				found++
				break
			}
		}
	}
	return 2*found >= n
}

func pageHasTitle(lines []pline, e *chapterEntry) bool {
	for _, l := range lines {
		if ok, _ := lineHasTitle(l.text, e); ok {
			return true
		}
	}
	return false
}

// bodySize returns the font size of most characters on a sample of pages,
// read with read.
func bodySize(pages int, read func(i int) pageData) float64 {
	n := min(pages, bodySample)
	runes := make(map[float64]int)
	for s := range n {
		pd := read(s * pages / n)
		for _, l := range pd.lines {
			runes[roundSize(l.size)] += len(l.text)
		}
	}
	best, size := 0, 0.0
	for s, c := range runes {
		if c > best || (c == best && s < size) {
			best, size = c, s
		}
	}
	return size
}

// Probe opens path and returns its page count without reading any text.
// It fails like Extract for unreadable, encrypted or oversized documents
// (ErrTooManyPages comes with the page count).
func Probe(ctx context.Context, eng Engine, path string, opts Options) (pages int, err error) {
	opts = opts.withDefaults()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	doc, err := eng.Open(path, opts.Password)
	if err != nil {
		return 0, fmt.Errorf("probe: %w", explain(path, err))
	}
	defer doc.Close()
	pages = doc.NumPages()
	if pages > opts.MaxPages {
		return pages, fmt.Errorf("probe: %d pages, limit is %d: %w", pages, opts.MaxPages, ErrTooManyPages)
	}
	return pages, nil
}
