package embedder_test

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// withKey stores key for the task as ProvideAPIKey would.
func (h *harness) withKey(task, prov, key string) {
	h.t.Helper()
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: prov, Key: key}, time.Hour); err != nil {
		h.t.Fatal(err)
	}
}

// checkFake asserts the vectors are the fake's embeddings of texts.
func checkFake(t *testing.T, task string, vecs []pipeline.Vector, texts []string) {
	t.Helper()
	for i, v := range vecs {
		checkChunk(t, task, i, v, texts[i])
		if !equal(v.Vector, providertest.Vector(texts[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
	}
}

func TestBatchesMapOntoRequests(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	fake.SetLatency(100 * time.Millisecond)
	h := newHarness(t)
	const task = "one-to-one"
	h.withKey(task, "openai", providertest.OpenAIKey)
	// As many workers as chunks: none waits in the client's buffer past
	// the tests' 2s AckWait on a loaded machine.
	svc := h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_LINGER": "50ms", "EMBED_WORKERS": "256"})
	in := h.submit(task, 256)
	checkFake(t, task, h.waitVectors(task, len(in), 30*time.Second), in)

	log := fake.Log()
	// An OpenAI-compatible server takes 32 inputs per request: the
	// batcher's batches are the requests, not 2048-text batches the client
	// would cut into sequential 32s.
	for i, r := range log {
		if len(r.Inputs) > provider.CompatibleMaxBatch {
			t.Errorf("request %d: %d inputs, want at most %d", i, len(r.Inputs), provider.CompatibleMaxBatch)
		}
	}
	if min := len(in) / provider.CompatibleMaxBatch; len(log) < min || len(log) > len(in)/2 {
		t.Errorf("%d chunks took %d requests, want %d..%d", len(in), len(log), min, len(in)/2)
	}
	sentOnce(t, log, in)
	if st := svc.Stats(); st.Requests != int64(len(log)) || st.Texts != int64(len(in)) {
		t.Errorf("stats: %d requests carrying %d texts, want %d and %d", st.Requests, st.Texts, len(log), len(in))
	}
}

func TestBatchTokenBudget(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai", "EMBEDDING_BASE_URL": fake.URL, "EMBEDDING_API_KEY": providertest.OpenAIKey,
		"EMBED_BATCH_TOKENS": "100", "EMBED_LINGER": "50ms",
	})
	const task = "token-budget"
	h.createTask(task)
	in := make([]string, 20)
	for i := range in {
		in[i] = fmt.Sprintf("%03d %s", i, strings.Repeat("abc ", 29)) // 120 bytes: 40 estimated tokens
	}
	h.publish(task, in, 0, false)
	checkFake(t, task, h.waitVectors(task, len(in), 20*time.Second), in)
	for i, r := range chunkRequests(fake.Log()) {
		tokens := 0
		for _, s := range r.Inputs {
			tokens += provider.EstimateTokens(s)
		}
		if tokens > 100 {
			t.Errorf("request %d: %d inputs of %d estimated tokens, want at most 100", i, len(r.Inputs), tokens)
		}
	}
	sentOnce(t, fake.Log(), in)
}

func TestLongInput(t *testing.T) {
	t.Parallel()
	long := "LONGTEXT " + strings.Repeat("the invoice total of the order is due within thirty days ", 20)
	const limit = 50
	tests := []struct {
		mode  string
		check func(t *testing.T, h *harness, fake *providertest.OpenAIServer, svc *embedder.Service, task string, in []string)
	}{
		{"truncate", func(t *testing.T, h *harness, fake *providertest.OpenAIServer, svc *embedder.Service, task string, in []string) {
			vecs := h.waitVectors(task, len(in), 20*time.Second)
			want := provider.TruncateTokens(long, limit)
			var sent []string
			for _, r := range chunkRequests(fake.Log()) {
				for _, s := range r.Inputs {
					if strings.HasPrefix(s, "LONGTEXT") {
						sent = append(sent, s)
					}
				}
			}
			if len(sent) != 1 || sent[0] != want || provider.EstimateTokens(sent[0]) > limit {
				t.Errorf("sent %d versions of the long text (%v), want its %d-token prefix once", len(sent), sent, limit)
			}
			if !equal(vecs[0].Vector, providertest.Vector(want, dim), 0) {
				t.Errorf("vector is not the embedding of the truncated text")
			}
			if vecs[0].Chunk.Text != long {
				t.Errorf("the chunk's text was changed in the vector message")
			}
			if st := svc.Stats(); st.Truncated != 1 {
				t.Errorf("stats: %d truncated, want 1", st.Truncated)
			}
		}},
		{"split", func(t *testing.T, h *harness, fake *providertest.OpenAIServer, svc *embedder.Service, task string, in []string) {
			vecs := h.waitVectors(task, len(in), 20*time.Second)
			parts := provider.SplitTokens(long, limit)
			acc := make([]float64, dim)
			for _, p := range parts {
				w := float64(provider.EstimateTokens(p))
				for j, x := range providertest.Vector(p, dim) {
					acc[j] += w * float64(x)
				}
			}
			var n float64
			for _, x := range acc {
				n += x * x
			}
			want := make([]float32, dim)
			for j, x := range acc {
				want[j] = float32(x / math.Sqrt(n))
			}
			if !equal(vecs[0].Vector, want, 1e-6) {
				t.Errorf("vector is not the weighted mean of the %d parts' embeddings", len(parts))
			}
			got := 0
			for _, r := range chunkRequests(fake.Log()) {
				for _, s := range r.Inputs {
					if provider.EstimateTokens(s) > limit {
						t.Errorf("an input of %d tokens was sent, limit %d", provider.EstimateTokens(s), limit)
					}
					if slices.Contains(parts, s) {
						got++
					}
				}
			}
			if got != len(parts) || len(parts) < 2 {
				t.Errorf("sent %d of %d parts", got, len(parts))
			}
			if st := svc.Stats(); st.Split != 1 {
				t.Errorf("stats: %d split, want 1", st.Split)
			}
		}},
		{"fail", func(t *testing.T, h *harness, fake *providertest.OpenAIServer, svc *embedder.Service, task string, in []string) {
			st := h.waitFailed(task, 20*time.Second)
			if !strings.Contains(st.Error, "EMBED_LONG_INPUT=fail") || !strings.Contains(st.Error, "chunk 0") {
				t.Errorf("reason %q does not name the chunk and EMBED_LONG_INPUT=fail", st.Error)
			}
			if svc.Stats().TooLong == 0 {
				t.Errorf("stats: no input counted as too long")
			}
			for _, r := range chunkRequests(fake.Log()) {
				for _, s := range r.Inputs {
					if strings.HasPrefix(s, "LONGTEXT") {
						t.Errorf("the long text was sent")
					}
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewOpenAI(t)
			h := newHarness(t)
			svc := h.start(map[string]string{
				"EMBEDDING_PROVIDER": "openai", "EMBEDDING_BASE_URL": fake.URL, "EMBEDDING_API_KEY": providertest.OpenAIKey,
				"EMBED_LONG_INPUT": tt.mode, "EMBED_MAX_INPUT_TOKENS": fmt.Sprint(limit),
			})
			task := "long-" + tt.mode
			h.createTask(task)
			in := append([]string{long}, texts(task, 5)...)
			h.publish(task, in, 0, false)
			tt.check(t, h, fake, svc, task, in)
			h.stopAll()
			logs := h.logs.String()
			if !strings.Contains(logs, "token limit") {
				t.Errorf("nothing logged about the long input")
			}
			if strings.Contains(logs, "invoice total of the order") {
				t.Errorf("the logs contain chunk text")
			}
		})
	}
}

func TestRateLimitShrinksTheBatch(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	fake.FailNext(1, providertest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 100 * time.Millisecond})
	h := newHarness(t)
	const task = "aimd"
	h.withKey(task, "openai", providertest.OpenAIKey)
	// One request at a time, batches of 32 filled before they leave.
	svc := h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_REQUESTS": "1", "EMBED_LINGER": "300ms"})
	in := h.submit(task, 32)
	checkFake(t, task, h.waitVectors(task, len(in), 20*time.Second), in)
	log := fake.Log()
	if len(log) < 3 || log[0].Status != http.StatusTooManyRequests {
		t.Fatalf("statuses %v, want a 429 then the retries", statuses(log))
	}
	failed := log[0].Inputs
	if failed == nil {
		// A refused request is not parsed by the fake.
		failed = inputsOf(t, log[0].Body)
	}
	// The 429'd texts come back in batches of at most half the batch size,
	// after at least Retry-After.
	resent := 0
	for _, r := range log[1:] {
		if len(r.Inputs) > provider.CompatibleMaxBatch/2 {
			t.Errorf("after the 429 a request carried %d inputs, want at most %d", len(r.Inputs), provider.CompatibleMaxBatch/2)
		}
		if gap := r.Time.Sub(log[0].Time); gap < 100*time.Millisecond {
			t.Errorf("resent %s after the 429, want at least the 100ms Retry-After", gap)
		}
		resent += len(r.Inputs)
	}
	if resent != len(failed) || len(failed) < 2 {
		t.Errorf("resent %d texts of the %d refused", resent, len(failed))
	}
	sentOnce(t, log, in)
	st := svc.Stats()
	if st.RateLimited != 1 || st.Shrinks != 1 || st.Retries < 1 {
		t.Errorf("stats %+v, want 1 rate limited, 1 shrink, retries", st)
	}

	// Successes grow the batch again, slowly, up to the limit.
	const task2 = "aimd-grow"
	h.withKey(task2, "openai", providertest.OpenAIKey)
	h.createTask(task2)
	in2 := texts(task2, 400)
	before := len(log)
	h.publish(task2, in2, 0, false)
	checkFake(t, task2, h.waitVectors(task2, len(in2), 20*time.Second), in2)
	sizes := []int{}
	for _, r := range fake.Log()[before:] {
		sizes = append(sizes, len(r.Inputs))
	}
	if biggest := slices.Max(sizes); biggest <= provider.CompatibleMaxBatch/2+1 || biggest > provider.CompatibleMaxBatch {
		t.Errorf("batch sizes after the 429: %v, want growth beyond %d up to at most %d", sizes, provider.CompatibleMaxBatch/2+1, provider.CompatibleMaxBatch)
	}
	// One more text per successful request since the halving (before-1 of them).
	if grown := provider.CompatibleMaxBatch/2 + before - 1; sizes[0] > grown {
		t.Errorf("first batch after recovery had %d texts, want at most %d: the batch grew back at once, not slowly", sizes[0], grown)
	}
}

func inputsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var v struct {
		Input []string `json:"input"`
	}
	if err := jsonUnmarshal(body, &v); err != nil {
		t.Fatalf("request body: %v", err)
	}
	return v.Input
}

func TestServerErrorsAndTimeoutsAreRetried(t *testing.T) {
	t.Parallel()
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t)
		fake.FailNext(2, providertest.Failure{Status: http.StatusServiceUnavailable})
		h := newHarness(t)
		const task = "server-errors"
		h.withKey(task, "openai", providertest.OpenAIKey)
		svc := h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_REQUESTS": "1", "EMBED_LINGER": "200ms"})
		in := h.submit(task, 10)
		checkFake(t, task, h.waitVectors(task, len(in), 20*time.Second), in)
		log := fake.Log()
		if len(log) < 3 || log[0].Status != 503 || log[1].Status != 503 || !bytes.Equal(log[0].Body, log[2].Body) || log[2].Status != 200 {
			t.Errorf("statuses %v, want 503, 503, then the same request answered", statuses(log))
		}
		sentOnce(t, log, in)
		if st := svc.Stats(); st.Retries < 2 {
			t.Errorf("stats: %d retries, want 2", st.Retries)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t)
		fake.SetLatency(5 * time.Second)
		h := newHarness(t)
		const task = "timeouts"
		h.withKey(task, "openai", providertest.OpenAIKey)
		svc := h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_TIMEOUT": "300ms", "EMBED_LINGER": "200ms"})
		in := h.submit(task, 10)
		testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if fake.Requests() == 0 {
				return fmt.Errorf("no request yet")
			}
			return nil
		})
		fake.SetLatency(0) // the request already waiting times out; its retry is answered
		checkFake(t, task, h.waitVectors(task, len(in), 20*time.Second), in)
		log := fake.Log()
		if log[0].Status != 499 {
			t.Errorf("statuses %v, want the first request abandoned by the client (499)", statuses(log))
		}
		sentOnce(t, log, in)
		if st := svc.Stats(); st.Retries < 1 {
			t.Errorf("stats: %d retries, want at least 1", st.Retries)
		}
	})
	t.Run("403 is not retried", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t)
		fake.FailNext(1, providertest.Failure{Status: http.StatusForbidden, Message: "Project does not have access"})
		h := newHarness(t)
		const task = "forbidden"
		h.withKey(task, "openai", providertest.OpenAIKey)
		h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_LINGER": "200ms"})
		h.createTask(task)
		h.publish(task, texts(task, 10), 0, false)
		st := h.waitFailed(task, 15*time.Second)
		if !strings.Contains(st.Error, "invalid API key for openai") {
			t.Errorf("reason %q, want \"invalid API key for openai\"", st.Error)
		}
		h.waitDrained(10 * time.Second)
		if n := fake.Requests(); n != 1 {
			t.Errorf("fake saw %d requests, want 1: a 403 is not retried", n)
		}
	})
}

