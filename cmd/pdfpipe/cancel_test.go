package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// holdParse publishes task id's parse job and takes it as a parser at
// work does; with kv, the work stops when the task ends, as the parser's
// does at its next page.
func holdParse(t *testing.T, nc *nats.Conn, js jetstream.JetStream, id string, kv jetstream.KeyValue) *stage.Work {
	t.Helper()
	ctx := context.Background()
	if _, err := pipeline.Publish(ctx, js, pipeline.Parse.Subject(id), id, "", map[string]string{"task": id}); err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(ctx, pipeline.Stream, pipeline.Parse.Durable())
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w, err := stage.Working(ctx, nc, pipeline.Parse, m, kv, "pages")
	if err != nil {
		t.Fatal(err)
	}
	w.SetProgress(3, 10)
	t.Cleanup(w.Stop)
	if kv != nil {
		go func() {
			<-w.Context().Done()
			w.Stop()
		}()
	}
	return w
}

// TestCancel: what pdfpipe cancel does with a task in each state, and
// that it waits for the stages at work, or says it could not confirm.
func TestCancel(t *testing.T) {
	nc, url, js, res := startPipelineWith(t, pipeline.Config{})
	for _, st := range []status.Status{
		{TaskID: "done-1", State: status.Done, Ingested: 9},
		{TaskID: "failed-1", State: status.Failed, Stage: "parse", Error: "not a PDF"},
		{TaskID: "cancelled-1", State: status.Cancelled, Stage: "embed", Error: "earlier"},
		{TaskID: "sent-1", State: status.Ingesting, SentWhole: 1},
		{TaskID: "parsing-1", State: status.Parsing},
		{TaskID: "stuck-1", State: status.Parsing},
		{TaskID: "nowait-1", State: status.Embedding},
	} {
		st.UpdatedAt = time.Now()
		putStatus(t, res.Status, st)
	}
	holdParse(t, nc, js, "parsing-1", res.Status) // stops when cancelled
	holdParse(t, nc, js, "stuck-1", nil)          // never stops

	tests := []struct {
		args      []string
		wantErr   string // "" for exit 0
		wantOut   []string
		wantState status.State // "" for no record
		wantError string       // the record's reason
	}{
		{args: []string{"nobody"}, wantErr: "task nobody not found"},
		{args: []string{"done-1"}, wantErr: "task done-1 is done: the backend holds the whole document", wantState: status.Done},
		{args: []string{"failed-1"}, wantOut: []string{"task failed-1 has already ended: failed at parse: not a PDF; nothing to cancel"},
			wantState: status.Failed, wantError: "not a PDF"},
		{args: []string{"cancelled-1"}, wantOut: []string{"already ended: cancelled during embed: earlier; nothing to cancel"},
			wantState: status.Cancelled, wantError: "earlier"},
		{args: []string{"sent-1"}, wantErr: "cannot be cancelled any more: ingest attempt 1 sent the whole document", wantState: status.Ingesting},
		{args: []string{"parsing-1", "--reason", "uploaded by mistake"},
			wantOut:   []string{"task parsing-1 cancelled during parse (it was parsing)", "every stage has stopped working on task parsing-1"},
			wantState: status.Cancelled, wantError: "uploaded by mistake"},
		{args: []string{"--timeout", "300ms", "stuck-1"},
			wantErr:   "could not confirm within 300ms that its stages stopped: still at work: parse (3 of 10 pages)",
			wantState: status.Cancelled, wantError: "cancelled by an operator (pdfpipe cancel)"},
		{args: []string{"--no-wait", "nowait-1"}, wantOut: []string{"task nowait-1 cancelled during embed"}, wantState: status.Cancelled},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"cancel"}, tc.args...), env(map[string]string{"NATS_URL": url}), &out, &errOut)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("cancel %v: %v\n%s", tc.args, err, errOut.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("cancel %v: got error %v, want %q\n%s", tc.args, err, tc.wantErr, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("cancel %v: output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
			// The task id is the argument that is no flag nor a flag's value.
			i := slices.IndexFunc(tc.args, func(a string) bool { return strings.HasSuffix(a, "-1") || a == "nobody" })
			id := tc.args[i]
			st, gerr := status.New(res.Status).Get(context.Background(), id)
			if tc.wantState == "" {
				if gerr == nil {
					t.Errorf("a record appeared: %+v", st)
				}
				return
			}
			if gerr != nil || st.State != tc.wantState || tc.wantError != "" && st.Error != tc.wantError {
				t.Errorf("record of %s: got %s (%q, %v), want %s (%q)", id, st.State, st.Error, gerr, tc.wantState, tc.wantError)
			}
		})
	}
	// The stage that stopped is gone; the stuck one still answers.
	for id, want := range map[string]int{"parsing-1": 0, "stuck-1": 1} {
		got, err := stage.AskWork(context.Background(), nc, id, 5*time.Second)
		if err != nil || len(got) != want {
			t.Errorf("%s: %d at work (%v), want %d", id, len(got), err, want)
		}
	}
}
