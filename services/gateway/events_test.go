package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// eventLog collects the raw messages on the events channel.
type eventLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *harness) subscribeEvents() *eventLog {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := h.rdb.Subscribe(ctx, "document:events")
	if _, err := sub.Receive(ctx); err != nil { // the subscription is confirmed
		h.t.Fatalf("subscribe: %v", err)
	}
	l := &eventLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Channel() {
			l.mu.Lock()
			l.msgs = append(l.msgs, m.Payload)
			l.mu.Unlock()
		}
	}()
	h.t.Cleanup(func() {
		cancel()
		sub.Close()
		<-done
	})
	return l
}

// forDoc returns the decoded events of one document, in order.
func (l *eventLog) forDoc(t *testing.T, docID string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, raw := range l.msgs {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("event %q is not JSON: %v", raw, err)
		}
		if m["doc_id"] == docID {
			out = append(out, m)
		}
	}
	return out
}

// waitEvent waits for an event of docID with the given status.
func (l *eventLog) waitEvent(t *testing.T, docID, st string) map[string]any {
	t.Helper()
	var found map[string]any
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		for _, ev := range l.forDoc(t, docID) {
			if ev["status"] == st {
				found = ev
				return nil
			}
		}
		return fmt.Errorf("no %q event for %s yet (got %v)", st, docID, l.forDoc(t, docID))
	})
	return found
}

// checkEventShape checks the backend's DocumentEvent JSON format.
func checkEventShape(t *testing.T, ev map[string]any, typ, docID, userID, st string) {
	t.Helper()
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"doc_id", "message", "progress", "status", "timestamp", "type", "user_id"}; !slices.Equal(keys, want) {
		t.Errorf("event fields: got %v, want %v", keys, want)
	}
	for field, want := range map[string]string{"type": typ, "doc_id": docID, "user_id": userID, "status": st} {
		if ev[field] != want {
			t.Errorf("event %s: got %v, want %q", field, ev[field], want)
		}
	}
	if msg, _ := ev["message"].(string); msg == "" {
		t.Errorf("event message: got %v, want a text for the user", ev["message"])
	}
	prog, _ := ev["progress"].(map[string]any)
	var pkeys []string
	for k, v := range prog {
		pkeys = append(pkeys, k)
		if _, ok := v.(float64); !ok {
			t.Errorf("progress.%s: got %v (%T), want a number", k, v, v)
		}
	}
	slices.Sort(pkeys)
	if want := []string{"chunks_failed", "chunks_received", "chunks_stored", "percentage", "total_chunks"}; !slices.Equal(pkeys, want) {
		t.Errorf("progress fields: got %v, want %v", pkeys, want)
	}
	ts, _ := ev["timestamp"].(string)
	if at, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("timestamp: got %q, want RFC 3339: %v", ts, err)
	} else if d := time.Since(at); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("timestamp: got %v, want about now", at)
	}
}

// startTask sends a task through the intake and stores an API key for it.
func (h *harness) startTask(raw, id string) {
	h.t.Helper()
	if err := pipeline.PutAPIKey(context.Background(), h.res.Keys, id,
		pipeline.APIKey{Provider: "openai", Key: "sk-secret-" + id}, time.Hour); err != nil {
		h.t.Fatal(err)
	}
	h.push("lpush", queueKey, raw)
	h.waitFetch(id)
}

func (h *harness) waitKeyGone(id string) {
	h.t.Helper()
	testenv.CheckFor(h.t, waitLong, pollStep, func() error {
		k, err := pipeline.GetAPIKey(context.Background(), h.res.Keys, id, 0)
		if errors.Is(err, pipeline.ErrNoKey) {
			return nil
		}
		return fmt.Errorf("key of %s still there (provider %q, err %v)", id, k.Provider, err)
	})
}

func TestEventsProcessing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	const id = "d-ev-proc"
	h.startTask(`{"DocID":"d-ev-proc","UserID":"u-proc","FileName":"p.pdf","URL":"https://example.com/p.pdf"}`, id)

	queued := events.waitEvent(t, id, "queued")
	checkEventShape(t, queued, "processing", id, "u-proc", "queued")

	if err := h.status.Advance(context.Background(), id, status.Fetching); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(t, id, "fetching")
	checkEventShape(t, ev, "processing", id, "u-proc", "fetching")
	if p := ev["progress"].(map[string]any)["percentage"].(float64); p <= 0 || p >= 100 {
		t.Errorf("fetching percentage: got %v, want between 0 and 100", p)
	}

	if _, err := h.status.Update(context.Background(), id, func(st *status.Status) {
		st.State, st.Pages, st.Chunks = status.Embedding, 12, 30
		st.EmptyPages, st.UnreadablePages = 2, 3
	}); err != nil {
		t.Fatal(err)
	}
	ev = events.waitEvent(t, id, "embedding")
	checkEventShape(t, ev, "processing", id, "u-proc", "embedding")
	if got := ev["progress"].(map[string]any)["total_chunks"]; got != float64(30) {
		t.Errorf("embedding total_chunks: got %v, want 30", got)
	}
	if msg := ev["message"].(string); !strings.Contains(msg, "30") || !strings.Contains(msg, "12") {
		t.Errorf("embedding message: got %q, want chunk and page counts", msg)
	}
	if msg := ev["message"].(string); !strings.Contains(msg, "2 of 12 pages have no text layer") || !strings.Contains(msg, "3 of 12 pages have unreadable text") {
		t.Errorf("embedding message: got %q, want the pages without text and with unreadable text", msg)
	}

	if k, err := pipeline.GetAPIKey(context.Background(), h.res.Keys, id, 0); err != nil || k.Provider != "openai" {
		t.Errorf("key of a running task: got provider %q, err %v; want it kept", k.Provider, err)
	}
	if dl := h.list(dlqKey); len(dl) != 0 {
		t.Errorf("dead-letter list: got %v, want empty", dl)
	}
}

func TestEventsFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	const id = "d-ev-fail"
	const raw = `{"DocID":"d-ev-fail","UserID":"u-fail","FileName":"f.pdf","URL":"https://example.com/f.pdf?X-Amz-Signature=abc&X-Amz-Expires=900","RagMode":"true"}`
	h.startTask(raw, id)
	ctx := context.Background()
	if err := h.status.Advance(ctx, id, status.Fetching); err != nil {
		t.Fatal(err)
	}
	if err := h.status.Fail(ctx, id, "fetch", errors.New("GET f.pdf: 404 Not Found")); err != nil {
		t.Fatal(err)
	}

	ev := events.waitEvent(t, id, "failed")
	checkEventShape(t, ev, "failed", id, "u-fail", "failed")
	if msg := ev["message"].(string); !strings.Contains(msg, "fetch") || !strings.Contains(msg, "404 Not Found") {
		t.Errorf("failed message: got %q, want the stage and the reason", msg)
	}

	var dl []map[string]any
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		if dl = h.dlq(); len(dl) == 0 {
			return errors.New("no dead-letter entry yet")
		}
		return nil
	})
	if len(dl) != 1 {
		t.Fatalf("dead-letter list: got %d entries, want 1: %v", len(dl), dl)
	}
	checkDeadLetter(t, dl[0], raw, "fetch", "404 Not Found")
	h.waitKeyGone(id)
	if n := len(events.forDoc(t, id)); n == 0 {
		t.Fatal("no events at all")
	}
	for _, ev := range events.forDoc(t, id) {
		if ev["type"] == "failed" && ev["status"] != "failed" {
			t.Errorf("failed event with status %v", ev["status"])
		}
	}
}

// TestEventsCancelled: a cancelled task is announced once in the
// backend's terms (type failed, status cancelled) with the stage it was
// at and the reason; it is no failure, so nothing is dead-lettered; its
// key is removed.
func TestEventsCancelled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	const id = "d-ev-cancel"
	h.startTask(`{"DocID":"d-ev-cancel","UserID":"u-cancel","FileName":"c.pdf","URL":"https://example.com/c.pdf"}`, id)
	ctx := context.Background()
	for _, st := range []status.State{status.Fetching, status.Parsing} {
		if err := h.status.Advance(ctx, id, st); err != nil {
			t.Fatal(err)
		}
	}
	events.waitEvent(t, id, "parsing")
	if _, _, err := h.status.Cancel(ctx, id, "uploaded by mistake"); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(t, id, "cancelled")
	checkEventShape(t, ev, "failed", id, "u-cancel", "cancelled")
	if msg := ev["message"].(string); !strings.Contains(msg, "cancelled during parse") || !strings.Contains(msg, "uploaded by mistake") {
		t.Errorf("cancelled message: got %q, want the stage and the reason", msg)
	}
	if p := ev["progress"].(map[string]any)["percentage"].(float64); p < 15 {
		t.Errorf("cancelled percentage: got %v, want the parsing step's shown before", p)
	}
	h.waitKeyGone(id)
	// Events are handled in order: once a later change is published, the
	// cancelled record has been handled whole.
	h.startTask(`{"DocID":"d-ev-after","URL":"https://example.com/l.pdf"}`, "d-ev-after")
	events.waitEvent(t, "d-ev-after", "queued")
	if dl := h.list(dlqKey); len(dl) != 0 {
		t.Errorf("dead-letter list: got %v, want empty (a cancel is no failure)", dl)
	}
	n := 0
	for _, ev := range events.forDoc(t, id) {
		if ev["status"] == "cancelled" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("cancelled events: got %d, want 1", n)
	}
}

func TestEventsDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	const id = "d-ev-done"
	h.startTask(`{"DocID":"d-ev-done","UserID":"u-done","URL":"https://example.com/d.pdf"}`, id)
	ctx := context.Background()
	for _, st := range []status.State{status.Fetching, status.Parsing, status.Embedding, status.Ingesting, status.Done} {
		if err := h.status.Advance(ctx, id, st); err != nil {
			t.Fatal(err)
		}
	}
	h.waitKeyGone(id)
	// Events are handled in order: once a later change is published, the
	// done record has been handled.
	h.startTask(`{"DocID":"d-ev-later","URL":"https://example.com/l.pdf"}`, "d-ev-later")
	events.waitEvent(t, "d-ev-later", "queued")

	events.waitEvent(t, id, "ingesting")
	for _, ev := range events.forDoc(t, id) {
		if ev["type"] != "processing" {
			t.Errorf("event for a task that succeeded: got type %v status %v, want only processing (the backend announces completion)", ev["type"], ev["status"])
		}
	}
	if dl := h.list(dlqKey); len(dl) != 0 {
		t.Errorf("dead-letter list: got %v, want empty", dl)
	}
	if k, err := pipeline.GetAPIKey(ctx, h.res.Keys, "d-ev-later", 0); err != nil || k.Provider == "" {
		t.Errorf("key of the still-running task: got %q, %v; want it kept", k.Provider, err)
	}
}

// Pipeline events never go backwards: a step is announced once (not
// again when the ingester updates its bookkeeping, retries, or a replay
// reopens the task), and nothing the pipeline publishes after the
// backend's own progress is lower than it.
func TestEventsNeverGoBackwards(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	events := h.subscribeEvents()
	h.run()
	ctx := context.Background()
	update := func(id string, fn func(*status.Status)) {
		t.Helper()
		if _, err := h.status.Update(ctx, id, fn); err != nil {
			t.Fatal(err)
		}
	}
	toEmbedding := func(id string) {
		t.Helper()
		h.startTask(fmt.Sprintf(`{"DocID":%q,"UserID":"u-mono","URL":"https://example.com/m.pdf"}`, id), id)
		update(id, func(st *status.Status) { st.State = status.Fetching })
		update(id, func(st *status.Status) { st.State = status.Parsing })
		update(id, func(st *status.Status) { st.State, st.Pages, st.Chunks = status.Embedding, 3, 9 })
	}
	// The backend reports its own progress on the same channel.
	backend := func(id string) {
		t.Helper()
		ev := fmt.Sprintf(`{"type":"processing","doc_id":%q,"user_id":"u-mono","status":"processing","message":"stored 9 of 9 chunks","progress":{"chunks_received":9,"chunks_stored":9,"chunks_failed":0,"total_chunks":9,"percentage":99},"timestamp":"2025-06-01T10:00:00Z"}`, id)
		if err := h.rdb.Publish(ctx, "document:events", ev).Err(); err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, waitLong, pollStep, func() error {
			v, err := h.rdb.HGet(ctx, "document:events:progress:"+id, "pct").Result()
			if v != "99" {
				return fmt.Errorf("progress shown: got %q (%v), want the backend's 99", v, err)
			}
			return nil
		})
	}

	// Retries and a replay repeat steps already announced.
	const again = "d-mono-again"
	toEmbedding(again)
	update(again, func(st *status.Status) { st.State, st.Attempts = status.Ingesting, 1 })
	update(again, func(st *status.Status) { st.SentWhole = 1 })              // the stream carried every chunk
	update(again, func(st *status.Status) { st.Attempts = 2 })               // the ingester tries again
	if _, err := h.status.Reopen(ctx, again, status.Embedding); err != nil { // `pdfpipe replay embed`
		t.Fatal(err)
	}
	update(again, func(st *status.Status) { st.State, st.Attempts = status.Ingesting, 3 })

	// The backend is ahead of the gateway's events.
	const ahead = "d-mono-ahead"
	toEmbedding(ahead)
	events.waitEvent(t, ahead, "embedding")
	backend(ahead)
	update(ahead, func(st *status.Status) { st.State, st.Attempts = status.Ingesting, 1 })
	update(ahead, func(st *status.Status) { st.SentWhole = 1 })

	// Changes are handled in order: once a later task's event is out,
	// every change above has been.
	h.startTask(`{"DocID":"d-mono-later","URL":"https://example.com/l.pdf"}`, "d-mono-later")
	events.waitEvent(t, "d-mono-later", "queued")

	for id, want := range map[string][]string{
		again: {"queued 0", "fetching 5", "parsing 15", "embedding 40", "ingesting 80"},
		ahead: {"queued 0", "fetching 5", "parsing 15", "embedding 40", "processing 99"},
	} {
		var got []string
		last := -1.0
		for _, ev := range events.forDoc(t, id) {
			p := ev["progress"].(map[string]any)["percentage"].(float64)
			got = append(got, fmt.Sprintf("%v %v", ev["status"], p))
			if p < last {
				t.Errorf("%s: event %v %v%% after %v%%: progress went backwards", id, ev["status"], p, last)
			}
			last = max(last, p)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s events: got %q, want %q", id, got, want)
		}
	}
}
