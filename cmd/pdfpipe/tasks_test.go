package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// startPipeline is a listening JetStream server with the pipeline's
// streams and buckets, and no service running.
func startPipeline(t *testing.T) (string, jetstream.JetStream, *pipeline.Resources) {
	t.Helper()
	_, url, js, res := startPipelineWith(t, pipeline.Config{})
	return url, js, res
}

// startPipelineWith is startPipeline with the pipeline's settings, and
// the connection it made.
func startPipelineWith(t *testing.T, cfg pipeline.Config) (*nats.Conn, string, jetstream.JetStream, *pipeline.Resources) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Setup(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return nc, srv.ClientURL(), js, res
}

// putStatus stores a status record as the stages would.
func putStatus(t *testing.T, kv jetstream.KeyValue, st status.Status) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), pipeline.Token(st.TaskID), b); err != nil {
		t.Fatal(err)
	}
}

// TestTasks: the listing filters by state, is newest first, bounded by
// --limit, and shows the failed stage and reason.
func TestTasks(t *testing.T) {
	url, _, res := startPipeline(t)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for i, st := range []status.Status{
		{TaskID: "old-done", State: status.Done, Pages: 3, Chunks: 9},
		{TaskID: "bad one", State: status.Failed, Stage: "parse", Error: "not a PDF: starts with <html>"},
		{TaskID: "busy", State: status.Embedding, Pages: 12, Chunks: 40},
		{TaskID: "new-done", State: status.Done, Pages: 1, Chunks: 2},
		{TaskID: "queued", State: status.Queued},
		{TaskID: "stopped", State: status.Cancelled, Stage: "parse", Error: "uploaded by mistake"},
	} {
		st.UpdatedAt = t0.Add(time.Duration(i) * time.Minute)
		putStatus(t, res.Status, st)
	}
	if _, err := res.Status.Put(context.Background(), "garbage", []byte("{")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		want    []string // task ids, in order
		in      []string // also in stdout
		errWant string   // in stderr
	}{
		{args: nil, want: []string{"stopped", "queued", "new-done", "busy", "bad one", "old-done"}, errWant: "1 status records could not be read"},
		{args: []string{"--failed"}, want: []string{"bad one"}, in: []string{"parse: not a PDF: starts with <html>"}},
		{args: []string{"--running"}, want: []string{"queued", "busy"}, in: []string{"embedding  12     40"}},
		{args: []string{"--done"}, want: []string{"new-done", "old-done"}},
		{args: []string{"--cancelled"}, want: []string{"stopped"}, in: []string{"cancelled", "during parse: uploaded by mistake"}},
		{args: []string{"--done", "--failed"}, want: []string{"new-done", "bad one", "old-done"}},
		{args: []string{"--failed", "--cancelled"}, want: []string{"stopped", "bad one"}},
		{args: []string{"--limit", "2"}, want: []string{"stopped", "queued"}, errWant: "newest 2 of 6"},
		{args: []string{"--json", "--failed"}, want: []string{"bad one"}, in: []string{`"stage":"parse"`}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), append([]string{"tasks"}, tc.args...), env(map[string]string{"NATS_URL": url}), &out, &errOut); err != nil {
				t.Fatalf("tasks %v: %v\n%s", tc.args, err, errOut.String())
			}
			var got []string
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if slices.Contains(tc.args, "--json") {
				for _, l := range lines {
					var st status.Status
					if err := json.Unmarshal([]byte(l), &st); err != nil {
						t.Fatalf("line %q: %v", l, err)
					}
					got = append(got, st.TaskID)
				}
			} else {
				if !strings.HasPrefix(lines[0], "TASK") {
					t.Errorf("no header: %q", lines[0])
				}
				for _, l := range lines[1:] {
					id, _, _ := strings.Cut(l, "  ")
					got = append(got, id)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("tasks %v: got %q, want %q\n%s", tc.args, got, tc.want, out.String())
			}
			for _, w := range tc.in {
				if !strings.Contains(out.String(), w) {
					t.Errorf("tasks %v: output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
			if tc.errWant != "" && !strings.Contains(errOut.String(), tc.errWant) {
				t.Errorf("tasks %v: stderr lacks %q:\n%s", tc.args, tc.errWant, errOut.String())
			}
		})
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"tasks", "extra"}, env(map[string]string{"NATS_URL": url}), &out, &errOut); err == nil {
		t.Error("tasks extra: no error")
	}
}
