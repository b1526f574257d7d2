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
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
)

// Config of the fetcher.
type Config struct {
	Workers     int           // FETCH_WORKERS, default 4
	MaxBytes    int64         // MAX_FILE_SIZE, default 200MiB
	HTTPTimeout time.Duration // FETCH_TIMEOUT, default 5m: longest single wait for the server
	MaxDuration time.Duration // FETCH_MAX_DURATION, default 10m: one whole download
	// MinRate (FETCH_MIN_RATE, default 8KiB/s) is the slowest a server may
	// send over each RateWindow (FETCH_MIN_RATE_WINDOW, default 30s) of
	// waiting on it; 0 takes the default, negative disables the floor.
	MinRate    int64
	RateWindow time.Duration
	// MaxRedirects (FETCH_MAX_REDIRECTS, default 5; 0 takes the default,
	// negative follows none).
	MaxRedirects int
	// Guard: FETCH_ALLOW_HOSTS and FETCH_ALLOW_CIDRS (comma-separated).
	// Everything else non-public is refused; the S3 endpoint's host is
	// added by New.
	Guard source.Guard
	// RetryDelay is the first redelivery backoff after a transient
	// failure (it doubles per delivery); 0 means the runner's default, 1s.
	RetryDelay time.Duration
	S3         source.S3Config
}

// ConfigFromEnv reads the fetcher's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Workers:      r.Int("FETCH_WORKERS", 4),
		MaxBytes:     r.Bytes("MAX_FILE_SIZE", 200<<20),
		HTTPTimeout:  r.Duration("FETCH_TIMEOUT", 5*time.Minute),
		MaxDuration:  r.Duration("FETCH_MAX_DURATION", source.DefaultMaxDuration),
		MinRate:      r.Bytes("FETCH_MIN_RATE", source.DefaultMinRate),
		RateWindow:   r.Duration("FETCH_MIN_RATE_WINDOW", source.DefaultRateWindow),
		MaxRedirects: r.Int("FETCH_MAX_REDIRECTS", source.DefaultMaxRedirects),
		Guard: source.Guard{
			AllowHosts: list(r.String("FETCH_ALLOW_HOSTS", "")),
		},
		S3: source.S3Config{
			Endpoint:      r.String("BUCKET_ENDPOINT", ""),
			AccessID:      r.String("BUCKET_ACCESS_ID", ""),
			AccessKey:     r.String("BUCKET_ACCESS_KEY", ""),
			Secure:        r.Bool("BUCKET_SECURE", false),
			Region:        r.String("BUCKET_REGION", ""),
			DefaultBucket: r.String("BUCKET_NAME", ""),
		},
	}
	// STORAGE_TYPE keeps the original service's meaning: "minio" (any
	// S3-protocol server at BUCKET_ENDPOINT) or "s3" (AWS S3: the endpoint
	// defaults to s3.amazonaws.com over TLS).
	switch st := strings.ToLower(r.String("STORAGE_TYPE", "minio")); st {
	case "minio":
	case "s3":
		if c.S3.Endpoint == "" {
			c.S3.Endpoint, c.S3.Secure = "s3.amazonaws.com", true
		}
	default:
		return c, errors.Join(r.Err(), fmt.Errorf("STORAGE_TYPE=%q: want minio or s3", st))
	}
	if c.MinRate == 0 {
		c.MinRate = -1 // FETCH_MIN_RATE=0: no floor
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = -1 // FETCH_MAX_REDIRECTS=0: follow none
	}
	var cidrErr error
	c.Guard.AllowCIDRs, cidrErr = parseCIDRs(r.String("FETCH_ALLOW_CIDRS", ""))
	if err := errors.Join(r.Err(), cidrErr); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// list splits a comma-separated setting, dropping empty items.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseCIDRs reads FETCH_ALLOW_CIDRS: prefixes, or single addresses.
func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range list(s) {
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

// LogValue masks the S3 credentials.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("workers", c.Workers), slog.Int64("max_bytes", c.MaxBytes),
		slog.Duration("http_timeout", c.HTTPTimeout), slog.Duration("max_duration", c.MaxDuration),
		slog.Int64("min_rate", c.MinRate), slog.Duration("rate_window", c.RateWindow),
		slog.Int("max_redirects", c.MaxRedirects),
		slog.Any("allow_hosts", c.Guard.AllowHosts), slog.Any("allow_cidrs", c.Guard.AllowCIDRs),
		slog.String("s3_endpoint", c.S3.Endpoint),
		slog.String("s3_access_id", envconf.Mask(c.S3.AccessID)), slog.String("s3_access_key", envconf.Mask(c.S3.AccessKey)),
	)
}

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
	r, err := stage.ForStage(ctx, s.res, pipeline.Fetch, s, s.log, s.cfg.Workers, s.cfg.RetryDelay)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// Handle copies one task's PDF into the object store and publishes the
// parse job. The message is acked only after the parse job is stored.
func (s *Service) Handle(ctx context.Context, msg jetstream.Msg) error {
	var job pipeline.FetchJob
	if err := pipeline.Decode(msg.Data(), &job); err != nil {
		return stage.Permanent(err)
	}
	id := job.Task.ID
	if _, err := s.status.Update(ctx, id, func(st *status.Status) { st.State = status.Fetching }); err != nil {
		if errors.Is(err, status.ErrTerminal) {
			return nil // ended meanwhile (failed elsewhere, or replayed after done)
		}
		return err
	}
	// A task that ends meanwhile (cancelled) stops the download; the job
	// is acked.
	work, err := stage.Working(ctx, s.res.JS.Conn(), pipeline.Fetch, msg, s.res.Status, "")
	if err != nil {
		return err
	}
	defer work.Stop()
	ctx = work.Context()
	doc, err := s.fetch(ctx, id, job.Task.URL)
	if stage.TaskEnded(ctx) {
		s.log.Info("task ended while fetching; stopped", "task_id", id, "cause", context.Cause(ctx))
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", id, err)
	}
	s.log.Info("fetched", "task_id", id, "bytes", doc.Size, "sha256", doc.SHA256)
	_, err = pipeline.Publish(ctx, s.res.JS, pipeline.Parse.Subject(id), id, pipeline.MsgID(id, job.Replay, "parse"),
		pipeline.ParseJob{Task: job.Task, Document: doc, Replay: job.Replay})
	return err
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
