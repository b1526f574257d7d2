package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// typedWait bounds the waits of these tests: generous, the machine may be
// busy.
const typedWait = 30 * time.Second

// countingStatus counts the status reads of a Typed handler.
type countingStatus struct {
	stage.StatusReader
	n *atomic.Int64
}

func (c countingStatus) Get(ctx context.Context, taskID string) (status.Status, error) {
	c.n.Add(1)
	return c.StatusReader.Get(ctx, taskID)
}

// typedRun is a Typed handler of the fetch stage at work on a real
// server: its status reads and work calls are counted, its log kept.
type typedRun struct {
	h     *stage.Typed[pipeline.FetchJob]
	reads atomic.Int64
	calls atomic.Int64
	log   testenv.LogBuffer
}

// startTyped runs work as the fetch stage with workers at once, until the
// (sub)test ends. fresh is the handler's Fresh (0: its default).
func startTyped(t *testing.T, e *stagetest.Env, workers int, fresh time.Duration, work stage.WorkFunc[pipeline.FetchJob]) *typedRun {
	t.Helper()
	tr := &typedRun{}
	log := slog.New(slog.NewJSONHandler(&tr.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr.h = stage.NewTyped(e.Res, pipeline.Fetch, log, func(ctx context.Context, j *stage.Job[pipeline.FetchJob]) error {
		tr.calls.Add(1)
		return work(ctx, j)
	})
	tr.h.Status = countingStatus{StatusReader: tr.h.Status, n: &tr.reads}
	tr.h.Fresh = fresh
	ctx, cancel := context.WithTimeout(context.Background(), typedWait)
	defer cancel()
	r, err := stage.ForStage(ctx, e.Res, pipeline.Fetch, tr.h, log, workers, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("ForStage: %v", err)
	}
	stagetest.Run(t, r.Run)
	return tr
}

// lines returns the logged lines whose msg is msg, decoded.
func (tr *typedRun) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(tr.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// publishJobs publishes n fetch jobs of run replay for the task and
// returns the stream sequence of the last.
func publishJobs(t *testing.T, e *stagetest.Env, id string, replay, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), typedWait)
	defer cancel()
	var seq uint64
	for i := range n {
		job := pipeline.FetchJob{Task: task.Task{ID: id, DocID: id}, Replay: replay}
		ack, err := pipeline.Publish(ctx, e.JS, pipeline.Fetch.Subject(id), id, pipeline.MsgID(id, replay, "fetch", fmt.Sprint(i)), job)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		seq = ack.Sequence
	}
	return seq
}

// setState creates the task's record and moves it to state.
func setState(t *testing.T, e *stagetest.Env, id string, state status.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), typedWait)
	defer cancel()
	if _, err := e.Status.Create(ctx, status.Status{TaskID: id}); err != nil {
		t.Fatal(err)
	}
	var err error
	switch state {
	case status.Failed:
		err = e.Status.Fail(ctx, id, "parse", errors.New("parse gave up"))
	case status.Queued:
	default:
		err = e.Status.Advance(ctx, id, state)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// waitAcked waits until the fetch consumer has acked (or terminated)
// every message up to stream sequence seq and holds none unacked.
func waitAcked(t *testing.T, e *stagetest.Env, seq uint64) {
	t.Helper()
	c, err := e.JS.Consumer(context.Background(), pipeline.Stream, pipeline.Fetch.Durable())
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, typedWait, 10*time.Millisecond, func() error {
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream < seq {
			return fmt.Errorf("consumer: pending %d, ack pending %d, ack floor %d; want 0, 0, %d",
				info.NumPending, info.NumAckPending, info.AckFloor.Stream, seq)
		}
		return nil
	})
}

// noTermination fails the test if a Terminated advisory is waiting.
func noTermination(t *testing.T, terms <-chan stagetest.Terminated) {
	t.Helper()
	select {
	case a := <-terms:
		t.Errorf("message %d terminated (%q), want it acked", a.StreamSeq, a.Reason)
	default:
	}
}

