package embedder

import (
	"log/slog"
	"sync/atomic"
)

// Stats are the embedder's counters since it started.
type Stats struct {
	// Requests is the number of API requests sent (attempts, retries
	// included) and Texts the texts they carried.
	Requests, Texts int64
	// RateLimited counts 429 answers, Retries every resend after a
	// retryable failure, Shrinks the times a batch size was halved.
	RateLimited, Retries, Shrinks int64
	// LimiterWaits counts requests that waited for the shared rate limiter.
	LimiterWaits int64
	// CacheHits and CacheMisses count texts found or not in the vector cache.
	CacheHits, CacheMisses int64
	// Truncated, Split and TooLong count inputs above the provider's token
	// limit that were truncated, split and averaged, or refused
	// (EMBED_LONG_INPUT=fail).
	Truncated, Split, TooLong int64
}

// LogValue logs every counter.
func (s Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("requests", s.Requests), slog.Int64("texts", s.Texts),
		slog.Int64("rate_limited", s.RateLimited), slog.Int64("retries", s.Retries),
		slog.Int64("batch_shrinks", s.Shrinks), slog.Int64("limiter_waits", s.LimiterWaits),
		slog.Int64("cache_hits", s.CacheHits), slog.Int64("cache_misses", s.CacheMisses),
		slog.Int64("truncated", s.Truncated), slog.Int64("split", s.Split), slog.Int64("too_long", s.TooLong))
}

// counters is the live, concurrently updated form of Stats.
type counters struct {
	requests, texts, rateLimited, retries, shrinks, limiterWaits atomic.Int64
	cacheHits, cacheMisses, truncated, split, tooLong            atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests: c.requests.Load(), Texts: c.texts.Load(),
		RateLimited: c.rateLimited.Load(), Retries: c.retries.Load(), Shrinks: c.shrinks.Load(),
		LimiterWaits: c.limiterWaits.Load(),
		CacheHits:    c.cacheHits.Load(), CacheMisses: c.cacheMisses.Load(),
		Truncated: c.truncated.Load(), Split: c.split.Load(), TooLong: c.tooLong.Load(),
	}
}
