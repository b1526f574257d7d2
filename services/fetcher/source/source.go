// Package source opens the PDF behind a task URL (http, https or s3) as a
// stream, with a size limit and a PDF header check applied while reading, so
// a document is never held in memory whole.
//
// Errors wrap the sentinels in errors.go; Permanent tells a caller whether to
// give up (terminate the task) or retry later. Error text never contains
// credentials or presigned query strings.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
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
	// while reading the body (default 30s), for both HTTP and S3. It does not
	// bound a whole download that keeps making progress: use ctx for that.
	HTTPTimeout time.Duration
	// S3 configures s3:// URLs.
	S3 S3Config
	// HTTPClient is used for http and https URLs (default: a client with its
	// own connection pool).
	HTTPClient *http.Client
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
	timeout       time.Duration
	defaultBucket string
}

// New returns an Opener. It does not contact any server.
func New(opts Options) (*Opener, error) {
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("max bytes %d: must not be negative", opts.MaxBytes)
	}
	if opts.HTTPTimeout < 0 {
		return nil, fmt.Errorf("http timeout %s: must not be negative", opts.HTTPTimeout)
	}
	o := &Opener{
		http:          opts.HTTPClient,
		maxBytes:      opts.MaxBytes,
		timeout:       opts.HTTPTimeout,
		defaultBucket: opts.S3.DefaultBucket,
	}
	if o.maxBytes == 0 {
		o.maxBytes = DefaultMaxBytes
	}
	if o.timeout == 0 {
		o.timeout = DefaultHTTPTimeout
	}
	if o.http == nil {
		o.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
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
		if err != nil || u.Host == "" {
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

// watchdog cancels a request when a wait (for headers, or for one Read)
// lasts longer than d.
type watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

// newWatchdog returns an armed watchdog that calls cancel on expiry.
func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

func (w *watchdog) arm() { w.t.Reset(w.d) }

// disarm stops the timer and reports whether it had fired.
func (w *watchdog) disarm() bool {
	w.t.Stop()
	return w.fired.Load()
}

// watchedReader arms the watchdog around each Read, so only time spent
// waiting on the server counts, not time the caller spends between reads.
type watchedReader struct {
	rc io.ReadCloser
	w  *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	r.w.arm()
	n, err := r.rc.Read(p)
	r.w.disarm()
	return n, err
}

func (r *watchedReader) Close() error {
	r.w.disarm()
	return r.rc.Close()
}

// failure classifies an error from a request or a body read as transient,
// unless the caller's ctx ended (then that is returned as is).
func (o *Opener) failure(ctx context.Context, op, name string, w *watchdog, err error) error {
	if w.fired.Load() {
		return fmt.Errorf("%s %s: no data from server for %s: %w", op, name, o.timeout, ErrTransient)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", op, name, context.Cause(ctx))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its URL may carry the presigned query
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s: connection refused, server down or wrong address: %w: %w", op, name, ErrTransient, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s %s: timeout: %w: %w", op, name, ErrTransient, err)
	default:
		return fmt.Errorf("%s %s: %w: %w", op, name, ErrTransient, err)
	}
}

// tooLarge is the error for a declared size above the limit.
func (o *Opener) tooLarge(name string, size int64) error {
	return fmt.Errorf("get %s: size %s is over the %s limit: %w",
		name, humanBytes(size), humanBytes(o.maxBytes), ErrTooLarge)
}