func TestTypedBadInputFailsTheTaskNamingIt(t *testing.T) {
	e := stagetest.New(t)
	terms := e.WatchTerminated(t, pipeline.Fetch)
	tr := startTyped(t, e, 2, 0, func(context.Context, *stage.Job[pipeline.FetchJob]) error { return nil })
	for _, tc := range []struct {
		name   string
		id     string
		body   string
		header bool // the task id header is set
		reason string
	}{
		{name: "not JSON", id: "bad-json", body: `{"task": {"id": `, header: true, reason: "unexpected end of JSON input"},
		{name: "wrong shape", id: "bad-shape", body: `{"task": "https://example.com/a.pdf"}`, header: true, reason: "cannot unmarshal string"},
		{name: "task id only in the subject", id: "doc 7/α", body: `garbage`, reason: "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setState(t, e, tc.id, status.Queued)
			m := nats.NewMsg(pipeline.Fetch.Subject(tc.id))
			m.Data = []byte(tc.body)
			if tc.header {
				m.Header.Set(pipeline.HeaderTaskID, tc.id)
			}
			if _, err := e.JS.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			st := e.WaitTerminal(t, tc.id)
			if st.State != status.Failed || st.Stage != string(pipeline.Fetch) {
				t.Errorf("status: got %s at stage %q, want failed at %q", st.State, st.Stage, pipeline.Fetch)
			}
			for _, want := range []string{tc.id, string(pipeline.Fetch), "unreadable message", tc.reason} {
				if !strings.Contains(st.Error, want) {
					t.Errorf("reason %q does not name %q", st.Error, want)
				}
			}
			if a := stagetest.WaitTerminated(t, terms); a.Deliveries != 1 {
				t.Errorf("terminated after %d deliveries, want 1 (bad input is not retried)", a.Deliveries)
			}
		})
	}
	if n := tr.calls.Load(); n != 0 {
		t.Errorf("work called %d times for messages that do not decode, want 0", n)
	}
}

func TestTypedSkipsEndedTasks(t *testing.T) {
	const msgs = 40
	for _, tc := range []struct {
		name      string
		state     status.State
		fresh     time.Duration
		workers   int
		wantCalls int64
		wantReads int64
	}{
		// An ended task stays ended within its run: one read, however
		// short Fresh, and however many messages are taken at once.
		{name: "failed", state: status.Failed, fresh: time.Nanosecond, workers: 8, wantCalls: 0, wantReads: 1},
		{name: "done", state: status.Done, fresh: time.Nanosecond, workers: 8, wantCalls: 0, wantReads: 1},
		{name: "failed, one at a time", state: status.Failed, fresh: time.Nanosecond, workers: 1, wantCalls: 0, wantReads: 1},
		// A running task's read is trusted for Fresh only.
		{name: "running, read trusted", state: status.Fetching, fresh: time.Hour, workers: 1, wantCalls: msgs, wantReads: 1},
		{name: "running, read each time", state: status.Fetching, fresh: time.Nanosecond, workers: 1, wantCalls: msgs, wantReads: msgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := stagetest.New(t)
			terms := e.WatchTerminated(t, pipeline.Fetch)
			id := "task-" + string(tc.state)
			setState(t, e, id, tc.state)
			before, err := e.Status.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			seq := publishJobs(t, e, id, 0, msgs)
			tr := startTyped(t, e, tc.workers, tc.fresh, func(context.Context, *stage.Job[pipeline.FetchJob]) error { return nil })
			waitAcked(t, e, seq)
			if n := tr.calls.Load(); n != tc.wantCalls {
				t.Errorf("work called %d times, want %d", n, tc.wantCalls)
			}
			if n := tr.reads.Load(); n != tc.wantReads {
				t.Errorf("%d status reads for %d messages, want %d", n, msgs, tc.wantReads)
			}
			noTermination(t, terms)
			after, err := e.Status.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if after.State != before.State || after.Error != before.Error || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("status changed from %+v to %+v, want it untouched", before, after)
			}
		})
	}
}

