package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a handled message (label "outcome" of the latency histogram).
const (
	OutcomeOK     = "ok"     // acked
	OutcomeRetry  = "retry"  // nak'ed, delivered again after backoff
	OutcomeFailed = "failed" // the task failed at this stage
)

// Work is what handling one message did, counted when it succeeded.
type Work struct {
	Documents int   // documents finished by the stage (fetched, parsed, ingested, accepted)
	Pages     int   // pages read
	Chunks    int   // chunks cut, embedded or sent
	Bytes     int64 // bytes fetched
}

// Metrics are the counters and histograms a process updates as it works.
// One Metrics serves every stage of a process (`pdfpipe up` runs them
// all): series carry the stage as a label. A nil *Metrics counts nothing,
// so code paths without one (tests, tools) need no checks.
//
// Series are created up front for the stages and providers a process
// announces (Stage, Provider), so dashboards see zeros, not gaps, before
// the first event.
type Metrics struct {
	handled                  *prometheus.HistogramVec
	documents, pages, chunks *prometheus.CounterVec
	bytes, errors            *prometheus.CounterVec
	provRequests, provTexts  *prometheus.CounterVec
	provTokens               *prometheus.CounterVec
	provSeconds              *prometheus.HistogramVec
	cache                    *prometheus.CounterVec
	all                      []prometheus.Collector
}

// New returns a process's Metrics; register it (it is a
// prometheus.Collector) with the registry /metrics serves.
func NewMetrics() *Metrics {
	stage := []string{"stage"}
	m := &Metrics{
		handled: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pdfpipe_stage_handle_seconds",
			Help: "Time a stage took to handle one message (embed: one message of up to 16 chunks), by outcome: ok, retry, failed.",
			// From a cached embed message to a 30-minute parse.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"stage", "outcome"}),
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_documents_total",
			Help: "Documents a stage finished: accepted from Redis (gateway), fetched, parsed, ingested.",
		}, stage),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_pages_total",
			Help: "Pages of the documents a stage finished (parse).",
		}, stage),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_chunks_total",
			Help: "Chunks a stage finished: cut (parse), embedded and stored (embed), sent to the backend (ingest).",
		}, stage),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_bytes_total",
			Help: "PDF bytes a stage finished: stored in the object store (fetch), parsed (parse).",
		}, stage),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_stage_errors_total",
			Help: "Errors handling a message, by stage, reason class and disposition (retry: delivered again; failed: the task failed).",
		}, []string{"stage", "class", "disposition"}),
		provRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_embed_provider_requests_total",
			Help: "Embedding API requests (every attempt), by provider and status: ok, rate_limited (429), transient, invalid_key, quota_exceeded, bad_input, bad_response, dimension_mismatch, canceled, error.",
		}, []string{"provider", "status"}),
		provTexts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_embed_provider_texts_total",
			Help: "Texts sent in embedding API requests (every attempt), by provider: divided by requests, the mean batch size.",
		}, []string{"provider"}),
		provTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_embed_provider_tokens_total",
			Help: "Tokens of the texts of successful embedding requests, by provider, as the embedder estimates them (1 per 3 ASCII bytes + 1 per other character).",
		}, []string{"provider"}),
		provSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pdfpipe_embed_provider_request_seconds",
			Help:    "Duration of embedding API requests, by provider.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"provider"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pdfpipe_embed_cache_lookups_total",
			Help: "Texts looked up in the embedding cache, by result: hit (no API call) or miss.",
		}, []string{"result"}),
	}
	m.all = []prometheus.Collector{m.handled, m.documents, m.pages, m.chunks, m.bytes, m.errors,
		m.provRequests, m.provTexts, m.provTokens, m.provSeconds, m.cache}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// Stage creates the series of a stage this process runs, with the error
// classes it may report.
func (m *Metrics) Stage(stage string, classes []string) {
	if m == nil {
		return
	}
	for _, o := range []string{OutcomeOK, OutcomeRetry, OutcomeFailed} {
		m.handled.WithLabelValues(stage, o)
	}
	for _, c := range []*prometheus.CounterVec{m.documents, m.pages, m.chunks, m.bytes} {
		c.WithLabelValues(stage)
	}
	for _, class := range classes {
		for _, d := range []string{OutcomeRetry, OutcomeFailed} {
			m.errors.WithLabelValues(stage, class, d)
		}
	}
}

// ProviderStatuses are the values of the provider request counter's
// "status" label.
var ProviderStatuses = []string{"ok", "rate_limited", "transient", "invalid_key", "quota_exceeded",
	"bad_input", "bad_response", "dimension_mismatch", "canceled", "error"}

// Provider creates the series of an embedding provider (and of the cache).
func (m *Metrics) Provider(provider string) {
	if m == nil {
		return
	}
	for _, s := range ProviderStatuses {
		m.provRequests.WithLabelValues(provider, s)
	}
	m.provTexts.WithLabelValues(provider)
	m.provTokens.WithLabelValues(provider)
	m.provSeconds.WithLabelValues(provider)
	m.cache.WithLabelValues("hit")
	m.cache.WithLabelValues("miss")
}

// Handled records how long a stage took with one message and how it ended.
func (m *Metrics) Handled(stage, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(stage, outcome).Observe(d.Seconds())
}

// Did counts the work of a message a stage handled successfully.
func (m *Metrics) Did(stage string, w Work) {
	if m == nil {
		return
	}
	m.documents.WithLabelValues(stage).Add(float64(w.Documents))
	m.pages.WithLabelValues(stage).Add(float64(w.Pages))
	m.chunks.WithLabelValues(stage).Add(float64(w.Chunks))
	m.bytes.WithLabelValues(stage).Add(float64(w.Bytes))
}

// Error counts one error of a stage: its reason class and whether the
// message is retried or the task failed.
func (m *Metrics) Error(stage, class, disposition string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(stage, class, disposition).Inc()
}

// ProviderRequest counts one embedding API request of texts (tokens
// estimated), how it ended and how long it took. Tokens are counted for
// successful requests only.
func (m *Metrics) ProviderRequest(provider, status string, texts, tokens int, d time.Duration) {
	if m == nil {
		return
	}
	m.provRequests.WithLabelValues(provider, status).Inc()
	m.provTexts.WithLabelValues(provider).Add(float64(texts))
	if status == "ok" {
		m.provTokens.WithLabelValues(provider).Add(float64(tokens))
	}
	m.provSeconds.WithLabelValues(provider).Observe(d.Seconds())
}

// CacheLookups counts the embedding cache's answers to one batched lookup.
func (m *Metrics) CacheLookups(hits, misses int) {
	if m == nil {
		return
	}
	if hits > 0 {
		m.cache.WithLabelValues("hit").Add(float64(hits))
	}
	if misses > 0 {
		m.cache.WithLabelValues("miss").Add(float64(misses))
	}
}
