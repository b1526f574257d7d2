package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// A task sent again with the same DocID is never dropped silently: a
// failed task starts over from the new entry; a running or done one is
// not started again, and the entry goes to the dead-letter list with the
// reason, which the user also sees as an event.
func TestIntakeSentAgain(t *testing.T) {
	t.Parallel()
	const (
		id     = "d-again"
		first  = `{"DocID":"d-again","UserID":"u1","FileName":"a.pdf","URL":"https://example.com/a.pdf?sig=old","CreatedAt":"2025-06-01T10:00:00Z"}`
		second = `{"DocID":"d-again","UserID":"u1","FileName":"a.pdf","URL":"https://example.com/a.pdf?sig=new","CreatedAt":"2025-06-01T10:05:00Z"}`
	)
	tests := []struct {
		name      string
		state     status.State // where the first run is when the entry comes again
		again     string       // the entry sent again
		reasonHas []string     // of the dead-letter entry; empty: started again
		eventType string       // of the answer
	}{
		{name: "done, new entry", state: status.Done, again: second,
			reasonHas: []string{"gateway", "task d-again is already done", "not started again"}, eventType: "completed"},
		{name: "done, identical entry", state: status.Done, again: first,
			reasonHas: []string{"gateway", "task d-again is already done", "not started again"}, eventType: "completed"},
		{name: "running, new entry", state: status.Embedding, again: second,
			reasonHas: []string{"gateway", "task d-again is already running (embedding)", "not started again"}, eventType: "processing"},
		{name: "queued, identical entry", state: status.Queued, again: first,
			reasonHas: []string{"gateway", "task d-again is already running (queued)"}, eventType: "processing"},
		{name: "failed, new entry", state: status.Failed, again: second},
		{name: "failed, identical entry", state: status.Failed, again: first},
		{name: "cancelled, new entry", state: status.Cancelled, again: second},
		{name: "cancelled, identical entry", state: status.Cancelled, again: first},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			events := h.subscribeEvents()
			h.run()
			ctx := context.Background()
			h.startTask(first, id)
			h.waitDrained()
			switch tc.state {
			case status.Queued:
			case status.Cancelled:
				if err := h.status.Advance(ctx, id, status.Parsing); err != nil {
					t.Fatal(err)
				}
				if _, _, err := h.status.Cancel(ctx, id, "operator"); err != nil {
					t.Fatal(err)
				}
				events.waitEvent(t, id, "cancelled")
			case status.Failed:
				if err := h.status.Advance(ctx, id, status.Fetching); err != nil {
					t.Fatal(err)
				}
				if err := h.status.Fail(ctx, id, "fetch", errors.New("GET a.pdf: 403 Forbidden (URL expired)")); err != nil {
					t.Fatal(err)
				}
				events.waitEvent(t, id, "failed")
				testenv.CheckFor(t, waitLong, pollStep, func() error {
					if n := len(h.list(dlqKey)); n != 1 {
						return fmt.Errorf("dead-letter list: %d entries, want the failure's", n)
					}
					return nil
				})
			default:
				if err := h.status.Advance(ctx, id, tc.state); err != nil {
					t.Fatal(err)
				}
			}
			before := len(events.forDoc(t, id))

			h.push("lpush", queueKey, tc.again)
			h.waitDrained()

			if len(tc.reasonHas) > 0 {
				checkRefused(t, h, events, tc.again, tc.state, tc.reasonHas, tc.eventType, before)
				return
			}
			dead := 0 // entries of earlier failures
			if tc.state == status.Failed {
				dead = 1
			}
			checkStartedAgain(t, h, events, tc.again, dead)
		})
	}
}

