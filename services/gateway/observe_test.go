package gateway_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestIntakeTracesAndCounts: a task's trace starts when the gateway takes
// its entry from Redis and goes on in its fetch job's headers; accepted
// tasks are counted as documents, a malformed entry as a bad_input error
// that failed.
func TestIntakeTracesAndCounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := metrics.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	h.res.Config.Tracer, h.res.Config.Metrics = tp, m
	h.run()

	h.push("lpush", queueKey, `DocID=1&URL=https://example.com/a.pdf`)
	h.push("lpush", queueKey, `{"DocID":"d-traced","UserID":"u1","FileName":"g.pdf","URL":"https://example.com/g.pdf"}`)
	h.waitFetch("d-traced")
	h.waitDrained()

	var spans []sdktrace.ReadOnlySpan
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		spans = rec.Ended()
		if len(spans) != 2 {
			return fmt.Errorf("%d spans ended, want 2 (one per entry)", len(spans))
		}
		return nil
	})
	var accepted sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() != "gateway" || s.Parent().IsValid() {
			t.Errorf("span %q with parent %s, want gateway spans that start traces", s.Name(), s.Parent().SpanID())
		}
		for _, kv := range s.Attributes() {
			if kv.Key == stage.AttrTaskID && kv.Value.AsString() == "d-traced" {
				accepted = s
			}
		}
	}
	if accepted == nil {
		t.Fatal("no gateway span names task d-traced")
	}
	_, raw := h.fetchJob("d-traced")
	sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), raw.Header))
	if sc.TraceID() != accepted.SpanContext().TraceID() || sc.SpanID() != accepted.SpanContext().SpanID() {
		t.Errorf("fetch job carries trace %s span %s, want the gateway span's %s %s (headers %v)",
			sc.TraceID(), sc.SpanID(), accepted.SpanContext().TraceID(), accepted.SpanContext().SpanID(), raw.Header)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pdfpipe_documents_total", map[string]string{"stage": "gateway"}, 1},
		{"pdfpipe_stage_errors_total", map[string]string{"stage": "gateway", "class": "bad_input", "disposition": "failed"}, 1},
		{"pdfpipe_stage_errors_total", map[string]string{"stage": "gateway"}, 1},
		{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "gateway", "outcome": "ok"}, 1},
		{"pdfpipe_stage_handle_seconds", map[string]string{"stage": "gateway", "outcome": "failed"}, 1},
	} {
		if got := stagetest.Metric(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
