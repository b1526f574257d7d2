// Package gateway is the pipeline's front door. It takes upload tasks from
// the backend's Redis list (without losing one if it dies between pop and
// publish), starts each task exactly once, serves the backend's gRPC calls
// — ProvideAPIKey on one port, GetEmbedding and the legacy GetVector on
// another, answered by embedders over NATS — and reports task progress and
// failures back to Redis in the backend's DocumentEvent format.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/gateway/redisqueue"

	"github.com/nats-io/nats.go"
)

// DefaultMaxEntry is REDIS_MAX_ENTRY_SIZE's default: far more than any
// real task (a few hundred bytes plus a presigned URL), far less than a
// NATS message may carry.
const DefaultMaxEntry = 64 << 10

// minMaxEntry is the smallest REDIS_MAX_ENTRY_SIZE accepted.
const minMaxEntry = 1 << 10

// Config of the gateway.
type Config struct {
	RedisURL    string // REDIS_URL, default redis://localhost:6379/0
	Queue       string // REDIS_QUEUE_NAME, default queue:upload_tasks
	DLQ         string // REDIS_DLQ_NAME, default queue:dlq
	PopFrom     string // REDIS_POP_SIDE: right (default: oldest first for the LPUSH backend) or left (the original's BLPOP)
	Events      string // REDIS_EVENTS_CHANNEL, default document:events
	InstanceID  string // GATEWAY_ID, default hostname-pid
	KeyAddr     string // GRPC_SERVER_PORT: APIKeyService, default :50052
	EmbedAddr   string // GRPC_EMBEDDING_PORT: EmbeddingService + VectorizerService, default :50053
	Dimension   int    // EMBEDDING_DIMENSION, default 384
	KeyTTL      time.Duration
	EmbedWait   time.Duration // QUERY_TIMEOUT: how long a GetEmbedding may wait for an embedder, default 60s
	DisableGRPC bool          // for tests and `pdfpipe run`
	// MaxEntry is REDIS_MAX_ENTRY_SIZE: a queue entry longer than this
	// goes to the dead-letter list unread. Default 64 KiB.
	MaxEntry int64
	// GRPC secures :50052/:50053: GRPC_TLS_CERT, GRPC_TLS_KEY,
	// GRPC_TLS_CLIENT_CA, GRPC_AUTH_TOKEN[_FILE].
	GRPC GRPCSecurity
}

// ConfigFromEnv reads the gateway's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv)
	host, _ := os.Hostname()
	c := Config{
		RedisURL:   r.String("REDIS_URL", "redis://localhost:6379/0"),
		Queue:      r.String("REDIS_QUEUE_NAME", "queue:upload_tasks"),
		DLQ:        r.String("REDIS_DLQ_NAME", "queue:dlq"),
		PopFrom:    r.String("REDIS_POP_SIDE", "right"),
		Events:     r.String("REDIS_EVENTS_CHANNEL", "document:events"),
		InstanceID: r.String("GATEWAY_ID", fmt.Sprintf("%s-%d", host, os.Getpid())),
		KeyAddr:    portAddr(r.String("GRPC_SERVER_PORT", "50052")),
		EmbedAddr:  portAddr(r.String("GRPC_EMBEDDING_PORT", "50053")),
		Dimension:  r.Int("EMBEDDING_DIMENSION", 384),
		KeyTTL:     r.Duration("API_KEY_TTL", 24*time.Hour),
		EmbedWait:  r.Duration("QUERY_TIMEOUT", 60*time.Second),
		MaxEntry:   r.Bytes("REDIS_MAX_ENTRY_SIZE", DefaultMaxEntry),
	}
	sec, err := grpcSecurityFromEnv(r, getenv)
	c.GRPC = sec
	if err := errors.Join(r.Err(), err); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// portAddr accepts "50052" or ":50052" or "host:50052".
func portAddr(v string) string {
	for _, c := range v {
		if c < '0' || c > '9' {
			return v
		}
	}
	return ":" + v
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("REDIS_URL: %w", err))
	}
	if c.PopFrom != "left" && c.PopFrom != "right" {
		errs = append(errs, fmt.Errorf("REDIS_POP_SIDE=%q: want left or right", c.PopFrom))
	}
	if c.Queue == "" || c.DLQ == "" {
		errs = append(errs, errors.New("REDIS_QUEUE_NAME and REDIS_DLQ_NAME must not be empty"))
	}
	if c.MaxEntry < minMaxEntry {
		errs = append(errs, fmt.Errorf("REDIS_MAX_ENTRY_SIZE=%d: want at least %d bytes", c.MaxEntry, minMaxEntry))
	}
	if c.Dimension < 1 {
		errs = append(errs, errors.New("EMBEDDING_DIMENSION must be positive"))
	}
	return errors.Join(errs...)
}

// LogValue lists the settings with the Redis password masked.
func (c Config) LogValue() slog.Value {
	redisURL := c.RedisURL
	if o, err := redis.ParseURL(c.RedisURL); err == nil && o.Password != "" {
		redisURL = "redis://***@" + o.Addr
	}
	return slog.GroupValue(slog.String("redis", redisURL), slog.String("queue", c.Queue),
		slog.String("dlq", c.DLQ), slog.String("pop_from", c.PopFrom), slog.String("events", c.Events),
		slog.String("instance", c.InstanceID), slog.String("apikey_addr", c.KeyAddr),
		slog.String("embedding_addr", c.EmbedAddr), slog.Int64("max_entry", c.MaxEntry),
		slog.Any("grpc_security", c.GRPC))
}

// Service is a running gateway.
type Service struct {
	cfg    Config
	res    *pipeline.Resources
	nc     *nats.Conn
	rdb    *redis.Client
	queue  *redisqueue.Queue
	status *status.Store
	log    *slog.Logger
}

// New returns a gateway. It does not connect yet.
func New(cfg Config, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	q := redisqueue.New(rdb, redisqueue.Options{Queue: cfg.Queue, DLQ: cfg.DLQ, PopFrom: cfg.PopFrom, InstanceID: cfg.InstanceID}, log)
	return &Service{cfg: cfg, res: res, nc: nc, rdb: rdb, queue: q, status: status.New(res.Status), log: log}, nil
}

// Run serves until ctx ends: the Redis intake, the gRPC servers and the
// event publisher, each in the same errgroup.
func (s *Service) Run(ctx context.Context) error {
	defer s.rdb.Close()
	events, err := s.eventsConsumerFor(ctx)
	if err != nil {
		return err
	}
	s.res.Config.Metrics.Stage(stageName, stage.ClassNames())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.intake(gctx) })
	g.Go(func() error { return s.queue.Run(gctx) })
	g.Go(func() error { return s.publishEvents(gctx, events) })
	g.Go(func() error { return s.followBackendProgress(gctx) })
	if !s.cfg.DisableGRPC {
		g.Go(func() error { return s.serveGRPC(gctx) })
	}
	return g.Wait()
}
