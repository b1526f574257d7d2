package embedder

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// batcher gathers texts that concurrent handlers want embedded with the
// same provider and key into one API request: up to maxBatch texts, or
// whatever arrived within linger of the first.
type batcher struct {
	emb      provider.Embedder
	kind     provider.Kind
	maxBatch int
	linger   time.Duration
	sem      chan struct{} // requests in flight

	mu      sync.Mutex
	pending []*request
	timer   *time.Timer
}

type request struct {
	ctx  context.Context
	text string
	done chan result
}

type result struct {
	vec []float32
	err error
}

func newBatcher(emb provider.Embedder, kind provider.Kind, maxBatch int, linger time.Duration, inflight chan struct{}) *batcher {
	return &batcher{emb: emb, kind: kind, maxBatch: maxBatch, linger: linger, sem: inflight}
}

// embed returns the vector of text, sharing a request with others.
func (b *batcher) embed(ctx context.Context, text string) ([]float32, error) {
	r := &request{ctx: ctx, text: text, done: make(chan result, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	switch {
	case len(b.pending) >= b.maxBatch:
		b.flushLocked()
	case len(b.pending) == 1:
		b.timer = time.AfterFunc(b.linger, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.flushLocked()
		})
	}
	b.mu.Unlock()
	select {
	case res := <-r.done:
		return res.vec, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *batcher) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	batch := b.pending
	b.pending = nil
	if len(batch) == 0 {
		return
	}
	go b.send(batch)
}

func (b *batcher) send(batch []*request) {
	// Drop requests whose callers gave up before the call.
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	texts := make([]string, len(live))
	for i, r := range live {
		texts[i] = r.text
	}
	// The batch outlives any one caller; it ends when all callers give up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := watchAll(live, cancel)
	defer stop()
	vecs, err := b.emb.Embed(ctx, texts, b.kind)
	if err == nil && len(vecs) != len(live) {
		err = fmt.Errorf("provider returned %d vectors for %d texts", len(vecs), len(live))
	}
	for i, r := range live {
		if err != nil {
			r.done <- result{err: err}
			continue
		}
		r.done <- result{vec: vecs[i]}
	}
}

// watchAll cancels when every request's context is done.
func watchAll(rs []*request, cancel context.CancelFunc) (stop func()) {
	var n sync.WaitGroup
	n.Add(len(rs))
	stops := make([]func() bool, len(rs))
	for i, r := range rs {
		stops[i] = context.AfterFunc(r.ctx, n.Done)
	}
	done := make(chan struct{})
	go func() {
		n.Wait()
		select {
		case <-done:
		default:
			cancel()
		}
	}()
	return func() {
		close(done)
		for _, s := range stops {
			if s() { // not fired yet: account for it so the waiter ends
				n.Done()
			}
		}
	}
}
