package source

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by Open and by reads from Object.Body.
// Match them with errors.Is; Permanent says which ones a retry cannot fix.
var (
	// ErrNotFound: the object does not exist (HTTP 404 or 410, S3 NoSuchKey or
	// NoSuchBucket). Permanent.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the server refused the credentials (HTTP 401 or 403, an
	// expired presigned URL, S3 AccessDenied, InvalidAccessKeyId,
	// SignatureDoesNotMatch). Permanent.
	ErrForbidden = errors.New("forbidden")
	// ErrTransient: a failure that may go away on retry: HTTP 5xx, 408 or 429,
	// connection refused or reset, timeouts, a body cut short. Not permanent.
	ErrTransient = errors.New("transient failure")
	// ErrTooLarge: the object is larger than Options.MaxBytes, either by its
	// declared size or by the bytes actually read. Permanent.
	ErrTooLarge = errors.New("too large")
	// ErrNotPDF: no "%PDF-" header within the first 1024 bytes. Permanent.
	ErrNotPDF = errors.New("not a PDF")
	// ErrEmpty: the object has zero bytes. Permanent.
	ErrEmpty = errors.New("empty document")
	// ErrBadURL: the URL cannot be fetched as given (malformed, unsupported
	// scheme, s3:// without a configured endpoint, a DNS name that does not
	// exist, a redirect loop or a redirect to another scheme, a server that
	// does not speak HTTP or TLS or whose certificate is not valid, or a
	// request the server rejects with another 4xx status). Permanent.
	ErrBadURL = errors.New("bad URL")
	// ErrRefused: the fetch guard does not allow the address (see Guard);
	// a *RefusedError says which rule refused. Permanent.
	ErrRefused = errors.New("refused by the fetch guard")
)

// Permanent reports whether err is one a retry cannot fix: ErrNotFound,
// ErrForbidden, ErrTooLarge, ErrNotPDF, ErrEmpty, ErrBadURL or ErrRefused. Transient
// errors, context cancellation and unknown errors are not permanent.
func Permanent(err error) bool {
	if err == nil || errors.Is(err, ErrTransient) {
		return false
	}
	for _, p := range []error{ErrNotFound, ErrForbidden, ErrTooLarge, ErrNotPDF, ErrEmpty, ErrBadURL, ErrRefused} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// StatusError is the error for a non-2xx HTTP response or an S3 error
// response. It unwraps to one of the sentinels above (Kind).
type StatusError struct {
	// URL is the requested URL without user info, query or fragment, so
	// presigned signatures never appear in logs.
	URL string
	// StatusCode is the HTTP status (0 if unknown).
	StatusCode int
	// Code is the S3 error code from the XML body (e.g. "AccessDenied",
	// "NoSuchKey"), when there was one and S3 defines it. Nothing else of
	// the body is kept.
	Code string
	// Reason says in words what a person can do about it.
	Reason string
	// Kind is the sentinel this error matches with errors.Is.
	Kind error
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("get %s: status %d", e.URL, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	return s + ": " + e.Reason
}

// Unwrap returns Kind.
func (e *StatusError) Unwrap() error { return e.Kind }
