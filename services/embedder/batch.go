package embedder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// batcher gathers texts that concurrent handlers want embedded with the
// same provider and key into one API request: up to its current batch
// size, the provider's byte and token budgets per request, or whatever
// arrived within linger of the first. Requests in flight are bounded by
// sem (EMBED_REQUESTS, shared by every batcher of the service).
//
// It also owns what happens around a request: the vector cache (looked up
// for the whole batch before its request, written before the callers are
// answered), the
// shared rate limiter, and retries. A 429 halves the batch size for this
// provider key (once per round of requests sent at that size), waits for
// Retry-After or a jittered backoff, and resends the failed texts in
// batches of the new size; every successful request grows the size again
// by a 32nd of the maximum (at least one), up to the provider's limit.
// 5xx answers and timeouts are retried as they were, after backoff.
type batcher struct {
	emb      provider.Embedder // without retries: the batcher retries
	name     string            // provider name, for logs and errors
	kind     provider.Kind
	dim      int
	maxBatch int // texts per request: the provider's limit or EMBED_BATCH
	maxBytes int // bytes per request, 0: none
	maxToks  int // estimated tokens per request, 0: none
	maxInput int // estimated tokens per text, 0: none
	linger   time.Duration
	sem      chan struct{}
	retry    provider.RetryPolicy
	rate     *limiter // nil: unlimited
	rateKey  string
	cache    *vecCache // nil: no cache
	stats    *counters
	log      *slog.Logger
	model    string               // for spans
	tracer   trace.TracerProvider // nil: no spans
	metrics  *metrics.Metrics     // nil: not counted

	mu      sync.Mutex
	pending []*request
	bytes   int // of pending
	tokens  int // of pending
	timer   *time.Timer
	limit   int    // current batch size (AIMD)
	gen     uint64 // bumped by every shrink
}

type request struct {
	ctx    context.Context
	text   string
	tokens int
	done   chan result
}

type result struct {
	vec []float32
	err error
}

