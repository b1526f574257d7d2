package stage

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Class is the reason class of a handler's error: a small closed set, so
// that errors can be counted and charted by what went wrong
// (pdfpipe_stage_errors_total{class}) and a span says it too.
type Class string

// The reason classes.
const (
	// ClassBadInput: the task or its PDF cannot be used — malformed, not a
	// PDF, corrupt, encrypted without its password, no readable text.
	ClassBadInput Class = "bad_input"
	// ClassFetchRefused: the source refused or does not have the document
	// — the fetch guard, a 4xx, a name that does not exist, a redirect loop.
	ClassFetchRefused Class = "fetch_refused"
	// ClassTooLarge: past a size limit — MAX_FILE_SIZE, MAX_PAGES. (An
	// input refused with EMBED_LONG_INPUT=fail is the provider's: its
	// limit.)
	ClassTooLarge Class = "too_large"
	// ClassProvider: the embedding provider — 5xx, 429s past the retries,
	// an invalid key or exhausted quota, a refused request, a missing key.
	ClassProvider Class = "provider"
	// ClassBackend: the backend's IngestService refused the document, or
	// could not be reached.
	ClassBackend Class = "backend"
	// ClassTimeout: a deadline passed — a stalled download, a page or
	// document slower than its limit, a PubAck that did not come.
	ClassTimeout Class = "timeout"
	// ClassUnavailable: something the stage depends on did not answer —
	// NATS, the object store, a source server's 5xx or broken connection.
	ClassUnavailable Class = "unavailable"
	// ClassInternal: a handler panicked.
	ClassInternal Class = "internal"
	// ClassOther: an error no class names (a gap in the classification).
	ClassOther Class = "other"
)

// Classes lists every class, for series created up front.
var Classes = []Class{ClassBadInput, ClassFetchRefused, ClassTooLarge, ClassProvider, ClassBackend,
	ClassTimeout, ClassUnavailable, ClassInternal, ClassOther}

// ClassNames returns Classes as strings (label values).
func ClassNames() []string {
	out := make([]string, len(Classes))
	for i, c := range Classes {
		out[i] = string(c)
	}
	return out
}

// ClassOf is the class of err that any stage can tell: a panic, a
// deadline, NATS or JetStream not answering; else ClassOther. A stage
// names its own errors first (Runner.Classify).
func ClassOf(err error) Class {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errPanic):
		return ClassInternal
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return ClassTimeout
	case NATSUnavailable(err):
		return ClassUnavailable
	}
	return ClassOther
}

// NATSUnavailable reports whether err says NATS or JetStream is not
// answering (connection lost, no server or responder, a JetStream error of
// the 5xx kind such as no quorum): worth a retry, not the input's fault.
func NATSUnavailable(err error) bool {
	for _, target := range []error{
		nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, nats.ErrNoServers, nats.ErrNoResponders,
		jetstream.ErrNoStreamResponse, jetstream.ErrServerShutdown, jetstream.ErrJetStreamNotEnabled,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code >= 500
}

// errPanic marks the error of a handler that panicked.
var errPanic = errors.New("internal error")
