// Package fetcher is the first stage: it copies the PDF behind a task's URL
// (http, https or s3://bucket/key) into the pipeline's object store,
// streaming and hashing it on the way, and hands the document to the
// parser. The bytes never sit whole in memory or in a message.
package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
)

// Settings are the fetcher's own environment variables (besides
// servicemain.Settings): the one description its ConfigFromEnv reads, its
// -h lists and the README's table is generated from.
var Settings = envconf.Settings{
	envconf.String("STORAGE_TYPE", "minio",
		"`minio` (any S3-protocol server at `BUCKET_ENDPOINT`) or `s3` (AWS; the endpoint defaults to s3.amazonaws.com over TLS)"),
	envconf.String("BUCKET_ENDPOINT", "",
		"S3 endpoint for `s3://` URLs, `host:port` or `http(s)://host:port`; trusted by the fetch guard (presigned http URLs to this host:port pass)"),
	envconf.Secret("BUCKET_ACCESS_ID", "S3 access key id"),
	envconf.Secret("BUCKET_ACCESS_KEY", "S3 secret access key"),
	envconf.String("BUCKET_NAME", "", "bucket for `s3:///key` URLs"),
	envconf.String("BUCKET_REGION", "", "S3 region"),
	envconf.Bool("BUCKET_SECURE", false, "TLS to a `BUCKET_ENDPOINT` given without a scheme"),
	envconf.Bytes("MAX_FILE_SIZE", source.DefaultMaxBytes, "larger PDFs fail with that reason"),
	envconf.Duration("FETCH_TIMEOUT", 5*time.Minute, "longest single wait for the server (headers, or one read)"),
	envconf.Duration("FETCH_MAX_DURATION", source.DefaultMaxDuration,
		"one whole download, request to last byte; past it the attempt fails (retried)"),
	envconf.Bytes("FETCH_MIN_RATE", source.DefaultMinRate,
		"slowest a server may send, in bytes per second of time spent waiting on it, judged over each `FETCH_MIN_RATE_WINDOW` "+
			"of waiting; slower attempts fail (retried) so a dripping server cannot hold a worker. `0` disables the floor"),
	envconf.Duration("FETCH_MIN_RATE_WINDOW", source.DefaultRateWindow, "the stretch of waiting `FETCH_MIN_RATE` is judged over"),
	envconf.Int("FETCH_MAX_REDIRECTS", source.DefaultMaxRedirects,
		"redirects followed (only to http/https); more, or a redirect loop, fails the task at once. `0`: none"),
	envconf.List("FETCH_ALLOW_HOSTS",
		"comma-separated hosts the fetch guard lets through whatever they resolve to: `minio.internal` (any port), "+
			"`minio.internal:9000`, `*.corp.example`, `10.0.0.5:9000`, `[fd00::5]:9000`. See below"),
	envconf.List("FETCH_ALLOW_CIDRS", "comma-separated address ranges (or addresses) the fetch guard lets through, e.g. `10.1.2.0/24`"),
	envconf.Int("FETCH_WORKERS", 4, "downloads at once"),
}

// Config of the fetcher (Settings).
type Config struct {
	Workers     int           // FETCH_WORKERS
	MaxBytes    int64         // MAX_FILE_SIZE
	HTTPTimeout time.Duration // FETCH_TIMEOUT: longest single wait for the server
	MaxDuration time.Duration // FETCH_MAX_DURATION: one whole download
	// MinRate (FETCH_MIN_RATE) is the slowest a server may send over each
	// RateWindow (FETCH_MIN_RATE_WINDOW) of waiting on it; 0 takes the
	// default, negative disables the floor (ConfigFromEnv turns
	// FETCH_MIN_RATE=0 into -1).
	MinRate    int64
	RateWindow time.Duration
	// MaxRedirects (FETCH_MAX_REDIRECTS; 0 takes the default, negative
	// follows none: ConfigFromEnv turns FETCH_MAX_REDIRECTS=0 into -1).
	MaxRedirects int
	// Guard: FETCH_ALLOW_HOSTS and FETCH_ALLOW_CIDRS. Everything else
	// non-public is refused; the S3 endpoint's host is added by New.
	Guard source.Guard
	// RetryDelay is the first redelivery backoff after a transient
	// failure (it doubles per delivery); 0 means the runner's default, 1s.
	RetryDelay time.Duration
	S3         source.S3Config

	env envconf.Values
}