// embed returns the vector of text, from the cache or sharing a request
// with others.
func (b *batcher) embed(ctx context.Context, text string) ([]float32, error) {
	r := &request{ctx: ctx, text: text, tokens: provider.EstimateTokens(text), done: make(chan result, 1)}
	b.mu.Lock()
	if len(b.pending) > 0 && ((b.maxBytes > 0 && b.bytes+len(text) > b.maxBytes) ||
		(b.maxToks > 0 && b.tokens+r.tokens > b.maxToks)) {
		b.flushLocked() // r would take the batch over a budget
	}
	b.pending = append(b.pending, r)
	b.bytes += len(text)
	b.tokens += r.tokens
	switch {
	case len(b.pending) >= b.limit:
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
	b.pending, b.bytes, b.tokens = nil, 0, 0
	if len(batch) == 0 {
		return
	}
	go b.send(batch, 1)
}

// send sends one request for batch (attempt counts from 1) and answers
// its callers, retrying as the type's comment says.
func (b *batcher) send(batch []*request, attempt int) {
	// Drop requests whose callers gave up before the call.
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	// The batch outlives any one caller; it ends when all callers give up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := watchAll(live, cancel)
	defer stop()
	if b.cache != nil && attempt == 1 {
		if live = b.fromCache(ctx, live); len(live) == 0 {
			return
		}
	}
	tokens := 0
	texts := make([]string, len(live))
	for i, r := range live {
		texts[i] = r.text
		tokens += r.tokens
	}

	b.sem <- struct{}{}
	gen := b.generation()
	if b.rate != nil {
		waited, err := b.rate.wait(ctx, b.rateKey, tokens)
		if waited {
			b.stats.limiterWaits.Add(1)
		}
		if err != nil && ctx.Err() != nil {
			<-b.sem
			answer(live, nil, fmt.Errorf("waiting for the rate limiter: %w", err))
			return
		}
		if err != nil {
			b.log.Warn("shared rate limiter unavailable; sending anyway", "provider", b.name, "err", err)
		}
	}
	b.stats.requests.Add(1)
	b.stats.texts.Add(int64(len(texts)))
	end := b.startRequest(live, tokens, attempt)
	vecs, err := b.emb.Embed(ctx, texts, b.kind)
	<-b.sem
	end(err, len(vecs))
	if err == nil && len(vecs) != len(live) {
		err = fmt.Errorf("provider returned %d vectors for %d texts", len(vecs), len(live))
	}
	if err == nil {
		b.grow(gen)
		b.store(ctx, live, vecs)
		answer(live, vecs, nil)
		return
	}
	if ctx.Err() != nil || !provider.Retryable(err) || attempt >= b.retry.MaxAttempts {
		if attempt > 1 && provider.Retryable(err) {
			err = fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		answer(live, nil, err)
		return
	}
	if errors.Is(err, provider.ErrRateLimited) {
		b.stats.rateLimited.Add(1)
		b.shrink(gen)
	}
	wait, ok := b.retry.Delay(attempt, err)
	if !ok {
		answer(live, nil, err) // a longer Retry-After than we wait in-process
		return
	}
	t := time.NewTimer(wait)
	select {
	case <-ctx.Done():
		t.Stop()
		answer(live, nil, fmt.Errorf("waiting to retry: %w (last error: %w)", ctx.Err(), err))
		return
	case <-t.C:
	}
	b.stats.retries.Add(1)
	size := b.size()
	if len(live) <= size {
		b.send(live, attempt+1)
		return
	}
	var wg sync.WaitGroup
	for start := 0; start < len(live); start += size {
		part := live[start:min(start+size, len(live))]
		wg.Go(func() { b.send(part, attempt+1) })
	}
	wg.Wait()
}

// fromCache answers the requests whose text the cache holds, in one
// lookup for the whole batch, and returns the others. A cache that cannot
// be read answers none.
func (b *batcher) fromCache(ctx context.Context, live []*request) []*request {
	texts := make([]string, len(live))
	for i, r := range live {
		texts[i] = r.text
	}
	vecs, err := b.cache.getMany(ctx, texts, b.dim)
	if err != nil {
		b.log.Warn("embedding cache unavailable; embedding anyway", "err", err)
		b.stats.cacheMisses.Add(int64(len(live)))
		b.metrics.CacheLookups(0, len(live))
		return live
	}
	misses := live[:0:0]
	for i, r := range live {
		if vecs[i] == nil {
			misses = append(misses, r)
			continue
		}
		r.done <- result{vec: vecs[i]}
	}
	b.stats.cacheHits.Add(int64(len(live) - len(misses)))
	b.stats.cacheMisses.Add(int64(len(misses)))
	b.metrics.CacheLookups(len(live)-len(misses), len(misses))
	return misses
}

// store writes the vectors to the cache before the callers are answered:
// a replay that follows finds them.
func (b *batcher) store(ctx context.Context, live []*request, vecs [][]float32) {
	if b.cache == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	texts := make([]string, len(live))
	for i, r := range live {
		texts[i] = r.text
	}
	if err := b.cache.putMany(ctx, texts, vecs); err != nil {
		b.log.Warn("embedding cache not written", "err", err)
	}
}

func answer(live []*request, vecs [][]float32, err error) {
	for i, r := range live {
		if err != nil {
			r.done <- result{err: err}
			continue
		}
		r.done <- result{vec: vecs[i]}
	}
}

func (b *batcher) generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// size is the current batch size.
func (b *batcher) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// shrink halves the batch size after a 429 of a request sent at
// generation gen; the other requests of that round do not halve it again.
func (b *batcher) shrink(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return
	}
	b.gen++
	b.limit = max(1, b.limit/2)
	b.stats.shrinks.Add(1)
	b.log.Warn("provider rate limited; batch size halved", "provider", b.name, "batch_size", b.limit)
}

// grow adds a 32nd of the maximum batch size after a successful request
// sent since the last shrink.
func (b *batcher) grow(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.gen && b.limit < b.maxBatch {
		b.limit = min(b.maxBatch, b.limit+max(1, b.maxBatch/32))
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
