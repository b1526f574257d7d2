// Package embedder is the embed stage: it turns each chunk into a vector
// with the task's provider (its API key read from the keys bucket by task
// id, waiting for one that has not arrived yet) or the default provider,
// batching concurrent chunks into one API request, and stores the vector
// on the vector stream. It also answers GetEmbedding queries through NATS,
// so adding embedders adds query capacity.
package embedder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// Settings are the embedder's own environment variables (besides
// servicemain.Settings): the one description its ConfigFromEnv reads, its
// -h lists and the README's table is generated from.
var Settings = envconf.Settings{
	envconf.String("EMBEDDING_PROVIDER", provider.ProviderLocal,
		"default provider: `local`, `openai` (also OpenAI-compatible servers) or `gemini`"),
	envconf.Secret("EMBEDDING_API_KEY", "the default provider's key, or a file holding it (mounted secret)").
		WithFile("EMBEDDING_API_KEY_FILE"),
	envconf.String("EMBEDDING_MODEL_NAME", "", fmt.Sprintf("the default provider's model; unset: `%s` (openai), `%s` (gemini), `%s` (local)",
		provider.DefaultOpenAIModel, provider.DefaultGeminiModel, provider.LocalModel)),
	envconf.String("EMBEDDING_BASE_URL", "",
		"the default provider's base URL (e.g. `http://tei/v1` for Text Embeddings Inference); logged with credentials masked"),
	pipeline.DimensionSetting,
	envconf.String("OPENAI_BASE_URL", "", "base URL for tasks whose OpenAI key came through ProvideAPIKey; logged with credentials masked"),
	envconf.String("OPENAI_EMBEDDING_MODEL", "", fmt.Sprintf("model for tasks whose OpenAI key came through ProvideAPIKey; unset: `%s`", provider.DefaultOpenAIModel)),
	envconf.String("GEMINI_EMBEDDING_MODEL", "", fmt.Sprintf("model for tasks whose Gemini key came through ProvideAPIKey; unset: `%s`", provider.DefaultGeminiModel)),
	envconf.Duration("API_KEY_WAIT", 30*time.Second, "how long a task waits for its key when no default provider can serve it"),
	envconf.Bool("EMBEDDING_SEND_DIMENSIONS", true,
		"`false` for OpenAI-compatible servers that reject the `dimensions` parameter (their model must be natively `EMBEDDING_DIMENSION`)"),
	envconf.Bool("EMBEDDING_BASE64", true,
		"the openai provider asks for vectors as base64 (`encoding_format`, as OpenAI's Python SDK does); `false` for servers that only send JSON numbers"),
	envconf.Int("EMBED_WORKERS", 256, "embed messages in flight (each up to `CHUNKS_PER_MESSAGE` chunks)"),
	envconf.Int("EMBED_REQUESTS", 8, "API requests in flight"),
	envconf.Duration("EMBED_LINGER", 10*time.Millisecond, "how long a batch waits to fill"),
	envconf.Duration("EMBED_TIMEOUT", 60*time.Second, "timeout of one API request"),
	envconf.Int("EMBED_BATCH", 0, fmt.Sprintf("texts per request; `0`: the provider's (OpenAI %d, Gemini %d, OpenAI-compatible servers %d)",
		provider.OpenAIMaxBatch, provider.GeminiMaxBatch, provider.CompatibleMaxBatch)),
	envconf.Int("EMBED_BATCH_TOKENS", 0, fmt.Sprintf("estimated tokens per request; `0`: the provider's (OpenAI %d, none for Gemini)",
		provider.OpenAIMaxBatchTokens)),
	envconf.Int("EMBED_MAX_INPUT_TOKENS", 0, fmt.Sprintf("estimated tokens per input; `0`: the provider's (OpenAI %d, Gemini %d, none for local)",
		provider.OpenAIMaxInputTokens, provider.GeminiMaxInputTokens)),
	envconf.String("EMBED_LONG_INPUT", LongTruncate,
		"an input over the token limit is `truncate`d, `split` (parts embedded and averaged) or `fail`s the task; each case is counted and logged"),
	envconf.Int("EMBED_RPM", 0, "requests per minute for one API key, shared by all embedder replicas; `0`: unlimited"),
	envconf.Int("EMBED_TPM", 0, "estimated tokens per minute for one API key, shared by all embedder replicas; `0`: unlimited"),
	envconf.Bool("EMBED_CACHE", true,
		"cache vectors by (provider, model, base URL, dimension, text) so replays and re-uploads cost no API call"),
	envconf.Duration("EMBED_STATS_EVERY", time.Minute, "how often cache and request counters are logged (when they changed; also at exit)"),
}

