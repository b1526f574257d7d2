// Package provider turns texts into embedding vectors with one of three
// providers:
//
//   - "openai": the OpenAI embeddings API through the official SDK
//     (github.com/openai/openai-go/v3). With Config.BaseURL it also talks to
//     OpenAI-compatible servers: Text Embeddings Inference, Ollama, vLLM, LocalAI.
//   - "gemini": the Gemini API (batchEmbedContents) through
//     google.golang.org/genai, with task types RETRIEVAL_DOCUMENT / RETRIEVAL_QUERY.
//   - "local": an offline, deterministic, lexical embedder (see [Local]) for
//     development, tests and air-gapped installs. It is not a language model.
//
// Every provider is asked for Config.Dimension (384 by default, the
// backend's vector(384)) and every vector it returns is checked against it.
// Failures are typed (see errors.go): invalid keys, rate limits, transient
// failures and refused input can be told apart with errors.Is, and
// [WithRetry] retries only what is worth retrying. API keys never appear in
// errors or in the printed Config.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// Kind says what a text is for. Gemini embeds the two differently
// (RETRIEVAL_DOCUMENT vs RETRIEVAL_QUERY); OpenAI and local ignore it unless
// Config.DocumentPrefix / QueryPrefix are set.
type Kind int

const (
	// Document is a chunk of a document being indexed (the pipeline).
	Document Kind = iota
	// Query is a search query (GetEmbedding).
	Query
)

