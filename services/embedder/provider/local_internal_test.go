package provider

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestLocalVectorUnchanged: the allocation-free Vector gives exactly the
// vectors of the straightforward version (cached vectors and stored
// documents stay comparable), including the never-zero fallback.
func TestLocalVectorUnchanged(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"Hello", "world", "R's", "lm()", "数据", "框架", "カタカナ", "ひらがな", "é", "e\u0301", "42", "x2",
		" ", "  ", "\n", ".", ",", "\xff", "\xed\xa0\x80", "ΑΒΓ", "İstanbul", "ǅ"}
	texts := []string{"", " ", "a", "ab", "abc", "数", "The quick brown fox, jumps over 2 lazy dogs."}
	for range 300 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		texts = append(texts, b.String())
	}
	for _, dim := range []int{384, 7} {
		l := NewLocal(dim)
		for _, text := range texts {
			if got, want := l.Vector(text), oldLocalVector(l, text); !slices.Equal(got, want) {
				t.Fatalf("dim %d, text %q: vectors differ", dim, text)
			}
		}
	}
}

func oldLocalVector(l *Local, text string) []float32 {
	acc := make([]float64, l.dim)
	add := func(feature []byte) {
		h := fnv.New64a()
		h.Write(feature)
		sum := h.Sum64()
		if sum>>63 == 0 {
			acc[sum%uint64(l.dim)]++
		} else {
			acc[sum%uint64(l.dim)]--
		}
	}

	var (
		run      []rune // current run, lower-cased
		prevWord []byte // previous word, for bigrams
		buf      []byte
	)
	word := func(w []rune) {
		cur := []byte(string(w))
		buf = append(append(buf[:0], "w:"...), cur...)
		add(buf)
		if prevWord != nil {
			buf = append(append(append(append(buf[:0], "b:"...), prevWord...), ' '), cur...)
			add(buf)
		}
		prevWord = cur
	}
	endRun := func() {
		if len(run) == 0 {
			return
		}
		padded := make([]rune, 0, len(run)+2)
		padded = append(append(append(padded, ' '), run...), ' ')
		for i := 0; i+3 <= len(padded); i++ {
			buf = append(append(buf[:0], "c:"...), string(padded[i:i+3])...)
			add(buf)
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

	// Since issue 13 a text without letters or digits is never the zero
	// vector: its characters, else the whole text, are the features.
	norm := sumSquares64(acc)
	if norm == 0 {
		clear(acc)
		for _, r := range text {
			if !unicode.IsSpace(r) {
				buf = append(append(buf[:0], "s:"...), string(r)...)
				add(buf)
			}
		}
		if norm = sumSquares64(acc); norm == 0 {
			h := fnv.New64a()
			h.Write([]byte("z:" + text))
			acc[h.Sum64()%uint64(l.dim)] = 1
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

func BenchmarkLocalVector(b *testing.B) {
	l := NewLocal(384)
	text := strings.Repeat("The lm() function fits linear models; 数据框架 are data frames. ", 16)
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			l.Vector(text)
		}
	})
	b.Run("old", func(b *testing.B) {
		for b.Loop() {
			oldLocalVector(l, text)
		}
	})
}

func sumSquares64(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return s
}

// TestFeaturePrefixHashes: the constants Vector starts its features from
// are FNV-1a of the prefixes.
func TestFeaturePrefixHashes(t *testing.T) {
	for prefix, got := range map[string]uint64{"w:": hashW, "b:": hashB, "c:": hashC, "s:": hashS, "z:": hashZ} {
		h := fnv.New64a()
		h.Write([]byte(prefix))
		if want := h.Sum64(); got != want {
			t.Errorf("hash of %q: got %#x, want %#x", prefix, got, want)
		}
	}
}

// TestModulus: the division-free remainder is the remainder.
func TestModulus(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, d := range []uint64{1, 2, 3, 7, 384, 768, 1536, 3072, 1<<32 + 15, 1<<63 + 5, ^uint64(0)} {
		m := newModulus(d)
		xs := []uint64{0, 1, d - 1, d, d + 1, 2*d - 1, ^uint64(0), ^uint64(0) - 1, 1 << 63}
		for range 10000 {
			xs = append(xs, rng.Uint64())
		}
		for _, x := range xs {
			if got, want := m.mod(x), x%d; got != want {
				t.Fatalf("%d mod %d: got %d, want %d", x, d, got, want)
			}
		}
	}
}

// TestIdeographsStartAtU2E80: Vector looks for ideographs only among runes
// whose UTF-8 starts with 0xE2 or more (U+2000 on).
func TestIdeographsStartAtU2E80(t *testing.T) {
	for r := rune(0); r < 0x2000; r++ {
		if isIdeograph(r) {
			t.Fatalf("U+%04X is an ideograph", r)
		}
	}
}