// Config of the embedder (Settings, which say the defaults).
type Config struct {
	// Default answers tasks without a key of their own and every
	// GetEmbedding query: EMBEDDING_PROVIDER, EMBEDDING_API_KEY[_FILE],
	// EMBEDDING_MODEL_NAME, EMBEDDING_BASE_URL.
	Default provider.Config
	// Dimension every vector must have: EMBEDDING_DIMENSION.
	Dimension int
	// Models per provider for tasks that bring their own key
	// (OPENAI_EMBEDDING_MODEL, GEMINI_EMBEDDING_MODEL) and OPENAI_BASE_URL.
	OpenAIModel, GeminiModel, OpenAIBaseURL string
	// KeyWait is how long a task without a key waits for one when no
	// default provider can serve it: API_KEY_WAIT.
	KeyWait time.Duration
	// Workers is how many embed messages are in flight (EMBED_WORKERS);
	// Requests how many API requests (EMBED_REQUESTS); Linger how long a
	// batch waits to fill (EMBED_LINGER). A batch holds up to the
	// provider's limit (EMBED_BATCH overrides it).
	Workers, Requests int
	Linger            time.Duration
	// Timeout per API request (EMBED_TIMEOUT).
	Timeout time.Duration
	// Retry of rate-limited and transient provider errors.
	Retry provider.RetryPolicy
	// LongInput says what to do with a text above the provider's input
	// limit (EMBED_LONG_INPUT): LongTruncate (also when empty), LongSplit
	// or LongFail. MaxInputTokens overrides that limit
	// (EMBED_MAX_INPUT_TOKENS; 0: the provider's).
	LongInput      string
	MaxInputTokens int
	// RPM and TPM are the requests and estimated tokens per minute that
	// all embedder replicas together may send with one API key (EMBED_RPM,
	// EMBED_TPM; 0: unlimited), enforced through a shared KV token bucket.
	RPM, TPM int
	// Cache keeps vectors of remote providers in the embedding cache
	// bucket (EMBED_CACHE).
	Cache bool
	// StatsEvery is how often the counters are logged when they changed
	// (EMBED_STATS_EVERY; they are also logged at exit).
	StatsEvery time.Duration

	env envconf.Values
}