func (k Kind) String() string {
	switch k {
	case Document:
		return "document"
	case Query:
		return "query"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Embedder embeds texts. The result has one vector per text, in the order
// of texts, each of the configured dimension. An empty or blank text is
// refused with ErrBadInput before anything is sent.
type Embedder interface {
	Embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error)
}

// Provider names accepted in Config.Provider (case-insensitively).
const (
	ProviderLocal  = "local"
	ProviderOpenAI = "openai"
	ProviderGemini = "gemini"
)

// Defaults.
const (
	DefaultDimension   = 384
	DefaultOpenAIModel = "text-embedding-3-small"
	DefaultGeminiModel = "gemini-embedding-001"
	LocalModel         = "local-ngram-v1"
	DefaultTimeout     = 60 * time.Second

	// OpenAIMaxBatch is the API's limit on inputs per request.
	OpenAIMaxBatch = 2048
	// OpenAIMaxBatchBytes keeps a request under the API's 300,000-token
	// total: a token is never shorter than one byte of UTF-8.
	OpenAIMaxBatchBytes = 300_000
	// CompatibleMaxBatch is the default for OpenAI-compatible servers
	// (Config.BaseURL set): Text Embeddings Inference refuses more than 32
	// inputs per request unless started with a larger --max-client-batch-size.
	CompatibleMaxBatch = 32
	// GeminiMaxBatch is batchEmbedContents' limit on requests per batch.
	GeminiMaxBatch = 100

	maxDimension  = 65536
	localMaxBatch = 256
)

const (
	openAIBaseURL = "https://api.openai.com/v1/"
	geminiBaseURL = "https://generativelanguage.googleapis.com/"
)

// Config selects and configures a provider. The zero value of every field
// but Provider means "the default".
type Config struct {
	Provider  string        // "local" | "openai" | "gemini", case-insensitive ("OpenAI", "Gemini")
	APIKey    string        // required for gemini and for openai at api.openai.com; never printed
	Model     string        // default per provider: DefaultOpenAIModel, DefaultGeminiModel, LocalModel
	BaseURL   string        // openai: root of an OpenAI-compatible API, e.g. "http://tei:80/v1"; gemini: API root (tests)
	Dimension int           // vector length asked for and checked; default 384
	MaxBatch  int           // texts per request; default OpenAIMaxBatch (CompatibleMaxBatch with BaseURL), GeminiMaxBatch
	Timeout   time.Duration // per HTTP request (each batch, each attempt); default DefaultTimeout

	// NoDimensionsParam stops the openai provider sending `dimensions`, for
	// servers that reject it (older Text Embeddings Inference). Their model
	// must then produce Dimension-long vectors natively.
	NoDimensionsParam bool
	// FloatVectors makes the openai provider ask for vectors as JSON
	// numbers instead of base64 (encoding_format), for servers that do not
	// know base64. Base64 is the default: decoding 384 JSON numbers per
	// text cost the embedder more CPU than anything else it does.
	FloatVectors bool
	// MaxBatchBytes caps the UTF-8 bytes of texts per request (openai only);
	// default OpenAIMaxBatchBytes. A single longer text is sent alone.
	MaxBatchBytes int
	// MaxBatchTokens caps the estimated tokens ([EstimateTokens]) of the
	// texts of one request: default OpenAIMaxBatchTokens for openai, none
	// for gemini (bounded by MaxBatch × MaxInputTokens) and local.
	MaxBatchTokens int
	// MaxInputTokens is the longest input, in estimated tokens, the model
	// takes: default OpenAIMaxInputTokens for openai, GeminiMaxInputTokens
	// for gemini, none for local. The client does not enforce it: callers
	// truncate or split longer texts (the embedder's EMBED_LONG_INPUT).
	MaxInputTokens int
	// DocumentPrefix and QueryPrefix are prepended to texts of that Kind
	// (openai and local), for models trained with them, e.g. E5's
	// "passage: " / "query: ". Empty by default.
	DocumentPrefix string
	QueryPrefix    string
}

// String prints the config with the API key masked.
func (c Config) String() string {
	return fmt.Sprintf("{Provider:%s Model:%s BaseURL:%s Dimension:%d MaxBatch:%d Timeout:%s APIKey:%s NoDimensionsParam:%t}",
		c.Provider, c.Model, envconf.Redact(c.BaseURL), c.Dimension, c.MaxBatch, c.Timeout, maskKey(c.APIKey), c.NoDimensionsParam)
}

// GoString keeps %#v from printing the API key.
func (c Config) GoString() string { return "provider.Config" + c.String() }

// LogValue logs the config with the API key masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("provider", c.Provider),
		slog.String("model", c.Model),
		slog.String("base_url", envconf.Redact(c.BaseURL)),
		slog.Int("dimension", c.Dimension),
		slog.Int("max_batch", c.MaxBatch),
		slog.Duration("timeout", c.Timeout),
		slog.String("api_key", maskKey(c.APIKey)),
		slog.Bool("no_dimensions_param", c.NoDimensionsParam),
	)
}

func maskKey(k string) string {
	if k == "" {
		return `""`
	}
	return "[set]"
}

