package provider_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

// fastRetry keeps retry delays tiny; Retry-After is still honoured.
var fastRetry = provider.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: 5 * time.Second}

// texts returns n distinct texts.
func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("chunk %d of a document about invoices", i)
	}
	return out
}

// checkVectors checks got[i] is the fakes' vector of in[i].
func checkVectors(t *testing.T, got [][]float32, in []string, dim int, tol float64) {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("got %d vectors, want %d", len(got), len(in))
	}
	for i, v := range got {
		want := providertest.Vector(in[i], dim)
		if len(v) != dim {
			t.Fatalf("vector %d: got %d dimensions, want %d", i, len(v), dim)
		}
		for j := range v {
			if math.Abs(float64(v[j]-want[j])) > tol {
				t.Fatalf("vector %d component %d: got %v, want %v (vectors out of order?)", i, j, v[j], want[j])
			}
		}
	}
}

// checkNoKey fails if the key appears in any rendering of err.
func checkNoKey(t *testing.T, err error, key string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, key) {
			t.Fatalf("error contains the API key: %s", s)
		}
	}
	var pe *provider.Error
	if errors.As(err, &pe) && strings.Contains(pe.Message, key) {
		t.Fatalf("error message contains the API key: %s", pe.Message)
	}
}

// kindOf names the sentinel err matches, for failure messages.
func kindOf(err error) string {
	for _, k := range []error{provider.ErrInvalidKey, provider.ErrQuotaExceeded, provider.ErrRateLimited, provider.ErrTransient,
		provider.ErrBadInput, provider.ErrDimensionMismatch, provider.ErrBadResponse, provider.ErrInvalidConfig} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "none"
}

// newTestEmbedder builds cfg, changed by mod, with the tests' fast retries.
func newTestEmbedder(t *testing.T, cfg provider.Config, mod func(*provider.Config)) provider.Embedder {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	e, err := provider.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return provider.WithRetry(e, fastRetry)
}

// checkEmbedError checks a failed Embed: its kind, its message (when
// wantMessage is set), how many requests reached the fake, and that no
// key appears in it.
func checkEmbedError(t *testing.T, err, want error, wantMessage string, requests, wantRequests int, keys ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v (kind %s), want %v", err, kindOf(err), want)
	}
	if wantMessage != "" && !strings.Contains(err.Error(), wantMessage) {
		t.Errorf("got message %q, want it to contain %q", err, wantMessage)
	}
	if requests != wantRequests {
		t.Errorf("got %d requests, want %d", requests, wantRequests)
	}
	for _, k := range keys {
		checkNoKey(t, err, k)
	}
}
