package provider

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Every error returned by an Embedder from [New] that comes
// from the provider (not from the caller's context) matches exactly one of
// ErrInvalidKey, ErrQuotaExceeded, ErrRateLimited, ErrTransient, ErrBadInput,
// ErrDimensionMismatch or ErrBadResponse with [errors.Is]; use [errors.As] with
// *[Error] for the HTTP status and the Retry-After delay.
var (
	// ErrInvalidConfig: [New] was given a Config it cannot use.
	ErrInvalidConfig = errors.New("invalid embedding provider config")
	// ErrInvalidKey: the provider refused the API key (HTTP 401/403, Gemini
	// API_KEY_INVALID) or none was given. Permanent: never retried.
	ErrInvalidKey = errors.New("invalid API key")
	// ErrQuotaExceeded: the account has no quota left (OpenAI
	// insufficient_quota). Permanent until someone pays; never retried.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrRateLimited: HTTP 429. Retryable after Error.RetryAfter (0 if the
	// server did not say).
	ErrRateLimited = errors.New("rate limited")
	// ErrTransient: 5xx, 408, timeouts and connection errors. Retryable.
	ErrTransient = errors.New("transient provider error")
	// ErrBadInput: the provider refused the request itself (HTTP 400, 404,
	// 413, 422, ...), e.g. an input above the model's token limit, an empty
	// text or an unknown model. Sending it again will fail again.
	ErrBadInput = errors.New("input refused")
	// ErrDimensionMismatch: vectors do not have the configured dimension, or
	// the configured model cannot produce it. Permanent.
	ErrDimensionMismatch = errors.New("embedding dimension mismatch")
	// ErrBadResponse: the provider answered with something that is not a
	// valid embedding response (wrong count, duplicate indexes, bad JSON).
	ErrBadResponse = errors.New("malformed provider response")
)

// Error is a provider failure. It wraps one of the sentinels above (Kind)
// and, for transport failures, the underlying error. Its message never
// contains the API key.
type Error struct {
	Provider   string        // "openai", "gemini", "local"
	Kind       error         // one of the package's sentinel errors
	StatusCode int           // HTTP status, 0 when there was no response
	RetryAfter time.Duration // server-requested wait before retrying (429/503), 0 if none
	Message    string        // provider's explanation, API key removed
	Err        error         // underlying transport error, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	switch e.Kind {
	case ErrInvalidKey:
		fmt.Fprintf(&b, "invalid API key for %s", e.Provider)
	case ErrQuotaExceeded:
		fmt.Fprintf(&b, "%s quota exceeded (check the account's plan and billing)", e.Provider)
	case ErrRateLimited:
		fmt.Fprintf(&b, "%s rate limited", e.Provider)
	case ErrTransient:
		fmt.Fprintf(&b, "%s transient error", e.Provider)
	case ErrBadInput:
		fmt.Fprintf(&b, "%s refused the request", e.Provider)
	case ErrDimensionMismatch:
		fmt.Fprintf(&b, "%s embedding dimension mismatch", e.Provider)
	default:
		fmt.Fprintf(&b, "%s: %v", e.Provider, e.Kind)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel kind and, if any, the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Retryable reports whether err is worth retrying unchanged: rate limits
// and transient failures are, everything else is not.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTransient)
}

// RetryAfter returns the wait the provider asked for, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var pe *Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return pe.RetryAfter, true
	}
	return 0, false
}

// kindForStatus maps an HTTP status of a failed request to a sentinel.
func kindForStatus(status int) error {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrInvalidKey
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusRequestTimeout || status == http.StatusConflict || status >= 500:
		return ErrTransient
	case status >= 400:
		return ErrBadInput
	default:
		return ErrBadResponse
	}
}

// maxMessage bounds how much provider text goes into an error.
const maxMessage = 512

// cleanMessage removes the API key from a provider message and bounds its length.
func cleanMessage(msg, key string) string {
	msg = strings.TrimSpace(redact(msg, key))
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !isRuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redact replaces every occurrence of key in s.
func redact(s, key string) string {
	if key == "" || !strings.Contains(s, key) {
		return s
	}
	return strings.ReplaceAll(s, key, "[REDACTED]")
}

// redactedError stands in for an error whose text contained the API key.
// It drops the original (which Unwrap could otherwise expose) and keeps only
// the redacted text.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// redactErr returns err unchanged unless its text contains key.
func redactErr(err error, key string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if key == "" || !strings.Contains(msg, key) {
		return err
	}
	return &redactedError{msg: redact(msg, key)}
}

// parseRetryAfter reads the wait a server asks for: `retry-after-ms`
// (milliseconds, sent by OpenAI and Azure) first, then the standard
// Retry-After in delay-seconds or HTTP-date form. It returns 0 when there is
// nothing usable.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && !math.IsInf(ms, 0) && ms < float64(math.MaxInt64/int64(time.Millisecond)) {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || math.IsNaN(secs) || secs > float64(math.MaxInt64/int64(time.Second)) {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