// WithDefaults returns c with the provider name lower-cased and every unset
// field at its default. It does not validate.
func (c Config) WithDefaults() Config {
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	if c.Model == "" {
		switch c.Provider {
		case ProviderOpenAI:
			c.Model = DefaultOpenAIModel
		case ProviderGemini:
			c.Model = DefaultGeminiModel
		case ProviderLocal:
			c.Model = LocalModel
		}
	}
	if c.Dimension == 0 {
		c.Dimension = DefaultDimension
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBatch == 0 {
		switch c.Provider {
		case ProviderOpenAI:
			c.MaxBatch = OpenAIMaxBatch
			if c.BaseURL != "" {
				c.MaxBatch = CompatibleMaxBatch
			}
		case ProviderGemini:
			c.MaxBatch = GeminiMaxBatch
		}
	}
	if c.MaxBatchBytes == 0 && c.Provider == ProviderOpenAI {
		c.MaxBatchBytes = OpenAIMaxBatchBytes
	}
	if c.MaxBatchTokens == 0 && c.Provider == ProviderOpenAI {
		c.MaxBatchTokens = OpenAIMaxBatchTokens
	}
	if c.MaxInputTokens == 0 {
		switch c.Provider {
		case ProviderOpenAI:
			c.MaxInputTokens = OpenAIMaxInputTokens
		case ProviderGemini:
			c.MaxInputTokens = GeminiMaxInputTokens
		}
	}
	return c
}

// ModelOrDefault returns c.Model, or the default model of c's provider.
func ModelOrDefault(c Config) string { return c.WithDefaults().Model }

// DefaultMaxBatch returns the default texts per request for a provider at
// its official endpoint (openai 2048, gemini 100; local 256, as it has no
// requests). An openai Config with a BaseURL defaults to CompatibleMaxBatch:
// use Config.WithDefaults().MaxBatch to get the value for a whole config.
func DefaultMaxBatch(provider string) int {
	if m := (Config{Provider: provider}).WithDefaults().MaxBatch; m > 0 {
		return m
	}
	return localMaxBatch
}

// Validate checks a config after WithDefaults. Errors wrap ErrInvalidConfig,
// ErrInvalidKey (key missing) or ErrDimensionMismatch (the model cannot
// produce Dimension).
func (c Config) Validate() error {
	switch c.Provider {
	case ProviderLocal, ProviderOpenAI, ProviderGemini:
	case "":
		return fmt.Errorf("%w: no provider (want local, openai or gemini)", ErrInvalidConfig)
	default:
		return fmt.Errorf("%w: unknown provider %q (want local, openai or gemini)", ErrInvalidConfig, c.Provider)
	}
	if c.Dimension < 1 || c.Dimension > maxDimension {
		return fmt.Errorf("%w: dimension %d out of range 1..%d", ErrInvalidConfig, c.Dimension, maxDimension)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout %s", ErrInvalidConfig, c.Timeout)
	}
	if c.MaxBatchBytes < 0 || c.MaxBatchTokens < 0 || c.MaxInputTokens < 0 {
		return fmt.Errorf("%w: negative max batch bytes, batch tokens or input tokens", ErrInvalidConfig)
	}
	switch c.Provider {
	case ProviderLocal:
		if c.Model != LocalModel {
			return fmt.Errorf("%w: local provider has only model %q, not %q", ErrInvalidConfig, LocalModel, c.Model)
		}
		return nil
	case ProviderOpenAI:
		if c.MaxBatch < 1 || c.MaxBatch > OpenAIMaxBatch {
			return fmt.Errorf("%w: openai max batch %d out of range 1..%d", ErrInvalidConfig, c.MaxBatch, OpenAIMaxBatch)
		}
		if c.BaseURL == "" && c.APIKey == "" {
			return &Error{Provider: ProviderOpenAI, Kind: ErrInvalidKey, Message: "no API key given"}
		}
	case ProviderGemini:
		if c.MaxBatch < 1 || c.MaxBatch > GeminiMaxBatch {
			return fmt.Errorf("%w: gemini max batch %d out of range 1..%d", ErrInvalidConfig, c.MaxBatch, GeminiMaxBatch)
		}
		if c.APIKey == "" {
			return &Error{Provider: ProviderGemini, Kind: ErrInvalidKey, Message: "no API key given"}
		}
		if strings.ContainsAny(c.Model, "?&") || strings.Contains(c.Model, "..") {
			return fmt.Errorf("%w: invalid gemini model name %q", ErrInvalidConfig, c.Model)
		}
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("%w: base URL %q is not http(s)", ErrInvalidConfig, envconf.Redact(c.BaseURL))
	}
	if _, err := c.sendsDimension(); err != nil {
		return err
	}
	return nil
}

// modelDims describes a model whose output dimension is documented.
type modelDims struct {
	native   int  // dimension when none is requested
	flexible bool // accepts a requested dimension up to native
}

// knownModel returns what the provider documents about a model.
func knownModel(provider, model string) (modelDims, bool) {
	switch provider {
	case ProviderOpenAI:
		switch model {
		case "text-embedding-3-small":
			return modelDims{native: 1536, flexible: true}, true
		case "text-embedding-3-large":
			return modelDims{native: 3072, flexible: true}, true
		case "text-embedding-ada-002":
			return modelDims{native: 1536}, true
		}
	case ProviderGemini:
		switch strings.TrimPrefix(model, "models/") {
		case "gemini-embedding-001":
			return modelDims{native: 3072, flexible: true}, true
		case "text-embedding-004":
			return modelDims{native: 768, flexible: true}, true
		case "embedding-001":
			return modelDims{native: 768}, true
		}
	}
	return modelDims{}, false
}

// sendsDimension reports whether requests carry the dimension, and refuses
// a model documented not to produce it.
func (c Config) sendsDimension() (bool, error) {
	send := !(c.Provider == ProviderOpenAI && c.NoDimensionsParam)
	m, ok := knownModel(c.Provider, c.Model)
	if !ok {
		return send, nil
	}
	switch {
	case !m.flexible && c.Dimension != m.native:
		return false, &Error{Provider: c.Provider, Kind: ErrDimensionMismatch, Message: fmt.Sprintf(
			"model %q always returns %d-dimensional vectors and cannot produce %d; choose another model or set the dimension to %d",
			c.Model, m.native, c.Dimension, m.native)}
	case !m.flexible:
		return false, nil // fixed-size models reject the parameter
	case c.Dimension > m.native:
		return false, &Error{Provider: c.Provider, Kind: ErrDimensionMismatch, Message: fmt.Sprintf(
			"model %q produces at most %d dimensions, not %d", c.Model, m.native, c.Dimension)}
	}
	return send, nil
}

// New returns the Embedder cfg describes, after applying defaults and
// validating. httpClient carries the requests of the openai and gemini
// providers (nil: a new http.Client); Config.Timeout bounds each request.
// New makes no network call. The result does not retry: wrap it with
// [WithRetry]. It is safe for concurrent use.
func New(cfg Config, httpClient *http.Client) (Embedder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	sendDim, _ := cfg.sendsDimension()
	c := &client{
		provider:       cfg.Provider,
		model:          cfg.Model,
		dim:            cfg.Dimension,
		sendDim:        sendDim,
		maxBatch:       cfg.MaxBatch,
		maxBatchBytes:  cfg.MaxBatchBytes,
		maxBatchTokens: cfg.MaxBatchTokens,
		timeout:        cfg.Timeout,
		documentPrefix: cfg.DocumentPrefix,
		queryPrefix:    cfg.QueryPrefix,
	}
	switch cfg.Provider {
	case ProviderLocal:
		l := NewLocal(cfg.Dimension)
		l.documentPrefix, l.queryPrefix = cfg.DocumentPrefix, cfg.QueryPrefix
		return l, nil
	case ProviderOpenAI:
		c.req = newOpenAI(cfg, sendDim, httpClient)
	case ProviderGemini:
		r, err := newGemini(cfg, sendDim, httpClient)
		if err != nil {
			return nil, err
		}
		c.req = r
	}
	return c, nil
}

// requester sends one request for a batch that fits the provider's limits.
// Its errors are already classified (*Error) unless ctx ended.
type requester interface {
	embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error)
}

