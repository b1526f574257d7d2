package provider

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{name: "none", want: 0},
		{name: "seconds", header: map[string]string{"Retry-After": "2"}, want: 2 * time.Second},
		{name: "fractional seconds", header: map[string]string{"Retry-After": "0.5"}, want: 500 * time.Millisecond},
		{name: "milliseconds win", header: map[string]string{"Retry-After": "1", "Retry-After-Ms": "250"}, want: 250 * time.Millisecond},
		{name: "http date", header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, want: 90 * time.Second},
		{name: "date in the past", header: map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, want: 0},
		{name: "negative", header: map[string]string{"Retry-After": "-3"}, want: 0},
		{name: "garbage", header: map[string]string{"Retry-After": "soon"}, want: 0},
		{name: "huge", header: map[string]string{"Retry-After": "1e300"}, want: 0},
		{name: "bad ms falls back", header: map[string]string{"Retry-After": "3", "Retry-After-Ms": "x"}, want: 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := parseRetryAfter(h, now); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestKindForStatus(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{401, ErrInvalidKey}, {403, ErrInvalidKey}, {429, ErrRateLimited}, {408, ErrTransient},
		{500, ErrTransient}, {502, ErrTransient}, {503, ErrTransient}, {400, ErrBadInput},
		{404, ErrBadInput}, {413, ErrBadInput}, {422, ErrBadInput},
	}
	for _, tc := range tests {
		if got := kindForStatus(tc.status); got != tc.want {
			t.Errorf("status %d: got %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestCleanMessage(t *testing.T) {
	long := strings.Repeat("é", maxMessage)
	got := cleanMessage(long, "")
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("got %d bytes, want at most %d ending in …", len(got), maxMessage+len("…"))
	}
	if strings.ContainsRune(got, '\uFFFD') || !strings.HasPrefix(got, "é") {
		t.Errorf("truncation split a rune")
	}
	if got := cleanMessage(" bad key KEY123 here ", "KEY123"); got != "bad key [REDACTED] here" {
		t.Errorf("got %q, want the key redacted", got)
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	transient := &Error{Kind: ErrTransient}
	for attempt, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for range 50 {
			d, ok := p.delay(attempt, transient)
			if !ok || d < full/2 || d > full {
				t.Fatalf("attempt %d: got %s, want between %s and %s", attempt, d, full/2, full)
			}
		}
	}
	d, ok := p.delay(1, &Error{Kind: ErrRateLimited, RetryAfter: 3 * time.Second})
	if !ok || d < 3*time.Second || d > 3300*time.Millisecond {
		t.Errorf("Retry-After 3s: got %s, want 3s..3.3s", d)
	}
}
