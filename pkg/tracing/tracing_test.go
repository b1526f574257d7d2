package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// TestHeaderPropagationOverNATS: a span's context written into a message's
// headers by Inject comes out of a real NATS server and, read by Extract,
// makes the receiver's span a child of the sender's, in the same trace.
func TestHeaderPropagationOverNATS(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc, err := srv.Connect("tracing-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("trace.test")
	if err != nil {
		t.Fatal(err)
	}

	tp, rec := recorder(t)
	tracer := tracing.Tracer(tp)
	ctx, parent := tracer.Start(context.Background(), "sender")
	m := nats.NewMsg("trace.test")
	tracing.Inject(ctx, m.Header)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	parent.End()
	got, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("traceparent") == "" {
		t.Fatalf("received headers %v: no traceparent", got.Header)
	}
	_, child := tracer.Start(tracing.Extract(context.Background(), got.Header), "receiver")
	child.End()

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	sender, receiver := spans[0], spans[1]
	if receiver.SpanContext().TraceID() != sender.SpanContext().TraceID() {
		t.Errorf("receiver trace %s, want the sender's %s", receiver.SpanContext().TraceID(), sender.SpanContext().TraceID())
	}
	if receiver.Parent().SpanID() != sender.SpanContext().SpanID() || !receiver.Parent().IsRemote() {
		t.Errorf("receiver's parent %s (remote %v), want the sender's span %s, remote",
			receiver.Parent().SpanID(), receiver.Parent().IsRemote(), sender.SpanContext().SpanID())
	}
}

func TestHeaderCarrier(t *testing.T) {
	tp, _ := recorder(t)
	ctx, span := tracing.Tracer(tp).Start(context.Background(), "s")
	defer span.End()
	want := span.SpanContext()

	// What an http.Header-based carrier writes: canonical "Traceparent".
	httpStyle := propagation.HeaderCarrier{}
	tracing.Propagator.Inject(ctx, httpStyle)

	tests := []struct {
		name   string
		header nats.Header
		valid  bool
	}{
		{"written by Inject", func() nats.Header { h := nats.Header{}; tracing.Inject(ctx, h); return h }(), true},
		{"Traceparent as http.Header writes it", nats.Header{"Traceparent": {httpStyle.Get("traceparent")}}, true},
		{"TRACEPARENT", nats.Header{"TRACEPARENT": {httpStyle.Get("traceparent")}}, true},
		{"none", nats.Header{"Pdfpipe-Task-Id": {"t1"}}, false},
		{"nil header", nil, false},
		{"malformed", nats.Header{"traceparent": {"00-zz-11-01"}}, false},
		{"all-zero trace id", nats.Header{"traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), tc.header))
			if sc.IsValid() != tc.valid {
				t.Fatalf("extracted %v valid=%v, want valid=%v", sc, sc.IsValid(), tc.valid)
			}
			if tc.valid && (sc.TraceID() != want.TraceID() || sc.SpanID() != want.SpanID()) {
				t.Errorf("extracted trace %s span %s, want %s %s", sc.TraceID(), sc.SpanID(), want.TraceID(), want.SpanID())
			}
		})
	}

	t.Run("republish replaces the parent in any case", func(t *testing.T) {
		h := nats.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
		tracing.Inject(ctx, h)
		if len(h) != 1 || len(h["traceparent"]) != 1 {
			t.Fatalf("header %v: want one traceparent", h)
		}
		if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), h)); sc.SpanID() != want.SpanID() {
			t.Errorf("extracted span %s, want the new parent %s", sc.SpanID(), want.SpanID())
		}
	})

	t.Run("no span, no header", func(t *testing.T) {
		h := nats.Header{}
		tracing.Inject(context.Background(), h)
		if len(h) != 0 {
			t.Errorf("header %v written without a span", h)
		}
	})
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    tracing.Config
		wantErr string
	}{
		{name: "off by default", env: nil, want: tracing.Config{Protocol: "http/protobuf"}},
		{name: "endpoint turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", Endpoint: "http://collector:4318"}},
		{name: "traces endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"},
			want: tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", Endpoint: "http://b:4318/v1/traces", TracesEndpoint: true}},
		{name: "exporter otlp without endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: tracing.Config{Exporter: "otlp", Protocol: "grpc"}},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			want: tracing.Config{Exporter: "otlp", Protocol: "grpc"}},
		{name: "none beats an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			want: tracing.Config{Protocol: "http/protobuf", Endpoint: "http://c:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: tracing.Config{}},
		{name: "service name", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "pdf-parser"},
			want: tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", ServiceName: "pdf-parser"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "unknown traces protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracing.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestStartExportsOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans
// reach an OTLP/HTTP receiver at its /v1/traces; without it, Start's
// provider records nothing.
func TestStartExportsOverOTLP(t *testing.T) {
	got := make(chan *coltrace.ExportTraceServiceRequest, 1)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
		}
		select {
		case got <- &req:
		default:
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer collector.Close()

	cfg, err := tracing.ConfigFromEnv(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tp, err := tracing.Start(ctx, cfg, "pdfpipe-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Tracer(tp).Start(ctx, "exported")
	span.End()
	if err := tp.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}
	select {
	case req := <-got:
		rs := req.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || len(rs[0].GetScopeSpans()[0].GetSpans()) != 1 {
			t.Fatalf("exported %v, want one span", req)
		}
		if name := rs[0].GetScopeSpans()[0].GetSpans()[0].GetName(); name != "exported" {
			t.Errorf("exported span %q, want %q", name, "exported")
		}
		var service string
		for _, kv := range rs[0].GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		if service != "pdfpipe-test" {
			t.Errorf("service.name %q, want pdfpipe-test", service)
		}
	default:
		t.Fatal("the collector received no span")
	}

	off, err := tracing.Start(ctx, tracing.Config{}, "pdfpipe-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span = tracing.Tracer(off).Start(ctx, "not exported")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a disabled provider records spans")
	}
	span.End()
}

// The start-up log line shows where spans go, not the credentials in the
// endpoint's user information or query.
func TestConfigLogValueMasksCredentials(t *testing.T) {
	c := tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", Endpoint: "https://user:pa55word@collector.example:4318/v1/traces?api_key=SECRET-123"}
	got := c.LogValue().String()
	for _, secret := range []string{"pa55word", "SECRET-123"} {
		if strings.Contains(got, secret) {
			t.Errorf("logged %s, holding %q", got, secret)
		}
	}
	if !strings.Contains(got, "collector.example:4318/v1/traces") {
		t.Errorf("logged %s, want the endpoint's host and path", got)
	}
}
