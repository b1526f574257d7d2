package provider

import (
	"context"
	"math"
	"math/bits"
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
	// Counts are whole numbers: int32 sums, turned into float64 (exactly)
	// for the norm, give the float64 arithmetic of the specification.
	acc := make([]int32, l.dim)
	m := newModulus(uint64(l.dim))
	add := func(sum uint64) {
		if sum>>63 == 0 {
			acc[m.mod(sum)]++
		} else {
			acc[m.mod(sum)]--
		}
	}
	// The features are hashed as they are built (FNV-1a over the same
	// bytes as the specification), without a string or hash.Hash per
	// feature: the embedder's CPU went to allocations. A run is kept as
	// the UTF-8 of " "+run+" " with each rune's offset, so trigrams and
	// words are slices of it; the previous word is kept as the FNV state
	// after "b:"+word+" ", all a bigram needs of it.
	var (
		run      []byte // " " + current run, lower-cased, as UTF-8
		offs     []int  // offset in run of each rune, then of the closing space
		prevHash uint64 // FNV state of "b:"+previous word+" "
		havePrev bool
	)
	word := func(w []byte) {
		add(fnvBytes(hashW, w))
		if havePrev {
			add(fnvBytes(prevHash, w))
		}
		prevHash = fnvString(fnvBytes(hashB, w), " ")
		havePrev = true
	}
	endRun := func() {
		if len(offs) == 0 {
			return
		}
		// offs[0] is the leading space; close with the trailing one.
		offs = append(offs, len(run))
		run = append(run, ' ')
		offs = append(offs, len(run))
		for i := 0; i+3 < len(offs); i++ {
			add(fnvBytes(hashC, run[offs[i]:offs[i+3]]))
		}
		// Runes of the run are 1…k in offs (offs[k+1] is the trailing space).
		k := len(offs) - 3
		start := 1
		for i := 1; i <= k; i++ {
			if b := run[offs[i]]; b >= 0xe2 { // every ideograph is 3 or 4 UTF-8 bytes from U+2E80
				if r, _ := utf8.DecodeRune(run[offs[i]:]); isIdeograph(r) {
					if start < i {
						word(run[offs[start]:offs[i]])
					}
					word(run[offs[i]:offs[i+1]])
					start = i + 1
				}
			}
		}
		if start <= k {
			word(run[offs[start]:offs[k+1]])
		}
		run, offs = run[:0], offs[:0]
	}
	for _, r := range text {
		if r < utf8.RuneSelf {
			switch {
			case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			case 'A' <= r && r <= 'Z':
				r += 'a' - 'A'
			default:
				endRun()
				continue
			}
		} else if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
			r = unicode.ToLower(r)
		} else {
			endRun()
			continue
		}
		if len(offs) == 0 {
			offs = append(offs, 0)
			run = append(run[:0], ' ')
		}
		offs = append(offs, len(run))
		run = utf8.AppendRune(run, r)
	}
	endRun()

	norm := sumSquares(acc)
	if norm == 0 {
		clear(acc)
		var rb [utf8.UTFMax]byte
		for _, r := range text {
			if !unicode.IsSpace(r) {
				add(fnvBytes(hashS, utf8.AppendRune(rb[:0], r)))
			}
		}
		if norm = sumSquares(acc); norm == 0 {
			acc[m.mod(fnvString(hashZ, text))] = 1
			norm = 1
		}
	}
	out := make([]float32, l.dim)
	norm = math.Sqrt(norm)
	for i, x := range acc {
		out[i] = float32(float64(x) / norm)
	}
	return out
}

// FNV-1a states after the features' prefixes ("w:", "b:", "c:", "s:",
// "z:"); TestFeaturePrefixHashes checks them.
const (
	hashW = 0x08cb8c07b56d8384
	hashB = 0x08a60e07b54d912d
	hashC = 0x08a28407b54a70d8
	hashS = 0x08d90407b578d9c8
	hashZ = 0x08f78e07b592c1d5
)

// modulus computes x mod d for a fixed d without a 64-bit division:
// with m = ⌊(2⁶⁴-1)/d⌋, the high word of x·m is ⌊x/d⌋ or at most two
// below it, so the remainder needs at most two corrections.
type modulus struct{ d, m uint64 }

func newModulus(d uint64) modulus { return modulus{d: d, m: ^uint64(0) / d} }

func (m modulus) mod(x uint64) uint64 {
	q, _ := bits.Mul64(x, m.m)
	r := x - q*m.d
	for r >= m.d {
		r -= m.d
	}
	return r
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

func sumSquares(v []int32) float64 {
	var s float64
	for _, x := range v {
		f := float64(x)
		s += f * f
	}
	return s
}

func isIdeograph(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r)
}
