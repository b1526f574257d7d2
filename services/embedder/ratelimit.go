package embedder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// limiter is a token bucket per API key shared by every embedder replica
// through the EmbedRateBucket: one KV entry per key digest (sha256 of
// provider, base URL and key; never the key) holding how many requests
// and tokens are available and when that was computed. A request takes
// one request and its estimated tokens with a compare-and-set update, so
// replicas never spend the same allowance twice. The buckets refill at
// rpm/60 requests and tpm/60 tokens per second and hold at most one
// second's worth (at least one request), so bursts stay small; a request
// costing more tokens than the bucket holds goes through when the bucket
// is full and leaves it in debt, which later requests wait out.
type limiter struct {
	kv       jetstream.KeyValue
	rpm, tpm float64
	now      func() time.Time
}

// limitState is the stored value.
type limitState struct {
	Requests float64 `json:"r"`
	Tokens   float64 `json:"t"`
	At       int64   `json:"at"` // unix nanoseconds
}

// limitKey names the bucket of one API key.
func limitKey(provider, baseURL, apiKey string) string {
	d := sha256.Sum256([]byte("pdfpipe-rate\x00" + provider + "\x00" + baseURL + "\x00" + apiKey))
	return "k" + hex.EncodeToString(d[:])
}

func (l *limiter) capacity() (req, tok float64) {
	req, tok = max(1, l.rpm/60), max(1, l.tpm/60)
	return req, tok
}

// wait blocks until the key's buckets allow one request of tokens, and
// takes them. It reports whether it had to wait.
func (l *limiter) wait(ctx context.Context, key string, tokens int) (bool, error) {
	waited := false
	for {
		d, err := l.take(ctx, key, float64(tokens))
		if err != nil || d == 0 {
			return waited, err
		}
		waited = true
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return waited, ctx.Err()
		case <-t.C:
		}
	}
}

// take takes one request and cost tokens if available and returns 0, or
// returns how long to wait before trying again.
func (l *limiter) take(ctx context.Context, key string, cost float64) (time.Duration, error) {
	capR, capT := l.capacity()
	for range 100 { // compare-and-set conflicts with other replicas
		now := l.now()
		st := limitState{Requests: capR, Tokens: capT, At: now.UnixNano()}
		var rev uint64
		e, err := l.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				st = limitState{Requests: capR, Tokens: capT, At: now.UnixNano()}
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return 0, fmt.Errorf("read rate limit: %w", err)
		}
		if el := now.Sub(time.Unix(0, st.At)).Seconds(); el > 0 {
			st.Requests = min(capR, st.Requests+el*l.rpm/60)
			st.Tokens = min(capT, st.Tokens+el*l.tpm/60)
		}
		// Never move the clock back: a replica whose now is behind the
		// stored time would refill that interval twice.
		st.At = max(st.At, now.UnixNano())
		var wait time.Duration
		if l.rpm > 0 && st.Requests < 1 {
			wait = max(wait, secs((1-st.Requests)/(l.rpm/60)))
		}
		if need := min(cost, capT); l.tpm > 0 && st.Tokens < need {
			wait = max(wait, secs((need-st.Tokens)/(l.tpm/60)))
		}
		if wait > 0 {
			return wait, nil
		}
		if l.rpm > 0 {
			st.Requests--
		}
		if l.tpm > 0 {
			st.Tokens -= cost
		}
		data, _ := json.Marshal(st)
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, data)
		} else {
			_, err = l.kv.Update(ctx, key, data, rev)
		}
		switch {
		case err == nil:
			return 0, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another replica took some: read again
		default:
			return 0, fmt.Errorf("update rate limit: %w", err)
		}
	}
	return time.Millisecond, nil
}

func secs(s float64) time.Duration {
	return max(time.Millisecond, time.Duration(s*float64(time.Second)))
}