func checkRefused(t *testing.T, h *harness, events *eventLog, raw string, state status.State, reasonHas []string, eventType string, before int) {
	t.Helper()
	id := "d-again"
	var answer map[string]any
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		evs := events.forDoc(t, id)
		for _, ev := range evs[before:] {
			if msg, _ := ev["message"].(string); strings.Contains(msg, "not started again") {
				answer = ev
				return nil
			}
		}
		return fmt.Errorf("no answer event yet: %v", evs[before:])
	})
	checkEventShape(t, answer, eventType, id, "u1", string(state))
	if state == status.Embedding {
		if p := answer["progress"].(map[string]any)["percentage"].(float64); p < 40 {
			t.Errorf("answer percentage: got %v, want no less than the embedding step's", p)
		}
	}
	dl := h.dlq()
	if len(dl) != 1 {
		t.Fatalf("dead-letter list: got %d entries %v, want the refused entry", len(dl), dl)
	}
	checkDeadLetter(t, dl[0], raw, reasonHas...)
	if n := h.fetchCounts()[pipeline.Fetch.Subject(id)]; n != 1 {
		t.Errorf("fetch messages: got %d, want 1 (not started again)", n)
	}
	if st, err := h.status.Get(context.Background(), id); err != nil || st.State != state {
		t.Errorf("state: got %q (%v), want %q unchanged", st.State, err, state)
	}
}

func checkStartedAgain(t *testing.T, h *harness, events *eventLog, raw string, dead int) {
	t.Helper()
	ctx := context.Background()
	id := "d-again"
	st, err := h.status.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Queued || st.Run != 2 || st.Stage != "" || st.Error != "" || st.Entry != task.Fingerprint([]byte(raw)) {
		t.Errorf("status: got state %q run %d stage %q error %q entry %q, want queued, run 2, no failure, the new entry",
			st.State, st.Run, st.Stage, st.Error, st.Entry)
	}
	if !jsonEqual(st.Task, []byte(raw)) {
		t.Errorf("status task: got %s, want the new entry", st.Task)
	}
	h.waitFetch(id)
	if n := h.fetchCounts()[pipeline.Fetch.Subject(id)]; n != 2 {
		t.Errorf("fetch messages: got %d, want 2 (the first run and this one)", n)
	}
	job, msg := h.fetchJob(id)
	want, _ := task.Parse([]byte(raw))
	if job.Task.URL != want.URL || job.Replay != 2 {
		t.Errorf("new fetch job: URL %q replay %d, want %q and 2", job.Task.URL, job.Replay, want.URL)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != pipeline.MsgID(id, 2, "fetch") {
		t.Errorf("new fetch job's message id: got %q", got)
	}
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		for _, e := range events.forDoc(t, id) {
			if msg, _ := e["message"].(string); e["status"] == "queued" && strings.Contains(msg, "run 2") {
				checkEventShape(t, e, "processing", id, "u1", "queued")
				return nil
			}
		}
		return fmt.Errorf("no event announces the new run: %v", events.forDoc(t, id))
	})
	// The failure's dead-letter entry (a cancel leaves none) stays until
	// the task ends well...
	if dl := h.list(dlqKey); len(dl) != dead {
		t.Fatalf("dead-letter list: got %d entries, want %d (the first failure's only)", len(dl), dead)
	}
	// ...and is removed when it does.
	for _, s := range []status.State{status.Fetching, status.Parsing, status.Embedding, status.Ingesting, status.Done} {
		if err := h.status.Advance(ctx, id, s); err != nil {
			t.Fatal(err)
		}
	}
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		if dl := h.list(dlqKey); len(dl) != 0 {
			return fmt.Errorf("dead-letter list: got %v, want empty once the retried task is done", dl)
		}
		return nil
	})
}

