package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func TestIntakeShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		push   string // how the producer enqueues
		raw    string
		wantID string
		want   status.Status // ids the status record must carry
	}{
		{
			name:   "backend today, LPUSH, no task_id or FileSize",
			push:   "lpush",
			raw:    `{"DocID":"7d1c2a9e-5b7f-4c1e-9a61-0f3c8e2b4d10","FileName":"report.pdf","UserID":"u1","CreatedAt":"2025-06-01T10:11:12.123456789Z","URL":"https://minio.local/docs/u1/report.pdf?X-Amz-Expires=900&X-Amz-Signature=abc","RagMode":"true"}`,
			wantID: "7d1c2a9e-5b7f-4c1e-9a61-0f3c8e2b4d10",
			want:   status.Status{DocID: "7d1c2a9e-5b7f-4c1e-9a61-0f3c8e2b4d10", UserID: "u1", FileName: "report.pdf"},
		},
		{
			name:   "original README, RPUSH, task_id and FileSize",
			push:   "rpush",
			raw:    `{"DocID":"doc-2","UserID":"u2","FileName":"b.pdf","URL":"https://example.com/b.pdf","FileSize":1024000,"task_id":"task-2"}`,
			wantID: "task-2",
			want:   status.Status{DocID: "doc-2", UserID: "u2", FileName: "b.pdf"},
		},
		{
			name:   "oldest, task_id and s3_url",
			push:   "rpush",
			raw:    `{"task_id":"doc_123","s3_url":"s3://my-bucket/uploads/doc_123.pdf"}`,
			wantID: "doc_123",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.run()
			h.push(tc.push, queueKey, tc.raw)
			h.waitFetch(tc.wantID)
			h.waitDrained()

			st, err := h.status.Get(context.Background(), tc.wantID)
			if err != nil {
				t.Fatalf("status of %s: %v", tc.wantID, err)
			}
			if st.State != status.Queued {
				t.Errorf("state: got %q, want %q", st.State, status.Queued)
			}
			got := status.Status{TaskID: st.TaskID, DocID: st.DocID, UserID: st.UserID, FileName: st.FileName}
			want := tc.want
			want.TaskID = tc.wantID
			if !reflect.DeepEqual(got, want) {
				t.Errorf("status ids: got %+v, want %+v", got, want)
			}
			if !jsonEqual(st.Task, []byte(tc.raw)) {
				t.Errorf("status task: got %s, want the entry %s", st.Task, tc.raw)
			}

			counts := h.fetchCounts()
			subj := pipeline.Fetch.Subject(tc.wantID)
			if len(counts) != 1 || counts[subj] != 1 {
				t.Errorf("fetch messages: got %v, want exactly one on %s", counts, subj)
			}
			job, msg := h.fetchJob(tc.wantID)
			if got := msg.Header.Get(pipeline.HeaderTaskID); got != tc.wantID {
				t.Errorf("header %s: got %q, want %q", pipeline.HeaderTaskID, got, tc.wantID)
			}
			wantTask, err := task.Parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(job.Task.Raw, wantTask.Raw) {
				t.Errorf("fetch job raw: got %s, want %s", job.Task.Raw, wantTask.Raw)
			}
			job.Task.Raw, wantTask.Raw = nil, nil
			if !reflect.DeepEqual(job.Task, wantTask) {
				t.Errorf("fetch job task: got %+v, want %+v", job.Task, wantTask)
			}
			if dl := h.list(dlqKey); len(dl) != 0 {
				t.Errorf("dead-letter list: got %v, want empty", dl)
			}
		})
	}
}

