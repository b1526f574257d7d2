package stage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

var errNotPDF = errors.New("not a pdf")

// TestRunnerTracesAndCounts: each delivery is a span, a child of the span
// that published the message (through its headers on a real JetStream),
// carrying what the handler reported and how it ended; the stage's
// metrics count work only for messages that succeeded, errors by the
// stage's own class (else the generic one), and every delivery's latency
// by outcome.
func TestRunnerTracesAndCounts(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := metrics.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)

	var c calls
	var f failures
	r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
		n := c.record(msg)
		switch msg.Headers().Get(pipeline.HeaderTaskID) {
		case "ok":
			stage.Report(ctx, metrics.Work{Documents: 1, Pages: 3, Chunks: 4})
			stage.Report(ctx, metrics.Work{Chunks: 3, Bytes: 100}) // adds up
		case "flaky":
			stage.Report(ctx, metrics.Work{Documents: 1, Chunks: 5}) // each delivery reports
			if n == 1 {
				return errors.New("connection reset") // no class names it: other, retried
			}
		case "bad":
			return stage.Permanent(fmt.Errorf("parse bad: %w", errNotPDF))
		case "boom":
			panic("handler bug")
		}
		return nil
	}), f.onFail)
	r.Tracer, r.Metrics = tp, m
	r.Classify = func(err error) stage.Class {
		if errors.Is(err, errNotPDF) {
			return stage.ClassBadInput
		}
		return ""
	}

	// "ok" is published inside a span: its handler's span continues it.
	pubCtx, pub := tracing.Tracer(tp).Start(h.ctx, "publisher")
	if _, err := pipeline.Publish(pubCtx, h.res.JS, pipeline.Fetch.Subject("ok"), "ok", "", "ok"); err != nil {
		t.Fatal(err)
	}
	pub.End()
	for _, id := range []string{"flaky", "bad", "boom"} {
		h.publish(id)
	}
	h.start(r)
	h.waitSettled(4)

	// ok, flaky twice, bad, boom: five deliveries, five spans (each ends
	// right after its disposition).
	var spans []sdktrace.ReadOnlySpan
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		spans = nil
		for _, s := range rec.Ended() {
			if s.Name() == "test" {
				spans = append(spans, s)
			}
		}
		if len(spans) != 5 {
			return fmt.Errorf("%d stage spans ended, want 5", len(spans))
		}
		return nil
	})
	byTask := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		id := attr(s, stage.AttrTaskID).AsString()
		byTask[id] = append(byTask[id], s)
	}

	okSpan := byTask["ok"][0]
	if okSpan.SpanContext().TraceID() != pub.SpanContext().TraceID() || okSpan.Parent().SpanID() != pub.SpanContext().SpanID() {
		t.Errorf("ok's span: trace %s parent %s, want the publisher's trace %s and span %s",
			okSpan.SpanContext().TraceID(), okSpan.Parent().SpanID(), pub.SpanContext().TraceID(), pub.SpanContext().SpanID())
	}
	for _, tc := range []struct {
		key  attribute.Key
		want attribute.Value
	}{
		{stage.AttrPages, attribute.IntValue(3)},
		{stage.AttrChunks, attribute.IntValue(7)},
		{stage.AttrBytes, attribute.Int64Value(100)},
		{stage.AttrOutcome, attribute.StringValue("ok")},
		{"messaging.destination.name", attribute.StringValue(pipeline.Fetch.Subject("ok"))},
	} {
		if got := attr(okSpan, tc.key); got != tc.want {
			t.Errorf("ok's span %s = %v, want %v", tc.key, got.Emit(), tc.want.Emit())
		}
	}
	if byTask["flaky"][0].Parent().IsValid() {
		t.Errorf("flaky was published without a span, yet its handler's span has parent %s", byTask["flaky"][0].Parent().SpanID())
	}
	for _, tc := range []struct {
		task, outcome, class string
		status               codes.Code
	}{
		{"bad", "failed", "bad_input", codes.Error},
		{"boom", "failed", "internal", codes.Error},
	} {
		s := byTask[tc.task][0]
		if got := attr(s, stage.AttrOutcome).AsString(); got != tc.outcome {
			t.Errorf("%s's span outcome %q, want %q", tc.task, got, tc.outcome)
		}
		if got := attr(s, stage.AttrErrorClass).AsString(); got != tc.class {
			t.Errorf("%s's span error class %q, want %q", tc.task, got, tc.class)
		}
		if s.Status().Code != tc.status {
			t.Errorf("%s's span status %v, want %v", tc.task, s.Status().Code, tc.status)
		}
	}
	flakyOutcomes := []string{}
	for _, s := range byTask["flaky"] {
		flakyOutcomes = append(flakyOutcomes, attr(s, stage.AttrOutcome).AsString())
	}
	if got := strings.Join(flakyOutcomes, ","); got != "retry,ok" && got != "ok,retry" {
		t.Errorf("flaky's spans' outcomes %s, want retry and ok", got)
	}

	want := `
# HELP pdfpipe_chunks_total Chunks a stage finished: cut (parse), embedded and stored (embed), sent to the backend (ingest).
# TYPE pdfpipe_chunks_total counter
pdfpipe_chunks_total{stage="test"} 12
# HELP pdfpipe_documents_total Documents a stage finished: accepted from Redis (gateway), fetched, parsed, ingested.
# TYPE pdfpipe_documents_total counter
pdfpipe_documents_total{stage="test"} 2
# HELP pdfpipe_pages_total Pages of the documents a stage finished (parse).
# TYPE pdfpipe_pages_total counter
pdfpipe_pages_total{stage="test"} 3
# HELP pdfpipe_bytes_total PDF bytes a stage finished: stored in the object store (fetch), parsed (parse).
# TYPE pdfpipe_bytes_total counter
pdfpipe_bytes_total{stage="test"} 100
`
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		return testutil.GatherAndCompare(reg, strings.NewReader(want),
			"pdfpipe_chunks_total", "pdfpipe_documents_total", "pdfpipe_pages_total", "pdfpipe_bytes_total")
	})
	for _, tc := range []struct {
		class, disposition string
		want               float64
	}{
		{"bad_input", "failed", 1},
		{"internal", "failed", 1},
		{"other", "retry", 1},
		{"other", "failed", 0},
		{"timeout", "retry", 0},
	} {
		if got := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "test", "class": tc.class, "disposition": tc.disposition}); got != tc.want {
			t.Errorf("errors{class=%s,disposition=%s} = %v, want %v", tc.class, tc.disposition, got, tc.want)
		}
	}
	for outcome, want := range map[string]float64{"ok": 2, "retry": 1, "failed": 2} {
		if got := stagetest.Metric(t, reg, "pdfpipe_stage_handle_seconds", map[string]string{"stage": "test", "outcome": outcome}); got != want {
			t.Errorf("handle_seconds{outcome=%s} count %v, want %v", outcome, got, want)
		}
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		err  error
		want stage.Class
	}{
		{nil, ""},
		{fmt.Errorf("get pdf: %w", context.DeadlineExceeded), stage.ClassTimeout},
		{fmt.Errorf("store vectors: %w", jetstream.ErrAsyncPublishTimeout), stage.ClassTimeout},
		{fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), stage.ClassUnavailable},
		{&jetstream.APIError{Code: 503, Description: "no quorum"}, stage.ClassUnavailable},
		{&jetstream.APIError{Code: 400, Description: "bad request"}, stage.ClassOther},
		{stage.Permanent(errors.New("something")), stage.ClassOther},
	}
	for _, tc := range tests {
		if got := stage.ClassOf(tc.err); got != tc.want {
			t.Errorf("ClassOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}
