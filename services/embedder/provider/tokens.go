package provider

import (
	"strings"
	"unicode/utf8"

	"github.com/pdfpipe/pdfpipe/pkg/tokens"
)

// Token limits documented by the APIs.
const (
	// OpenAIMaxBatchTokens is the embeddings API's limit on the tokens of
	// all inputs of one request.
	OpenAIMaxBatchTokens = 300_000
	// OpenAIMaxInputTokens is the limit per input of the text-embedding-3
	// and ada-002 models.
	OpenAIMaxInputTokens = 8192
	// GeminiMaxInputTokens is the input limit of gemini-embedding-001 and
	// text-embedding-004; batchEmbedContents has no separate total, so a
	// batch holds at most GeminiMaxBatch × GeminiMaxInputTokens.
	GeminiMaxInputTokens = 2048
)

// EstimateTokens is tokens.Estimate: the approximate token count of text
// used for batch budgets and input limits.
func EstimateTokens(text string) int { return tokens.Estimate(text) }

// TruncateTokens returns the longest prefix of text whose EstimateTokens
// is at most maxTokens, cut at a rune boundary and, when one is near, at
// the last whitespace. maxTokens < 1 returns text unchanged.
func TruncateTokens(text string, maxTokens int) string {
	if maxTokens < 1 || EstimateTokens(text) <= maxTokens {
		return text
	}
	end := prefixEnd(text, maxTokens)
	if sp := strings.LastIndexAny(text[:end], " \t\n\r"); sp > end*3/4 {
		end = sp
	}
	return strings.TrimSpace(text[:end])
}

// SplitTokens cuts text into consecutive parts whose EstimateTokens is at
// most maxTokens each, preferring whitespace as a cut point. Blank parts
// are dropped. maxTokens < 1 returns text as its only part.
func SplitTokens(text string, maxTokens int) []string {
	if maxTokens < 1 || EstimateTokens(text) <= maxTokens {
		return []string{text}
	}
	var parts []string
	for rest := text; rest != ""; {
		if EstimateTokens(rest) <= maxTokens {
			parts = append(parts, rest)
			break
		}
		end := prefixEnd(rest, maxTokens)
		if sp := strings.LastIndexAny(rest[:end], " \t\n\r"); sp > end*3/4 {
			end = sp
		}
		parts = append(parts, rest[:end])
		rest = rest[end:]
	}
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// prefixEnd returns the byte length of the longest rune-aligned prefix of
// text within maxTokens (at least one rune).
func prefixEnd(text string, maxTokens int) int {
	ascii, other, end := 0, 0, 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r < utf8.RuneSelf && size == 1 && text[i] < utf8.RuneSelf {
			ascii++
		} else {
			other++
		}
		if (ascii+2)/3+other > maxTokens {
			break
		}
		i += size
		end = i
	}
	if end == 0 {
		_, end = utf8.DecodeRuneInString(text)
	}
	return end
}
