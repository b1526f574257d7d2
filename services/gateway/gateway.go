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

// Settings are the gateway's own environment variables (besides
// servicemain.Settings): the one description its ConfigFromEnv reads, its
// -h lists and the README's table is generated from.
var Settings = envconf.Settings{
	envconf.String("REDIS_URL", "redis://localhost:6379/0", "Redis with the task list; logged with its password masked"),
	envconf.String("REDIS_QUEUE_NAME", "queue:upload_tasks", "the task list"),
	envconf.String("REDIS_DLQ_NAME", "queue:dlq", "dead-letter list"),
	envconf.String("REDIS_POP_SIDE", "right",
		"end of the list tasks are taken from: `right` serves the oldest first for today's LPUSH backend; `left` pops like "+
			"the original's BLPOP (oldest first for an RPUSH producer, newest first for an LPUSH one)"),
	envconf.Bytes("REDIS_MAX_ENTRY_SIZE", DefaultMaxEntry,
		"a longer task entry goes to the dead-letter list unread (real entries are well under 4 KiB); status records keep "+
			"only the known fields of an entry over 16 KiB"),
	envconf.String("REDIS_EVENTS_CHANNEL", "document:events", "pub/sub channel for DocumentEvents"),
	envconf.String("GATEWAY_ID", "", "this replica's name for its Redis processing list").Computed("hostname-pid"),
	envconf.String("GRPC_SERVER_PORT", "50052",
		"APIKeyService (a port or host:port; a port alone is all interfaces for `gateway`, loopback for `pdfpipe up`)"),
	envconf.String("GRPC_EMBEDDING_PORT", "50053", "EmbeddingService and the legacy VectorizerService (a port or host:port)"),
	envconf.String("GRPC_TLS_CERT", "", "serve :50052/:50053 over TLS with this certificate (PEM file), with `GRPC_TLS_KEY`; unset: plaintext, warned at start"),
	envconf.String("GRPC_TLS_KEY", "", "key (PEM file) of `GRPC_TLS_CERT`"),
	envconf.String("GRPC_TLS_CLIENT_CA", "", "require a client certificate signed by this CA (mTLS); such callers count as authenticated"),
	envconf.Secret("GRPC_AUTH_TOKEN",
		"shared bearer token (16+ characters), or a file holding it: every call except the health service must carry "+
			"metadata `authorization: Bearer <token>` (compared in constant time); unset and no client CA: unauthenticated, "+
			"warned at start, and ProvideAPIKey keeps a task's first key").WithFile("GRPC_AUTH_TOKEN_FILE"),
	envconf.Duration("QUERY_TIMEOUT", 60*time.Second, "longest GetEmbedding wait for an embedder (the backend sets no deadline)"),
	pipeline.DimensionSetting,
}

// Config of the gateway (Settings).
type Config struct {
	RedisURL    string        // REDIS_URL
	Queue       string        // REDIS_QUEUE_NAME
	DLQ         string        // REDIS_DLQ_NAME
	PopFrom     string        // REDIS_POP_SIDE: right or left
	Events      string        // REDIS_EVENTS_CHANNEL
	InstanceID  string        // GATEWAY_ID
	KeyAddr     string        // GRPC_SERVER_PORT: APIKeyService
	EmbedAddr   string        // GRPC_EMBEDDING_PORT: EmbeddingService + VectorizerService
	Dimension   int           // EMBEDDING_DIMENSION
	EmbedWait   time.Duration // QUERY_TIMEOUT: how long a GetEmbedding may wait for an embedder
	DisableGRPC bool          // for tests and `pdfpipe run`
	// KeyTTL is how long a stored API key lives; 0 takes the pipeline's
	// (API_KEY_TTL, servicemain.PipelineSettings).
	KeyTTL time.Duration
	// MaxEntry is REDIS_MAX_ENTRY_SIZE: a queue entry longer than this
	// goes to the dead-letter list unread.
	MaxEntry int64
	// GRPC secures :50052/:50053: GRPC_TLS_CERT, GRPC_TLS_KEY,
	// GRPC_TLS_CLIENT_CA, GRPC_AUTH_TOKEN[_FILE].
	GRPC GRPCSecurity

	env envconf.Values
}

// ConfigFromEnv reads the gateway's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv, Settings)
	host, _ := os.Hostname()
	c := Config{
		RedisURL:   r.String("REDIS_URL"),
		Queue:      r.String("REDIS_QUEUE_NAME"),
		DLQ:        r.String("REDIS_DLQ_NAME"),
		PopFrom:    r.String("REDIS_POP_SIDE"),
		Events:     r.String("REDIS_EVENTS_CHANNEL"),
		InstanceID: r.StringOr("GATEWAY_ID", fmt.Sprintf("%s-%d", host, os.Getpid())),
		KeyAddr:    portAddr(r.String("GRPC_SERVER_PORT")),
		EmbedAddr:  portAddr(r.String("GRPC_EMBEDDING_PORT")),
		Dimension:  r.Int("EMBEDDING_DIMENSION"),
		EmbedWait:  r.Duration("QUERY_TIMEOUT"),
		MaxEntry:   r.Bytes("REDIS_MAX_ENTRY_SIZE"),
		GRPC:       grpcSecurityFromEnv(r),
	}
	c.env = r.Values()
	if err := errors.Join(r.Err(), c.GRPC.Validate()); err != nil {
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
		errs = append(errs, fmt.Errorf("REDIS_URL: %w", envconf.RedactError(err)))
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

// LogValue lists the settings ConfigFromEnv read, the Redis password and
// the token masked.
func (c Config) LogValue() slog.Value { return c.env.LogValue() }

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
		return nil, fmt.Errorf("REDIS_URL: %w", envconf.RedactError(err))
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = res.Config.KeyTTL
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
