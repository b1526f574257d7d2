package tokens_test

import (
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/tokens"
)

func TestEstimate(t *testing.T) {
	tests := []struct {
		name, text string
		want       int
	}{
		{"empty", "", 0},
		{"one ascii byte", "a", 1},
		{"three ascii bytes", "abc", 1},
		{"four ascii bytes", "abcd", 2},
		{"chinese counts per character", "文档处理", 4},
		{"mixed", "PDF 文档", 2 + 2},
		{"accented latin is non-ascii", "é", 1},
		{"accented word", "héllo", 2 + 1}, // 4 ASCII bytes, then é
		{"long ascii", strings.Repeat("x", 300), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokens.Estimate(tt.text); got != tt.want {
				t.Errorf("Estimate(%q): got %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}