func TestCacheAnswersReplays(t *testing.T) {
	t.Parallel()
	const key = "sk-cache-test-key-98d7a6e5f4c3b2a1"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	svc := h.start(map[string]string{"OPENAI_BASE_URL": fake.URL})
	const first, again = "cache-first", "cache-reupload"
	h.withKey(first, "openai", key)
	h.withKey(again, "OpenAI", key)
	h.createTask(first)
	in := texts("same-document", 40)
	h.publish(first, in, 0, false)
	checkFake(t, first, h.waitVectors(first, len(in), 20*time.Second), in)
	requests := fake.Requests()
	if st := svc.Stats(); st.CacheMisses != int64(len(in)) || st.CacheHits != 0 {
		t.Errorf("first run: %d hits, %d misses, want 0 and %d", st.CacheHits, st.CacheMisses, len(in))
	}

	// A re-upload of the same text: every vector from the cache.
	h.createTask(again)
	h.publish(again, in, 0, false)
	vecs := h.waitVectors(again, len(in), 20*time.Second)
	for i, v := range vecs {
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: cached vector differs from the provider's", i)
		}
	}
	if n := fake.Requests(); n != requests {
		t.Errorf("the re-upload made %d API requests, want 0", n-requests)
	}
	// A replay of the first task's stage messages: no request either.
	h.publish(first, in, 0, false)
	h.waitDrained(10 * time.Second)
	if n := fake.Requests(); n != requests {
		t.Errorf("the replay made %d API requests, want 0", n-requests)
	}
	if st := svc.Stats(); st.CacheHits != int64(2*len(in)) || st.CacheMisses != int64(len(in)) {
		t.Errorf("after the replays: %d hits, %d misses, want %d and %d", st.CacheHits, st.CacheMisses, 2*len(in), len(in))
	}
	h.checkSecret(key)
	if !strings.Contains(h.logs.String(), `"cache_hits":80`) {
		t.Errorf("the stats logged at exit do not show the 80 cache hits")
	}
}
