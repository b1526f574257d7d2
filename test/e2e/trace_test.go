package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const ingestMethod = "cognicore.IngestService/IngestDocument"

// TestOneDocumentIsOneTrace pushes two documents through Redis, the
// gateway and every stage on a real JetStream to a backend whose gRPC
// server is instrumented too, with an in-memory span exporter. Each
// document is one trace: the gateway's span at its root, then fetch,
// parse, an embed span per message with the embedding provider's
// requests under them, ingest, the IngestDocument client span and the
// backend's server span, each the child of the one before; no span of
// one document's trace belongs to the other. The stages' metrics count
// both documents.
func TestOneDocumentIsOneTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	redisURL := testenv.StartRedis(t)
	pdfs := map[string][]byte{
		"trace-doc-1": samplePDF(t, 6, "First traced document"),
		"trace-doc-2": samplePDF(t, 3, "Second traced document"),
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := pdfs[r.URL.Path[1:]]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer web.Close()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	m := metrics.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	st := startStackWith(t, map[string]string{
		"FETCH_ALLOW_HOSTS": web.Listener.Addr().String(),
		"REDIS_URL":         redisURL,
		"TEMP_DIR":          t.TempDir(),
	}, stackOptions{Tracer: tp, Metrics: m, SinkOptions: []grpc.ServerOption{grpc.StatsHandler(
		otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(tracing.Propagator)))}})
	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()

	for id := range pdfs {
		task := fmt.Sprintf(`{"DocID":"%s","FileName":"%s.pdf","UserID":"u1","URL":"%s/%s","RagMode":"true"}`, id, id, web.URL, id)
		if err := rdb.LPush(ctx, "queue:upload_tasks", task).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Sink.WaitDocuments(ctx, len(pdfs)); err != nil {
		t.Fatalf("waiting for the backend: %v\nlogs:\n%s", err, st.Logs)
	}
	store := status.New(st.Res.Status)
	final := map[string]status.Status{}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for id := range pdfs {
			s, err := store.Get(ctx, id)
			if err != nil || s.State != status.Done {
				return fmt.Errorf("task %s: %s %v", id, s.State, err)
			}
			final[id] = s
		}
		return nil
	})

	// Spans end after their message is settled: wait until each
	// document's ingest span and both IngestDocument spans are in.
	byID := map[trace.SpanID]tracetest.SpanStub{}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		clear(byID)
		ingests, calls := 0, 0
		for _, s := range exp.GetSpans() {
			byID[s.SpanContext.SpanID()] = s
			switch s.Name {
			case "ingest":
				ingests++
			case ingestMethod:
				calls++
			}
		}
		if ingests != len(pdfs) || calls != 2*len(pdfs) {
			return fmt.Errorf("%d ingest spans and %d IngestDocument spans, want %d and %d", ingests, calls, len(pdfs), 2*len(pdfs))
		}
		return nil
	})

	traces := map[trace.TraceID][]tracetest.SpanStub{}
	for _, s := range byID {
		traces[s.SpanContext.TraceID()] = append(traces[s.SpanContext.TraceID()], s)
	}
	docTrace := map[string]trace.TraceID{}
	for id, s := range final {
		var root *tracetest.SpanStub
		for _, spans := range traces {
			for i, sp := range spans {
				if sp.Name == "gateway" && attr(sp, stage.AttrTaskID) == id {
					root = &spans[i]
				}
			}
		}
		if root == nil {
			t.Fatalf("no gateway span for %s", id)
		}
		tid := root.SpanContext.TraceID()
		docTrace[id] = tid
		if root.Parent.IsValid() {
			t.Errorf("%s: the gateway span has a parent %s; it should start the trace", id, root.Parent.SpanID())
		}
		checkTrace(t, id, traces[tid], byID, s, len(pdfs[id]))
		count := map[string]int{}
		for _, sp := range traces[tid] {
			count[sp.Name]++
		}
		t.Logf("%s (%d pages, %d chunks): trace %s, spans %v", id, s.Pages, s.Chunks, tid, count)
	}
	if docTrace["trace-doc-1"] == docTrace["trace-doc-2"] {
		t.Errorf("both documents are in trace %s", docTrace["trace-doc-1"])
	}
	// Every span belongs to one of the documents' traces.
	for tid, spans := range traces {
		if tid != docTrace["trace-doc-1"] && tid != docTrace["trace-doc-2"] {
			names := []string{}
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Errorf("trace %s (%v) belongs to no document", tid, names)
		}
	}

	// The stages' counters, against the documents' status records.
	var chunks, pages float64
	for _, s := range final {
		chunks += float64(s.Chunks)
		pages += float64(s.Pages)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pdfpipe_documents_total", map[string]string{"stage": "gateway"}, 2},
		{"pdfpipe_documents_total", map[string]string{"stage": "fetch"}, 2},
		{"pdfpipe_documents_total", map[string]string{"stage": "parse"}, 2},
		{"pdfpipe_documents_total", map[string]string{"stage": "ingest"}, 2},
		{"pdfpipe_pages_total", map[string]string{"stage": "parse"}, pages},
		{"pdfpipe_chunks_total", map[string]string{"stage": "parse"}, chunks},
		{"pdfpipe_chunks_total", map[string]string{"stage": "embed"}, chunks},
		{"pdfpipe_chunks_total", map[string]string{"stage": "ingest"}, chunks},
		{"pdfpipe_bytes_total", map[string]string{"stage": "fetch"}, float64(len(pdfs["trace-doc-1"]) + len(pdfs["trace-doc-2"]))},
		{"pdfpipe_embed_provider_texts_total", map[string]string{"provider": "local"}, chunks},
		{"pdfpipe_stage_errors_total", nil, 0},
		{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "parse", "outcome": "ok"}, 2},
	} {
		if got := stagetest.Metric(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// checkTrace checks one document's trace: a span per stage, each the
// child of the one before, with the document's figures.
func checkTrace(t *testing.T, id string, spans []tracetest.SpanStub, byID map[trace.SpanID]tracetest.SpanStub, st status.Status, size int) {
	t.Helper()
	named := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		named[s.Name] = append(named[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(named[name]) != 1 {
			t.Fatalf("%s: %d %q spans in its trace, want 1", id, len(named[name]), name)
		}
		return named[name][0]
	}
	parentIs := func(child tracetest.SpanStub, parent tracetest.SpanStub) {
		t.Helper()
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("%s: %q span's parent is %q, want %q", id, child.Name, byID[child.Parent.SpanID()].Name, parent.Name)
		}
	}
	gw, fetch, parse, ingest := one("gateway"), one("fetch"), one("parse"), one("ingest")
	var client, server tracetest.SpanStub
	for _, s := range named[ingestMethod] {
		switch s.SpanKind {
		case trace.SpanKindClient:
			client = s
		case trace.SpanKindServer:
			server = s
		}
	}
	if len(named[ingestMethod]) != 2 || !client.SpanContext.IsValid() || !server.SpanContext.IsValid() {
		t.Fatalf("%s: IngestDocument spans %d, want a client and a server span", id, len(named[ingestMethod]))
	}
	parentIs(fetch, gw)
	parentIs(parse, fetch)
	parentIs(ingest, parse)
	parentIs(client, ingest)
	parentIs(server, client)

	embeds := named["embed"]
	if want := (st.Chunks + 15) / 16; len(embeds) != want {
		t.Errorf("%s: %d embed spans, want %d (one per message of 16 chunks)", id, len(embeds), want)
	}
	embedIDs := map[trace.SpanID]bool{}
	embedded := 0
	for _, e := range embeds {
		parentIs(e, parse)
		embedIDs[e.SpanContext.SpanID()] = true
		embedded += int(attrInt(e, stage.AttrChunks))
	}
	if embedded != st.Chunks {
		t.Errorf("%s: embed spans report %d chunks, want %d", id, embedded, st.Chunks)
	}
	// The embedding requests: those in this trace are children of its
	// embed spans; a request shared with the other document sits in the
	// other trace and links here. Either way the document's embed spans
	// lead to requests.
	for _, r := range named["embeddings local-ngram-v1"] {
		if !embedIDs[r.Parent.SpanID()] {
			t.Errorf("%s: an embedding request's parent is %q, not one of its embed spans", id, byID[r.Parent.SpanID()].Name)
		}
	}
	served := 0
	for _, r := range byID {
		if r.Name != "embeddings local-ngram-v1" {
			continue
		}
		if embedIDs[r.Parent.SpanID()] {
			served++
			continue
		}
		for _, l := range r.Links {
			if embedIDs[l.SpanContext.SpanID()] {
				served++
			}
		}
	}
	if served == 0 {
		t.Errorf("%s: no embedding request span is a child of, or links to, its embed spans", id)
	}
	for _, c := range []struct {
		span tracetest.SpanStub
		key  attribute.Key
		want int64
	}{
		{fetch, stage.AttrBytes, int64(size)},
		{parse, stage.AttrPages, int64(st.Pages)},
		{parse, stage.AttrChunks, int64(st.Chunks)},
		{ingest, stage.AttrChunks, int64(st.Chunks)},
	} {
		if got := attrInt(c.span, c.key); got != c.want {
			t.Errorf("%s: %s span's %s = %d, want %d", id, c.span.Name, c.key, got, c.want)
		}
	}
	for _, s := range []tracetest.SpanStub{fetch, parse, ingest} {
		if attr(s, stage.AttrTaskID) != id || attr(s, stage.AttrOutcome) != "ok" {
			t.Errorf("%s: %s span task %q outcome %q, want %s ok", id, s.Name, attr(s, stage.AttrTaskID), attr(s, stage.AttrOutcome), id)
		}
	}
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func attrInt(s tracetest.SpanStub, key attribute.Key) int64 {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}
