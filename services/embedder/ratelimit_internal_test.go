package embedder

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

func TestLimiterTokensPerMinute(t *testing.T) {
	res := stagetest.New(t).Res
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Unix(1_700_000_000, 0)
	// 6000 tokens per minute: 100 per second, a bucket of 100.
	l := &limiter{kv: res.EmbedRate, tpm: 6000, now: func() time.Time { return now }}
	const secret = "sk-never-stored-3c2b1a"
	key := limitKey("openai", "", secret)
	if strings.Contains(key, secret) || len(key) != 65 {
		t.Fatalf("limit key %q: want a digest", key)
	}
	steps := []struct {
		advance time.Duration
		cost    int
		wait    time.Duration // 0: taken
	}{
		{0, 60, 0},                                // 100 → 40
		{0, 60, 200 * time.Millisecond},           // needs 20 more: 0.2s
		{200 * time.Millisecond, 60, 0},           // 60 → 0
		{0, 500, time.Second},                     // above the bucket: waits for a full bucket
		{time.Second, 500, 0},                     // full bucket: taken, 100 → -400 (debt)
		{time.Second, 10, 3*time.Second + 100*ms}, // -300: 3.1s until 10
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got, err := l.take(ctx, key, float64(s.cost))
		if err != nil {
			t.Fatal(err)
		}
		if d := got - s.wait; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("step %d: take(%d) waits %s, want %s", i, s.cost, got, s.wait)
		}
	}
	e, err := res.EmbedRate.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), secret) {
		t.Errorf("stored state contains the key")
	}
}

const ms = time.Millisecond
