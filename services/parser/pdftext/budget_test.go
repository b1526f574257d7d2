package pdftext_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

// openCounter wraps the replay engine: its documents repeat the
// recording's pages (so a 60-page fixture is long enough to be read by
// several copies), take a millisecond per page, and it records the most
// copies open at once.
type openCounter struct {
	pdftext.Engine
	repeat int

	mu         sync.Mutex
	open, peak int
	opened     int
}

func (e *openCounter) Open(path, password string) (pdftext.Document, error) {
	d, err := e.Engine.Open(path, password)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.open++
	e.opened++
	e.peak = max(e.peak, e.open)
	e.mu.Unlock()
	return &repeatedDoc{Document: d, e: e}, nil
}

type repeatedDoc struct {
	pdftext.Document
	e *openCounter
}

func (d *repeatedDoc) NumPages() int { return d.Document.NumPages() * d.e.repeat }

func (d *repeatedDoc) PageBlocks(ctx context.Context, i int) ([]pdftext.Block, error) {
	time.Sleep(time.Millisecond)
	return d.Document.(pdftext.StructuredDocument).PageBlocks(ctx, i%d.Document.NumPages())
}

func (d *repeatedDoc) PageText(i int) (string, error) {
	return d.Document.PageText(i % d.Document.NumPages())
}

func (d *repeatedDoc) Close() error {
	d.e.mu.Lock()
	d.e.open--
	d.e.mu.Unlock()
	return d.Document.Close()
}

func TestReaderBudgetBoundsOpenCopies(t *testing.T) {
	const fixture = "sample-60"
	extract := func(eng pdftext.Engine, opts pdftext.Options) []pdftext.Chunk {
		t.Helper()
		var chunks []pdftext.Chunk
		if _, err := pdftext.Extract(context.Background(), eng, fixture, opts, func(c pdftext.Chunk) error {
			chunks = append(chunks, c)
			return nil
		}); err != nil {
			t.Errorf("Extract: %v", err)
		}
		return chunks
	}
	want := extract(&openCounter{Engine: pdftexttest.Replay{}, repeat: 3}, pdftext.Options{Workers: 1})
	if len(want) == 0 {
		t.Fatal("no chunks")
	}
	same := func(name string, got []pdftext.Chunk) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d chunks, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: chunk %d differs from a sequential read", name, i)
			}
		}
	}

	tests := []struct {
		name     string
		docs     int
		budget   int // 0: none
		minPeak  int // at least this many copies were open at once
		maxPeak  int // and never more
		minOpens int
	}{
		// Alone, a document gets every place: both copies read.
		{name: "one document, two places", docs: 1, budget: 2, minPeak: 2, maxPeak: 2, minOpens: 2},
		// Three documents on two places: a first copy never waits, an extra
		// one only takes a free place, so at most places + documents - 1
		// copies are open (one document holding both places, the two others
		// reading without one).
		{name: "three documents, two places", docs: 3, budget: 2, minPeak: 2, maxPeak: 4, minOpens: 3},
		// Without a budget each document opens its four copies.
		{name: "three documents, no budget", docs: 3, minPeak: 5, maxPeak: 12, minOpens: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &openCounter{Engine: pdftexttest.Replay{}, repeat: 3}
			opts := pdftext.Options{Workers: 4}
			if tc.budget > 0 {
				opts.Readers = pdftext.NewReaderBudget(tc.budget)
			}
			var wg sync.WaitGroup
			results := make([][]pdftext.Chunk, tc.docs)
			for i := range tc.docs {
				wg.Go(func() { results[i] = extract(eng, opts) })
			}
			wg.Wait()
			for i, r := range results {
				same("document "+string(rune('A'+i)), r)
			}
			if eng.peak < tc.minPeak || eng.peak > tc.maxPeak {
				t.Errorf("at most %d copies open at once, want %d to %d", eng.peak, tc.minPeak, tc.maxPeak)
			}
			if eng.opened < tc.minOpens {
				t.Errorf("%d copies opened in all, want at least %d", eng.opened, tc.minOpens)
			}
			if eng.open != 0 {
				t.Errorf("%d copies left open", eng.open)
			}
			if opts.Readers != nil && opts.Readers.InUse() != 0 {
				t.Errorf("%d places still taken after every document ended", opts.Readers.InUse())
			}
		})
	}
}
