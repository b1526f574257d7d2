package stage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// next takes the next message of the harness consumer.
func (h *harness) next() jetstream.Msg {
	h.t.Helper()
	m, err := h.cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		h.t.Fatalf("Next: %v", err)
	}
	return m
}

// TestWorkingAnswersUntilStopped: while a handler works on a message, the
// process answers for its task with the message, its delivery count and
// the progress; once it stops no one answers, and the asker learns so at
// once rather than after its wait.
func TestWorkingAnswersUntilStopped(t *testing.T) {
	h := newHarness(t, pipeline.Config{})
	h.publish("t1")
	h.publish("t1")
	h.publish("other")
	m1 := h.next()
	if err := m1.Nak(); err != nil {
		t.Fatal(err)
	}
	// The first message again (its second delivery), the second one and
	// the other task's, in whatever order the server redelivers.
	var m2, mo jetstream.Msg
	m1 = nil
	for range 3 {
		m := h.next()
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case stage.TaskID(m) == "other":
			mo = m
		case md.NumDelivered == 2:
			m1 = m
		default:
			m2 = m
		}
	}
	if m1 == nil || m2 == nil || mo == nil || stage.TaskID(m2) != "t1" {
		t.Fatalf("messages: want t1 redelivered, t1 and other; got %v, %v, %v", m1, m2, mo)
	}
	w1, err := stage.Working(h.ctx, h.nc, pipeline.Fetch, m1, nil, "pages")
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Stop()
	w1.SetProgress(3, 10)
	w2, err := stage.Working(h.ctx, h.nc, pipeline.Fetch, m2, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	wo, err := stage.Working(h.ctx, h.nc, pipeline.Fetch, mo, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Stop()

	got, err := stage.AskWork(h.ctx, h.nc, "t1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("AskWork: got %d answers %+v, want 2", len(got), got)
	}
	md1, _ := m1.Metadata()
	for _, in := range got {
		if in.Stage != "fetch" || in.Subject != pipeline.Fetch.Subject("t1") {
			t.Errorf("answer %+v: want stage fetch, subject %s", in, pipeline.Fetch.Subject("t1"))
		}
		if in.StreamSeq == md1.Sequence.Stream {
			if in.Delivered != 2 || in.Done != 3 || in.Total != 10 || in.Unit != "pages" {
				t.Errorf("answer for the redelivered message: got %+v, want delivery 2, 3 of 10 pages", in)
			}
		} else if in.Delivered != 1 || in.Unit != "" {
			t.Errorf("answer for the other message: got %+v, want delivery 1, no progress", in)
		}
	}

	w2.Stop()
	w2.Stop() // twice is harmless
	w1.Stop()
	start := time.Now()
	got, err = stage.AskWork(h.ctx, h.nc, "t1", 10*time.Second)
	if err != nil || len(got) != 0 {
		t.Fatalf("AskWork after Stop: got %+v, %v; want no answer", got, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("AskWork with no one at work took %s: it waited instead of hearing there are no responders", took)
	}
	if got, _ := stage.AskWork(h.ctx, h.nc, "other", 10*time.Second); len(got) != 1 {
		t.Errorf("the other task's worker: got %d answers, want 1", len(got))
	}
}

// TestWorkingEndsWithTheTask: with the status bucket, the work's context
// ends as soon as the task is cancelled or fails elsewhere (at once when
// it already has), with a cause TaskEnded recognises; Stop ends it too,
// but not as an ended task.
func TestWorkingEndsWithTheTask(t *testing.T) {
	tests := []struct {
		name  string
		early bool // the task ends before the work starts
		end   func(ctx context.Context, s *status.Store, id string) error
	}{
		{name: "cancelled", end: func(ctx context.Context, s *status.Store, id string) error {
			_, _, err := s.Cancel(ctx, id, "test")
			return err
		}},
		{name: "failed elsewhere", end: func(ctx context.Context, s *status.Store, id string) error {
			return s.Fail(ctx, id, "embed", errors.New("bad key"))
		}},
		{name: "already cancelled", early: true, end: func(ctx context.Context, s *status.Store, id string) error {
			_, _, err := s.Cancel(ctx, id, "test")
			return err
		}},
		{name: "stopped", end: nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, pipeline.Config{})
			store := status.New(h.res.Status)
			id := fmt.Sprintf("task-%d", i)
			if _, err := store.Create(h.ctx, status.Status{TaskID: id, State: status.Parsing}); err != nil {
				t.Fatal(err)
			}
			if tc.early {
				if err := tc.end(h.ctx, store, id); err != nil {
					t.Fatal(err)
				}
			}
			h.publish(id)
			w, err := stage.Working(h.ctx, h.nc, pipeline.Fetch, h.next(), h.res.Status, "")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			if !tc.early {
				// A status change that does not end the task is no reason to stop.
				if _, err := store.Update(h.ctx, id, func(st *status.Status) { st.Pages = 7 }); err != nil {
					t.Fatal(err)
				}
				if err := w.Context().Err(); err != nil {
					t.Fatalf("work ended before the task did: %v", err)
				}
				if tc.end == nil {
					w.Stop()
				} else if err := tc.end(h.ctx, store, id); err != nil {
					t.Fatal(err)
				}
			}
			testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
				if w.Context().Err() == nil {
					return errors.New("the work's context has not ended")
				}
				return nil
			})
			if got := stage.TaskEnded(w.Context()); got != (tc.end != nil) {
				t.Errorf("TaskEnded: got %v, want %v (cause %v)", got, tc.end != nil, context.Cause(w.Context()))
			}
		})
	}
}
