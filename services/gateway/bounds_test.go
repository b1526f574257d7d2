package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// No entry can stop the intake: one too large for the gateway, or whose
// status record would not fit in a NATS message, goes to the dead-letter
// list with the reason, and the task behind it is served. Both when the
// entry arrives and when a restarted gateway recovers it from its
// processing list.
func TestIntakeLargeEntries(t *testing.T) {
	t.Parallel()
	// 600 KiB: the status record took 1.2 MB, over NATS's default max
	// payload of 1 MiB, before the fix.
	long := strings.Repeat("n", 600<<10)
	tests := []struct {
		name      string
		env       map[string]string
		raw       string
		reasonHas []string // empty: the task is accepted
	}{
		{
			name:      "long FileName, over REDIS_MAX_ENTRY_SIZE",
			raw:       `{"DocID":"d-big","UserID":"u1","FileName":"` + long + `.pdf","URL":"https://example.com/a.pdf"}`,
			reasonHas: []string{"gateway", "task d-big", "bytes", "REDIS_MAX_ENTRY_SIZE"},
		},
		{
			name:      "extra fields, over REDIS_MAX_ENTRY_SIZE",
			raw:       `{"DocID":"d-big","UserID":"u1","FileName":"a.pdf","URL":"https://example.com/a.pdf","notes":"` + long + `"}`,
			reasonHas: []string{"gateway", "REDIS_MAX_ENTRY_SIZE"},
		},
		{
			name:      "long FileName allowed by REDIS_MAX_ENTRY_SIZE but too large for NATS",
			env:       map[string]string{"REDIS_MAX_ENTRY_SIZE": "4MiB"},
			raw:       `{"DocID":"d-big","UserID":"u1","FileName":"` + long + `.pdf","URL":"https://example.com/a.pdf"}`,
			reasonHas: []string{"gateway", "task d-big", "too large for NATS", "FileName"},
		},
		{
			name: "extra fields allowed by REDIS_MAX_ENTRY_SIZE: accepted, status keeps the known fields",
			env:  map[string]string{"REDIS_MAX_ENTRY_SIZE": "4MiB"},
			raw:  `{"DocID":"d-big","UserID":"u1","FileName":"a.pdf","URL":"https://example.com/a.pdf","notes":"` + long + `"}`,
		},
	}
	const good = `{"DocID":"d-after","UserID":"u1","FileName":"g.pdf","URL":"https://example.com/g.pdf"}`
	for _, tc := range tests {
		for _, recovered := range []bool{false, true} {
			name := tc.name + ", live"
			if recovered {
				name = tc.name + ", recovered after a restart"
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, tc.env)
				if recovered {
					// Left in the processing list by a gateway that died
					// with it (or kept retrying it before the fix).
					h.push("lpush", ownProc, tc.raw)
					h.push("lpush", queueKey, good)
					h.run()
				} else {
					h.run()
					h.push("lpush", queueKey, tc.raw, good)
				}
				h.waitFetch("d-after")
				h.waitDrained()
				ctx := context.Background()
				if len(tc.reasonHas) == 0 {
					checkAcceptedLarge(t, h, tc.raw)
					return
				}
				dl := h.dlq()
				if len(dl) != 1 {
					t.Fatalf("dead-letter list: got %d entries, want 1", len(dl))
				}
				checkDeadLetter(t, dl[0], tc.raw, tc.reasonHas...)
				if _, err := h.status.Get(ctx, "d-big"); !errors.Is(err, status.ErrNotFound) {
					t.Errorf("status of the dead-lettered task: got err %v, want ErrNotFound", err)
				}
				if n := h.fetchCounts()[pipeline.Fetch.Subject("d-big")]; n != 0 {
					t.Errorf("fetch messages of the dead-lettered task: got %d, want 0", n)
				}
			})
		}
	}
}

// checkAcceptedLarge checks a large entry that was accepted: started
// once, its status record and fetch job small, keeping every field the
// pipeline reads and none of the rest.
func checkAcceptedLarge(t *testing.T, h *harness, raw string) {
	t.Helper()
	h.waitFetch("d-big")
	if dl := h.list(dlqKey); len(dl) != 0 {
		t.Errorf("dead-letter list: got %d entries, want none", len(dl))
	}
	st, err := h.status.Get(context.Background(), "d-big")
	if err != nil {
		t.Fatal(err)
	}
	if !st.TaskTrimmed || st.State != status.Queued {
		t.Errorf("status: got state %q task_trimmed %v, want queued and trimmed", st.State, st.TaskTrimmed)
	}
	var kept map[string]any
	if err := json.Unmarshal(st.Task, &kept); err != nil {
		t.Fatalf("status task %q: %v", st.Task, err)
	}
	var orig map[string]any
	if err := json.Unmarshal([]byte(raw), &orig); err != nil {
		t.Fatal(err)
	}
	delete(orig, "notes")
	if fmt.Sprint(kept) != fmt.Sprint(orig) {
		t.Errorf("status task: got %v, want the known fields %v", kept, orig)
	}
	job, msg := h.fetchJob("d-big")
	if len(msg.Data) > 16<<10 {
		t.Errorf("fetch job: %d bytes, want the large entry left out", len(msg.Data))
	}
	if job.Task.URL != "https://example.com/a.pdf" || job.Task.FileName != "a.pdf" {
		t.Errorf("fetch job task: got %+v", job.Task)
	}
}

// An entry that fails the same way every time for a reason no check
// foresaw (here: its fetch job is larger than the stream accepts) does
// not hold up the entries behind it: after a few tries its task fails
// with the reason, which the dead-letter list records once.
func TestIntakeEntryFailingEveryTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	s, err := h.js.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 2 << 10
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	events := h.subscribeEvents()
	h.run()
	raw := `{"DocID":"d-stuck","UserID":"u1","FileName":"` + strings.Repeat("f", 3<<10) + `.pdf","URL":"https://example.com/s.pdf"}`
	h.push("lpush", queueKey, raw, `{"DocID":"d-next","URL":"https://example.com/n.pdf"}`)
	h.waitFetch("d-next")
	h.waitDrained()

	ev := events.waitEvent(t, "d-stuck", "failed")
	checkEventShape(t, ev, "failed", "d-stuck", "u1", "failed")
	st, err := h.status.Get(ctx, "d-stuck")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Failed || st.Stage != "gateway" || !strings.Contains(st.Error, "maximum") {
		t.Errorf("status: got %q at %q: %q, want failed at gateway with the stream's reason", st.State, st.Stage, st.Error)
	}
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		if n := len(h.list(dlqKey)); n != 1 {
			return fmt.Errorf("dead-letter list: %d entries, want 1", n)
		}
		return nil
	})
	checkDeadLetter(t, h.dlq()[0], raw, "gateway", "maximum")
}
