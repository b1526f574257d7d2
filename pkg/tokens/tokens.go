// Package tokens estimates how many model tokens a text is, without a
// tokenizer, in one place: the parser sizes chunks with it (CHUNK_UNIT=
// tokens) and the embedder budgets requests with it, and the two must
// agree for a chunk cut to N tokens to fit an N-token input limit.
package tokens

import "unicode/utf8"

// Estimate is one token per 3 ASCII bytes (rounded up) plus one per
// non-ASCII rune. English averages about 4 characters per token in
// OpenAI's cl100k and Gemini's tokenizers, so the estimate errs high by
// about a third there; Chinese and Japanese run about one token per
// character, which it counts exactly. It is deliberately conservative: an
// input it lets through should not be refused by an API as too long.
func Estimate(text string) int {
	ascii, other := 0, 0
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		other++
		i += size
	}
	return (ascii+2)/3 + other
}
