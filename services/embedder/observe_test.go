package embedder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// observe gives the embedders started next a tracer and metrics.
func (h *harness) observe() (*tracetest.SpanRecorder, *prometheus.Registry) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := metrics.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	h.tracer, h.metrics = tp, m
	return rec, reg
}

// inputs returns the texts a request to the fake carried, read from its
// body (refused requests are not parsed by the fake).
func inputs(t *testing.T, r providertest.Request) []string {
	t.Helper()
	var body struct {
		Input []string `json:"input"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("request body: %v", err)
	}
	return body.Input
}

// TestProviderRequestsCountedAndTraced: two embed messages of two
// documents, each published in a trace of its own, are embedded together
// (one linger) through a 429 and its retry. Every provider request is a
// span in one of the two traces, a child of one message's span, linking
// to the other's; requests, texts, tokens and 429s are counted as the
// provider saw them, the chunks once, and a re-upload is counted as
// cache hits without a request.
func TestProviderRequestsCountedAndTraced(t *testing.T) {
	t.Parallel()
	const key = "sk-observe-key-2c26b46b68ffc68ff99b"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	fake.FailNext(1, providertest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 50 * time.Millisecond})
	h := newHarness(t)
	rec, reg := h.observe()

	docs := []string{"doc-a", "doc-b"}
	in := map[string][]string{}
	publishers := map[string]trace.SpanContext{}
	for _, task := range docs {
		h.withKey(task, "openai", key)
		h.createTask(task)
		in[task] = texts(task, 8)
		var chunks []pipeline.Chunk
		for i, text := range in[task] {
			chunks = append(chunks, pipeline.Chunk{ID: fmt.Sprintf("%s-chunk-%d", task, i), Index: i, Text: text, PageStart: 1, PageEnd: 1})
		}
		ctx, span := tracing.Tracer(h.tracer).Start(h.ctx, "parse "+task)
		if _, err := pipeline.Publish(ctx, h.js, pipeline.Embed.Subject(task, "0"), task, "", pipeline.EmbedJob{TaskID: task, Chunks: chunks}); err != nil {
			t.Fatal(err)
		}
		span.End()
		publishers[task] = span.SpanContext()
	}
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBED_LINGER": "300ms"})
	for _, task := range docs {
		checkFake(t, task, h.waitVectors(task, len(in[task]), 20*time.Second), in[task])
	}
	h.waitDrained(10 * time.Second)

	// The spans: one per embed message, a child of its publisher; the
	// provider requests under them.
	var stageSpans, requestSpans []sdktrace.ReadOnlySpan
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		stageSpans, requestSpans = nil, nil
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "embed":
				stageSpans = append(stageSpans, s)
			case "embeddings text-embedding-3-small":
				requestSpans = append(requestSpans, s)
			}
		}
		if len(stageSpans) != 2 || len(requestSpans) != len(fake.Log()) {
			return fmt.Errorf("%d embed spans and %d request spans, want 2 and %d (one per request the provider saw)",
				len(stageSpans), len(requestSpans), len(fake.Log()))
		}
		return nil
	})
	msgSpan := map[trace.SpanID]string{} // embed span → task
	for _, s := range stageSpans {
		task := ""
		for name, pub := range publishers {
			if s.Parent().SpanID() == pub.SpanID() && s.SpanContext().TraceID() == pub.TraceID() {
				task = name
			}
		}
		if task == "" {
			t.Fatalf("embed span %s has parent %s, no publisher's", s.SpanContext().SpanID(), s.Parent().SpanID())
		}
		msgSpan[s.SpanContext().SpanID()] = task
	}
	served := map[string]bool{} // tasks whose message spans a request names
	for _, s := range requestSpans {
		task, ok := msgSpan[s.Parent().SpanID()]
		if !ok || s.SpanContext().TraceID() != publishers[task].TraceID() {
			t.Errorf("request span's parent %s is no embed message's span", s.Parent().SpanID())
			continue
		}
		served[task] = true
		for _, l := range s.Links() {
			other, ok := msgSpan[l.SpanContext.SpanID()]
			if !ok || other == task {
				t.Errorf("request span links to %s, want only the other message's span", l.SpanContext.SpanID())
			}
			served[other] = true
		}
	}
	if len(served) != 2 {
		t.Errorf("the request spans name the messages of %v, want both documents'", served)
	}

	// The counters, against what the provider saw.
	var ok, limited, texts, tokens float64
	for _, r := range fake.Log() {
		got := inputs(t, r)
		texts += float64(len(got))
		switch r.Status {
		case http.StatusOK:
			ok++
			for _, text := range got {
				tokens += float64(provider.EstimateTokens(text))
			}
		case http.StatusTooManyRequests:
			limited++
		}
	}
	if limited != 1 || ok == 0 {
		t.Fatalf("the fake answered %v 429s and %v successes, want 1 and some", limited, ok)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pdfpipe_embed_provider_requests_total", map[string]string{"provider": "openai", "status": "ok"}, ok},
		{"pdfpipe_embed_provider_requests_total", map[string]string{"provider": "openai", "status": "rate_limited"}, limited},
		{"pdfpipe_embed_provider_requests_total", map[string]string{"provider": "openai"}, ok + limited},
		{"pdfpipe_embed_provider_texts_total", map[string]string{"provider": "openai"}, texts},
		{"pdfpipe_embed_provider_tokens_total", map[string]string{"provider": "openai"}, tokens},
		{"pdfpipe_embed_provider_request_seconds", map[string]string{"provider": "openai"}, ok + limited},
		{"pdfpipe_chunks_total", map[string]string{"stage": "embed"}, 16},
		{"pdfpipe_embed_cache_lookups_total", map[string]string{"result": "miss"}, 16},
		{"pdfpipe_embed_cache_lookups_total", map[string]string{"result": "hit"}, 0},
		{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "embed", "outcome": "ok"}, 2},
	} {
		if got := stagetest.Metric(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	// A re-upload of document a: every text from the cache, no request.
	requests := len(fake.Log())
	h.withKey("doc-a2", "openai", key)
	h.createTask("doc-a2")
	h.publishBatches("doc-a2", in["doc-a"], 16)
	h.waitVectors("doc-a2", 8, 20*time.Second)
	h.waitDrained(10 * time.Second)
	if n := len(fake.Log()); n != requests {
		t.Errorf("the re-upload made %d requests, want 0", n-requests)
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		hits := stagetest.Metric(t, reg, "pdfpipe_embed_cache_lookups_total", map[string]string{"result": "hit"})
		chunks := stagetest.Metric(t, reg, "pdfpipe_chunks_total", map[string]string{"stage": "embed"})
		if hits != 8 || chunks != 24 {
			return fmt.Errorf("cache hits %v, chunks %v; want 8 and 24", hits, chunks)
		}
		return nil
	})
}

// TestProviderErrorsAreClassed: a wrong key and a key that never comes
// fail their tasks as the provider's errors; the 401s are counted as
// invalid_key requests.
func TestProviderErrorsAreClassed(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	fake.SetKey("sk-the-right-key-000000000000000000")
	h := newHarness(t)
	_, reg := h.observe()
	h.withKey("wrong-key", "openai", "sk-wrong-key-5e884898da28047151d0e56f")
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai", // no key, no EMBEDDING_BASE_URL: tasks wait for theirs
		"OPENAI_BASE_URL":    fake.URL,
		"API_KEY_WAIT":       "500ms",
	})
	for _, task := range []string{"wrong-key", "no-key"} {
		h.createTask(task)
		h.publishBatches(task, texts(task, 4), 4)
	}
	for _, task := range []string{"wrong-key", "no-key"} {
		if st := h.waitFailed(task, 15*time.Second); st.Stage != string(pipeline.Embed) {
			t.Errorf("%s failed at %q, want embed", task, st.Stage)
		}
	}
	h.waitDrained(10 * time.Second)
	var unauthorized float64
	for _, r := range fake.Log() {
		if r.Status == http.StatusUnauthorized {
			unauthorized++
		}
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		failed := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "embed", "class": "provider", "disposition": "failed"})
		other := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "embed", "class": "other"})
		invalid := stagetest.Metric(t, reg, "pdfpipe_embed_provider_requests_total", map[string]string{"provider": "openai", "status": "invalid_key"})
		if failed != 2 || other != 0 || unauthorized == 0 || invalid != unauthorized {
			return fmt.Errorf("errors{class=provider,failed} %v, {class=other} %v, invalid_key requests %v (the fake answered %v 401s); want 2, 0 and the 401s",
				failed, other, invalid, unauthorized)
		}
		return nil
	})
	if n := stagetest.Metric(t, reg, "pdfpipe_embed_provider_requests_total", map[string]string{"status": "ok"}); n != 0 {
		t.Errorf("%v requests counted ok, want none", n)
	}
}