// TestTypedReplayOfAnEndedTask: a task skipped as ended is reopened for a
// replay; the replay's messages are worked on, the old run's still
// skipped while the status says so.
func TestTypedReplayOfAnEndedTask(t *testing.T) {
	e := stagetest.New(t)
	const id = "replayed"
	setState(t, e, id, status.Failed)
	var replays atomic.Int64
	tr := startTyped(t, e, 2, time.Hour, func(_ context.Context, j *stage.Job[pipeline.FetchJob]) error {
		if j.Replay == 1 {
			replays.Add(1)
		}
		return nil
	})
	seq := publishJobs(t, e, id, 0, 5)
	waitAcked(t, e, seq)
	if n := tr.calls.Load(); n != 0 {
		t.Fatalf("work called %d times for a failed task, want 0", n)
	}
	if _, err := e.Status.Reopen(context.Background(), id, status.Fetching); err != nil {
		t.Fatal(err)
	}
	seq = publishJobs(t, e, id, 1, 3)
	waitAcked(t, e, seq)
	if n := replays.Load(); n != 3 {
		t.Errorf("work called %d times for the replay's 3 messages, want 3", n)
	}
	if n := tr.reads.Load(); n != 2 {
		t.Errorf("%d status reads, want 2 (one per run)", n)
	}
}

// TestTypedTaskEndedByItsOwnWork: once a message's work ends its task
// (a permanent failure the runner records, or a status update that finds
// the task ended), the task's other messages are skipped without another
// status read, even when reads of a running task are not trusted.
func TestTypedTaskEndedByItsOwnWork(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantState  status.State
		terminated bool
	}{
		{name: "permanent failure", err: stage.Permanent(errors.New("not a PDF")), wantState: status.Failed, terminated: true},
		{name: "task ended meanwhile", err: fmt.Errorf("update: %w", status.ErrTerminal), wantState: status.Fetching},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := stagetest.New(t)
			terms := e.WatchTerminated(t, pipeline.Fetch)
			const id, msgs = "ends", 20
			setState(t, e, id, status.Fetching)
			seq := publishJobs(t, e, id, 0, msgs)
			tr := startTyped(t, e, 1, time.Nanosecond, func(context.Context, *stage.Job[pipeline.FetchJob]) error { return tc.err })
			if tc.terminated {
				stagetest.WaitTerminated(t, terms)
			}
			waitAcked(t, e, seq)
			if n := tr.calls.Load(); n != 1 {
				t.Errorf("work called %d times, want 1", n)
			}
			if n := tr.reads.Load(); n != 1 {
				t.Errorf("%d status reads for %d messages, want 1", n, msgs)
			}
			if !tc.terminated {
				noTermination(t, terms)
			}
			st, err := e.Status.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.wantState {
				t.Errorf("status %s, want %s", st.State, tc.wantState)
			}
		})
	}
}

func TestTypedLogLinesCarryTheTask(t *testing.T) {
	e := stagetest.New(t)
	ended := "ended-task"
	setState(t, e, ended, status.Failed)
	tr := startTyped(t, e, 2, 0, func(_ context.Context, j *stage.Job[pipeline.FetchJob]) error {
		j.Log.Info("working")
		if strings.HasPrefix(j.TaskID, "fails") {
			return stage.Permanent(errors.New("no"))
		}
		return nil
	})
	for _, tc := range []struct {
		name, id, msg string
	}{
		{name: "the work's own lines", id: "works", msg: "working"},
		{name: "the runner's failure line", id: "fails-1", msg: "task failed"},
		{name: "a skipped message", id: ended, msg: "task has ended; message skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := publishJobs(t, e, tc.id, 0, 1)
			waitAcked(t, e, seq)
			var lines []map[string]any
			testenv.CheckFor(t, typedWait, 10*time.Millisecond, func() error {
				if lines = tr.lines(t, tc.msg); len(lines) == 0 {
					return fmt.Errorf("no %q line logged", tc.msg)
				}
				return nil
			})
			for _, l := range lines {
				if l["task_id"] != tc.id || l["stage"] != string(pipeline.Fetch) || l["delivered"] != 1.0 ||
					l["subject"] != pipeline.Fetch.Subject(tc.id) {
					t.Errorf("line %v: want task_id %q, stage %q, delivered 1 and the subject", l, tc.id, pipeline.Fetch)
				}
			}
		})
	}
}

