// Package source opens the PDF behind a task URL (http, https or s3) as a
// stream, with a size limit and a PDF header check applied while reading, so
// a document is never held in memory whole.
//
// Errors wrap the sentinels in errors.go; Permanent tells a caller whether to
// give up (terminate the task) or retry later. Error text never contains
// credentials, presigned query strings or anything a remote server said
// (bodies, messages, certificate names): only the status, a known S3 error
// code and a classified cause.
//
// http and https URLs go through a Guard that refuses non-public addresses
// on every connection, redirects included; downloads are bounded by a
// stall limit, an overall deadline and a minimum rate.
package source

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMaxBytes    int64 = 200 << 20
	DefaultHTTPTimeout       = 30 * time.Second
)

// S3Config says how to reach the S3-compatible store for s3:// URLs.
type S3Config struct {
	// Endpoint is host:port or a URL (BUCKET_ENDPOINT). A URL's scheme
	// overrides Secure. Empty disables s3:// URLs.
	Endpoint string
	// AccessID and AccessKey are the credentials (BUCKET_ACCESS_ID,
	// BUCKET_ACCESS_KEY); both empty means anonymous. Never logged.
	AccessID, AccessKey string
	// Secure selects https for a host:port Endpoint.
	Secure bool
	// Region is the bucket region; empty lets the client look it up.
	Region string
	// DefaultBucket (BUCKET_NAME) is used for URLs of the form s3:///key.
	DefaultBucket string
}

// Options configures an Opener. Zero fields take defaults.
type Options struct {
	// MaxBytes is the largest document accepted (default 200 MiB).
	MaxBytes int64
	// HTTPTimeout bounds waiting for response headers and any single stall
	// while reading the body (default 30s), for both HTTP and S3.
	HTTPTimeout time.Duration
	// MaxDuration bounds a whole download, first byte of the request to the
	// last of the body (default 10m).
	MaxDuration time.Duration
	// MinRate is the slowest a server may send, in bytes per second of time
	// spent waiting on it, judged over each RateWindow of waiting (defaults
	// 8 KiB/s and 30s). Negative disables the floor.
	MinRate    int64
	RateWindow time.Duration
	// MaxRedirects is how many redirects are followed (default 5; negative:
	// none).
	MaxRedirects int
	// Guard restricts the addresses http and https URLs may reach; its zero
	// value allows public addresses only. The S3 endpoint is trusted and
	// not guarded.
	Guard Guard
	// S3 configures s3:// URLs.
	S3 S3Config

	// beforeDial, when set, sees every address about to be dialled for an
	// http(s) URL and may stop the dial (tests: see export_test.go).
	beforeDial func(netip.AddrPort) error
}

// Object is an opened document.
type Object struct {
	// Body streams the document. Reads fail with ErrEmpty, ErrNotPDF or
	// ErrTooLarge as soon as that is known, and with ErrTransient when the
	// connection breaks or stalls. The caller must Close it.
	Body io.ReadCloser
	// Size is the length the server declared, or -1 when it did not say.
	Size int64
	// ContentType is the declared media type ("" when absent).
	ContentType string
}

// Opener opens documents by URL. It is safe for concurrent use.
type Opener struct {
	http          *http.Client
	s3            *minio.Client // nil when no S3 endpoint is configured
	maxBytes      int64
	lim           limits
	defaultBucket string
}

// New returns an Opener. It does not contact any server.
func New(opts Options) (*Opener, error) {
	switch {
	case opts.MaxBytes < 0:
		return nil, fmt.Errorf("max bytes %d: must not be negative", opts.MaxBytes)
	case opts.HTTPTimeout < 0:
		return nil, fmt.Errorf("http timeout %s: must not be negative", opts.HTTPTimeout)
	case opts.MaxDuration < 0:
		return nil, fmt.Errorf("max duration %s: must not be negative", opts.MaxDuration)
	case opts.RateWindow < 0:
		return nil, fmt.Errorf("rate window %s: must not be negative", opts.RateWindow)
	}
	o := &Opener{
		maxBytes: cmp.Or(opts.MaxBytes, DefaultMaxBytes),
		lim: limits{
			stall:       cmp.Or(opts.HTTPTimeout, DefaultHTTPTimeout),
			maxDuration: cmp.Or(opts.MaxDuration, DefaultMaxDuration),
			minRate:     max(cmp.Or(opts.MinRate, DefaultMinRate), 0),
			window:      cmp.Or(opts.RateWindow, DefaultRateWindow),
		},
		defaultBucket: opts.S3.DefaultBucket,
	}
	redirects := cmp.Or(opts.MaxRedirects, DefaultMaxRedirects)
	g := opts.Guard
	o.http = newHTTPClient(&g, max(redirects, 0), opts.beforeDial)
	if opts.S3.Endpoint != "" {
		c, err := newS3Client(opts.S3)
		if err != nil {
			return nil, err
		}
		o.s3 = c
	}
	return o, nil
}

