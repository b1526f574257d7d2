package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
)

// Names of the JetStream assets. They are part of the operational contract:
// dashboards and `nats` CLI commands in the docs use them.
const (
	// Stream holds the work of every stage (limits retention, replayable).
	Stream = "PDFPIPE"
	// VectorStream holds the embedded chunks, one message per subject
	// pdf.vec.<task>.<index>, so the ingester can read them in order.
	VectorStream = "PDFPIPE_VECTORS"

	KeysBucket    = "pdfpipe_keys"
	StatusBucket  = "pdfpipe_status"
	ObjectsBucket = "pdfpipe_pdfs"
	// EmbedCacheBucket holds embedding vectors by a digest of provider,
	// model, dimension and text (no key material), so a replay or a
	// re-upload of the same text costs no API call.
	EmbedCacheBucket = "pdfpipe_embcache"
	// EmbedRateBucket holds the shared rate-limit state per API key
	// digest (never the key), so embedder replicas stay under one limit.
	EmbedRateBucket = "pdfpipe_embrate"

	// QuerySubject is the core NATS request subject on which embedders
	// answer GetEmbedding queries (queue group QueryQueue).
	QuerySubject = "pdfpipe.embedding.query"
	QueryQueue   = "embedder"
)

// Stage names one step of the pipeline (see Durable for its consumer name).
type Stage string

// The stages, in pipeline order.
const (
	Fetch  Stage = "fetch"
	Parse  Stage = "parse"
	Embed  Stage = "embed"
	Ingest Stage = "ingest"
)

// Subject returns the subject of a stage's message for a task; parts are
// appended as extra tokens (the chunk index for embed).
func (s Stage) Subject(taskID string, parts ...string) string {
	subj := "pdf." + string(s) + "." + Token(taskID)
	for _, p := range parts {
		subj += "." + p
	}
	return subj
}

// Filter is the subject filter of the stage's consumer.
func (s Stage) Filter() string { return "pdf." + string(s) + ".>" }

// Durable is the name of the stage's durable consumer: the name of the
// service that runs the stage (fetcher, parser, embedder, ingester).
func (s Stage) Durable() string {
	switch s {
	case Parse:
		return "parser"
	case Embed:
		return "embedder"
	}
	return string(s) + "er"
}

// VectorSubject is where the embedded chunk index of a task is stored.
func VectorSubject(taskID string, index int) string {
	return fmt.Sprintf("pdf.vec.%s.%d", Token(taskID), index)
}

// VectorFilter matches every vector of a task.
func VectorFilter(taskID string) string { return "pdf.vec." + Token(taskID) + ".>" }

