package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

type env struct {
	srv *natsembed.Server
	kv  jetstream.KeyValue
}

// newEnv starts a server and creates the pipeline's status bucket.
func newEnv(t *testing.T) env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Stop)
	r, err := pipeline.Setup(ctx(t), js(t, srv), pipeline.Config{})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return env{srv: srv, kv: r.Status}
}

// store opens a Store over its own connection, like a second replica.
func (e env) store(t *testing.T) *status.Store {
	t.Helper()
	kv, err := js(t, e.srv).KeyValue(ctx(t), pipeline.StatusBucket)
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	return status.New(kv)
}

func js(t *testing.T, srv *natsembed.Server) jetstream.JetStream {
	t.Helper()
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return j
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	for _, id := range []string{"t1", "a.b c", "=x", ""} {
		t.Run(id, func(t *testing.T) {
			before := time.Now().UTC()
			created, err := s.Create(c, status.Status{TaskID: id, DocID: "d1", FileName: "a.pdf", Task: json.RawMessage(`{"task_id":"x"}`)})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if !created {
				t.Fatal("Create of a new task: got false, want true")
			}
			got, err := s.Get(c, id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.TaskID != id || got.DocID != "d1" || got.FileName != "a.pdf" {
				t.Errorf("record: got %+v, want task %q doc d1 file a.pdf", got, id)
			}
			if got, want := got.State, status.Queued; got != want {
				t.Errorf("state: got %q, want %q", got, want)
			}
			if got.CreatedAt.Before(before.Add(-time.Second)) || !got.UpdatedAt.Equal(got.CreatedAt) {
				t.Errorf("times: got created %v updated %v, want both now", got.CreatedAt, got.UpdatedAt)
			}
			if got, want := string(got.Task), `{"task_id":"x"}`; got != want {
				t.Errorf("task: got %s, want %s", got, want)
			}

			// Second Create: false, nothing changed.
			e1, err := e.kv.Get(c, pipeline.Token(id))
			if err != nil {
				t.Fatalf("raw Get: %v", err)
			}
			created, err = s.Create(c, status.Status{TaskID: id, DocID: "other", State: status.Parsing})
			if err != nil {
				t.Fatalf("second Create: %v", err)
			}
			if created {
				t.Error("second Create: got true, want false")
			}
			e2, err := e.kv.Get(c, pipeline.Token(id))
			if err != nil {
				t.Fatalf("raw Get: %v", err)
			}
			if e2.Revision() != e1.Revision() || string(e2.Value()) != string(e1.Value()) {
				t.Errorf("record after second Create: got rev %d %s, want rev %d %s", e2.Revision(), e2.Value(), e1.Revision(), e1.Value())
			}
		})
	}
}

func TestCreateConcurrentOnlyOneWins(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	const n = 10
	var wg sync.WaitGroup
	wins := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		s := e.store(t)
		wg.Go(func() {
			wins[i], errs[i] = s.Create(c, status.Status{TaskID: "race", Pages: i + 1})
		})
	}
	wg.Wait()
	winner := -1
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Create %d: %v", i, errs[i])
		}
		if wins[i] {
			if winner >= 0 {
				t.Errorf("Create %d and %d both returned true", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no Create returned true")
	}
	got, err := status.New(e.kv).Get(c, "race")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Pages != winner+1 {
		t.Errorf("record: got pages %d, want %d (the winner's)", got.Pages, winner+1)
	}
}

func TestCreateKeepsGivenState(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	if _, err := s.Create(ctx(t), status.Status{TaskID: "t", State: status.Fetching}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := s.Get(ctx(t), "t")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != status.Fetching {
		t.Errorf("state: got %q, want %q", got.State, status.Fetching)
	}
}

func TestGetUnknown(t *testing.T) {
	e := newEnv(t)
	_, err := status.New(e.kv).Get(ctx(t), "nobody")
	if !errors.Is(err, status.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestGetBadRecord(t *testing.T) {
	e := newEnv(t)
	if _, err := e.kv.Put(ctx(t), "bad", []byte("{")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	_, err := status.New(e.kv).Get(ctx(t), "bad")
	if err == nil || errors.Is(err, status.ErrNotFound) {
		t.Errorf("got %v, want a decode error", err)
	}
}

func TestUpdateUnderContention(t *testing.T) {
	tests := []struct {
		name   string
		create bool
	}{
		{"existing task", true},
		{"unknown task", false}, // the first writers race on creating it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := ctx(t)
			if tt.create {
				if _, err := status.New(e.kv).Create(c, status.Status{TaskID: "t.1"}); err != nil {
					t.Fatalf("Create: %v", err)
				}
			}
			stores := []*status.Store{e.store(t), e.store(t), e.store(t)}
			const n = 20
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				s := stores[i%len(stores)]
				wg.Go(func() {
					if _, err := s.Update(c, "t.1", func(st *status.Status) { st.Ingested++ }); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Update: %v", err)
			}
			got, err := stores[0].Get(c, "t.1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.Ingested != n {
				t.Errorf("counter: got %d, want %d", got.Ingested, n)
			}
			if got.TaskID != "t.1" || got.State != status.Queued {
				t.Errorf("record: got task %q state %q, want t.1 queued", got.TaskID, got.State)
			}
		})
	}
}

func TestUpdateCreatesUnknown(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	got, err := s.Update(c, "replayed", func(st *status.Status) { st.State = status.Parsing; st.Pages = 3 })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.TaskID != "replayed" || got.State != status.Parsing || got.Pages != 3 || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("returned: got %+v, want task replayed, parsing, 3 pages, times set", got)
	}
	stored, err := s.Get(c, "replayed")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if stored.State != status.Parsing || stored.Pages != 3 {
		t.Errorf("stored: got %+v, want parsing with 3 pages", stored)
	}
}

func TestUpdateAdvancesUpdatedAt(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	if _, err := s.Create(c, status.Status{TaskID: "t"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	first, _ := s.Get(c, "t")
	got, err := s.Update(c, "t", func(st *status.Status) { st.Chunks = 9 })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("CreatedAt: got %v, want unchanged %v", got.CreatedAt, first.CreatedAt)
	}
	if got.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("UpdatedAt: got %v, want not before %v", got.UpdatedAt, first.UpdatedAt)
	}
}

func TestTerminalStatesNeverChange(t *testing.T) {
	tests := []struct {
		name  string
		end   func(context.Context, *status.Store) error
		state status.State
	}{
		{"done", func(c context.Context, s *status.Store) error { return s.Advance(c, "t", status.Done) }, status.Done},
		{"failed", func(c context.Context, s *status.Store) error {
			return s.Fail(c, "t", "parse", errors.New("bad pdf"))
		}, status.Failed},
		{"cancelled", func(c context.Context, s *status.Store) error {
			_, _, err := s.Cancel(c, "t", "by test")
			return err
		}, status.Cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := status.New(e.kv)
			c := ctx(t)
			if _, err := s.Create(c, status.Status{TaskID: "t"}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if err := tt.end(c, s); err != nil {
				t.Fatalf("ending the task: %v", err)
			}
			before, err := e.kv.Get(c, "t")
			if err != nil {
				t.Fatalf("raw Get: %v", err)
			}

			called := false
			got, err := s.Update(c, "t", func(st *status.Status) { called = true; st.State = status.Parsing })
			if !errors.Is(err, status.ErrTerminal) {
				t.Errorf("Update: got %v, want ErrTerminal", err)
			}
			if called {
				t.Error("Update called fn on an ended task")
			}
			if got.State != tt.state {
				t.Errorf("Update returned state %q, want %q", got.State, tt.state)
			}
			if err := s.Advance(c, "t", status.Ingesting); !errors.Is(err, status.ErrTerminal) {
				t.Errorf("Advance: got %v, want ErrTerminal", err)
			}
			if err := s.Advance(c, "t", status.Done); !errors.Is(err, status.ErrTerminal) {
				t.Errorf("Advance to done: got %v, want ErrTerminal", err)
			}
			if err := s.Fail(c, "t", "ingest", errors.New("late failure")); err != nil {
				t.Errorf("Fail after the end: got %v, want nil", err)
			}

			after, err := e.kv.Get(c, "t")
			if err != nil {
				t.Fatalf("raw Get: %v", err)
			}
			if after.Revision() != before.Revision() || string(after.Value()) != string(before.Value()) {
				t.Errorf("record changed: got rev %d %s, want rev %d %s", after.Revision(), after.Value(), before.Revision(), before.Value())
			}
			st, err := s.Get(c, "t")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if st.State != tt.state {
				t.Errorf("state: got %q, want %q", st.State, tt.state)
			}
		})
	}
}

func TestFailRecordsStageAndReason(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	if _, err := s.Create(c, status.Status{TaskID: "t", Pages: 4}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Advance(c, "t", status.Parsing); err != nil {
		t.Fatalf("Advance: %v", err)
	}
	if err := s.Fail(c, "t", "parse", errors.New("page 3: broken xref")); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	got, err := s.Get(c, "t")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := struct {
		State        status.State
		Stage, Error string
		Pages        int
	}{status.Failed, "parse", "page 3: broken xref", 4}
	if got.State != want.State || got.Stage != want.Stage || got.Error != want.Error || got.Pages != want.Pages {
		t.Errorf("got state %q stage %q error %q pages %d, want %+v", got.State, got.Stage, got.Error, got.Pages, want)
	}
}

func TestFailUnknownTaskCreatesFailedRecord(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	if err := s.Fail(c, "ghost", "fetch", errors.New("404")); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	got, err := s.Get(c, "ghost")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != status.Failed || got.Stage != "fetch" {
		t.Errorf("got state %q stage %q, want failed at fetch", got.State, got.Stage)
	}
}

func TestDoneAndFailRaceOneWins(t *testing.T) {
	for round := range 5 {
		e := newEnv(t)
		c := ctx(t)
		if _, err := status.New(e.kv).Create(c, status.Status{TaskID: "t"}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		s1, s2 := e.store(t), e.store(t)
		var wg sync.WaitGroup
		var doneErr, failErr error
		wg.Go(func() { doneErr = s1.Advance(c, "t", status.Done) })
		wg.Go(func() { failErr = s2.Fail(c, "t", "ingest", errors.New("boom")) })
		wg.Wait()
		if failErr != nil {
			t.Errorf("round %d: Fail: got %v, want nil", round, failErr)
		}
		got, err := s1.Get(c, "t")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		switch {
		case doneErr == nil && got.State != status.Done:
			t.Errorf("round %d: Advance(done) succeeded, but state is %q", round, got.State)
		case errors.Is(doneErr, status.ErrTerminal) && (got.State != status.Failed || got.Error != "boom"):
			t.Errorf("round %d: Advance(done) lost, but record is %+v", round, got)
		case doneErr != nil && !errors.Is(doneErr, status.ErrTerminal):
			t.Errorf("round %d: Advance: %v", round, doneErr)
		}
		if got.State == status.Done && got.Error != "" {
			t.Errorf("round %d: done record carries an error %q", round, got.Error)
		}
	}
}

func TestUpdateCancelledContext(t *testing.T) {
	e := newEnv(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := status.New(e.kv).Update(c, "t", func(*status.Status) {}); err == nil {
		t.Error("Update with a cancelled context: got nil error, want one")
	}
}

func TestStateTerminal(t *testing.T) {
	for _, tt := range []struct {
		s    status.State
		want bool
	}{
		{status.Queued, false}, {status.Fetching, false}, {status.Parsing, false},
		{status.Embedding, false}, {status.Ingesting, false}, {status.Done, true}, {status.Failed, true},
		{status.Cancelled, true},
	} {
		if got := tt.s.Terminal(); got != tt.want {
			t.Errorf("%s.Terminal(): got %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	want := status.Status{TaskID: "t", State: status.Embedding, Chunks: 12, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := status.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.TaskID != want.TaskID || got.State != want.State || got.Chunks != want.Chunks || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := status.Decode([]byte("nope")); err == nil {
		t.Error("Decode of bad JSON: got nil error, want one")
	}
}

// TestReplayOfADoneTaskNeverFails: a done task reopened for a replay keeps
// its ingest bound and is marked DoneBefore; a failure during the replay
// ends it done again, the failure in its note.
func TestReplayOfADoneTaskNeverFails(t *testing.T) {
	e := newEnv(t)
	s := status.New(e.kv)
	c := ctx(t)
	if _, err := s.Update(c, "t", func(st *status.Status) { st.State, st.SentMax, st.Ingested = status.Done, 7, 7 }); err != nil {
		t.Fatal(err)
	}
	st, err := s.Reopen(c, "t", status.Embedding)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Embedding || !st.DoneBefore || st.SentMax != 7 {
		t.Fatalf("reopened: got %s done_before %v sent_max %d, want embedding, true, 7", st.State, st.DoneBefore, st.SentMax)
	}
	if err := s.Fail(c, "t", "ingest", errors.New("backend said no")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(c, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != status.Done || got.Error != "" || !strings.Contains(got.Note, "replay failed at ingest: backend said no") {
		t.Errorf("after a failed replay: got %s (error %q, note %q), want done with the failure in the note", got.State, got.Error, got.Note)
	}

	// A task that failed is reopened without DoneBefore and can fail again.
	if _, err := s.Update(c, "f", func(st *status.Status) { st.State, st.Stage, st.Error = status.Failed, "fetch", "404" }); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Reopen(c, "f", status.Queued); err != nil || st.DoneBefore {
		t.Fatalf("reopen failed task: %+v, %v", st, err)
	}
	if err := s.Fail(c, "f", "fetch", errors.New("404 again")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(c, "f"); got.State != status.Failed || got.Error != "404 again" {
		t.Errorf("failed task replayed: got %s (%q), want failed with 404 again", got.State, got.Error)
	}
}
