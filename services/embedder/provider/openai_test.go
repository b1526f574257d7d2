package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

func newOpenAIEmbedder(t *testing.T, srv *providertest.OpenAIServer, mod func(*provider.Config)) provider.Embedder {
	t.Helper()
	return newTestEmbedder(t, provider.Config{Provider: "OpenAI", APIKey: providertest.OpenAIKey, BaseURL: srv.URL}, mod)
}

func TestOpenAIEmbed(t *testing.T) {
	tests := []struct {
		name         string
		n            int
		kind         provider.Kind
		mod          func(*provider.Config)
		reverse      bool
		wantRequests int
		wantSizes    []int
	}{
		{name: "one text", n: 1, wantRequests: 1, wantSizes: []int{1}},
		{name: "query", n: 1, kind: provider.Query, wantRequests: 1, wantSizes: []int{1}},
		{name: "data out of order is matched by index", n: 7, reverse: true, wantRequests: 1, wantSizes: []int{7}},
		{name: "compatible server default batch 32", n: 70, wantRequests: 3, wantSizes: []int{32, 32, 6}},
		{name: "explicit max batch", n: 25, mod: func(c *provider.Config) { c.MaxBatch = 10 }, wantRequests: 3, wantSizes: []int{10, 10, 5}},
		{name: "api limit 2048", n: 2049, mod: func(c *provider.Config) { c.MaxBatch = provider.OpenAIMaxBatch; c.Dimension = 8 }, wantRequests: 2, wantSizes: []int{2048, 1}},
		// each text is 36 bytes: 100 bytes hold 2 of them
		{name: "byte budget", n: 5, mod: func(c *provider.Config) { c.MaxBatchBytes = 100 }, wantRequests: 3, wantSizes: []int{2, 2, 1}},
		{name: "JSON numbers on request", n: 3, mod: func(c *provider.Config) { c.FloatVectors = true }, wantRequests: 1, wantSizes: []int{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewOpenAI(t)
			srv.SetReverseOrder(tc.reverse)
			e := newOpenAIEmbedder(t, srv, tc.mod)
			in := texts(tc.n)
			got, err := e.Embed(context.Background(), in, tc.kind)
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			cfg := provider.Config{Dimension: provider.DefaultDimension}
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			checkVectors(t, got, in, cfg.Dimension, 0)
			if srv.Requests() != tc.wantRequests {
				t.Errorf("got %d requests, want %d", srv.Requests(), tc.wantRequests)
			}
			if srv.Inputs() != tc.n {
				t.Errorf("server embedded %d inputs, want %d", srv.Inputs(), tc.n)
			}
			for i, r := range srv.Log() {
				if len(r.Inputs) != tc.wantSizes[i] {
					t.Errorf("request %d: got %d inputs, want %d", i, len(r.Inputs), tc.wantSizes[i])
				}
				if r.Dims != cfg.Dimension {
					t.Errorf("request %d: got dimensions %d, want %d", i, r.Dims, cfg.Dimension)
				}
				if r.Model != provider.DefaultOpenAIModel {
					t.Errorf("request %d: got model %q, want %q", i, r.Model, provider.DefaultOpenAIModel)
				}
				if want := map[bool]string{false: "base64", true: ""}[cfg.FloatVectors]; r.Encoding != want {
					t.Errorf("request %d: got encoding_format %q, want %q", i, r.Encoding, want)
				}
				if got, want := r.Header.Get("Authorization"), "Bearer "+providertest.OpenAIKey; got != want {
					t.Errorf("request %d: got Authorization %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestOpenAIErrors(t *testing.T) {
	const badKey = "sk-wrong-SECRET-9f8e7d6c5b4a3210"
	tests := []struct {
		name         string
		key          string // "" means the right key, "-" none
		prepare      func(*providertest.OpenAIServer)
		mod          func(*provider.Config)
		want         error
		wantRequests int
		wantMessage  string
	}{
		{name: "wrong key", key: badKey, want: provider.ErrInvalidKey, wantRequests: 1, wantMessage: "invalid API key for openai"},
		{name: "no key", key: "-", want: provider.ErrInvalidKey, wantRequests: 1, wantMessage: "invalid API key for openai"},
		{name: "403", prepare: func(s *providertest.OpenAIServer) { s.FailNext(1, providertest.Failure{Status: 403}) },
			want: provider.ErrInvalidKey, wantRequests: 1, wantMessage: "invalid API key for openai"},
		{name: "429 every time", prepare: func(s *providertest.OpenAIServer) { s.FailNext(10, providertest.Failure{Status: 429}) },
			want: provider.ErrRateLimited, wantRequests: 3, wantMessage: "giving up after 3 attempts"},
		{name: "quota exhausted is not retried", prepare: func(s *providertest.OpenAIServer) {
			s.FailNext(10, providertest.Failure{Status: 429, Code: "insufficient_quota"})
		}, want: provider.ErrQuotaExceeded, wantRequests: 1, wantMessage: "quota"},
		{name: "500 every time", prepare: func(s *providertest.OpenAIServer) { s.FailNext(10, providertest.Failure{Status: 500}) },
			want: provider.ErrTransient, wantRequests: 3, wantMessage: "HTTP 500"},
		{name: "400 is not retried and redacts the key", prepare: func(s *providertest.OpenAIServer) {
			s.FailNext(1, providertest.Failure{Status: 400, Message: "input too long for key " + providertest.OpenAIKey})
		}, want: provider.ErrBadInput, wantRequests: 1, wantMessage: "input too long for key [REDACTED]"},
		{name: "unknown model", mod: func(c *provider.Config) { c.Model = "no-such-model" },
			want: provider.ErrBadInput, wantRequests: 1, wantMessage: "does not exist"},
		{name: "server ignores dimensions", prepare: func(s *providertest.OpenAIServer) { s.ForceDimension(1536) },
			want: provider.ErrDimensionMismatch, wantRequests: 1, wantMessage: "returned 1536-dimensional vectors, want 384"},
		{name: "timeout is transient", prepare: func(s *providertest.OpenAIServer) { s.SetLatency(time.Minute) },
			mod: func(c *provider.Config) { c.Timeout = 20 * time.Millisecond }, want: provider.ErrTransient, wantRequests: 3, wantMessage: "request timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewOpenAI(t)
			if tc.prepare != nil {
				tc.prepare(srv)
			}
			key := tc.key
			switch key {
			case "":
				key = providertest.OpenAIKey
			case "-":
				key = ""
			}
			e := newOpenAIEmbedder(t, srv, func(c *provider.Config) {
				c.APIKey = key
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			_, err := e.Embed(context.Background(), texts(3), provider.Document)
			checkEmbedError(t, err, tc.want, tc.wantMessage, srv.Requests(), tc.wantRequests, providertest.OpenAIKey, badKey)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v matching context.DeadlineExceeded, but the caller's context did not end", err)
			}
		})
	}
}

func TestOpenAIRetries(t *testing.T) {
	t.Run("429 then success waits for Retry-After", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		const retryAfter = 150 * time.Millisecond
		srv.FailNext(1, providertest.Failure{Status: 429, RetryAfter: retryAfter})
		e := newOpenAIEmbedder(t, srv, nil)
		in := texts(4)
		got, err := e.Embed(context.Background(), in, provider.Document)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, provider.DefaultDimension, 0)
		log := srv.Log()
		if len(log) != 2 {
			t.Fatalf("got %d requests, want 2", len(log))
		}
		if gap := log[1].Time.Sub(log[0].Time); gap < retryAfter {
			t.Errorf("retried after %s, want at least the Retry-After of %s", gap, retryAfter)
		}
	})
	t.Run("500 twice then success", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.FailNext(2, providertest.Failure{Status: 500})
		e := newOpenAIEmbedder(t, srv, nil)
		in := texts(2)
		got, err := e.Embed(context.Background(), in, provider.Document)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, provider.DefaultDimension, 0)
		if srv.Requests() != 3 {
			t.Errorf("got %d requests, want 3", srv.Requests())
		}
	})
	t.Run("only the failed batch is retried", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.FailRequest(2, providertest.Failure{Status: 503})
		e := newOpenAIEmbedder(t, srv, func(c *provider.Config) { c.MaxBatch = 2 })
		in := texts(6)
		got, err := e.Embed(context.Background(), in, provider.Document)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, provider.DefaultDimension, 0)
		if srv.Requests() != 4 {
			t.Errorf("got %d requests, want 4 (3 batches + 1 retry)", srv.Requests())
		}
		if srv.Inputs() != 6 {
			t.Errorf("server embedded %d inputs, want 6", srv.Inputs())
		}
	})
	t.Run("Retry-After longer than the policy allows is returned", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.FailNext(1, providertest.Failure{Status: 429, RetryAfter: 30 * time.Second})
		e := newOpenAIEmbedder(t, srv, nil)
		_, err := e.Embed(context.Background(), texts(1), provider.Document)
		d, ok := provider.RetryAfter(err)
		if !errors.Is(err, provider.ErrRateLimited) || !ok || d != 30*time.Second {
			t.Fatalf("got %v (retry after %s, %t), want ErrRateLimited with 30s", err, d, ok)
		}
		if srv.Requests() != 1 {
			t.Errorf("got %d requests, want 1", srv.Requests())
		}
	})
	t.Run("caller's deadline stops retries", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.FailNext(100, providertest.Failure{Status: 429, RetryAfter: 2 * time.Second})
		e := newOpenAIEmbedder(t, srv, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := e.Embed(ctx, texts(1), provider.Document)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("Embed returned after %s, want soon after the 50ms deadline", el)
		}
		if srv.Requests() != 1 {
			t.Errorf("got %d requests, want 1", srv.Requests())
		}
	})
}

