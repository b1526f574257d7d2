package pdftexttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// Recording is what an engine read from one document, as Extract asks
// for it: the page count, the outline, and each page's blocks and
// bounds (StructuredDocument and PageBoxer).
type Recording struct {
	Fixture string // the fixture's name
	Engine  string // the engine's name: "mupdf" or "pdfium"
	SHA256  string // hex SHA-256 of the PDF that was read
	Outline []pdftext.OutlineEntry
	Pages   []Page
}

// Page is what an engine read from one page.
type Page struct {
	Blocks []pdftext.Block
	Box    pdftext.Rect // the page's bounds, when Boxed
	Boxed  bool
	// Err is the class of the error PageBlocks returned, "" for none:
	// "out of memory" (pdftext.ErrOutOfMemory) or "corrupt"
	// (pdftext.ErrCorrupt).
	Err string
}

// Page error classes.
const (
	errOutOfMemory = "out of memory"
	errCorrupt     = "corrupt"
)

// Record reads doc as Extract does (outline, then every page's blocks
// and bounds) and returns what it read. doc must be a
// pdftext.StructuredDocument; Fixture, Engine and SHA256 are left for
// the caller to fill in. A page that fails with ErrOutOfMemory or
// ErrCorrupt is recorded as failing; other errors end the recording.
func Record(ctx context.Context, doc pdftext.Document) (*Recording, error) {
	sd, ok := doc.(pdftext.StructuredDocument)
	if !ok {
		return nil, errors.New("record: the document has no blocks (not a pdftext.StructuredDocument)")
	}
	outline, err := doc.Outline()
	if err != nil {
		return nil, fmt.Errorf("record outline: %w", err)
	}
	r := &Recording{Outline: outline, Pages: make([]Page, doc.NumPages())}
	for i := range r.Pages {
		p := &r.Pages[i]
		p.Blocks, err = sd.PageBlocks(ctx, i)
		switch {
		case errors.Is(err, pdftext.ErrOutOfMemory):
			p.Err = errOutOfMemory
		case errors.Is(err, pdftext.ErrCorrupt):
			p.Err = errCorrupt
		case err != nil:
			return nil, fmt.Errorf("record page %d: %w", i+1, err)
		}
		if pb, ok := doc.(pdftext.PageBoxer); ok && err == nil {
			p.Box, p.Boxed = pb.PageBox(i)
		}
	}
	return r, nil
}

