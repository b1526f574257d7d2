package embedder_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

// Not parallel: the window check measures arrival times at the fake,
// which a loaded machine skews.
func TestSharedRateLimitAcrossReplicas(t *testing.T) {
	const key = "sk-shared-limit-0f1e2d3c4b5a69788796"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	// 1200 requests per minute: 20 per second, bursts of at most 20.
	const rpm, chunks = 1200, 80
	env := map[string]string{"EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": fake.URL, "EMBED_RPM": fmt.Sprint(rpm), "EMBED_BATCH": "1"}
	a, b := h.start(env), h.start(env)
	const task = "shared-limit"
	h.withKey(task, "openai", key)
	h.createTask(task)
	in := texts(task, chunks)
	h.publish(task, in, 0, false)
	checkFake(t, task, h.waitVectors(task, len(in), 30*time.Second), in)

	log := fake.Log()
	if len(log) != chunks {
		t.Fatalf("fake saw %d requests, want one per chunk (%d)", len(log), chunks)
	}
	if a.Stats().Requests == 0 || b.Stats().Requests == 0 {
		t.Fatalf("requests per replica: %d and %d, want both embedders working", a.Stats().Requests, b.Stats().Requests)
	}
	starts := make([]time.Time, len(log))
	for i, r := range log {
		starts[i] = r.Time
	}
	slices.SortFunc(starts, func(x, y time.Time) int { return x.Compare(y) })
	// In any window the two replicas together sent at most the burst plus
	// what the rate refills in that window, with 500ms and one request of
	// slack for the time between a take and the request's arrival at the
	// fake: on a loaded machine requests taken apart can arrive together
	// (the first ones also open connections). A limiter letting through
	// twice the rate still fails this: 80 requests within 2s, 71 allowed.
	const perSec, burst, slack = rpm / 60.0, rpm / 60.0, 0.5
	worst := 0.0
	for i := range starts {
		for j := i; j < len(starts); j++ {
			window := starts[j].Sub(starts[i]).Seconds()
			n := float64(j - i + 1)
			if allowed := burst + perSec*(window+slack) + 1; n > allowed {
				t.Fatalf("%.0f requests in %.3fs, more than the %.1f the limit allows", n, window, allowed)
			}
			worst = max(worst, n-perSec*window)
		}
	}
	// And the limiter does not starve them: close to the limit overall.
	took := starts[len(starts)-1].Sub(starts[0]).Seconds()
	if want := (chunks - burst) / perSec; took > 2*want+1 {
		t.Errorf("%d requests took %.2fs, want about %.2fs at %d per minute", chunks, took, want, rpm)
	}
	t.Logf("%d requests in %.2fs (limit %d/min, burst %.0f); replicas sent %d and %d; largest excess over the rate %.1f",
		len(log), took, rpm, burst, a.Stats().Requests, b.Stats().Requests, worst)
	h.checkSecret(key)
}