// ConfigFromEnv reads the embedder's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv, Settings)
	dim := r.Int("EMBEDDING_DIMENSION")
	c := Config{
		Default: provider.Config{
			Provider:  r.String("EMBEDDING_PROVIDER"),
			APIKey:    r.Secret("EMBEDDING_API_KEY"),
			Model:     r.String("EMBEDDING_MODEL_NAME"),
			BaseURL:   r.String("EMBEDDING_BASE_URL"),
			Dimension: dim,
			MaxBatch:  r.Int("EMBED_BATCH"),
			// Servers that reject OpenAI's `dimensions` parameter (their
			// model is natively EMBEDDING_DIMENSION) take it switched off.
			NoDimensionsParam: !r.Bool("EMBEDDING_SEND_DIMENSIONS"),
			// Servers that do not know encoding_format=base64 take it switched off.
			FloatVectors: !r.Bool("EMBEDDING_BASE64"),
			// Estimated tokens per request; 0: the provider's budget.
			MaxBatchTokens: r.Int("EMBED_BATCH_TOKENS"),
		},
		Dimension:      dim,
		OpenAIModel:    r.String("OPENAI_EMBEDDING_MODEL"),
		GeminiModel:    r.String("GEMINI_EMBEDDING_MODEL"),
		OpenAIBaseURL:  r.String("OPENAI_BASE_URL"),
		KeyWait:        r.Duration("API_KEY_WAIT"),
		Workers:        r.Int("EMBED_WORKERS"),
		Requests:       r.Int("EMBED_REQUESTS"),
		Linger:         r.Duration("EMBED_LINGER"),
		Timeout:        r.Duration("EMBED_TIMEOUT"),
		LongInput:      strings.ToLower(r.String("EMBED_LONG_INPUT")),
		MaxInputTokens: r.Int("EMBED_MAX_INPUT_TOKENS"),
		RPM:            r.Int("EMBED_RPM"),
		TPM:            r.Int("EMBED_TPM"),
		Cache:          r.Bool("EMBED_CACHE"),
		StatsEvery:     r.Duration("EMBED_STATS_EVERY"),
	}
	c.Default.Timeout = c.Timeout
	c.env = r.Values()
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings; the default provider itself is checked by
// New, which refuses a model that cannot give Dimension.
func (c Config) Validate() error {
	var errs []error
	if c.Dimension < 1 {
		errs = append(errs, errors.New("EMBEDDING_DIMENSION must be positive"))
	}
	if c.Workers < 1 || c.Requests < 1 {
		errs = append(errs, errors.New("EMBED_WORKERS and EMBED_REQUESTS must be at least 1"))
	}
	switch c.LongInput {
	case "", LongTruncate, LongSplit, LongFail:
	default:
		errs = append(errs, fmt.Errorf("EMBED_LONG_INPUT %q: want truncate, split or fail", c.LongInput))
	}
	if c.MaxInputTokens < 0 || c.RPM < 0 || c.TPM < 0 {
		errs = append(errs, errors.New("EMBED_MAX_INPUT_TOKENS, EMBED_RPM and EMBED_TPM must not be negative"))
	}
	return errors.Join(errs...)
}

// LogValue lists the settings ConfigFromEnv read, the key and URL
// credentials masked.
func (c Config) LogValue() slog.Value { return c.env.LogValue() }

// Service is a running embedder.
type Service struct {
	cfg      Config
	res      *pipeline.Resources
	nc       *nats.Conn
	log      *slog.Logger
	inflight chan struct{}
	stats    counters
	limiter  *limiter // nil: no EMBED_RPM or EMBED_TPM

	def, defQuery *batcher
	defModel      string

	mu       sync.Mutex
	batchers map[string]*batcher // by digest of provider, model and key
}

// New checks the default provider and returns an embedder.
func New(cfg Config, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	s := &Service{cfg: cfg, res: res, nc: nc, log: log,
		inflight: make(chan struct{}, cfg.Requests), batchers: map[string]*batcher{}}
	if cfg.RPM > 0 || cfg.TPM > 0 {
		if res.EmbedRate == nil {
			return nil, errors.New("EMBED_RPM/EMBED_TPM need the rate-limit bucket (pipeline.Setup)")
		}
		s.limiter = &limiter{kv: res.EmbedRate, rpm: float64(cfg.RPM), tpm: float64(cfg.TPM), now: time.Now}
	}
	emb, err := s.provider(cfg.Default)
	switch {
	case errors.Is(err, provider.ErrInvalidKey) && cfg.Default.APIKey == "":
		// A remote default without a key serves no task (they wait for
		// their own key, see defaultUsable); queries get this error.
		emb = unavailable{err: err}
	case err != nil:
		return nil, fmt.Errorf("default embedding provider %s: %w", cfg.Default.Provider, err)
	}
	s.def = s.newBatcher(cfg.Default, emb, provider.Document, cfg.Linger, true)
	// Queries do not linger: GetEmbedding latency matters more than
	// batching, and concurrent queries still share requests.
	s.defQuery = s.newBatcher(cfg.Default, emb, provider.Query, 0, true)
	s.defModel = modelName(cfg.Default)
	return s, nil
}

// provider returns the embedder for pc, without retries (the batcher
// retries, shrinking batches on 429).
func (s *Service) provider(pc provider.Config) (provider.Embedder, error) {
	pc.Dimension = s.cfg.Dimension
	pc.Timeout = s.cfg.Timeout
	return provider.New(pc, nil)
}

