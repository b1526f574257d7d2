package status_test

import (
	"errors"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

func TestRetry(t *testing.T) {
	tests := []struct {
		name   string
		state  status.State
		wantOK bool
	}{
		{"failed task starts a new run", status.Failed, true},
		{"cancelled task starts a new run", status.Cancelled, true},
		{"done task is not touched", status.Done, false},
		{"running task is not touched", status.Embedding, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t)
			c := ctx(t)
			if _, err := s.Create(c, status.Status{TaskID: "t1", State: status.Fetching, Run: 1, Entry: "old"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Update(c, "t1", func(st *status.Status) { st.SentWhole, st.Attempts = 2, 2 }); err != nil {
				t.Fatal(err)
			}
			switch tc.state {
			case status.Cancelled:
				if _, _, err := s.Cancel(c, "t1", "by test"); err != nil {
					t.Fatal(err)
				}
			case status.Failed:
				if err := s.Fail(c, "t1", "ingest", errors.New("boom")); err != nil {
					t.Fatal(err)
				}
			default:
				if err := s.Advance(c, "t1", tc.state); err != nil {
					t.Fatal(err)
				}
			}
			st, ok, err := s.Retry(c, "t1", func(st *status.Status) { st.Entry = "new" })
			if err != nil {
				t.Fatalf("Retry: %v", err)
			}
			if ok != tc.wantOK {
				t.Fatalf("Retry ok: got %v, want %v", ok, tc.wantOK)
			}
			got, err := s.Get(c, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantOK {
				if got.State != tc.state || got.Entry != "old" || st.State != tc.state {
					t.Errorf("record: got state %q entry %q (returned %q), want %q and \"old\" unchanged", got.State, got.Entry, st.State, tc.state)
				}
				return
			}
			if got.State != status.Queued || got.Stage != "" || got.Error != "" || got.Run != 2 || got.Entry != "new" {
				t.Errorf("record after Retry: got %+v, want queued, no failure, run 2, entry new", got)
			}
			if got.Attempts != 2 || got.SentWhole != 2 {
				t.Errorf("ingest bookkeeping: got attempts %d, sent whole %d; want 2 and 2 kept", got.Attempts, got.SentWhole)
			}
			if _, ok, _ := s.Retry(c, "t1", func(*status.Status) {}); ok {
				t.Errorf("second Retry of a task no longer failed: got ok, want not retried")
			}
		})
	}
}
