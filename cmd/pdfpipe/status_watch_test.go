package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestStatusWatch: a progress line on each change of the record, in
// order, until the task ends; non-zero exit when it failed.
func TestStatusWatch(t *testing.T) {
	url, _, res := startPipeline(t)
	tests := []struct {
		name    string
		args    func(id string) []string
		pre     bool // the record exists before the watch starts
		steps   []status.Status
		want    []string // lines, in order
		wantErr string
	}{
		{name: "done", args: func(id string) []string { return []string{"--watch", id} }, pre: true,
			steps: []status.Status{
				{State: status.Queued}, {State: status.Parsing}, {State: status.Embedding, Pages: 12},
				{State: status.Embedding, Pages: 12, Chunks: 40}, {State: status.Ingesting, Pages: 12, Chunks: 40},
				{State: status.Done, Pages: 12, Chunks: 40, Ingested: 40},
			},
			want: []string{"0% queued pages 0 chunks 0", "25% parsing", "50% embedding pages 12 chunks 0",
				"50% embedding pages 12 chunks 40", "80% ingesting", "100% done pages 12 chunks 40 ingested 40"}},
		{name: "failed, flag after the id", args: func(id string) []string { return []string{id, "--watch"} },
			steps:   []status.Status{{State: status.Fetching}, {State: status.Failed, Stage: "fetch", Error: "404 from the origin"}},
			want:    []string{"no status record yet", "10% fetching", "10% failed pages 0 chunks 0 at fetch: 404 from the origin"},
			wantErr: "failed at fetch"},
		{name: "already done", args: func(id string) []string { return []string{"--watch", id} }, pre: true,
			steps: []status.Status{{State: status.Done, Pages: 1, Chunks: 1}},
			want:  []string{"100% done"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("w%d", i)
			put := func(st status.Status) {
				st.TaskID, st.UpdatedAt = id, time.Now()
				putStatus(t, res.Status, st)
			}
			steps := tc.steps
			if tc.pre {
				put(steps[0])
				steps = steps[1:]
			}
			var out, errOut syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(context.Background(), append([]string{"status"}, tc.args(id)...), env(map[string]string{"NATS_URL": url}), &out, &errOut)
			}()
			lines := 0
			for _, st := range steps {
				// Each change is sent once the watch has shown the last.
				testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
					if n := strings.Count(out.String(), "\n"); n <= lines {
						return fmt.Errorf("%d lines so far:\n%s%s", n, out.String(), errOut.String())
					}
					return nil
				})
				lines = strings.Count(out.String(), "\n")
				put(st)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("status --watch has not returned after the task ended:\n%s", out.String())
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got error %v, want %q", err, tc.wantErr)
			}
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tc.want), out.String())
			}
			for j, w := range tc.want {
				if !strings.Contains(got[j], w) {
					t.Errorf("line %d: got %q, want it to contain %q", j, got[j], w)
				}
			}
		})
	}
}

// TestStatusHelp: `status -h` exits 0 and connects to nothing.
func TestStatusHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"status", "-h"}, env(map[string]string{"NATS_URL": "nats://127.0.0.1:1"}), &out, &errOut); err != nil {
		t.Fatalf("status -h: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "-watch") {
		t.Errorf("status -h does not name -watch:\n%s", errOut.String())
	}
}