// ConfigFromEnv reads the fetcher's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv, Settings)
	c := Config{
		Workers:      r.Int("FETCH_WORKERS"),
		MaxBytes:     r.Bytes("MAX_FILE_SIZE"),
		HTTPTimeout:  r.Duration("FETCH_TIMEOUT"),
		MaxDuration:  r.Duration("FETCH_MAX_DURATION"),
		MinRate:      r.Bytes("FETCH_MIN_RATE"),
		RateWindow:   r.Duration("FETCH_MIN_RATE_WINDOW"),
		MaxRedirects: r.Int("FETCH_MAX_REDIRECTS"),
		Guard:        source.Guard{AllowHosts: r.List("FETCH_ALLOW_HOSTS")},
		S3: source.S3Config{
			Endpoint:      r.String("BUCKET_ENDPOINT"),
			AccessID:      r.Secret("BUCKET_ACCESS_ID"),
			AccessKey:     r.Secret("BUCKET_ACCESS_KEY"),
			Secure:        r.Bool("BUCKET_SECURE"),
			Region:        r.String("BUCKET_REGION"),
			DefaultBucket: r.String("BUCKET_NAME"),
		},
	}
	// STORAGE_TYPE keeps the original service's meaning: "minio" (any
	// S3-protocol server at BUCKET_ENDPOINT) or "s3" (AWS S3: the endpoint
	// defaults to s3.amazonaws.com over TLS).
	switch st := strings.ToLower(r.String("STORAGE_TYPE")); st {
	case "minio":
	case "s3":
		if c.S3.Endpoint == "" {
			c.S3.Endpoint, c.S3.Secure = "s3.amazonaws.com", true
		}
	default:
		r.Fail(fmt.Errorf("STORAGE_TYPE=%q: want minio or s3", st))
	}
	if c.MinRate == 0 {
		c.MinRate = -1 // FETCH_MIN_RATE=0: no floor
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = -1 // FETCH_MAX_REDIRECTS=0: follow none
	}
	var cidrErr error
	c.Guard.AllowCIDRs, cidrErr = parseCIDRs(r.List("FETCH_ALLOW_CIDRS"))
	c.env = r.Values()
	if err := errors.Join(r.Err(), cidrErr); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// parseCIDRs reads FETCH_ALLOW_CIDRS: prefixes, or single addresses.
func parseCIDRs(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range items {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("FETCH_ALLOW_CIDRS: %q is neither a CIDR prefix nor an address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Validate checks the settings before anything connects.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("FETCH_WORKERS must be at least 1")
	}
	if c.MaxBytes < 1 {
		return fmt.Errorf("MAX_FILE_SIZE must be positive")
	}
	if c.HTTPTimeout < 0 || c.MaxDuration < 0 || c.RateWindow < 0 {
		return fmt.Errorf("FETCH_TIMEOUT, FETCH_MAX_DURATION and FETCH_MIN_RATE_WINDOW must not be negative")
	}
	return nil
}

// LogValue lists the settings ConfigFromEnv read, the S3 credentials
// masked.
func (c Config) LogValue() slog.Value { return c.env.LogValue() }

// Service is a running fetcher.
type Service struct {
	cfg    Config
	res    *pipeline.Resources
	status *status.Store
	open   *source.Opener
	log    *slog.Logger
}

// New returns a fetcher over the pipeline's resources.
func New(cfg Config, res *pipeline.Resources, log *slog.Logger) (*Service, error) {
	guard := cfg.Guard
	if h := s3Host(cfg.S3.Endpoint); h != "" {
		// The configured S3 endpoint is trusted: presigned http URLs of the
		// same (often private) MinIO pass.
		guard.AllowHosts = append(slices.Clip(guard.AllowHosts), h)
	}
	op, err := source.New(source.Options{
		MaxBytes: cfg.MaxBytes, HTTPTimeout: cfg.HTTPTimeout, MaxDuration: cfg.MaxDuration,
		MinRate: cfg.MinRate, RateWindow: cfg.RateWindow, MaxRedirects: cfg.MaxRedirects,
		Guard: guard, S3: cfg.S3,
	})
	if err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	return &Service{cfg: cfg, res: res, status: status.New(res.Status), open: op, log: log}, nil
}

// s3Host returns the host (and port, when given) of BUCKET_ENDPOINT.
func s3Host(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return ""
		}
		return u.Host
	}
	return endpoint
}

