package ingester_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

const ingestMethod = "cognicore.IngestService/IngestDocument"

// TestIngestCallIsTraced: the ingest job's span continues the trace its
// message carries, the IngestDocument call is a client span under it, and
// the call's metadata carries the trace to the backend, whose own span
// (a server instrumented with otelgrpc) is the client span's child.
func TestIngestCallIsTraced(t *testing.T) {
	e := newEnv(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.Res.Config.Tracer = tp

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(tracing.Propagator))))
	sink := ingestsink.New(ingestsink.Options{})
	sink.Register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	startIngester(t, e, lis.Addr().String())

	const id, n = "traced", 3
	for i := range n {
		e.publishVector(t, id, i)
	}
	ctx, parse := tracing.Tracer(tp).Start(context.Background(), "parse")
	e.publishJobCtx(ctx, t, id, n)
	parse.End()
	e.expectDone(t, id, n, 1)

	var stageSpan, client, server sdktrace.ReadOnlySpan
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == "ingest":
				stageSpan = s
			case s.Name() == ingestMethod && s.SpanKind() == trace.SpanKindClient:
				client = s
			case s.Name() == ingestMethod && s.SpanKind() == trace.SpanKindServer:
				server = s
			}
		}
		if stageSpan == nil || client == nil || server == nil {
			return fmt.Errorf("spans: ingest %v, client %v, server %v; want all three", stageSpan != nil, client != nil, server != nil)
		}
		return nil
	})
	for _, link := range []struct {
		what          string
		child, parent trace.SpanContext
		parentOfChild trace.SpanContext
	}{
		{"ingest span under the publisher's", stageSpan.SpanContext(), parse.SpanContext(), stageSpan.Parent()},
		{"IngestDocument client span under the ingest span", client.SpanContext(), stageSpan.SpanContext(), client.Parent()},
		{"the backend's span under the client span", server.SpanContext(), client.SpanContext(), server.Parent()},
	} {
		if link.child.TraceID() != parse.SpanContext().TraceID() || link.parentOfChild.SpanID() != link.parent.SpanID() {
			t.Errorf("%s: trace %s parent %s, want trace %s parent %s", link.what,
				link.child.TraceID(), link.parentOfChild.SpanID(), parse.SpanContext().TraceID(), link.parent.SpanID())
		}
	}
}

// TestIngestCountsAndClasses: an ingested document counts one document
// and its chunks; a document the backend refuses counts nothing but a
// backend error that failed its task.
func TestIngestCountsAndClasses(t *testing.T) {
	e := newEnv(t)
	reg := e.WithMetrics(t)
	_, addr := startSink(t)
	startIngester(t, e, addr)

	e.publishDocument(t, "first", 4)
	e.expectDone(t, "first", 4, 1)
	// The same PDF under another task: the backend refuses its metadata.
	for i := range 2 {
		e.publishVector(t, "copy", i)
	}
	e.publishJobAs(t, "copy", 2, "first")
	e.WaitTerminal(t, "copy")
	e.WaitSettled(t, pipeline.Ingest)

	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"pdfpipe_documents_total", map[string]string{"stage": "ingest"}, 1},
			{"pdfpipe_chunks_total", map[string]string{"stage": "ingest"}, 4},
			{"pdfpipe_pages_total", map[string]string{"stage": "ingest"}, 5},
			{"pdfpipe_stage_errors_total", map[string]string{"stage": "ingest", "class": "backend", "disposition": "failed"}, 1},
			{"pdfpipe_stage_errors_total", map[string]string{"stage": "ingest"}, 1},
			{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "ingest", "outcome": "ok"}, 1},
			{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "ingest", "outcome": "failed"}, 1},
		} {
			if got := stagetest.Metric(t, reg, c.name, c.labels); got != c.want {
				return fmt.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		return nil
	})
}

// publishJobCtx publishes the ingest job of task id (n chunks) in ctx's trace.
func (e *env) publishJobCtx(ctx context.Context, t *testing.T, id string, n int) {
	t.Helper()
	e.publishJobWith(ctx, t, id, n, id)
}

// publishJobAs publishes the ingest job of task id with the PDF of task
// hashOf (the same file uploaded twice).
func (e *env) publishJobAs(t *testing.T, id string, n int, hashOf string) {
	t.Helper()
	e.publishJobWith(context.Background(), t, id, n, hashOf)
}

func (e *env) publishJobWith(ctx context.Context, t *testing.T, id string, n int, hashOf string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stagetest.WaitLimit)
	defer cancel()
	if _, err := e.Status.Update(ctx, id, func(st *status.Status) { st.State = status.Embedding; st.Chunks = n }); err != nil {
		t.Fatalf("status: %v", err)
	}
	job := pipeline.IngestJob{Pages: n + 1, Chunks: n}
	job.Task.ID, job.Task.DocID, job.Task.UserID, job.Task.FileName = id, docID(id), "u1", id+".pdf"
	job.Document.SHA256, job.Document.Size = fileHash(hashOf), 4321
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Ingest.Subject(id), id, id+":ingest", job); err != nil {
		t.Fatalf("publish ingest job: %v", err)
	}
}