// A recording is stored as JSON lines, one record a line, in this order:
// the header; the outline entries; per page, the page, then each of its
// blocks followed by the block's lines. Numbers are float64s written
// exactly (shortest form that reads back the same), so a replay gives
// Extract the very values the engine gave.
type record struct {
	// The header.
	Fixture string `json:"fixture,omitempty"`
	Engine  string `json:"engine,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	NPages  *int   `json:"pages,omitempty"`

	Outline *outlineRecord `json:"outline,omitempty"`

	Page *int        `json:"page,omitempty"`
	Box  *[4]float64 `json:"box,omitempty"`
	Err  string      `json:"err,omitempty"`

	Block *[4]float64 `json:"block,omitempty"`

	Line *[4]float64 `json:"line,omitempty"`
	Size float64     `json:"size,omitempty"`
	Bold bool        `json:"bold,omitempty"`
	Text string      `json:"text,omitempty"`
}

type outlineRecord struct {
	Level int     `json:"level"`
	Title string  `json:"title"`
	Page  int     `json:"page"`
	Y     float64 `json:"y"`
}

func rect4(r pdftext.Rect) *[4]float64 { return &[4]float64{r.X0, r.Y0, r.X1, r.Y1} }
func fromRect4(a [4]float64) pdftext.Rect {
	return pdftext.Rect{X0: a[0], Y0: a[1], X1: a[2], Y1: a[3]}
}

// Encode writes r as JSON lines.
func (r *Recording) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := len(r.Pages)
	recs := []record{{Fixture: r.Fixture, Engine: r.Engine, SHA256: r.SHA256, NPages: &n}}
	for _, e := range r.Outline {
		recs = append(recs, record{Outline: &outlineRecord{Level: e.Level, Title: e.Title, Page: e.Page, Y: e.Y}})
	}
	for i, p := range r.Pages {
		pr := record{Page: &i, Err: p.Err}
		if p.Boxed {
			pr.Box = rect4(p.Box)
		}
		recs = append(recs, pr)
		for _, b := range p.Blocks {
			recs = append(recs, record{Block: rect4(b.BBox)})
			for _, l := range b.Lines {
				recs = append(recs, record{Line: rect4(l.BBox), Size: l.Size, Bold: l.Bold, Text: l.Text})
			}
		}
	}
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return fmt.Errorf("encode recording: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode recording: %w", err)
	}
	return nil
}

// Decode reads a recording written by Encode.
func Decode(rd io.Reader) (*Recording, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var (
		r     *Recording
		pages int
	)
	for n := 1; ; n++ {
		var rec record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode recording: record %d: %w", n, err)
		}
		bad := func(what string) error { return fmt.Errorf("decode recording: record %d: %s", n, what) }
		switch {
		case r == nil:
			if rec.NPages == nil {
				return nil, bad("want the header first")
			}
			r = &Recording{Fixture: rec.Fixture, Engine: rec.Engine, SHA256: rec.SHA256}
			pages = *rec.NPages
		case rec.Outline != nil:
			if len(r.Pages) > 0 {
				return nil, bad("outline entry after the pages")
			}
			o := rec.Outline
			r.Outline = append(r.Outline, pdftext.OutlineEntry{Level: o.Level, Title: o.Title, Page: o.Page, Y: o.Y})
		case rec.Page != nil:
			if *rec.Page != len(r.Pages) {
				return nil, bad(fmt.Sprintf("page %d, want page %d", *rec.Page, len(r.Pages)))
			}
			p := Page{Err: rec.Err}
			if rec.Box != nil {
				p.Box, p.Boxed = fromRect4(*rec.Box), true
			}
			r.Pages = append(r.Pages, p)
		case rec.Block != nil:
			if len(r.Pages) == 0 {
				return nil, bad("block before any page")
			}
			p := &r.Pages[len(r.Pages)-1]
			p.Blocks = append(p.Blocks, pdftext.Block{BBox: fromRect4(*rec.Block)})
		case rec.Line != nil:
			if len(r.Pages) == 0 || len(r.Pages[len(r.Pages)-1].Blocks) == 0 {
				return nil, bad("line outside a block")
			}
			bs := r.Pages[len(r.Pages)-1].Blocks
			b := &bs[len(bs)-1]
			b.Lines = append(b.Lines, pdftext.Line{BBox: fromRect4(*rec.Line), Size: rec.Size, Bold: rec.Bold, Text: rec.Text})
		default:
			return nil, bad("unknown record")
		}
	}
	if r == nil {
		return nil, errors.New("decode recording: empty")
	}
	if len(r.Pages) != pages {
		return nil, fmt.Errorf("decode recording: %d pages, the header says %d", len(r.Pages), pages)
	}
	return r, nil
}

// Diff says where r first differs from o, and is "" when they recorded
// the same reading.
func (r *Recording) Diff(o *Recording) string {
	if r.Fixture != o.Fixture || r.Engine != o.Engine || r.SHA256 != o.SHA256 {
		return fmt.Sprintf("header %s/%s/%s, want %s/%s/%s", r.Fixture, r.Engine, r.SHA256, o.Fixture, o.Engine, o.SHA256)
	}
	if !slices.Equal(r.Outline, o.Outline) {
		return fmt.Sprintf("outline %+v, want %+v", r.Outline, o.Outline)
	}
	if len(r.Pages) != len(o.Pages) {
		return fmt.Sprintf("%d pages, want %d", len(r.Pages), len(o.Pages))
	}
	// Pages compare as they are stored.
	for i := range r.Pages {
		var a, b bytes.Buffer
		(&Recording{Pages: r.Pages[i : i+1]}).Encode(&a)
		(&Recording{Pages: o.Pages[i : i+1]}).Encode(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			return fmt.Sprintf("page %d:\n%s\nwant\n%s", i+1, a.Bytes(), b.Bytes())
		}
	}
	return ""
}