// Run fetches until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	h := stage.NewTyped(s.res, pipeline.Fetch, s.log, s.Handle)
	r, err := stage.ForStage(ctx, s.res, pipeline.Fetch, h, s.log, s.cfg.Workers, s.cfg.RetryDelay)
	if err != nil {
		return err
	}
	r.Classify = errorClass
	return r.Run(ctx)
}

// Handle copies one task's PDF into the object store and publishes the
// parse job. The message is acked only after the parse job is stored.
func (s *Service) Handle(ctx context.Context, j *stage.Job[pipeline.FetchJob]) error {
	job := j.Body
	id := job.Task.ID
	// A task that ended meanwhile (failed elsewhere, or replayed after
	// done) makes this ErrTerminal: the message is acked.
	if _, err := s.status.Update(ctx, id, func(st *status.Status) { st.State = status.Fetching }); err != nil {
		return err
	}
	// A task that ends meanwhile (cancelled) stops the download; the job
	// is acked.
	work, err := stage.Working(ctx, s.res.JS.Conn(), pipeline.Fetch, j.Msg, s.res.Status, "")
	if err != nil {
		return err
	}
	defer work.Stop()
	ctx = work.Context()
	doc, err := s.fetch(ctx, id, job.Task.URL)
	if stage.TaskEnded(ctx) {
		j.Log.Info("task ended while fetching; stopped", "cause", context.Cause(ctx))
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", id, err)
	}
	j.Log.Info("fetched", "bytes", doc.Size, "sha256", doc.SHA256)
	stage.Report(ctx, metrics.Work{Documents: 1, Bytes: doc.Size})
	return j.Out.Publish(ctx, pipeline.Parse.Subject(id), pipeline.ParseJob{Task: job.Task, Document: doc, Replay: job.Replay}, "parse")
}

func (s *Service) fetch(ctx context.Context, id, url string) (pipeline.Document, error) {
	obj, err := s.open.Open(ctx, url)
	if err != nil {
		return pipeline.Document{}, classify(err)
	}
	defer obj.Body.Close()
	h := sha256.New()
	name := pipeline.Token(id)
	info, err := s.res.Objects.Put(ctx, jetstream.ObjectMeta{Name: name, Description: "pdf of task " + id},
		io.TeeReader(obj.Body, h))
	if err != nil {
		// The body's own errors (too large, not a PDF) come back through Put.
		return pipeline.Document{}, classify(fmt.Errorf("store pdf: %w", err))
	}
	return pipeline.Document{Object: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: int64(info.Size)}, nil
}

func classify(err error) error {
	if source.Permanent(err) {
		return stage.Permanent(err)
	}
	return err
}

// errorClass names the class of a fetch error for metrics and spans.
func errorClass(err error) stage.Class {
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, source.ErrTooLarge):
		return stage.ClassTooLarge
	case errors.Is(err, source.ErrNotPDF), errors.Is(err, source.ErrEmpty):
		return stage.ClassBadInput
	case errors.Is(err, source.ErrRefused), errors.Is(err, source.ErrNotFound),
		errors.Is(err, source.ErrForbidden), errors.Is(err, source.ErrBadURL):
		return stage.ClassFetchRefused
	case errors.As(err, &timeout) && timeout.Timeout():
		return stage.ClassTimeout // a stall, FETCH_MAX_DURATION, the rate floor, a dial timeout
	case errors.Is(err, source.ErrTransient):
		return stage.ClassUnavailable // 5xx, 429, refused or reset connections
	}
	return ""
}
