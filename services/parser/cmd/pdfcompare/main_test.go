package main

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello, World! 2.1 R-intro", []string{"hello", "world", "2", "1", "r", "intro"}},
		{"文档处理 pipeline。", []string{"文", "档", "处", "理", "pipeline"}},
		{"  \n\f ", nil},
		{"naïve Straße", []string{"naïve", "straße"}},
	}
	for _, tc := range tests {
		if got := words(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("words(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBagCoveredBy(t *testing.T) {
	ref, ours := bag{}, bag{}
	ref.addText("the cat and the dog")
	ours.addText("the cat and a dog")
	// ref has 5 words; ours holds "the" once of twice: 4 of 5.
	if got := ref.coveredBy(ours); got != 0.8 {
		t.Errorf("recall = %v, want 0.8", got)
	}
	// Of ours, "a" is the one word ref never has: 4 of 5 as a set.
	if got := ours.coveredBy(ref.asSet()); got != 0.8 {
		t.Errorf("share of ours in ref = %v, want 0.8", got)
	}
	if got := (bag{}).coveredBy(ours); got != 1 {
		t.Errorf("empty bag covered = %v, want 1", got)
	}
}

func TestUnescape(t *testing.T) {
	if got, want := unescape(`Provide \\ActivateGenericHook \"x\"`), `Provide \ActivateGenericHook "x"`; got != want {
		t.Errorf("unescape = %q, want %q", got, want)
	}
}
