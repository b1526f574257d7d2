package stage

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	r := &Runner{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	r.defaults()
	tests := []struct {
		delivered uint64
		nominal   time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{64, time.Second},
		{1 << 40, time.Second},
	}
	for _, tt := range tests {
		lo, hi := tt.nominal-tt.nominal/5, tt.nominal+tt.nominal/5
		for range 200 {
			if got := r.backoff(tt.delivered); got < lo || got > hi {
				t.Fatalf("backoff(%d): got %v, want within [%v, %v]", tt.delivered, got, lo, hi)
			}
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	r := &Runner{BaseDelay: time.Second, MaxDelay: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[r.backoff(1)] = true
	}
	if len(seen) < 2 {
		t.Errorf("backoff(1) over 50 calls: got %d distinct values, want jitter", len(seen))
	}
}

func TestBackoffTinyDelay(t *testing.T) {
	r := &Runner{BaseDelay: time.Nanosecond, MaxDelay: 2 * time.Nanosecond}
	for d := range uint64(5) {
		if got := r.backoff(d); got < 0 || got > 2*time.Nanosecond {
			t.Errorf("backoff(%d): got %v, want within [0, 2ns]", d, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d): got %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
