package stage

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
)

// Span attributes of the work a message did (see Report).
const (
	AttrPages  = attribute.Key("pdfpipe.pages")
	AttrChunks = attribute.Key("pdfpipe.chunks")
	AttrBytes  = attribute.Key("pdfpipe.bytes")
)

// Report adds what the handler of ctx's message did: it is set on the
// message's span at once (pages, chunks, bytes) and counted in the stage's
// metrics (pdfpipe_documents_total, …_pages_, …_chunks_, …_bytes_) when the
// handler succeeds, so a retried message is counted once. Outside a
// Runner's handler only the span, if any, is touched.
func Report(ctx context.Context, w metrics.Work) {
	if r, ok := ctx.Value(reportKey{}).(*report); ok {
		w = r.add(w)
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	var attrs []attribute.KeyValue
	if w.Pages > 0 {
		attrs = append(attrs, AttrPages.Int(w.Pages))
	}
	if w.Chunks > 0 {
		attrs = append(attrs, AttrChunks.Int(w.Chunks))
	}
	if w.Bytes > 0 {
		attrs = append(attrs, AttrBytes.Int64(w.Bytes))
	}
	span.SetAttributes(attrs...)
}

type reportKey struct{}

// report accumulates what one message's handler reported.
type report struct {
	mu sync.Mutex
	w  metrics.Work
}

// add adds w and returns the sum so far.
func (r *report) add(w metrics.Work) metrics.Work {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w.Documents += w.Documents
	r.w.Pages += w.Pages
	r.w.Chunks += w.Chunks
	r.w.Bytes += w.Bytes
	return r.w
}

func (r *report) work() metrics.Work {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w
}

// Attributes of a stage's span.
const (
	AttrTaskID     = "pdfpipe.task_id"
	AttrStage      = "pdfpipe.stage"
	AttrOutcome    = "pdfpipe.outcome"     // ok, retry, failed
	AttrErrorClass = "pdfpipe.error.class" // a Class
)