// TestOpenAICompatible covers OpenAI-compatible servers (TEI, Ollama, ...):
// models with a fixed dimension, no key, non-OpenAI error bodies.
func TestOpenAICompatible(t *testing.T) {
	t.Run("NoDimensionsParam with a native 384 model", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.SetKey("")
		srv.AddModel("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", 384, false)
		e := newOpenAIEmbedder(t, srv, func(c *provider.Config) {
			c.APIKey = ""
			c.Model = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
			c.NoDimensionsParam = true
		})
		in := texts(3)
		got, err := e.Embed(context.Background(), in, provider.Document)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		checkVectors(t, got, in, 384, 0)
		var body map[string]any
		if err := json.Unmarshal(srv.Log()[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		if _, ok := body["dimensions"]; ok {
			t.Errorf("request body %s has dimensions, want none", srv.Log()[0].Body)
		}
	})
	t.Run("dimensions refused by the server", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.AddModel("bge-small", 384, false)
		e := newOpenAIEmbedder(t, srv, func(c *provider.Config) { c.Model = "bge-small" })
		_, err := e.Embed(context.Background(), texts(1), provider.Document)
		if !errors.Is(err, provider.ErrBadInput) || !strings.Contains(err.Error(), "does not support specifying dimensions") {
			t.Fatalf("got %v, want ErrBadInput about dimensions", err)
		}
	})
	t.Run("native dimension differs", func(t *testing.T) {
		srv := providertest.NewOpenAI(t)
		srv.AddModel("nomic-embed-text", 768, false)
		e := newOpenAIEmbedder(t, srv, func(c *provider.Config) { c.Model = "nomic-embed-text"; c.NoDimensionsParam = true })
		_, err := e.Embed(context.Background(), texts(1), provider.Document)
		if !errors.Is(err, provider.ErrDimensionMismatch) || !strings.Contains(err.Error(), "768") {
			t.Fatalf("got %v, want ErrDimensionMismatch naming 768", err)
		}
	})
	t.Run("ambient OPENAI_API_KEY is not sent", func(t *testing.T) {
		t.Setenv("OPENAI_API_KEY", "sk-ambient-must-not-leak")
		t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
		srv := providertest.NewOpenAI(t)
		srv.SetKey("")
		e := newOpenAIEmbedder(t, srv, func(c *provider.Config) { c.APIKey = "" })
		if _, err := e.Embed(context.Background(), texts(1), provider.Document); err != nil {
			t.Fatalf("Embed: %v", err)
		}
		if got := srv.Log()[0].Header.Get("Authorization"); got != "" {
			t.Errorf("got Authorization %q, want none", got)
		}
	})

	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		want      error
		wantMsg   string
		wantAfter time.Duration
	}{
		{name: "TEI validation error", status: 422, body: `{"error":"Input validation error: inputs must have less than 512 tokens","error_type":"Validation"}`,
			want: provider.ErrBadInput, wantMsg: "must have less than 512 tokens"},
		{name: "TEI batch too large", status: 413, body: `{"error":"batch size 64 > maximum allowed batch size 32","error_type":"Validation"}`,
			want: provider.ErrBadInput, wantMsg: "maximum allowed batch size"},
		{name: "plain text 503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "7"}, body: "overloaded",
			want: provider.ErrTransient, wantMsg: "overloaded", wantAfter: 7 * time.Second},
		{name: "html 502", status: 502, body: "<html>bad gateway</html>", want: provider.ErrTransient},
		{name: "401 body not echoed", status: 401, body: `{"error":"bad token sk-echo"}`, want: provider.ErrInvalidKey},
		{name: "200 with garbage", status: 200, body: "not json", want: provider.ErrBadResponse},
		{name: "200 with too few vectors", status: 200,
			body: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`,
			want: provider.ErrBadResponse, wantMsg: "got 1 embeddings for 2 inputs"},
		{name: "200 with an all-zero vector", status: 200,
			body: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` + strings.Repeat("0.5,", 383) + `0.5]},{"object":"embedding","index":1,"embedding":[` +
				strings.Repeat("0,", 383) + `0]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`,
			want: provider.ErrBadResponse, wantMsg: "vector 1 is all zeros"},
		{name: "200 with duplicate index", status: 200,
			body: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1]},{"object":"embedding","index":0,"embedding":[1]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`,
			want: provider.ErrBadResponse, wantMsg: "appears twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if strings.HasPrefix(tc.body, "{") {
					w.Header().Set("Content-Type", "application/json")
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			e, err := provider.New(provider.Config{Provider: "openai", BaseURL: srv.URL + "/v1", Model: "m", APIKey: "sk-echo"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Embed(context.Background(), []string{"a", "b"}, provider.Document)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v (kind %s), want %v", err, kindOf(err), tc.want)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("got %q, want it to contain %q", err, tc.wantMsg)
			}
			if d, _ := provider.RetryAfter(err); d != tc.wantAfter {
				t.Errorf("got retry after %s, want %s", d, tc.wantAfter)
			}
			checkNoKey(t, err, "sk-echo")
			if n := calls.Load(); n != 1 {
				t.Errorf("got %d calls, want 1", n)
			}
		})
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	e, err := provider.New(provider.Config{Provider: "openai", BaseURL: url + "/v1", APIKey: "sk-conn-SECRET"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Embed(context.Background(), []string{"a"}, provider.Document)
	if !errors.Is(err, provider.ErrTransient) {
		t.Fatalf("got %v (kind %s), want ErrTransient", err, kindOf(err))
	}
	checkNoKey(t, err, "sk-conn-SECRET")
}
