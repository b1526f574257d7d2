package embedder

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// Attributes of a provider request's span (OpenTelemetry's GenAI names
// where they fit; the token count is the embedder's estimate, not the
// provider's usage, so it has a name of its own).
const (
	attrOperation = attribute.Key("gen_ai.operation.name")
	attrProvider  = attribute.Key("gen_ai.provider.name")
	attrModel     = attribute.Key("gen_ai.request.model")
	attrBatch     = attribute.Key("pdfpipe.embed.batch_size")
	attrTokens    = attribute.Key("pdfpipe.embed.tokens_estimated")
	attrAttempt   = attribute.Key("pdfpipe.embed.attempt")
	attrStatus    = attribute.Key("pdfpipe.embed.status")
	attrCallers   = attribute.Key("pdfpipe.embed.callers")
	attrHTTP      = attribute.Key("http.response.status_code")
	// attrJobModel is on an embed message's span: provider/model, or none.
	attrJobModel = attribute.Key("pdfpipe.embed.model")
)

// startRequest starts the span of one provider request for live; end
// counts the request (pdfpipe_embed_provider_*) and ends the span.
//
// A request carries texts of several embed messages, often of several
// tasks, so it cannot be the child of all of them: it is the child of the
// first text's message span (in the common case, one document's chunks
// embedded together, that is the document's trace) and links to the spans
// of the other messages it serves, each once, so every trace whose chunks
// went into the request can find it.
func (b *batcher) startRequest(live []*request, tokens, attempt int) (end func(err error, vecs int)) {
	parent := live[0].ctx
	first := trace.SpanContextFromContext(parent)
	seen := map[trace.SpanID]bool{first.SpanID(): true}
	var links []trace.Link
	for _, r := range live[1:] {
		sc := trace.SpanContextFromContext(r.ctx)
		if sc.IsValid() && !seen[sc.SpanID()] {
			seen[sc.SpanID()] = true
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	// The span ends with the request, not with the first caller's context.
	_, span := tracing.Tracer(b.tracer).Start(context.WithoutCancel(parent), "embeddings "+b.model,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attrOperation.String("embeddings"), attrProvider.String(b.name),
			attrModel.String(b.model), attrBatch.Int(len(live)), attrTokens.Int(tokens),
			attrAttempt.Int(attempt), attrCallers.Int(len(seen))))
	start := time.Now()
	return func(err error, vecs int) {
		st := providerStatus(err, vecs, len(live))
		b.metrics.ProviderRequest(b.name, st, len(live), tokens, time.Since(start))
		span.SetAttributes(attrStatus.String(st))
		var pe *provider.Error
		if errors.As(err, &pe) && pe.StatusCode != 0 {
			span.SetAttributes(attrHTTP.Int(pe.StatusCode))
		}
		if st != "ok" {
			msg := st
			if err != nil {
				msg = err.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}

// providerStatus names how a request ended (the status label of
// pdfpipe_embed_provider_requests_total): one of metrics.ProviderStatuses.
func providerStatus(err error, got, want int) string {
	switch {
	case err == nil && got != want:
		return "bad_response"
	case err == nil:
		return "ok"
	case errors.Is(err, provider.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, provider.ErrTransient):
		return "transient"
	case errors.Is(err, provider.ErrInvalidKey):
		return "invalid_key"
	case errors.Is(err, provider.ErrQuotaExceeded):
		return "quota_exceeded"
	case errors.Is(err, provider.ErrBadInput):
		return "bad_input"
	case errors.Is(err, provider.ErrBadResponse):
		return "bad_response"
	case errors.Is(err, provider.ErrDimensionMismatch):
		return "dimension_mismatch"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// errorClass names the class of an embed error for metrics and spans:
// whatever the provider answered, and a key that never came, are the
// provider's.
func errorClass(err error) stage.Class {
	var pe *provider.Error
	switch {
	case errors.As(err, &pe), errors.Is(err, pipeline.ErrNoKey):
		return stage.ClassProvider
	}
	return ""
}

// noKeyError is a task that waited in vain for its API key.
type noKeyError struct{ msg string }

func (e *noKeyError) Error() string { return e.msg }
func (e *noKeyError) Unwrap() error { return pipeline.ErrNoKey }
