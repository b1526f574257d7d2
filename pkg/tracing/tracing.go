// Package tracing sets up OpenTelemetry traces for a pdfpipe process and
// carries a trace from stage to stage in NATS message headers, so that one
// document is one trace: the gateway's span when the task is taken from
// Redis, then one span per stage (fetch, parse, each embed message, ingest),
// the embedding provider's requests and the IngestDocument call.
//
// Tracing is off unless the standard OpenTelemetry variables ask for it
// (see Start); off, every tracer is a no-op and no header is written.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// Scope is the instrumentation scope of pdfpipe's own spans.
const Scope = "github.com/pdfpipe/pdfpipe"

// Propagator writes and reads the W3C traceparent and tracestate headers.
// It is the one propagator pdfpipe uses, on NATS messages and gRPC calls.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Config says whether and where spans are exported, read by ConfigFromEnv
// from the standard OpenTelemetry variables.
type Config struct {
	// Exporter is "otlp" or "" (none).
	Exporter string
	// Protocol is "http/protobuf" (the default) or "grpc".
	Protocol string
	// Endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the URL spans are
	// sent to, as it is) or, when that is unset, OTEL_EXPORTER_OTLP_ENDPOINT
	// (a base URL: http/protobuf sends to its /v1/traces). Empty: the
	// exporter's default, localhost:4318 (http) or :4317 (grpc).
	Endpoint string
	// TracesEndpoint is true when Endpoint came from the signal-specific
	// variable and is used as it is.
	TracesEndpoint bool
	// ServiceName is OTEL_SERVICE_NAME; empty: the process's own name.
	ServiceName string
}

// ConfigFromEnv reads the standard variables:
//
//   - OTEL_TRACES_EXPORTER: "otlp" exports, "none" does not; unset, spans
//     are exported only when an OTLP endpoint is set.
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (default) or "grpc".
//   - OTEL_SERVICE_NAME.
//   - OTEL_SDK_DISABLED=true turns everything off.
//
// The exporter itself reads the rest (OTEL_EXPORTER_OTLP_HEADERS,
// _CERTIFICATE, _TIMEOUT, _COMPRESSION, _INSECURE), the SDK the sampler
// (OTEL_TRACES_SAMPLER, default parent-based always-on) and the batching
// (OTEL_BSP_*), from the process environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv, Settings)
	c, err := FromReader(r)
	return c, errors.Join(r.Err(), err)
}

// Settings are the OTEL_* variables pdfpipe reads itself (see ConfigFromEnv).
var Settings = envconf.Settings{
	envconf.String("OTEL_TRACES_EXPORTER", "",
		"`otlp` exports traces (one per document: the gateway taking it from Redis, fetch, parse, each embed message and "+
			"the provider's requests, ingest, the IngestDocument call), `none` does not; unset, traces are exported only when "+
			"an OTLP endpoint below is set"),
	envconf.String("OTEL_EXPORTER_OTLP_ENDPOINT", "",
		"where spans go: a collector's base URL (`http://otel-collector:4318`; `/v1/traces` is added for http). Setting it turns traces on"),
	envconf.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "",
		"the traces URL as it is; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`"),
	envconf.String("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "`http/protobuf` (a collector's port 4318) or `grpc` (4317)"),
	envconf.String("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "wins over `OTEL_EXPORTER_OTLP_PROTOCOL` for traces"),
	envconf.String("OTEL_SERVICE_NAME", "",
		"the spans' `service.name`; unset: `pdfpipe-<stage>` (`pdfpipe` for `run`/`up`). The exporter and SDK read the other "+
			"standard variables themselves: `OTEL_EXPORTER_OTLP_HEADERS`, `…_CERTIFICATE`, `…_TIMEOUT`, `…_COMPRESSION`, "+
			"`…_INSECURE`, `OTEL_TRACES_SAMPLER`/`…_ARG` (default: parent-based, every trace), `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`"),
	envconf.Bool("OTEL_SDK_DISABLED", false, "`true`: no traces, whatever else is set"),
}

// FromReader reads Settings through r (whose declarations include them).
func FromReader(r *envconf.Reader) (Config, error) {
	c := Config{ServiceName: r.String("OTEL_SERVICE_NAME")}
	c.Endpoint, c.TracesEndpoint = r.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), true
	if c.Endpoint == "" {
		c.Endpoint, c.TracesEndpoint = r.String("OTEL_EXPORTER_OTLP_ENDPOINT"), false
	}
	protocolVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	c.Protocol = r.String(protocolVar)
	if c.Protocol == "" {
		protocolVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		c.Protocol = r.String(protocolVar)
	}
	if r.Bool("OTEL_SDK_DISABLED") {
		return Config{}, nil
	}
	var errs []error
	switch exp := strings.ToLower(r.String("OTEL_TRACES_EXPORTER")); exp {
	case "none":
	case "otlp":
		c.Exporter = "otlp"
	case "":
		if c.Endpoint != "" {
			c.Exporter = "otlp"
		}
	default:
		errs = append(errs, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none", exp))
	}
	if c.Protocol != "http/protobuf" && c.Protocol != "grpc" {
		errs = append(errs, fmt.Errorf("%s=%q: want http/protobuf or grpc", protocolVar, c.Protocol))
	}
	return c, errors.Join(errs...)
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Exporter != "" }

// LogValue says where spans go, without the endpoint's user info.
func (c Config) LogValue() slog.Value {
	if !c.Enabled() {
		return slog.StringValue("off")
	}
	// User information and the query (an API key in either) masked.
	return slog.GroupValue(slog.String("exporter", c.Exporter), slog.String("protocol", c.Protocol),
		slog.String("endpoint", envconf.Redact(c.Endpoint)))
}

// Provider is a process's tracer provider; Shutdown flushes the spans not
// yet exported and stops exporting.
type Provider struct {
	trace.TracerProvider
	shutdown func(context.Context) error
}

// Shutdown exports what is still buffered, within ctx. It does nothing for
// a disabled provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Start returns the tracer provider cfg asks for: batching spans to an
// OTLP exporter when enabled, else a no-op provider. service names the
// process in the spans' resource unless cfg.ServiceName does. Nothing is
// dialled here: an unreachable collector costs dropped spans, never a
// failed start.
func Start(ctx context.Context, cfg Config, service string) (*Provider, error) {
	if !cfg.Enabled() {
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = service
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, shutdown: tp.Shutdown}, nil
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	if cfg.Protocol == "grpc" {
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		u := cfg.Endpoint
		if !cfg.TracesEndpoint { // a base URL, as the specification says
			u = strings.TrimSuffix(u, "/") + "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	return otlptracehttp.New(ctx, opts...)
}

// Tracer returns pdfpipe's tracer from tp; nil gives a no-op tracer.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Scope)
}

// Inject writes the trace context of ctx's span into h (traceparent, and
// tracestate when there is one). Without a recording span nothing is
// written.
func Inject(ctx context.Context, h nats.Header) {
	Propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the remote span context carried in h, if any:
// spans started from it are children of the span that published h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return Propagator.Extract(ctx, HeaderCarrier(h))
}

// HeaderCarrier adapts a nats.Header to propagation.TextMapCarrier.
// nats.Header keeps keys as written and its Get is case-sensitive, while
// carriers over http.Header write "Traceparent": Set writes the key as the
// propagator gives it (lower case) and Get finds a key in any case, so a
// header written either way is read.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, compared case-insensitively.
func (c HeaderCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	for k, vs := range c {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// Set replaces key's values (in any case) with value.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	nats.Header(c).Set(key, value)
}

// Keys lists the header's keys.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