// client splits texts into batches, sends each through req with a
// per-request timeout and optional retries, and checks what comes back.
type client struct {
	provider       string
	model          string
	dim            int
	sendDim        bool
	maxBatch       int
	maxBatchBytes  int
	maxBatchTokens int
	timeout        time.Duration
	documentPrefix string
	queryPrefix    string
	req            requester
	retry          *RetryPolicy
}

func (c *client) String() string {
	return fmt.Sprintf("provider.%s(model=%s, dimension=%d)", c.provider, c.model, c.dim)
}

// withRetry lets WithRetry retry each batch rather than the whole call.
func (c *client) withRetry(p RetryPolicy) Embedder {
	cp := *c
	cp.retry = &p
	return &cp
}

// Embed implements Embedder. Batches are sent one after the other; the
// error of a failed batch says which texts it held.
func (c *client) Embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error) {
	if err := checkTexts(c.provider, texts); err != nil {
		return nil, err
	}
	texts = withPrefix(texts, kind, c.documentPrefix, c.queryPrefix)
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); {
		end := c.batchEnd(texts, start)
		batch := texts[start:end]
		var vecs [][]float32
		var err error
		if c.retry != nil {
			err = c.retry.run(ctx, func(ctx context.Context) error {
				vecs, err = c.attempt(ctx, batch, kind)
				return err
			})
		} else {
			vecs, err = c.attempt(ctx, batch, kind)
		}
		if err != nil {
			if len(texts) == len(batch) {
				return nil, err
			}
			return nil, fmt.Errorf("embed texts %d..%d of %d: %w", start, end-1, len(texts), err)
		}
		out = append(out, vecs...)
		start = end
	}
	return out, nil
}

