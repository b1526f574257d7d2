package provider

import (
	"context"
	"math"
	"unicode"
	"unicode/utf8"
)

// Local is the offline embedder, model "local-ngram-v1". It is lexical, not
// semantic: texts sharing words, word pairs and character trigrams get
// similar vectors, so it finds "invoice total" in "the invoice's total
// amount" and tolerates inflection and typos, but it does not know that
// "car" and "automobile" mean the same, and it does not match across
// languages. Use it for development, tests and air-gapped installs where
// keyword-like retrieval is enough; use a real model for semantic search.
//
// The vector of a text is a fixed function of the text and the dimension,
// the same on every machine and in every release of local-ngram-v1:
//
//  1. Runes are lower-cased (unicode.ToLower). A run is a maximal sequence of
//     letters, numbers and combining marks (unicode.IsLetter, IsNumber, IsMark);
//     everything else separates runs.
//  2. Words: each run is one word, except that Han, Hiragana and Katakana
//     runes are each a word of their own (CJK has no spaces), e.g.
//     "gpt4中文" gives "gpt4", "中", "文".
//  3. Features, as UTF-8 strings: "w:"+word for each word; "b:"+w1+" "+w2
//     for each pair of consecutive words; "c:"+g for each 3-rune substring g
//     of " "+run+" " for each run.
//  4. Each feature's FNV-1a 64-bit hash h adds +1 to component h mod dim if
//     h's top bit is 0, else -1 ("signed hashing").
//  5. When these features sum to zero (a text with no letters or numbers,
//     such as "\uFFFD\uFFFD" from a PDF font without a Unicode mapping, or
//     features that cancel), each non-space rune r adds the feature "s:"+r
//     instead; when that is still zero, component fnv("z:"+text) mod dim is
//     set to 1. A non-empty text never gets the zero vector, which a cosine
//     index cannot rank (and which stands for "not embedded", RagMode
//     false). Texts with letters or numbers keep the vectors of earlier
//     releases.
//  6. The vector is L2-normalised (in float64, then rounded to float32).
//
// Kind is ignored, except for Config.DocumentPrefix / QueryPrefix.
type Local struct {
	dim            int
	documentPrefix string
	queryPrefix    string
}

// NewLocal returns the local embedder for dim dimensions (dim must be > 0).
func NewLocal(dim int) *Local {
	if dim <= 0 {
		dim = DefaultDimension
	}
	return &Local{dim: dim}
}

func (l *Local) String() string { return "provider.local(model=" + LocalModel + ")" }

// Embed implements Embedder. It refuses empty texts (ErrBadInput) like the
// remote providers do, and otherwise never fails.
func (l *Local) Embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error) {
	if err := checkTexts(ProviderLocal, texts); err != nil {
		return nil, err
	}
	texts = withPrefix(texts, kind, l.documentPrefix, l.queryPrefix)
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out[i] = l.Vector(t)
	}
	return out, nil
}

// Vector returns the embedding of one text (see [Local]).
func (l *Local) Vector(text string) []float32 {
	acc := make([]float64, l.dim)
	dim := uint64(l.dim)
	add := func(sum uint64) {
		if sum>>63 == 0 {
			acc[sum%dim]++
		} else {
			acc[sum%dim]--
		}
	}
	// The features are hashed as they are built (FNV-1a over the same
	// bytes as before), without a string or hash.Hash per feature: the
	// embedder's CPU went to allocations.
	var (
		run      []rune // current run, lower-cased
		padded   []rune
		cur      []byte // current word
		prevWord []byte // previous word, for bigrams
		havePrev bool
	)
	word := func(w []rune) {
		cur = cur[:0]
		for _, r := range w {
			cur = utf8.AppendRune(cur, r)
		}
		add(fnvBytes(fnvString(fnvOffset, "w:"), cur))
		if havePrev {
			h := fnvBytes(fnvString(fnvOffset, "b:"), prevWord)
			h = fnvBytes(fnvString(h, " "), cur)
			add(h)
		}
		prevWord, cur = cur, prevWord
		havePrev = true
	}
	endRun := func() {
		if len(run) == 0 {
			return
		}
		padded = append(append(append(padded[:0], ' '), run...), ' ')
		var rb [utf8.UTFMax]byte
		for i := 0; i+3 <= len(padded); i++ {
			h := fnvString(fnvOffset, "c:")
			for _, r := range padded[i : i+3] {
				h = fnvBytes(h, utf8.AppendRune(rb[:0], r))
			}
			add(h)
		}
		start := 0
		for i, r := range run {
			if isIdeograph(r) {
				if start < i {
					word(run[start:i])
				}
				word(run[i : i+1])
				start = i + 1
			}
		}
		if start < len(run) {
			word(run[start:])
		}
		run = run[:0]
	}
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
			run = append(run, unicode.ToLower(r))
			continue
		}
		endRun()
	}
	endRun()

	norm := sumSquares(acc)
	if norm == 0 {
		clear(acc)
		var rb [utf8.UTFMax]byte
		for _, r := range text {
			if !unicode.IsSpace(r) {
				add(fnvBytes(fnvString(fnvOffset, "s:"), utf8.AppendRune(rb[:0], r)))
			}
		}
		if norm = sumSquares(acc); norm == 0 {
			acc[fnvString(fnvString(fnvOffset, "z:"), text)%dim] = 1
			norm = 1
		}
	}
	out := make([]float32, l.dim)
	norm = math.Sqrt(norm)
	for i, x := range acc {
		out[i] = float32(x / norm)
	}
	return out
}

// 64-bit FNV-1a, as hash/fnv's New64a.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func sumSquares(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return s
}

func isIdeograph(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r)
}