func TestIntakeMalformedGoesToDLQ(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name      string
		raw       string
		reasonHas []string
	}{
		{"not JSON", `DocID=1&URL=https://example.com/a.pdf`, []string{"gateway", "not JSON"}},
		{"not an object", `["DocID","d"]`, []string{"gateway", "JSON object"}},
		{"no id", `{"FileName":"a.pdf","UserID":"u1","URL":"https://example.com/a.pdf"}`, []string{"gateway", "no task_id or DocID"}},
		{"no URL", `{"DocID":"d-no-url","UserID":"u1","FileName":"a.pdf"}`, []string{"gateway", "no URL"}},
		{"ftp scheme", `{"DocID":"d-ftp","UserID":"u1","URL":"ftp://example.com/a.pdf"}`, []string{"gateway", "unsupported URL scheme", "ftp"}},
	}
	const good = `{"DocID":"d-good","UserID":"u1","FileName":"g.pdf","URL":"https://example.com/g.pdf"}`

	h := newHarness(t, nil)
	h.run()
	for _, b := range bad {
		h.push("lpush", queueKey, b.raw) // served oldest first: in this order
	}
	h.push("lpush", queueKey, good)
	h.waitFetch("d-good")
	h.waitDrained()

	dl := h.dlq()
	if len(dl) != len(bad) {
		t.Fatalf("dead-letter list: got %d entries %v, want %d", len(dl), h.list(dlqKey), len(bad))
	}
	for i, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			checkDeadLetter(t, dl[i], b.raw, b.reasonHas...)
		})
	}
	if counts := h.fetchCounts(); len(counts) != 1 {
		t.Errorf("fetch messages: got %v, want only the good task's", counts)
	}
	for _, id := range []string{"d-no-url", "d-ftp"} {
		if _, err := h.status.Get(context.Background(), id); !errors.Is(err, status.ErrNotFound) {
			t.Errorf("status of malformed task %s: got err %v, want ErrNotFound", id, err)
		}
	}
	if st, err := h.status.Get(context.Background(), "d-good"); err != nil || st.State != status.Queued {
		t.Errorf("good task after the bad ones: got %+v, %v, want queued", st, err)
	}
}

func TestIntakeRecoversProcessingLists(t *testing.T) {
	t.Parallel()
	const raw = `{"DocID":"d-rec","UserID":"u1","FileName":"r.pdf","URL":"https://example.com/r.pdf"}`
	tests := []struct {
		name      string
		list      string        // processing list the entry was left in
		prior     *status.State // status the task already has, if any
		wantFetch uint64
		wantState status.State
	}{
		{name: "own list from an earlier run with the same GATEWAY_ID", list: ownProc, wantFetch: 1, wantState: status.Queued},
		{name: "list of a dead gateway (no alive key)", list: queueKey + ":processing:gw-crashed", wantFetch: 1, wantState: status.Queued},
		{name: "already accepted, still queued (crash between publish and ack)", list: ownProc, prior: ptr(status.Queued), wantFetch: 1, wantState: status.Queued},
		{name: "already fetching", list: ownProc, prior: ptr(status.Fetching), wantFetch: 0, wantState: status.Fetching},
		{name: "already done", list: queueKey + ":processing:gw-crashed", prior: ptr(status.Done), wantFetch: 0, wantState: status.Done},
		{name: "already failed", list: ownProc, prior: ptr(status.Failed), wantFetch: 0, wantState: status.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ctx := context.Background()
			if tc.prior != nil {
				// As the gateway that took the entry first recorded it.
				created, err := h.status.Create(ctx, status.Status{TaskID: "d-rec", DocID: "d-rec", State: *tc.prior,
					Entry: task.Fingerprint([]byte(raw)), Run: 1})
				if err != nil || !created {
					t.Fatalf("create prior status: %v, %v", created, err)
				}
			}
			h.push("lpush", tc.list, raw)
			h.run()
			h.waitDrained()
			if tc.wantFetch > 0 {
				h.waitFetch("d-rec")
			}
			counts := h.fetchCounts()
			if got := counts[pipeline.Fetch.Subject("d-rec")]; got != tc.wantFetch || len(counts) > 1 {
				t.Errorf("fetch messages: got %v, want %d for d-rec", counts, tc.wantFetch)
			}
			st, err := h.status.Get(ctx, "d-rec")
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.wantState {
				t.Errorf("state: got %q, want %q", st.State, tc.wantState)
			}
			if dl := h.list(dlqKey); len(dl) != 0 {
				t.Errorf("dead-letter list: got %v, want empty", dl)
			}
		})
	}
}

func TestIntakeLeavesLiveGatewaysEntries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	const other = queueKey + ":processing:gw-alive"
	const held = `{"DocID":"d-held","URL":"https://example.com/h.pdf"}`
	h.push("lpush", other, held)
	if err := h.rdb.Set(ctx, queueKey+":alive:gw-alive", "now", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	h.run()
	// Recovery runs before the first pop: once this task is in, it has run.
	h.push("rpush", queueKey, `{"DocID":"d-next","URL":"https://example.com/n.pdf"}`)
	h.waitFetch("d-next")
	if got := h.list(other); !slices.Equal(got, []string{held}) {
		t.Errorf("live gateway's processing list: got %v, want it untouched", got)
	}
	if n := h.fetchCounts()[pipeline.Fetch.Subject("d-held")]; n != 0 {
		t.Errorf("a live gateway's entry was started here: %d fetch messages", n)
	}
}