// Config sizes the topology.
type Config struct {
	// Retention is how long stage messages, vectors, status and PDF
	// bytes are kept for replay and inspection. Default 72h.
	Retention time.Duration
	// Replicas for streams and buckets (1 for a single server, 3 in a cluster).
	Replicas int
	// KeyTTL is the longest an API key may live in KV. Default 24h.
	KeyTTL time.Duration
	// AckWait per delivery; stages send InProgress while they work. Default 30s.
	AckWait time.Duration
	// MaxDeliver bounds redeliveries of one message. Default 10.
	MaxDeliver int
	// Sealer seals API keys and PDF passwords before they enter the keys
	// bucket (PDFPIPE_SECRET_KEY); nil stores them as plain JSON.
	Sealer *Sealer
	// KeyMarkerTTL is how long the keys bucket keeps the marker of a
	// deleted or expired key. Default DefaultKeyMarkerTTL (1m); at least 1s.
	KeyMarkerTTL time.Duration
	// Tracer makes the spans of every stage on these resources
	// (pkg/tracing); nil makes none.
	Tracer trace.TracerProvider
	// Metrics counts what every stage on these resources does; nil
	// counts nothing.
	Metrics *metrics.Metrics
	// PullWait is how long an idle stage's pull request waits for a
	// message (stage.Runner.Poll); a stopping stage waits for the request
	// in flight, so a one-shot process (pdfpipe run) ends sooner with a
	// short one, for a few more idle requests. 0: the runner's default (1s).
	PullWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = 72 * time.Hour
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.KeyTTL <= 0 {
		c.KeyTTL = 24 * time.Hour
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.KeyMarkerTTL <= 0 {
		c.KeyMarkerTTL = DefaultKeyMarkerTTL
	}
	c.KeyMarkerTTL = max(c.KeyMarkerTTL, time.Second)
	return c
}

// Resources are the handles a service needs, all created by Setup.
type Resources struct {
	JS      jetstream.JetStream
	Keys    jetstream.KeyValue // a *KeysKV from Setup
	Status  jetstream.KeyValue
	Objects jetstream.ObjectStore
	// EmbedCache and EmbedRate are the embedder's vector cache and shared
	// rate-limit state.
	EmbedCache jetstream.KeyValue
	EmbedRate  jetstream.KeyValue
	Config     Config
}

// Setup creates or updates every stream, bucket and consumer of the
// pipeline. It is safe to call from every service at start, concurrently.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Resources, error) {
	cfg = cfg.withDefaults()
	var r *Resources
	var err error
	// Two services starting at once may race on creation; the loser sees
	// "already in use" and succeeds on the second pass. A JetStream API
	// answer that never comes (a busy or restarting server) costs one
	// attempt, not the caller's whole deadline.
	for attempt := 0; attempt < 3; attempt++ {
		actx, cancel := context.WithTimeout(ctx, setupAttemptTimeout)
		r, err = setup(actx, js, cfg)
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return nil, err
}

// setupAttemptTimeout bounds one pass of Setup.
const setupAttemptTimeout = 10 * time.Second

func setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Resources, error) {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "pdfpipe stage messages (fetch, parse, embed, ingest)",
		Subjects:    []string{"pdf.fetch.>", "pdf.parse.>", "pdf.embed.>", "pdf.ingest.>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  min(10*time.Minute, cfg.Retention), // may not exceed MaxAge
		Discard:     jetstream.DiscardOld,
		// The ingester reads chunk texts from the embed messages by
		// sequence (vector batches point at them) with batched direct gets.
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", Stream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              VectorStream,
		Description:       "pdfpipe embedded chunks, one per subject",
		Subjects:          []string{"pdf.vec.>"},
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            cfg.Retention,
		MaxMsgsPerSubject: 1,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		AllowDirect:       true,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", VectorStream, err)
	}
	keys, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         KeysBucket,
		Description:    "API keys by task id (per-key TTL, deleted when the task ends)",
		History:        1,
		TTL:            cfg.KeyTTL,
		LimitMarkerTTL: cfg.KeyMarkerTTL,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", KeysBucket, err)
	}
	status, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "task status by task id",
		History:     5,
		TTL:         cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", StatusBucket, err)
	}
	objects, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ObjectsBucket,
		Description: "PDF bytes by task id",
		TTL:         cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", ObjectsBucket, err)
	}
	for _, st := range []Stage{Fetch, Parse, Embed, Ingest} {
		if _, err := js.CreateOrUpdateConsumer(ctx, Stream, consumerConfig(st, cfg)); err != nil {
			return nil, fmt.Errorf("consumer %s: %w", st.Durable(), err)
		}
	}
	embCache, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      EmbedCacheBucket,
		Description: "embedding vectors by digest of provider, model, dimension and text",
		History:     1,
		TTL:         cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", EmbedCacheBucket, err)
	}
	embRate, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      EmbedRateBucket,
		Description: "embedder rate-limit buckets by API key digest",
		History:     1,
		TTL:         time.Hour,
		Storage:     jetstream.MemoryStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", EmbedRateBucket, err)
	}
	return &Resources{JS: js, Keys: &KeysKV{KeyValue: keys, Sealer: cfg.Sealer, markerTTL: cfg.KeyMarkerTTL}, Status: status, Objects: objects,
		EmbedCache: embCache, EmbedRate: embRate, Config: cfg}, nil
}

func consumerConfig(st Stage, cfg Config) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       st.Durable(),
		Description:   "pdfpipe " + string(st) + " stage",
		FilterSubject: st.Filter(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      cfg.Replicas,
	}
	switch st {
	case Embed:
		c.MaxAckPending = 4096
	case Ingest, Parse, Fetch:
		c.MaxAckPending = 256
	}
	return c
}

// Consumer returns the durable consumer of a stage (created by Setup).
func (r *Resources) Consumer(ctx context.Context, st Stage) (jetstream.Consumer, error) {
	c, err := r.JS.Consumer(ctx, Stream, st.Durable())
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = r.JS.CreateOrUpdateConsumer(ctx, Stream, consumerConfig(st, r.Config))
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", st.Durable(), err)
	}
	return c, nil
}

// Open binds to a pipeline that Setup created, without changing any of its
// configuration: for tools (status, replay) that must not reset an
// operator's retention or replicas to defaults.
func Open(ctx context.Context, js jetstream.JetStream) (*Resources, error) {
	r := &Resources{JS: js}
	var err error
	if r.Keys, err = js.KeyValue(ctx, KeysBucket); err != nil {
		return nil, fmt.Errorf("kv %s: %w (is pdfpipe running on this server?)", KeysBucket, err)
	}
	if r.Status, err = js.KeyValue(ctx, StatusBucket); err != nil {
		return nil, fmt.Errorf("kv %s: %w", StatusBucket, err)
	}
	if r.Objects, err = js.ObjectStore(ctx, ObjectsBucket); err != nil {
		return nil, fmt.Errorf("object store %s: %w", ObjectsBucket, err)
	}
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", Stream, err)
	}
	r.Config = Config{Retention: s.CachedInfo().Config.MaxAge, Replicas: s.CachedInfo().Config.Replicas}
	return r, nil
}
