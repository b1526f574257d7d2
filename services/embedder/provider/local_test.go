package provider_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// expectedLocal computes local-ngram-v1 from a hand-written feature list:
// an independent statement of the algorithm documented on provider.Local.
func expectedLocal(features []string, dim int) []float32 {
	acc := make([]float64, dim)
	for _, f := range features {
		h := fnv.New64a()
		h.Write([]byte(f))
		s := h.Sum64()
		sign := 1.0
		if s&(1<<63) != 0 {
			sign = -1
		}
		acc[int(s%uint64(dim))] += sign
	}
	var n float64
	for _, x := range acc {
		n += x * x
	}
	out := make([]float32, dim)
	for i, x := range acc {
		out[i] = float32(x / math.Sqrt(n))
	}
	return out
}

func TestLocalMatchesSpecification(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		features []string
	}{
		{name: "latin words, case and punctuation", text: "Hello, WORLD!", features: []string{
			"c: he", "c:hel", "c:ell", "c:llo", "c:lo ", "w:hello",
			"c: wo", "c:wor", "c:orl", "c:rld", "c:ld ", "w:world", "b:hello world",
		}},
		{name: "one-letter word", text: "a", features: []string{"c: a ", "w:a"}},
		{name: "CJK", text: "中文字", features: []string{
			"c: 中文", "c:中文字", "c:文字 ", "w:中", "w:文", "b:中 文", "w:字", "b:文 字",
		}},
		{name: "mixed script run", text: "GPT4中文", features: []string{
			"c: gp", "c:gpt", "c:pt4", "c:t4中", "c:4中文", "c:中文 ",
			"w:gpt4", "w:中", "b:gpt4 中", "w:文", "b:中 文",
		}},
		{name: "combining marks stay in the word", text: "cafe\u0301 au", features: []string{
			"c: ca", "c:caf", "c:afe", "c:fe\u0301", "c:e\u0301 ", "w:cafe\u0301",
			"c: au", "c:au ", "w:au", "b:cafe\u0301 au",
		}},
	}
	for _, tc := range tests {
		for _, dim := range []int{8, 384} {
			t.Run(fmt.Sprintf("%s/dim=%d", tc.name, dim), func(t *testing.T) {
				got := provider.NewLocal(dim).Vector(tc.text)
				want := expectedLocal(tc.features, dim)
				if len(got) != dim {
					t.Fatalf("got %d dimensions, want %d", len(got), dim)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("dim %d component %d: got %v, want %v", dim, i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestLocalNeverZero checks that no non-empty text gets the zero vector:
// texts without letters or numbers (U+FFFD from a PDF font without a
// Unicode mapping, punctuation, whitespace) are embedded by their runes,
// at every dimension, and different such texts differ.
func TestLocalNeverZero(t *testing.T) {
	texts := []string{"\uFFFD", "\uFFFD\uFFFD\uFFFD \u2020", "\uE000\uE001", "!!! ---", "…", " ", "\x01\x02", "a"}
	for _, dim := range []int{1, 2, 8, 384} {
		l := provider.NewLocal(dim)
		seen := make(map[string]string)
		for _, text := range texts {
			v := l.Vector(text)
			if n := cosine(v, v); math.Abs(n-1) > 1e-5 {
				t.Errorf("dim %d, %q: got squared norm %v, want 1", dim, text, n)
			}
			if dim >= 8 {
				key := fmt.Sprint(v)
				if other, ok := seen[key]; ok && text != " " && other != " " {
					t.Errorf("dim %d: %q and %q got the same vector", dim, text, other)
				}
				seen[key] = text
			}
		}
	}
	// Features that cancel: at dimension 1 most texts sum to zero.
	zero := 0
	for i := range 200 {
		if v := provider.NewLocal(1).Vector(fmt.Sprintf("word%d other%d", i, i)); v[0] == 0 {
			zero++
		}
	}
	if zero > 0 {
		t.Errorf("%d of 200 texts got the zero vector at dimension 1", zero)
	}
}

// TestLocalPinned pins local-ngram-v1: these numbers must never change.
// A change of algorithm is a new model name, not an edit here.
func TestLocalPinned(t *testing.T) {
	got := provider.NewLocal(8).Vector("Hello, WORLD!")
	want := []float32{0.4170288, -0.2085144, 0, 0.4170288, -0.4170288, 0.2085144, 0, 0.62554324}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-7 {
			t.Fatalf("component %d: got %v, want %v (whole vector %v)", i, got[i], want[i], got)
		}
	}
}

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestLocalProperties(t *testing.T) {
	e, err := provider.New(provider.Config{Provider: "local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []string{
		"The invoice total is due in March.",
		"the INVOICE total IS due, in march!!",
		"Invoices: totals due",
		"Photosynthesis converts light into chemical energy.",
		"发票总额三月到期",
		"发票的总额",
		"!!! ---",
	}
	vecs, err := e.Embed(context.Background(), in, provider.Document)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs[:6] {
		if len(v) != provider.DefaultDimension {
			t.Fatalf("vector %d: got %d dimensions, want %d", i, len(v), provider.DefaultDimension)
		}
		if n := cosine(v, v); math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d: got squared norm %v, want 1", i, n)
		}
	}
	if c := cosine(vecs[0], vecs[1]); c < 0.999 {
		t.Errorf("case and punctuation changed the vector: cosine %v, want 1", c)
	}
	if near, far := cosine(vecs[0], vecs[2]), cosine(vecs[0], vecs[3]); near <= far {
		t.Errorf("inflected overlap cosine %v not above unrelated %v", near, far)
	}
	if near, far := cosine(vecs[4], vecs[5]), cosine(vecs[4], vecs[3]); near <= 0.2 || near <= far {
		t.Errorf("CJK overlap cosine %v, unrelated %v: want overlap clearly higher", near, far)
	}
	if n := cosine(vecs[6], vecs[6]); math.Abs(n-1) > 1e-5 {
		t.Errorf("text without letters: got squared norm %v, want 1 (never the zero vector)", n)
	}
	again, _ := e.Embed(context.Background(), in[:1], provider.Query)
	for i := range again[0] {
		if again[0][i] != vecs[0][i] {
			t.Fatalf("not deterministic at component %d", i)
		}
	}
	if _, err := e.Embed(context.Background(), []string{"ok", "  "}, provider.Document); !errors.Is(err, provider.ErrBadInput) {
		t.Errorf("blank text: got %v, want ErrBadInput", err)
	}
}