// newBatcher returns a batcher for pc whose requests map one to one onto
// API requests: its limits are the provider's effective ones for the whole
// config (an OpenAI-compatible base URL has a smaller batch than
// api.openai.com), so the client never splits a batch into sequential
// requests and EMBED_REQUESTS of them are in flight. With cached, it reads
// and writes the embedding cache (EMBED_CACHE; not for the local provider).
func (s *Service) newBatcher(pc provider.Config, emb provider.Embedder, kind provider.Kind, linger time.Duration, cached bool) *batcher {
	pc.Dimension = s.cfg.Dimension
	pc.Timeout = s.cfg.Timeout
	d := pc.WithDefaults()
	b := &batcher{
		emb: emb, name: d.Provider, kind: kind, dim: s.cfg.Dimension,
		maxBatch: d.MaxBatch, maxBytes: d.MaxBatchBytes, maxToks: d.MaxBatchTokens, maxInput: d.MaxInputTokens,
		linger: linger, sem: s.inflight, retry: s.cfg.Retry.WithDefaults(), stats: &s.stats, log: s.log,
		model: d.Model, tracer: s.res.Config.Tracer, metrics: s.res.Config.Metrics,
	}
	b.metrics.Provider(d.Provider)
	if b.maxBatch <= 0 {
		b.maxBatch = provider.DefaultMaxBatch(d.Provider)
	}
	b.limit = b.maxBatch
	if s.cfg.MaxInputTokens > 0 {
		b.maxInput = s.cfg.MaxInputTokens
	}
	if d.Provider != provider.ProviderLocal {
		if cached && s.cfg.Cache && s.res.EmbedCache != nil {
			b.cache = &vecCache{kv: s.res.EmbedCache, js: s.res.JS, ns: cacheNamespace(d, s.cfg.Dimension, kind)}
		}
		if s.limiter != nil {
			b.rate, b.rateKey = s.limiter, limitKey(d.Provider, d.BaseURL, d.APIKey)
		}
	}
	return b
}

// Stats returns the embedder's counters.
func (s *Service) Stats() Stats { return s.stats.snapshot() }

// logStats logs the counters every StatsEvery when they changed, and once
// more when ctx ends.
func (s *Service) logStats(ctx context.Context) error {
	every := s.cfg.StatsEvery
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last Stats
	for {
		select {
		case <-ctx.Done():
			s.log.Info("embedder stats", "stats", s.Stats())
			return nil
		case <-t.C:
			if st := s.Stats(); st != last {
				s.log.Info("embedder stats", "stats", st)
				last = st
			}
		}
	}
}

// Run embeds chunks and answers queries until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	// The handler skips the chunks of a task that ended (failed here or
	// elsewhere) without an API call, one status read for all of them.
	h := stage.NewTyped(s.res, pipeline.Embed, s.log, s.Handle)
	r, err := stage.ForStage(ctx, s.res, pipeline.Embed, h, s.log, s.cfg.Workers, 0)
	if err != nil {
		return err
	}
	r.Classify = errorClass
	if err := s.checkDefault(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return s.serveQueries(gctx) })
	g.Go(func() error { return s.logStats(gctx) })
	return g.Wait()
}

// checkDefault embeds one short text with a remote default provider, so a
// model or server that cannot give the configured dimension, or a wrong
// default key, stops the embedder at start instead of failing every task
// later. A provider that is not reachable yet (a model server still
// starting) only gets a warning: tasks retry until it is.
func (s *Service) checkDefault(ctx context.Context) error {
	if strings.EqualFold(s.cfg.Default.Provider, "local") || !s.defaultUsable() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Straight to the provider: the cache must not answer for it.
	_, err := provider.WithRetry(s.defQuery.emb, s.cfg.Retry).Embed(ctx, []string{"pdfpipe start-up check"}, provider.Query)
	switch {
	case err == nil:
		s.log.Info("default embedding provider answers", "model", s.defModel, "dimension", s.cfg.Dimension)
		return nil
	case errors.Is(err, provider.ErrDimensionMismatch), errors.Is(err, provider.ErrInvalidKey), errors.Is(err, provider.ErrInvalidConfig):
		return fmt.Errorf("default embedding provider %s: %w", s.defModel, err)
	default:
		s.log.Warn("default embedding provider not reachable at start; tasks will retry", "model", s.defModel, "err", err)
		return nil
	}
}