// Open starts reading the document at rawURL (http://, https:// or
// s3://bucket/key) and returns it as a stream. Status and size problems known
// from the response headers are returned here; content problems (ErrEmpty,
// ErrNotPDF, ErrTooLarge for an undeclared size) surface from Body.Read.
func (o *Opener) Open(ctx context.Context, rawURL string) (Object, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return Object{}, fmt.Errorf("open %q: no scheme (want http, https or s3): %w", redactRaw(rawURL), ErrBadURL)
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		u, err := url.Parse(rawURL)
		if err != nil || u.Hostname() == "" {
			return Object{}, fmt.Errorf("open %q: malformed URL: %w", redactRaw(rawURL), ErrBadURL)
		}
		return o.openHTTP(ctx, u)
	case "s3":
		return o.openS3(ctx, rawURL[len(scheme)+len("://"):])
	default:
		return Object{}, fmt.Errorf("open %q: unsupported scheme %q (want http, https or s3): %w",
			redactRaw(rawURL), scheme, ErrBadURL)
	}
}

// redact drops user info, query and fragment: presigned URLs carry their
// signature and credential in the query.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	s := c.String()
	if u.RawQuery != "" {
		s += "?REDACTED"
	}
	return s
}

// redactRaw redacts a string that may not parse as a URL.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return redact(u)
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?REDACTED"
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			raw = raw[:j+3] + raw[i+1:]
		}
	}
	return raw
}

// start begins one request: its context, cancelled by the meter when a
// limit is crossed.
func (o *Opener) start(ctx context.Context) (context.Context, *meter, context.CancelCauseFunc) {
	rctx, cancel := context.WithCancelCause(ctx)
	return rctx, newMeter(o.lim, cancel), cancel
}

// failure turns an error from a request or a body read into one whose
// text is ours alone: the cause classified (refused by the guard, a limit
// crossed, connection refused, DNS, TLS, not HTTP…), never the server's
// words. The caller's own cancellation is returned as is. The original
// error stays reachable with errors.As. origin is scheme://host of the
// requested URL ("" for S3): a failure at another host is a redirect hop's.
func failure(ctx, rctx context.Context, op, name, origin string, err error) error {
	var le *limitError
	if errors.As(context.Cause(rctx), &le) && ctx.Err() == nil {
		return fmt.Errorf("%s %s: %w", op, name, le)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", op, name, context.Cause(ctx))
	}
	hop := ""
	var ue *url.Error
	if origin != "" && errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && redactHost(u) != origin {
			hop = redactHost(u)
		}
	}
	var refused *RefusedError
	if hop == "" && errors.As(err, &refused) {
		return fmt.Errorf("%s %s refused: %w", op, name, refused)
	}
	return fmt.Errorf("%s %s: %w", op, name, classify(err, hop))
}

// causeError is a classified failure. Its text is ours; Unwrap gives the
// sentinel and the original error.
type causeError struct {
	text string
	kind error
	err  error
}

func (e *causeError) Error() string   { return e.text + ": " + e.kind.Error() }
func (e *causeError) Unwrap() []error { return []error{e.kind, e.err} }

// classify names the cause of a transport error. hop, when not empty, is
// the scheme and host of the request that failed (a redirect target).
func classify(err error, hop string) error {
	at := ""
	if hop != "" {
		at = " at " + hop
	}
	var (
		refused *RefusedError
		redir   *redirectError
		dnsErr  *net.DNSError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		badHost x509.HostnameError
		invCert x509.CertificateInvalidError
		ne      net.Error
	)
	c := &causeError{kind: ErrTransient, err: err}
	switch {
	case errors.As(err, &refused):
		if hop != "" {
			return fmt.Errorf("redirect to %s refused: %w", hop, refused)
		}
		return fmt.Errorf("refused: %w", refused)
	case errors.Is(err, ErrRefused):
		c.text, c.kind = "refused"+at, ErrRefused
	case errors.As(err, &redir):
		return redir
	case errors.Is(err, errNotHTTP):
		c.text, c.kind = "the server"+at+" does not speak HTTP", ErrBadURL
	case errors.Is(err, errNotTLS), errors.As(err, &recErr):
		c.text, c.kind = "the server"+at+" does not speak TLS", ErrBadURL
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &badHost), errors.As(err, &invCert):
		c.text, c.kind = "the server's TLS certificate"+at+" is not valid for its name or not trusted", ErrBadURL
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		c.text, c.kind = fmt.Sprintf("DNS name %s does not exist", dnsErr.Name), ErrBadURL
	case errors.As(err, &dnsErr):
		c.text = fmt.Sprintf("DNS lookup of %s failed", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		c.text = "connection refused" + at + ", server down or wrong address"
	case errors.Is(err, syscall.ECONNRESET):
		c.text = "connection reset by the server" + at
	case errors.As(err, &ne) && ne.Timeout():
		c.text = "timeout" + at
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		c.text = "connection closed early by the server" + at
	default:
		c.text = "connection failed" + at
	}
	return c
}

// redactHost returns scheme://host of u: what a reason may say about a
// redirect target chosen by a remote server.
func redactHost(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// tooLarge is the error for a declared size above the limit.
func (o *Opener) tooLarge(name string, size int64) error {
	return fmt.Errorf("get %s: size %s is over the %s limit: %w",
		name, humanBytes(size), humanBytes(o.maxBytes), ErrTooLarge)
}
