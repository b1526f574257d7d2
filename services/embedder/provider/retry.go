package provider

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how [WithRetry] retries. Zero fields take the defaults
// of [DefaultRetryPolicy].
type RetryPolicy struct {
	// MaxAttempts is the number of attempts per request, the first included.
	// 1 disables retries. Default 4.
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt; it doubles each
	// attempt, up to MaxDelay, and is jittered to between half and all of
	// that. Default 500ms.
	BaseDelay time.Duration
	// MaxDelay caps the exponential backoff. Default 20s.
	MaxDelay time.Duration
	// MaxRetryAfter is the longest server-requested wait (Retry-After,
	// Gemini RetryInfo) honoured in-process. A longer one is not waited for:
	// the ErrRateLimited error is returned at once, carrying RetryAfter, so
	// the caller can reschedule the work (e.g. NakWithDelay). Default 60s.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy returns the defaults: 4 attempts, 500ms doubling to at
// most 20s, Retry-After honoured up to 60s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 20 * time.Second, MaxRetryAfter: 60 * time.Second}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// WithRetry returns an Embedder that retries e's rate-limited (ErrRateLimited)
// and transient (ErrTransient) failures with exponential backoff and jitter,
// waiting at least as long as the server asked. It never retries
// ErrInvalidKey, ErrQuotaExceeded, ErrBadInput, ErrDimensionMismatch or
// ErrBadResponse, and stops as soon as ctx ends.
//
// For an Embedder returned by [New], each request (batch) is retried on its
// own, so a failure in the third batch does not resend the first two; any
// other Embedder has its whole Embed call retried.
func WithRetry(e Embedder, policy RetryPolicy) Embedder {
	policy = policy.withDefaults()
	if r, ok := e.(interface{ withRetry(RetryPolicy) Embedder }); ok {
		return r.withRetry(policy)
	}
	return &retrying{e: e, policy: policy}
}

type retrying struct {
	e      Embedder
	policy RetryPolicy
}

func (r *retrying) Embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error) {
	var out [][]float32
	err := r.policy.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = r.e.Embed(ctx, texts, kind)
		return err
	})
	return out, err
}

// run calls fn until it succeeds, fails permanently, runs out of attempts
// or ctx ends.
func (p *RetryPolicy) run(ctx context.Context, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !Retryable(err) {
			return err
		}
		if attempt >= p.MaxAttempts {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		wait, ok := p.delay(attempt, err)
		if !ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting to retry: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Delay returns the wait before attempt+1 after err (attempt counts from
// 1): at least the server's Retry-After plus up to 10% jitter, else an
// exponential backoff from BaseDelay to MaxDelay jittered between half and
// all of it. It returns false when the server asked for more than
// MaxRetryAfter. Zero fields of p take their defaults.
func (p RetryPolicy) Delay(attempt int, err error) (time.Duration, bool) {
	p = p.withDefaults()
	return p.delay(attempt, err)
}

// WithDefaults returns p with every zero field at its default.
func (p RetryPolicy) WithDefaults() RetryPolicy { return p.withDefaults() }

// delay returns the wait before attempt+1, or false when the server asked
// for more than MaxRetryAfter.
func (p *RetryPolicy) delay(attempt int, err error) (time.Duration, bool) {
	if ra, ok := RetryAfter(err); ok {
		if ra > p.MaxRetryAfter {
			return 0, false
		}
		// At least what was asked, plus up to 10% so that callers told
		// the same time do not all come back at once.
		return ra + rand.N(ra/10+1), true
	}
	d := p.BaseDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	return d/2 + rand.N(d/2+1), true
}
