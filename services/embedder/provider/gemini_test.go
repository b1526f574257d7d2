package provider_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

func newGeminiEmbedder(t *testing.T, srv *providertest.GeminiServer, mod func(*provider.Config)) provider.Embedder {
	t.Helper()
	return newTestEmbedder(t, provider.Config{Provider: "Gemini", APIKey: providertest.GeminiKey, BaseURL: srv.URL}, mod)
}

// geminiTol allows for the client re-normalising the fake's float32 vectors.
const geminiTol = 1e-6

func TestGeminiEmbed(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		kind      provider.Kind
		mod       func(*provider.Config)
		wantTask  string
		wantSizes []int
		wantDims  int
	}{
		{name: "document", n: 3, kind: provider.Document, wantTask: "RETRIEVAL_DOCUMENT", wantSizes: []int{3}, wantDims: 384},
		{name: "query", n: 1, kind: provider.Query, wantTask: "RETRIEVAL_QUERY", wantSizes: []int{1}, wantDims: 384},
		{name: "250 texts make 3 requests", n: 250, kind: provider.Document, mod: func(c *provider.Config) { c.Dimension = 16 },
			wantTask: "RETRIEVAL_DOCUMENT", wantSizes: []int{100, 100, 50}, wantDims: 16},
		{name: "smaller batches", n: 7, kind: provider.Query, mod: func(c *provider.Config) { c.MaxBatch = 3 }, wantTask: "RETRIEVAL_QUERY", wantSizes: []int{3, 3, 1}, wantDims: 384},
		{name: "text-embedding-004 at 768", n: 2, mod: func(c *provider.Config) { c.Model = "text-embedding-004"; c.Dimension = 768 },
			wantTask: "RETRIEVAL_DOCUMENT", wantSizes: []int{2}, wantDims: 768},
		{name: "fixed-size embedding-001 gets no outputDimensionality", n: 2, mod: func(c *provider.Config) { c.Model = "embedding-001"; c.Dimension = 768 },
			wantTask: "RETRIEVAL_DOCUMENT", wantSizes: []int{2}, wantDims: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewGemini(t)
			e := newGeminiEmbedder(t, srv, tc.mod)
			in := texts(tc.n)
			got, err := e.Embed(context.Background(), in, tc.kind)
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			dim := tc.wantDims
			if dim == 0 {
				dim = 768
			}
			checkVectors(t, got, in, dim, geminiTol)
			for i, v := range got {
				var sum float64
				for _, x := range v {
					sum += float64(x) * float64(x)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("vector %d has squared norm %v, want 1", i, sum)
				}
			}
			log := srv.Log()
			if len(log) != len(tc.wantSizes) {
				t.Fatalf("got %d requests, want %d", len(log), len(tc.wantSizes))
			}
			c := provider.Config{Provider: "gemini"}
			if tc.mod != nil {
				tc.mod(&c)
			}
			model := provider.ModelOrDefault(c)
			for i, r := range log {
				if want := "/v1beta/models/" + model + ":batchEmbedContents"; r.Path != want {
					t.Errorf("request %d: got path %s, want %s", i, r.Path, want)
				}
				if got := r.Header.Get("X-Goog-Api-Key"); got != providertest.GeminiKey {
					t.Errorf("request %d: got x-goog-api-key %q, want the key", i, got)
				}
				if len(r.Inputs) != tc.wantSizes[i] {
					t.Errorf("request %d: got %d inputs, want %d", i, len(r.Inputs), tc.wantSizes[i])
				}
				for j, task := range r.TaskTypes {
					if task != tc.wantTask {
						t.Errorf("request %d input %d: got taskType %q, want %q", i, j, task, tc.wantTask)
					}
				}
				if r.Dims != tc.wantDims {
					t.Errorf("request %d: got outputDimensionality %d, want %d", i, r.Dims, tc.wantDims)
				}
			}
			if srv.Inputs() != tc.n {
				t.Errorf("server embedded %d inputs, want %d", srv.Inputs(), tc.n)
			}
		})
	}
}