// TestTypedPublisherDedupes: a job delivered twice publishes its next
// message twice under one id, which the stream stores once; a replay's
// job (another run) is stored again.
func TestTypedPublisherDedupes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		async bool
	}{
		{name: "Publish"},
		{name: "PublishAsync", async: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := stagetest.New(t)
			const id = "dedupe"
			setState(t, e, id, status.Fetching)
			var published atomic.Int64
			startTyped(t, e, 1, 0, func(ctx context.Context, j *stage.Job[pipeline.FetchJob]) error {
				subj := pipeline.Parse.Subject(j.TaskID)
				next := pipeline.ParseJob{Task: j.Body.Task, Replay: j.Replay}
				var err error
				if tc.async {
					err = j.Out.PublishAsync(ctx, subj, next, "parse")
				} else {
					err = j.Out.Publish(ctx, subj, next, "parse")
				}
				if err != nil {
					return err
				}
				published.Add(1)
				if j.Delivered == 1 {
					return errors.New("lost the ack") // redelivered: publishes again
				}
				return nil
			})
			seq := publishJobs(t, e, id, 0, 1)
			waitAcked(t, e, seq)
			if n := published.Load(); n != 2 {
				t.Fatalf("published %d times, want 2 (the job was redelivered once)", n)
			}
			if n := storedOn(t, e, pipeline.Parse.Subject(id)); n != 1 {
				t.Errorf("%d messages stored for two publishes of one job, want 1", n)
			}
			m := e.NextMsg(t, pipeline.Parse.Subject(id))
			if got, want := m.Headers().Get(jetstream.MsgIDHeader), pipeline.MsgID(id, 0, "parse"); got != want {
				t.Errorf("message id %q, want %q", got, want)
			}
			if got := m.Headers().Get(pipeline.HeaderTaskID); got != id {
				t.Errorf("task id header %q, want %q", got, id)
			}

			seq = publishJobs(t, e, id, 7, 1) // a replay
			waitAcked(t, e, seq)
			if n := storedOn(t, e, pipeline.Parse.Subject(id)); n != 2 {
				t.Errorf("%d messages stored after a replay, want 2", n)
			}
		})
	}
}

// storedOn counts the messages the stage stream holds on subj.
func storedOn(t *testing.T, e *stagetest.Env, subj string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), typedWait)
	defer cancel()
	s, err := e.JS.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subj]
}

// TestTypedAcksOnlyStoredPublishes: a job whose work returns without
// waiting for its asynchronous publishes is acked only once they are
// stored; one that is never stored (no stream takes its subject) makes
// the job fail like any other error: retried, then the task failed.
func TestTypedAcksOnlyStoredPublishes(t *testing.T) {
	e := stagetest.New(t)
	terms := e.WatchTerminated(t, pipeline.Fetch)
	const id = "lost-publish"
	setState(t, e, id, status.Fetching)
	tr := startTyped(t, e, 1, 0, func(ctx context.Context, j *stage.Job[pipeline.FetchJob]) error {
		return j.Out.PublishAsync(ctx, "nowhere."+pipeline.Token(j.TaskID), j.Body, "lost")
	})
	publishJobs(t, e, id, 0, 1)
	st := e.WaitTerminal(t, id)
	if st.State != status.Failed || !strings.Contains(st.Error, "nowhere.") {
		t.Errorf("status: got %s (%q), want failed naming the subject no stream stored", st.State, st.Error)
	}
	if a := stagetest.WaitTerminated(t, terms); a.Deliveries != stagetest.MaxDeliver {
		t.Errorf("terminated after %d deliveries, want %d (retried as transient)", a.Deliveries, stagetest.MaxDeliver)
	}
	if n := tr.calls.Load(); n != stagetest.MaxDeliver {
		t.Errorf("work called %d times, want %d", n, stagetest.MaxDeliver)
	}
}

// TestForStageTakesPullWait: a stage built by ForStage polls for work as
// often as the pipeline's PullWait says (pdfpipe run sets 100 ms so its
// stages stop soon after the last file), and keeps the default otherwise.
func TestForStageTakesPullWait(t *testing.T) {
	e := stagetest.New(t)
	ctx := context.Background()
	h := stage.HandlerFunc(func(context.Context, jetstream.Msg) error { return nil })
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		e.Res.Config.PullWait = wait
		r, err := stage.ForStage(ctx, e.Res, pipeline.Fetch, h, nil, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Poll != wait {
			t.Errorf("PullWait %v: runner polls every %v", wait, r.Poll)
		}
	}
}
