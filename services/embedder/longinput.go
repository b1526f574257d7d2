package embedder

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// What to do with a text above the provider's input limit (EMBED_LONG_INPUT).
const (
	// LongTruncate embeds the longest prefix within the limit (default).
	LongTruncate = "truncate"
	// LongSplit embeds consecutive parts within the limit and averages
	// their vectors, weighted by their estimated tokens, L2-normalised.
	LongSplit = "split"
	// LongFail fails the task (or the query) with a bad-input error.
	LongFail = "fail"
)

// embedText embeds one chunk or query text with b, applying the long-input
// policy when the text is above the provider's input limit in estimated
// tokens. Every such text is counted and logged (sizes only, never text).
func (s *Service) embedText(ctx context.Context, b *batcher, taskID string, index int, text string) ([]float32, error) {
	est := provider.EstimateTokens(text)
	if b.maxInput <= 0 || est <= b.maxInput {
		return b.embed(ctx, text)
	}
	log := s.log.With("task_id", taskID, "chunk", index, "provider", b.name,
		"tokens_estimated", est, "token_limit", b.maxInput, "bytes", len(text))
	switch s.cfg.LongInput {
	case LongFail:
		s.stats.tooLong.Add(1)
		log.Warn("input above the provider's token limit; refused (EMBED_LONG_INPUT=fail)")
		return nil, &provider.Error{Provider: b.name, Kind: provider.ErrBadInput, Message: fmt.Sprintf(
			"chunk %d is about %d tokens, above the limit of %d (EMBED_LONG_INPUT=fail; set truncate or split to embed it)",
			index, est, b.maxInput)}
	case LongSplit:
		parts := provider.SplitTokens(text, b.maxInput)
		s.stats.split.Add(1)
		log.Info("input above the provider's token limit; embedding its parts and averaging", "parts", len(parts))
		vecs := make([][]float32, len(parts))
		g, gctx := errgroup.WithContext(ctx)
		for i, p := range parts {
			g.Go(func() error {
				v, err := b.embed(gctx, p)
				vecs[i] = v
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		weights := make([]float64, len(parts))
		for i, p := range parts {
			weights[i] = float64(provider.EstimateTokens(p))
		}
		return average(vecs, weights), nil
	default:
		s.stats.truncated.Add(1)
		short := provider.TruncateTokens(text, b.maxInput)
		log.Warn("input above the provider's token limit; truncated (EMBED_LONG_INPUT=truncate)",
			"tokens_kept", provider.EstimateTokens(short))
		return b.embed(ctx, short)
	}
}

// average returns the weighted mean of vecs, L2-normalised.
func average(vecs [][]float32, weights []float64) []float32 {
	acc := make([]float64, len(vecs[0]))
	for i, v := range vecs {
		for j, x := range v {
			acc[j] += weights[i] * float64(x)
		}
	}
	var n float64
	for _, x := range acc {
		n += x * x
	}
	out := make([]float32, len(acc))
	if n == 0 {
		return out
	}
	n = math.Sqrt(n)
	for j, x := range acc {
		out[j] = float32(x / n)
	}
	return out
}
