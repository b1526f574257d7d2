package provider_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// scripted is an Embedder that fails with errs in turn, then succeeds.
type scripted struct {
	errs  []error
	calls atomic.Int32
}

func (s *scripted) Embed(_ context.Context, texts []string, _ provider.Kind) ([][]float32, error) {
	n := int(s.calls.Add(1))
	if n <= len(s.errs) {
		return nil, s.errs[n-1]
	}
	return make([][]float32, len(texts)), nil
}

func TestWithRetry(t *testing.T) {
	transient := &provider.Error{Provider: "x", Kind: provider.ErrTransient, StatusCode: 500}
	limited := func(d time.Duration) error {
		return &provider.Error{Provider: "x", Kind: provider.ErrRateLimited, StatusCode: 429, RetryAfter: d}
	}
	tests := []struct {
		name      string
		errs      []error
		want      error  // nil: success
		wantText  string // if set, the error must be exactly this
		wantCalls int32
	}{
		{name: "success", wantCalls: 1},
		{name: "transient twice", errs: []error{transient, transient}, wantCalls: 3},
		{name: "rate limited with Retry-After", errs: []error{limited(5 * time.Millisecond)}, wantCalls: 2},
		{name: "transient until out of attempts", errs: []error{transient, transient, transient, transient}, want: provider.ErrTransient, wantCalls: 3},
		{name: "invalid key", errs: []error{&provider.Error{Kind: provider.ErrInvalidKey}}, want: provider.ErrInvalidKey, wantCalls: 1},
		{name: "bad input", errs: []error{&provider.Error{Kind: provider.ErrBadInput}}, want: provider.ErrBadInput, wantCalls: 1},
		{name: "dimension mismatch", errs: []error{&provider.Error{Kind: provider.ErrDimensionMismatch}}, want: provider.ErrDimensionMismatch, wantCalls: 1},
		{name: "unclassified error is returned unchanged", errs: []error{errors.New("boom")}, wantText: "boom", wantCalls: 1},
		{name: "Retry-After above MaxRetryAfter", errs: []error{limited(time.Hour)}, want: provider.ErrRateLimited, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{errs: tc.errs}
			e := provider.WithRetry(s, fastRetry)
			_, err := e.Embed(context.Background(), []string{"a"}, provider.Document)
			switch {
			case tc.wantText != "":
				if err == nil || err.Error() != tc.wantText {
					t.Fatalf("got %v, want %q", err, tc.wantText)
				}
			case tc.want == nil && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := s.calls.Load(); got != tc.wantCalls {
				t.Errorf("got %d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestWithRetryStopsWithContext(t *testing.T) {
	errs := make([]error, 10)
	for i := range errs {
		errs[i] = &provider.Error{Kind: provider.ErrRateLimited, RetryAfter: 3 * time.Second}
	}
	s := &scripted{errs: errs}
	e := provider.WithRetry(s, provider.RetryPolicy{MaxAttempts: 10, MaxRetryAfter: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Embed(ctx, []string{"a"}, provider.Document)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll for the first call
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, provider.ErrRateLimited) {
			t.Fatalf("got %v, want context.Canceled wrapping the last ErrRateLimited", err)
		}
		if !strings.Contains(err.Error(), "waiting to retry") {
			t.Errorf("got %q, want it to say it was waiting to retry", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Embed did not return after cancel")
	}
	if got := s.calls.Load(); got != 1 {
		t.Errorf("got %d calls, want 1", got)
	}
}