// batchEnd returns the end of the batch starting at start: at most
// maxBatch texts, maxBatchBytes bytes and maxBatchTokens estimated tokens
// (a single text above a budget is sent alone).
func (c *client) batchEnd(texts []string, start int) int {
	n, size, tokens := 0, 0, 0
	for i := start; i < len(texts); i++ {
		t := 0
		if c.maxBatchTokens > 0 {
			t = EstimateTokens(texts[i])
		}
		if n > 0 && (n == c.maxBatch ||
			(c.maxBatchBytes > 0 && size+len(texts[i]) > c.maxBatchBytes) ||
			(c.maxBatchTokens > 0 && tokens+t > c.maxBatchTokens)) {
			return i
		}
		n++
		size += len(texts[i])
		tokens += t
	}
	return len(texts)
}

// attempt sends one request and validates the answer.
func (c *client) attempt(ctx context.Context, batch []string, kind Kind) ([][]float32, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	vecs, err := c.req.embed(rctx, batch, kind)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s request: %w", c.provider, ctx.Err())
		}
		return nil, err
	}
	if len(vecs) != len(batch) {
		return nil, &Error{Provider: c.provider, Kind: ErrBadResponse, Message: fmt.Sprintf("got %d vectors for %d texts", len(vecs), len(batch))}
	}
	for i, v := range vecs {
		if len(v) != c.dim {
			return nil, c.dimensionError(len(v))
		}
		zero := true
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, &Error{Provider: c.provider, Kind: ErrBadResponse, Message: fmt.Sprintf("vector %d contains NaN or Inf", i)}
			}
			zero = zero && x == 0
		}
		if zero {
			// A cosine index cannot rank it, and the backend reads zero
			// vectors as "not embedded" (RagMode false).
			return nil, &Error{Provider: c.provider, Kind: ErrBadResponse, Message: fmt.Sprintf("vector %d is all zeros", i)}
		}
	}
	return vecs, nil
}

func (c *client) dimensionError(got int) error {
	hint := "check the model and the dimension setting"
	if !c.sendDim {
		hint = fmt.Sprintf("the dimension is not sent to this server, so its model must natively produce %d dimensions", c.dim)
	}
	return &Error{Provider: c.provider, Kind: ErrDimensionMismatch, Message: fmt.Sprintf(
		"model %q returned %d-dimensional vectors, want %d; %s", c.model, got, c.dim, hint)}
}

// checkTexts refuses empty and blank texts, which every API rejects.
func checkTexts(provider string, texts []string) error {
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return &Error{Provider: provider, Kind: ErrBadInput, Message: fmt.Sprintf("text %d of %d is empty", i, len(texts))}
		}
	}
	return nil
}

func withPrefix(texts []string, kind Kind, doc, query string) []string {
	p := doc
	if kind == Query {
		p = query
	}
	if p == "" {
		return texts
	}
	out := make([]string, len(texts))
	for i, t := range texts {
		out[i] = p + t
	}
	return out
}
