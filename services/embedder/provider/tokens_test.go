package provider_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pdfpipe/pdfpipe/pkg/tokens"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

// TestEstimateTokens checks that requests are budgeted with the estimate
// the parser cuts chunks with (pkg/tokens, tested there).
func TestEstimateTokens(t *testing.T) {
	for _, text := range []string{"", "abcd", "文档处理", "héllo wörld 中文"} {
		if got, want := provider.EstimateTokens(text), tokens.Estimate(text); got != want {
			t.Errorf("EstimateTokens(%q) = %d, tokens.Estimate = %d", text, got, want)
		}
	}
}

func TestTruncateAndSplitTokens(t *testing.T) {
	long := strings.Repeat("invoice total amount 中文 ", 400)
	for _, max := range []int{1, 7, 50, 2048} {
		t.Run("truncate", func(t *testing.T) {
			got := provider.TruncateTokens(long, max)
			if provider.EstimateTokens(got) > max || got == "" || !strings.HasPrefix(long, got) || !utf8.ValidString(got) {
				t.Errorf("TruncateTokens(_, %d): %d tokens, %d bytes, valid %t; want a non-empty valid prefix within the limit",
					max, provider.EstimateTokens(got), len(got), utf8.ValidString(got))
			}
		})
		t.Run("split", func(t *testing.T) {
			parts := provider.SplitTokens(long, max)
			if len(parts) < 2 {
				t.Fatalf("SplitTokens(_, %d): %d parts, want several", max, len(parts))
			}
			for i, p := range parts {
				if provider.EstimateTokens(p) > max || strings.TrimSpace(p) == "" {
					t.Errorf("part %d: %d tokens, want 1..%d", i, provider.EstimateTokens(p), max)
				}
			}
			if got, want := strings.Join(strings.Fields(strings.Join(parts, " ")), ""), strings.Join(strings.Fields(long), ""); got != want {
				t.Errorf("SplitTokens(_, %d) lost text: %d runes, want %d", max, utf8.RuneCountInString(got), utf8.RuneCountInString(want))
			}
		})
	}
	if got := provider.TruncateTokens("short", 100); got != "short" {
		t.Errorf("TruncateTokens(short): got %q", got)
	}
	if got := provider.SplitTokens("short", 100); len(got) != 1 || got[0] != "short" {
		t.Errorf("SplitTokens(short): got %q", got)
	}
}

func TestClientBatchesByTokenBudget(t *testing.T) {
	cfg := provider.Config{Provider: "openai", BaseURL: "http://x/v1", MaxBatchTokens: 100}.WithDefaults()
	if cfg.MaxInputTokens != provider.OpenAIMaxInputTokens || cfg.MaxBatch != provider.CompatibleMaxBatch {
		t.Errorf("defaults: %+v", cfg)
	}
	fake := providertest.NewOpenAI(t)
	emb, err := provider.New(provider.Config{Provider: "openai", BaseURL: fake.URL, APIKey: providertest.OpenAIKey, MaxBatchTokens: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 7)
	for i := range texts {
		texts[i] = strings.Repeat(string(rune('a'+i)), 120) // 40 tokens each
	}
	if _, err := emb.Embed(context.Background(), texts, provider.Document); err != nil {
		t.Fatal(err)
	}
	for i, r := range fake.Log() {
		if len(r.Inputs) > 2 {
			t.Errorf("request %d: %d inputs of 40 tokens, want at most 2 within 100 tokens", i, len(r.Inputs))
		}
	}
	if got := fake.Inputs(); got != len(texts) {
		t.Errorf("fake embedded %d texts, want %d", got, len(texts))
	}
	g := provider.Config{Provider: "gemini"}.WithDefaults()
	if g.MaxInputTokens != provider.GeminiMaxInputTokens || g.MaxBatch != provider.GeminiMaxBatch || g.MaxBatchTokens != 0 {
		t.Errorf("gemini defaults: max input %d, batch %d, batch tokens %d", g.MaxInputTokens, g.MaxBatch, g.MaxBatchTokens)
	}
}
