package status_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// TestCancel: a running task ends cancelled with the stage at work; an
// ended, unknown or wholly sent task is left as it is, each with its own
// error; a replay of a done task ends done again.
func TestCancel(t *testing.T) {
	tests := []struct {
		name      string
		rec       *status.Status // nil: no record
		wantErr   error
		wantState status.State
		wantStage string
	}{
		{name: "queued", rec: &status.Status{State: status.Queued}, wantState: status.Cancelled, wantStage: "fetch"},
		{name: "parsing", rec: &status.Status{State: status.Parsing, Pages: 2000}, wantState: status.Cancelled, wantStage: "parse"},
		{name: "embedding", rec: &status.Status{State: status.Embedding}, wantState: status.Cancelled, wantStage: "embed"},
		{name: "ingesting, part sent", rec: &status.Status{State: status.Ingesting, SentMax: 256}, wantState: status.Cancelled, wantStage: "ingest"},
		{name: "ingesting, all sent", rec: &status.Status{State: status.Ingesting, SentWhole: 1}, wantErr: status.ErrSentWhole, wantState: status.Ingesting},
		{name: "done", rec: &status.Status{State: status.Done}, wantErr: status.ErrDone, wantState: status.Done},
		{name: "failed", rec: &status.Status{State: status.Failed, Stage: "parse", Error: "bad"}, wantErr: status.ErrTerminal, wantState: status.Failed, wantStage: "parse"},
		{name: "cancelled", rec: &status.Status{State: status.Cancelled, Stage: "embed", Error: "earlier"}, wantErr: status.ErrTerminal, wantState: status.Cancelled, wantStage: "embed"},
		{name: "unknown", wantErr: status.ErrNotFound},
		{name: "replay of a done task", rec: &status.Status{State: status.Ingesting, DoneBefore: true, SentWhole: 2}, wantState: status.Done},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t)
			c := ctx(t)
			if tc.rec != nil {
				rec := *tc.rec
				rec.TaskID = "t"
				if _, err := s.Create(c, rec); err != nil {
					t.Fatal(err)
				}
			}
			before, after, err := s.Cancel(c, "t", "no longer wanted")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Cancel: got error %v, want %v", err, tc.wantErr)
			}
			got, gerr := s.Get(c, "t")
			if tc.rec == nil {
				if !errors.Is(gerr, status.ErrNotFound) {
					t.Errorf("cancelling an unknown task left a record: %+v (%v)", got, gerr)
				}
				return
			}
			if gerr != nil {
				t.Fatal(gerr)
			}
			if got.State != tc.wantState || got.Stage != tc.wantStage || after.State != tc.wantState {
				t.Errorf("record: got %s at %q (returned %s), want %s at %q", got.State, got.Stage, after.State, tc.wantState, tc.wantStage)
			}
			if before.State != tc.rec.State {
				t.Errorf("before: got %s, want %s", before.State, tc.rec.State)
			}
			switch {
			case got.State == status.Cancelled && tc.wantErr == nil && got.Error != "no longer wanted":
				t.Errorf("reason: got %q, want the one given", got.Error)
			case got.State == status.Done && tc.rec.DoneBefore && !strings.Contains(got.Note, "replay cancelled at ingest"):
				t.Errorf("note of a cancelled replay: got %q", got.Note)
			}
		})
	}
}

// TestCancelAndLateStagesOneWins: a stage that finishes while the task is
// cancelled either ends it before the cancel (which then reports the end)
// or finds it cancelled and changes nothing.
func TestCancelAndLateStagesOneWins(t *testing.T) {
	for round := range 6 {
		e := newEnv(t)
		c := ctx(t)
		if _, err := status.New(e.kv).Create(c, status.Status{TaskID: "t", State: status.Ingesting}); err != nil {
			t.Fatal(err)
		}
		s1, s2 := e.store(t), e.store(t)
		var wg sync.WaitGroup
		var cancelErr, stageErr error
		wg.Go(func() { _, _, cancelErr = s1.Cancel(c, "t", "operator") })
		wg.Go(func() {
			if round%2 == 0 {
				stageErr = s2.Advance(c, "t", status.Done)
			} else {
				stageErr = s2.Fail(c, "t", "ingest", errors.New("late"))
			}
		})
		wg.Wait()
		got, err := s1.Get(c, "t")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case cancelErr == nil && got.State != status.Cancelled:
			t.Errorf("round %d: Cancel succeeded, but the record is %s", round, got.State)
		case cancelErr == nil && round%2 == 0 && !errors.Is(stageErr, status.ErrTerminal):
			t.Errorf("round %d: done after the cancel: got %v, want ErrTerminal", round, stageErr)
		case cancelErr != nil && got.State == status.Cancelled:
			t.Errorf("round %d: Cancel failed (%v) but the record is cancelled", round, cancelErr)
		case cancelErr != nil && !errors.Is(cancelErr, status.ErrDone) && !errors.Is(cancelErr, status.ErrTerminal):
			t.Errorf("round %d: Cancel: %v", round, cancelErr)
		}
		// Whoever lost, nothing more moves it.
		end := got.State
		if err := s2.Advance(c, "t", status.Done); !errors.Is(err, status.ErrTerminal) {
			t.Errorf("round %d: a stage finishing after the end: got %v, want ErrTerminal", round, err)
		}
		if err := s2.Fail(c, "t", "embed", errors.New("later still")); err != nil {
			t.Errorf("round %d: Fail after the end: %v", round, err)
		}
		if again, _ := s1.Get(c, "t"); again.State != end {
			t.Errorf("round %d: state moved from %s to %s after the end", round, end, again.State)
		}
	}
}