func TestGeminiErrors(t *testing.T) {
	const badKey = "AIzaWRONG-SECRET-abcdef0123456789"
	tests := []struct {
		name         string
		key          string // "" means the right key
		prepare      func(*providertest.GeminiServer)
		mod          func(*provider.Config)
		want         error
		wantRequests int
		wantMessage  string
	}{
		{name: "API_KEY_INVALID", key: badKey, want: provider.ErrInvalidKey, wantRequests: 1, wantMessage: "invalid API key for gemini"},
		{name: "403 permission denied", prepare: func(s *providertest.GeminiServer) { s.FailNext(1, providertest.Failure{Status: 403}) },
			want: provider.ErrInvalidKey, wantRequests: 1, wantMessage: "invalid API key for gemini"},
		{name: "RESOURCE_EXHAUSTED every time", prepare: func(s *providertest.GeminiServer) { s.FailNext(10, providertest.Failure{Status: 429}) },
			want: provider.ErrRateLimited, wantRequests: 3, wantMessage: "giving up after 3 attempts"},
		{name: "500 every time", prepare: func(s *providertest.GeminiServer) { s.FailNext(10, providertest.Failure{Status: 500}) },
			want: provider.ErrTransient, wantRequests: 3, wantMessage: "HTTP 500"},
		{name: "400 not retried, key redacted", prepare: func(s *providertest.GeminiServer) {
			s.FailNext(1, providertest.Failure{Status: 400, Message: "input too long; key " + providertest.GeminiKey})
		}, want: provider.ErrBadInput, wantRequests: 1, wantMessage: "input too long; key [REDACTED]"},
		{name: "unknown model", mod: func(c *provider.Config) { c.Model = "no-such-model" }, want: provider.ErrBadInput, wantRequests: 1, wantMessage: "not found"},
		{name: "dimension mismatch", prepare: func(s *providertest.GeminiServer) { s.ForceDimension(3072) },
			want: provider.ErrDimensionMismatch, wantRequests: 1, wantMessage: "returned 3072-dimensional vectors, want 384"},
		{name: "timeout", prepare: func(s *providertest.GeminiServer) { s.SetLatency(time.Minute) },
			mod: func(c *provider.Config) { c.Timeout = 20 * time.Millisecond }, want: provider.ErrTransient, wantRequests: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewGemini(t)
			if tc.prepare != nil {
				tc.prepare(srv)
			}
			e := newGeminiEmbedder(t, srv, func(c *provider.Config) {
				if tc.key != "" {
					c.APIKey = tc.key
				}
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			_, err := e.Embed(context.Background(), texts(3), provider.Document)
			checkEmbedError(t, err, tc.want, tc.wantMessage, srv.Requests(), tc.wantRequests, providertest.GeminiKey, badKey)
		})
	}
}

func TestGeminiRetries(t *testing.T) {
	t.Run("429 then success waits for RetryInfo", func(t *testing.T) {
		srv := providertest.NewGemini(t)
		const retryAfter = 120 * time.Millisecond
		srv.FailNext(1, providertest.Failure{Status: 429, RetryAfter: retryAfter})
		e := newGeminiEmbedder(t, srv, nil)
		in := texts(5)
		got, err := e.Embed(context.Background(), in, provider.Query)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, provider.DefaultDimension, geminiTol)
		log := srv.Log()
		if len(log) != 2 {
			t.Fatalf("got %d requests, want 2", len(log))
		}
		if gap := log[1].Time.Sub(log[0].Time); gap < retryAfter {
			t.Errorf("retried after %s, want at least the retryDelay of %s", gap, retryAfter)
		}
	})
	t.Run("503 then success, only the failed batch again", func(t *testing.T) {
		srv := providertest.NewGemini(t)
		srv.FailRequest(3, providertest.Failure{Status: 503})
		e := newGeminiEmbedder(t, srv, func(c *provider.Config) { c.Dimension = 16 })
		in := texts(250)
		got, err := e.Embed(context.Background(), in, provider.Document)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, 16, geminiTol)
		if srv.Requests() != 4 {
			t.Errorf("got %d requests, want 4", srv.Requests())
		}
	})
	t.Run("without WithRetry nothing is retried", func(t *testing.T) {
		srv := providertest.NewGemini(t)
		srv.FailNext(1, providertest.Failure{Status: 500})
		e, err := provider.New(provider.Config{Provider: "gemini", APIKey: providertest.GeminiKey, BaseURL: srv.URL}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Embed(context.Background(), texts(1), provider.Document); !errors.Is(err, provider.ErrTransient) {
			t.Fatalf("got %v, want ErrTransient", err)
		}
		if srv.Requests() != 1 {
			t.Errorf("got %d requests, want 1", srv.Requests())
		}
	})
}
