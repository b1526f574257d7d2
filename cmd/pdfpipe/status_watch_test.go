package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
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
			want: []string{"  0% queued", " 25% parsing", " 50% embedding pages 12 chunks embedded 0",
				" 50% embedding pages 12 chunks embedded 0/40", " 80% ingesting pages 12 chunks embedded 0/40",
				"100% done pages 12 chunks 40 ingested 40"}},
		{name: "failed, flag after the id", args: func(id string) []string { return []string{id, "--watch"} },
			steps:   []status.Status{{State: status.Fetching}, {State: status.Failed, Stage: "fetch", Error: "404 from the origin"}},
			want:    []string{"no status record yet", " 10% fetching", " 10% failed at fetch: 404 from the origin"},
			wantErr: "failed at fetch"},
		{name: "cancelled", args: func(id string) []string { return []string{"--watch", id} }, pre: true,
			steps:   []status.Status{{State: status.Parsing}, {State: status.Cancelled, Stage: "parse", Error: "uploaded by mistake"}},
			want:    []string{" 25% parsing", " 25% cancelled during parse: uploaded by mistake"},
			wantErr: "cancelled during parse"},
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

// TestStatusWatchLive: while stages work, the line follows the pages the
// parser reports, the vectors stored and the chunks the ingester has
// sent, not only the state; the counting consumer goes away at the end.
func TestStatusWatchLive(t *testing.T) {
	nc, url, js, res := startPipelineWith(t, pipeline.Config{})
	ctx := context.Background()
	const id = "live"
	put := func(st status.Status) {
		st.TaskID, st.UpdatedAt = id, time.Now()
		putStatus(t, res.Status, st)
	}
	// hold takes the task's message of a stage, as a stage at work does.
	hold := func(st pipeline.Stage, unit string) *stage.Work {
		t.Helper()
		if _, err := pipeline.Publish(ctx, js, st.Subject(id), id, "", map[string]string{"task": id}); err != nil {
			t.Fatal(err)
		}
		c, err := js.Consumer(ctx, pipeline.Stream, st.Durable())
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		w, err := stage.Working(ctx, nc, st, m, nil, unit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		return w
	}
	vectors := 0
	embed := func(n int) {
		t.Helper()
		for range n {
			if _, err := pipeline.Publish(ctx, js, pipeline.VectorSubject(id, vectors), id, "", map[string]int{"i": vectors}); err != nil {
				t.Fatal(err)
			}
			vectors++
		}
	}
	put(status.Status{State: status.Parsing})
	parse := hold(pipeline.Parse, "pages")
	parse.SetProgress(10, 40)

	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"status", "--watch", "--every", "20ms", id}, env(map[string]string{"NATS_URL": url}), &out, &errOut)
	}()
	expect := func(line string) {
		t.Helper()
		testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if !strings.Contains(out.String(), line+"\n") {
				return fmt.Errorf("no line %q yet:\n%s%s", line, out.String(), errOut.String())
			}
			return nil
		})
	}
	expect("live  31% parsing pages 10/40")
	embed(3)
	expect("live  31% parsing pages 10/40 chunks embedded 3")
	parse.SetProgress(40, 40)
	expect("live  50% parsing pages 40/40 chunks embedded 3")
	parse.Stop()
	put(status.Status{State: status.Embedding, Pages: 40, Chunks: 6})
	expect("live  65% embedding pages 40 chunks embedded 3/6")
	embed(3)
	expect("live  80% embedding pages 40 chunks embedded 6/6")
	put(status.Status{State: status.Ingesting, Pages: 40, Chunks: 6})
	ingest := hold(pipeline.Ingest, "chunks")
	ingest.SetProgress(2, 6)
	expect("live  86% ingesting pages 40 chunks embedded 6/6 ingested 2/6")
	ingest.Stop()
	put(status.Status{State: status.Done, Pages: 40, Chunks: 6, Ingested: 6})
	expect("live 100% done pages 40 chunks 6 ingested 6")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("status --watch: %v\n%s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("status --watch has not returned after the task ended")
	}
	s, err := js.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("consumers on %s after the watch: %v (%v), want none", pipeline.VectorStream, info.State.Consumers, err)
	}
}
