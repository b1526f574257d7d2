// Package pdftext extracts the text of a PDF page by page and cuts it into
// chunks of about Options.TargetRunes runes, labelled with the chapter (from
// the PDF outline) and the pages they came from.
//
// The PDF engine sits behind the small Engine/Document interfaces;
// FitzEngine implements them with MuPDF via go-fitz. Extract streams: each
// chunk is handed to the caller as soon as it is complete, and memory stays
// bounded by one page plus one chunk whatever the document's size.
package pdftext

import (
	"context"
	"fmt"
)

// Defaults for Options fields left zero.
const (
	DefaultTargetRunes  = 1000
	DefaultOverlapRunes = 100
	DefaultMaxPages     = 100000
)

// Options control Extract and Probe. The zero value uses the defaults.
type Options struct {
	// TargetRunes is the maximum chunk size in runes (default 1000). Chunks
	// are cut at a paragraph end, else a sentence end, else a word boundary
	// between TargetRunes/2 and TargetRunes.
	TargetRunes int
	// OverlapRunes is how much of a chunk's tail (whole sentences if
	// possible, else whole words) is repeated at the start of the next chunk
	// of the same chapter: 0 means the default 100, negative means none. It
	// is capped at TargetRunes/2.
	OverlapRunes int
	// MaxPages refuses documents with more pages (ErrTooManyPages);
	// 0 means 100000.
	MaxPages int
	// Password opens encrypted documents, where the engine supports it.
	Password string
}

func (o Options) withDefaults() Options {
	if o.TargetRunes <= 0 {
		o.TargetRunes = DefaultTargetRunes
	}
	switch {
	case o.OverlapRunes == 0:
		o.OverlapRunes = DefaultOverlapRunes
	case o.OverlapRunes < 0:
		o.OverlapRunes = 0
	}
	o.OverlapRunes = min(o.OverlapRunes, o.TargetRunes/2)
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	return o
}

// Chunk is a piece of a document's text.
type Chunk struct {
	Index int    // 0-based position within the document, without gaps
	Text  string // normalised text; paragraphs separated by "\n\n"
	// Chapter is the title path of the enclosing outline entry, for example
	// "2 Methods › 2.1 Data"; "" when the document has no outline or the
	// text comes before the first entry.
	Chapter string
	// ChapterNum is the entry's number, for example "2.1": taken from its
	// title when the title starts with one, else from its position in the
	// outline (1-based at every level). "" when Chapter is "".
	ChapterNum string
	// PageStart and PageEnd are the 1-based pages of the chunk's first and
	// last character.
	PageStart, PageEnd int
}

// Info summarises a document.
type Info struct {
	Pages      int // pages in the document
	Chunks     int // chunks emitted
	Chapters   int // distinct non-empty chapters among the emitted chunks
	EmptyPages int // pages without any text
}

// Extract opens path with eng, reads it page by page and calls emit for
// each chunk as soon as it is complete, in Index order, so the first chunk
// leaves before the last page is read. It checks ctx before every page.
//
// A chapter is the outline entry with the greatest target page not after
// the current page (the last such entry in outline order when several
// target the same page); a new chapter always starts a new chunk, and
// overlap never crosses chapters. Pages without text are counted in
// Info.EmptyPages and produce no chunk; a document without any text fails
// with ErrNoText. An error from emit stops extraction and is returned
// wrapped. On error, the returned Info describes the work done so far.
func Extract(ctx context.Context, eng Engine, path string, opts Options, emit func(Chunk) error) (Info, error) {
	opts = opts.withDefaults()
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("extract: %w", err)
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
	outline, err := doc.Outline()
	if err != nil {
		return info, fmt.Errorf("extract: %w", err)
	}
	chapters := newChapterIndex(outline)

	var cur chapter
	seen := make(map[string]struct{})
	ck := newChunker(opts.TargetRunes, opts.OverlapRunes, func(text string, pageStart, pageEnd int) error {
		c := Chunk{
			Index:      info.Chunks,
			Text:       text,
			Chapter:    cur.path,
			ChapterNum: cur.num,
			PageStart:  pageStart,
			PageEnd:    pageEnd,
		}
		if err := emit(c); err != nil {
			return fmt.Errorf("emit chunk %d: %w", c.Index, err)
		}
		info.Chunks++
		if _, ok := seen[cur.path]; !ok && cur.path != "" {
			seen[cur.path] = struct{}{}
			info.Chapters++
		}
		return nil
	})

	for i := range info.Pages {
		if err := ctx.Err(); err != nil {
			return info, fmt.Errorf("extract page %d: %w", i+1, err)
		}
		text, err := doc.PageText(i)
		if err != nil {
			return info, fmt.Errorf("extract: %w", err)
		}
		paras := paragraphs(text)
		if len(paras) == 0 {
			info.EmptyPages++
			continue
		}
		if ch := chapters.at(i); ch != cur {
			if err := ck.flush(); err != nil {
				return info, fmt.Errorf("extract page %d: %w", i+1, err)
			}
			cur = ch
		}
		for _, p := range paras {
			if err := ck.add(i+1, p); err != nil {
				return info, fmt.Errorf("extract page %d: %w", i+1, err)
			}
		}
	}
	if err := ck.flush(); err != nil {
		return info, fmt.Errorf("extract: %w", err)
	}
	if info.Chunks == 0 {
		return info, fmt.Errorf("extract: %d pages, none with text: %w", info.Pages, ErrNoText)
	}
	return info, nil
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
		return 0, fmt.Errorf("probe: %w", err)
	}
	defer doc.Close()
	pages = doc.NumPages()
	if pages > opts.MaxPages {
		return pages, fmt.Errorf("probe: %d pages, limit is %d: %w", pages, opts.MaxPages, ErrTooManyPages)
	}
	return pages, nil
}