// Handle embeds a job's chunks and stores their vectors. The chunks are
// embedded at once, so the batcher sends them together (with those of
// other jobs for the same provider and key); the job is acknowledged when
// every vector is stored. A redelivered job embeds its chunks again, from
// the cache.
func (s *Service) Handle(ctx context.Context, j *stage.Job[pipeline.EmbedJob]) error {
	job := j.Body
	// pdfpipe cancel hears from this job until it is done (a provider
	// call or two: the next job of an ended task makes none).
	work, err := stage.Working(ctx, s.res.JS.Conn(), pipeline.Embed, j.Msg, nil, "")
	if err != nil {
		return err
	}
	defer work.Stop()
	chunks := job.All()
	vecs := make([][]float32, len(chunks))
	model := "none (RagMode false)"
	if job.SkipEmbedding {
		for i := range vecs {
			vecs[i] = make([]float32, s.cfg.Dimension)
		}
	} else {
		b, m, err := s.batcherFor(ctx, job.TaskID)
		if err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		for i, c := range chunks {
			g.Go(func() error {
				v, err := s.embedText(gctx, b, job.TaskID, c.Index, c.Text)
				vecs[i] = v
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return classify(job.TaskID, err)
		}
		model = m
	}
	trace.SpanFromContext(ctx).SetAttributes(attrJobModel.String(model))
	for i, c := range chunks {
		if len(vecs[i]) != s.cfg.Dimension {
			return stage.Permanent(fmt.Errorf("embed %s chunk %d: got %d dimensions, want %d", job.TaskID, c.Index, len(vecs[i]), s.cfg.Dimension))
		}
	}
	if err := s.storeVectors(ctx, j.Out, j.Msg, job.TaskID, model, chunks, vecs); err != nil {
		return err
	}
	stage.Report(ctx, metrics.Work{Chunks: len(chunks)})
	return nil
}

// batcherFor picks the task's own provider and key when it has one, else
// the default provider; with no usable default it waits for the key.
func (s *Service) batcherFor(ctx context.Context, taskID string) (*batcher, string, error) {
	wait := time.Duration(0)
	if !s.defaultUsable() {
		wait = s.cfg.KeyWait
	}
	k, err := pipeline.GetAPIKey(ctx, s.res.Keys, taskID, wait)
	switch {
	case errors.Is(err, pipeline.ErrNoKey) && s.defaultUsable():
		return s.def, s.defModel, nil
	case errors.Is(err, pipeline.ErrNoKey):
		return nil, "", stage.Permanent(&noKeyError{fmt.Sprintf("embed %s: no API key arrived within %s and no default provider is configured", taskID, s.cfg.KeyWait)})
	case pipeline.IsSealError(err):
		return nil, "", stage.Permanent(fmt.Errorf("embed %s: reading the task's API key: %w", taskID, err))
	case err != nil:
		return nil, "", err
	}
	pc := s.keyConfig(k.Provider, k.Key)
	digest := sha256.Sum256([]byte(pc.Provider + "\x00" + pc.Model + "\x00" + pc.BaseURL + "\x00" + pc.APIKey))
	id := hex.EncodeToString(digest[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.batchers[id]; ok {
		return b, modelName(pc), nil
	}
	emb, err := s.provider(pc)
	if err != nil {
		return nil, "", stage.Permanent(fmt.Errorf("embed %s: provider %q: %w", taskID, k.Provider, err))
	}
	b := s.newBatcher(pc, emb, provider.Document, s.cfg.Linger, true)
	s.batchers[id] = b
	return b, modelName(pc), nil
}

// keyConfig is the provider configuration for a key that came with a
// task (ProvideAPIKey) or a query (GetEmbedding): the configured model and
// base URL of that provider (OPENAI_*, GEMINI_*), filled from the default
// provider's settings when it is the same provider — never the public
// endpoint when a server was configured.
func (s *Service) keyConfig(prov, key string) provider.Config {
	pc := provider.Config{Provider: strings.ToLower(strings.TrimSpace(prov)), APIKey: key}
	switch pc.Provider {
	case provider.ProviderOpenAI:
		pc.Model, pc.BaseURL = s.cfg.OpenAIModel, s.cfg.OpenAIBaseURL
	case "gemini":
		pc.Model = s.cfg.GeminiModel
	}
	if strings.EqualFold(pc.Provider, s.cfg.Default.Provider) {
		// The default's settings fill what OPENAI_* leaves unset.
		if pc.Model == "" {
			pc.Model = s.cfg.Default.Model
		}
		if pc.BaseURL == "" {
			pc.BaseURL = s.cfg.Default.BaseURL
		}
		pc.MaxBatch = s.cfg.Default.MaxBatch
		pc.NoDimensionsParam = s.cfg.Default.NoDimensionsParam
		pc.MaxBatchTokens = s.cfg.Default.MaxBatchTokens
	}
	return pc
}

// defaultUsable says whether the default provider can serve a task
// without a key of its own: local, one with a key, or an OpenAI-compatible
// server (EMBEDDING_BASE_URL), which may need no key.
func (s *Service) defaultUsable() bool {
	switch strings.ToLower(strings.TrimSpace(s.cfg.Default.Provider)) {
	case provider.ProviderLocal:
		return true
	case provider.ProviderOpenAI:
		return s.cfg.Default.APIKey != "" || s.cfg.Default.BaseURL != ""
	}
	return s.cfg.Default.APIKey != ""
}

// unavailable stands in for a default provider that has no key.
type unavailable struct{ err error }

func (u unavailable) Embed(context.Context, []string, provider.Kind) ([][]float32, error) {
	return nil, u.err
}

func modelName(pc provider.Config) string {
	return strings.ToLower(pc.Provider) + "/" + provider.ModelOrDefault(pc)
}

// classify makes the provider's errors that retrying cannot fix (invalid
// key, exhausted quota, bad input, wrong dimension) permanent; rate limits,
// transient provider errors and our own cancellations are retried.
func classify(taskID string, err error) error {
	var pe *provider.Error
	if errors.As(err, &pe) && !provider.Retryable(err) {
		return stage.Permanent(fmt.Errorf("embed %s: %w", taskID, err))
	}
	return fmt.Errorf("embed %s: %w", taskID, err)
}

// serveQueries answers GetEmbedding requests in the embedder queue group.
func (s *Service) serveQueries(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.Workers)
	var wg sync.WaitGroup
	sub, err := s.nc.QueueSubscribe(pipeline.QuerySubject, pipeline.QueryQueue, func(m *nats.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.answer(ctx, m)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", pipeline.QuerySubject, err)
	}
	<-ctx.Done()
	_ = sub.Drain()
	wg.Wait()
	return nil
}

func (s *Service) answer(ctx context.Context, m *nats.Msg) {
	var q pipeline.EmbedQuery
	reply := func(r pipeline.EmbedReply) {
		data, _ := json.Marshal(r)
		_ = m.Respond(data)
	}
	if err := json.Unmarshal(m.Data, &q); err != nil || strings.TrimSpace(q.Text) == "" {
		reply(pipeline.EmbedReply{Error: "query needs a non-empty text", BadInput: true})
		return
	}
	if err := q.OpenQueryKey(pipeline.SealerOf(s.res.Keys)); err != nil {
		s.log.Warn("query key does not open", "err", err)
		reply(pipeline.EmbedReply{Error: "query key: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	b, model := s.defQuery, s.defModel
	if q.APIKey != "" && q.Provider != "" {
		pc := s.keyConfig(q.Provider, q.APIKey)
		emb, err := s.provider(pc)
		if err != nil {
			reply(pipeline.EmbedReply{Error: err.Error(), BadInput: true})
			return
		}
		// A batcher of its own, for the one text: the request is counted,
		// traced, retried and held to the key's shared rate limit like any
		// other. Without the embedding cache: the caller's key must reach
		// the provider, or a wrong key would learn which texts were
		// embedded before.
		b, model = s.newBatcher(pc, emb, provider.Query, 0, false), modelName(pc)
	}
	vec, err := s.embedText(ctx, b, "query", 0, q.Text)
	if err != nil {
		s.log.Warn("query failed", "err", err)
		reply(errorReply(err))
		return
	}
	reply(pipeline.EmbedReply{Vector: vec, Model: model})
}

func errorReply(err error) pipeline.EmbedReply {
	return pipeline.EmbedReply{Error: err.Error(),
		InvalidKey: errors.Is(err, provider.ErrInvalidKey), BadInput: errors.Is(err, provider.ErrBadInput)}
}