// A task whose failure is in the dead-letter list and that ends done
// after a replay leaves no entry behind; failing again replaces the
// entry rather than adding one.
func TestDeadLetterResolvedByReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	ctx := context.Background()
	const id = "d-replayed"
	const raw = `{"DocID":"d-replayed","UserID":"u1","URL":"https://example.com/r.pdf"}`
	const unrelated = `{"DocID":"other","final_result":"gateway: something else"}`
	h.push("rpush", dlqKey, unrelated)
	h.startTask(raw, id)
	waitReason := func(want string) {
		t.Helper()
		testenv.CheckFor(t, waitLong, pollStep, func() error {
			dl := h.dlq()
			var got []string
			for _, e := range dl[1:] {
				got = append(got, fmt.Sprint(e["final_result"]))
			}
			if len(got) != 1 || !strings.Contains(got[0], want) {
				return fmt.Errorf("task's dead-letter entries: got %q, want one with %q", got, want)
			}
			return nil
		})
	}
	if err := h.status.Fail(ctx, id, "ingest", errors.New("backend unreachable")); err != nil {
		t.Fatal(err)
	}
	waitReason("backend unreachable")

	// Replayed (as `pdfpipe replay` reopens it), fails again.
	if _, err := h.status.Reopen(ctx, id, status.Embedding); err != nil {
		t.Fatal(err)
	}
	if err := h.status.Fail(ctx, id, "ingest", errors.New("backend refused")); err != nil {
		t.Fatal(err)
	}
	waitReason("backend refused")

	// Replayed again, ends done.
	if _, err := h.status.Reopen(ctx, id, status.Embedding); err != nil {
		t.Fatal(err)
	}
	if err := h.status.Advance(ctx, id, status.Done); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		if dl := h.list(dlqKey); len(dl) != 1 || dl[0] != unrelated {
			return fmt.Errorf("dead-letter list: got %v, want only the unrelated entry", dl)
		}
		return nil
	})
	if n := len(events.forDoc(t, id)); n == 0 {
		t.Error("no events for the task")
	}
}

// A gateway that died between starting a failed task's new run and
// acking the entry that asked for it (the very entry that started the
// first run, sent again): the recovered entry finishes starting run 2;
// it is not mistaken for the task sent a third time.
func TestIntakeRecoversRetryOfIdenticalEntry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run()
	ctx := context.Background()
	const id = "d-rerun"
	const raw = `{"task_id":"d-rerun","s3_url":"s3://b/r.pdf"}`
	// Run 1 is accepted, then fails.
	h.push("lpush", queueKey, raw)
	h.waitFetch(id)
	h.waitDrained()
	if err := h.status.Fail(ctx, id, "fetch", errors.New("404")); err != nil {
		t.Fatal(err)
	}
	// Another gateway took the same entry sent again, started run 2 and
	// died before publishing its fetch job and acking the entry.
	if _, ok, err := h.status.Retry(ctx, id, func(st *status.Status) { st.Entry = task.Fingerprint([]byte(raw)) }); err != nil || !ok {
		t.Fatalf("Retry: %v, %v", ok, err)
	}
	h.push("lpush", queueKey+":processing:gw-crashed", raw)
	// A gateway starting now recovers the dead one's entry at once.
	cfg := h.cfg
	cfg.InstanceID = "gw-second"
	gw2, err := gateway.New(cfg, h.res, h.nc, slog.New(slog.NewJSONHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw2.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	testenv.CheckFor(t, waitLong, pollStep, func() error {
		if n := h.fetchCounts()[pipeline.Fetch.Subject(id)]; n != 2 {
			return fmt.Errorf("fetch messages: %d, want run 1's and run 2's", n)
		}
		return nil
	})
	h.waitDrained()
	job, _ := h.fetchJob(id)
	if job.Replay != 2 {
		t.Errorf("fetch job: replay %d, want run 2's", job.Replay)
	}
	if st, err := h.status.Get(ctx, id); err != nil || st.State != status.Queued || st.Run != 2 {
		t.Errorf("status: got %q run %d (%v), want queued run 2", st.State, st.Run, err)
	}
	// Only the failure of run 1, no refusal of the recovered entry.
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		dl := h.dlq()
		if len(dl) != 1 || !strings.Contains(fmt.Sprint(dl[0]["final_result"]), "fetch: 404") {
			return fmt.Errorf("dead-letter list: got %v, want run 1's failure only", dl)
		}
		return nil
	})
}