func TestIntakePopSide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		push string
		side string // REDIS_POP_SIDE, "" for the default
		want []string
	}{
		{"LPUSH producer (the backend), default side right: oldest first", "lpush", "", []string{"a", "b", "c"}},
		{"LPUSH producer, left: newest first like the original BLPOP", "lpush", "left", []string{"c", "b", "a"}},
		{"LPUSH producer, right: oldest first", "lpush", "right", []string{"a", "b", "c"}},
		{"RPUSH producer, left: oldest first", "rpush", "left", []string{"a", "b", "c"}},
		{"RPUSH producer, right: newest first", "rpush", "right", []string{"c", "b", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.side != "" {
				env["REDIS_POP_SIDE"] = tc.side
			}
			h := newHarness(t, env)
			for _, id := range []string{"a", "b", "c"} {
				h.push(tc.push, queueKey, fmt.Sprintf(`{"task_id":%q,"s3_url":"s3://b/%s.pdf"}`, id, id))
			}
			h.run()
			h.waitDrained()
			s, err := h.js.Stream(context.Background(), pipeline.Stream)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for seq := uint64(1); seq <= 3; seq++ {
				m, err := s.GetMsg(context.Background(), seq)
				if err != nil {
					t.Fatalf("message %d: %v", seq, err)
				}
				got = append(got, m.Header.Get(pipeline.HeaderTaskID))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("start order: got %v, want %v", got, tc.want)
			}
		})
	}
}

// While JetStream cannot store the fetch job the entry stays in the
// processing list (not dropped, not dead-lettered) and is started once
// it can.
func TestIntakeHoldsEntryWhileStreamMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	h.holdWithoutStream(`{"DocID":"d-wait","URL":"https://example.com/w.pdf"}`)
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		_, err := h.status.Get(ctx, "d-wait")
		return err
	})
	if dl := h.list(dlqKey); len(dl) != 0 {
		t.Fatalf("dead-letter list: got %v, want empty (NATS trouble is not the task's fault)", dl)
	}
	if _, err := pipeline.Setup(ctx, h.js, pipeline.Config{}); err != nil {
		t.Fatal(err)
	}
	h.waitFetch("d-wait")
	h.waitDrained()
	if n := h.fetchCounts()[pipeline.Fetch.Subject("d-wait")]; n != 1 {
		t.Errorf("fetch messages: got %d, want 1", n)
	}
}

// An entry this gateway was retrying can be taken by another gateway (its
// heartbeat lapsed during a stall). Its ack then finds nothing to remove:
// the gateway must move on, not retry that entry forever.
func TestIntakeEntryTakenOverWhileRetrying(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	const raw = `{"DocID":"d-taken","URL":"https://example.com/t.pdf"}`
	h.holdWithoutStream(raw)
	// Another gateway takes the entry over.
	const other = queueKey + ":processing:gw-other"
	if err := h.rdb.Set(ctx, queueKey+":alive:gw-other", "now", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.rdb.LMove(ctx, ownProc, other, "LEFT", "LEFT").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Setup(ctx, h.js, pipeline.Config{}); err != nil {
		t.Fatal(err)
	}
	h.push("rpush", queueKey, `{"DocID":"d-after","URL":"https://example.com/a.pdf"}`)
	h.waitFetch("d-after")
	if got := h.list(other); !slices.Equal(got, []string{raw}) {
		t.Errorf("other gateway's list: got %v, want its entry untouched", got)
	}
	if n := h.fetchCounts()[pipeline.Fetch.Subject("d-taken")]; n > 1 {
		t.Errorf("fetch messages of the taken-over task: got %d, want at most 1", n)
	}
}

func ptr[T any](v T) *T { return &v }

// holdWithoutStream deletes the stage stream, runs the gateway, queues raw
// and waits until the gateway holds it in its processing list (it cannot
// publish the fetch job).
func (h *harness) holdWithoutStream(raw string) {
	h.t.Helper()
	if err := h.js.DeleteStream(context.Background(), pipeline.Stream); err != nil {
		h.t.Fatal(err)
	}
	h.run()
	h.push("rpush", queueKey, raw)
	testenv.CheckFor(h.t, waitLong, pollStep, func() error {
		if got := h.list(ownProc); !slices.Equal(got, []string{raw}) {
			return fmt.Errorf("processing list: got %v, want the entry held", got)
		}
		return nil
	})
}
