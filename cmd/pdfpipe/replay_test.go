package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// replayEnv is a listening JetStream server with the pipeline set up, an
// ingester and the reference sink as the backend (keeping what a broken
// stream stored, as the real backend does).
type replayEnv struct {
	url   string
	js    jetstream.JetStream
	res   *pipeline.Resources
	store *status.Store
	sink  *ingestsink.Sink
}

func startReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	nc, url, js, res := startPipelineWith(t, pipeline.Config{MaxDeliver: 3, AckWait: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := ingestsink.New(ingestsink.Options{})
	gs := grpc.NewServer()
	sink.Register(gs)
	go gs.Serve(lis)
	svc, err := ingester.New(ingester.Config{Addr: lis.Addr().String(), Workers: 2, Timeout: 10 * time.Second,
		VectorWait: 10 * time.Second, RetryDelay: 50 * time.Millisecond}, res, nc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
		gs.Stop()
	})
	return &replayEnv{url: url, js: js, res: res, store: status.New(res.Status), sink: sink}
}

// publish stores n vectors for task id and its ingest job, as the earlier
// stages do; hashOf names the document whose PDF hash it carries.
func (e *replayEnv) publish(t *testing.T, id, hashOf string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		vec := make([]float32, 384)
		vec[0] = float32(i)
		v := pipeline.Vector{TaskID: id, Vector: vec, Chunk: pipeline.Chunk{ID: fmt.Sprintf("%s-chunk-%d", id, i), Index: i, Text: "text"}}
		if _, err := pipeline.Publish(ctx, e.js, pipeline.VectorSubject(id, i), id, "", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Update(ctx, id, func(st *status.Status) { st.State, st.Chunks = status.Embedding, n }); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(hashOf))
	job := pipeline.IngestJob{Task: task.Task{ID: id, DocID: id, UserID: "u", FileName: id + ".pdf"},
		Document: pipeline.Document{SHA256: hex.EncodeToString(sum[:]), Size: 1}, Pages: 1, Chunks: n}
	if _, err := pipeline.Publish(ctx, e.js, pipeline.Ingest.Subject(id), id, id+":ingest", job); err != nil {
		t.Fatal(err)
	}
}

func (e *replayEnv) wait(t *testing.T, id string, want status.State) status.Status {
	t.Helper()
	var st status.Status
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var err error
		if st, err = e.store.Get(context.Background(), id); err != nil {
			return err
		}
		if st.State != want {
			return fmt.Errorf("task %s is %s (%s), want %s", id, st.State, st.Error, want)
		}
		return nil
	})
	return st
}

func (e *replayEnv) replay(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"replay"}, args...), env(map[string]string{"NATS_URL": e.url}), &out, &errOut)
	return out.String() + errOut.String(), err
}

// TestReplayDoneTask: `pdfpipe replay ingest d1` on a done task (the
// README's example) refuses and changes nothing; with --force it sends
// the document again, waits, and the task stays done although the
// backend refuses every chunk as already stored.
func TestReplayDoneTask(t *testing.T) {
	e := startReplayEnv(t)
	const n = 4
	e.publish(t, "d1", "d1", n)
	e.wait(t, "d1", status.Done)

	out, err := e.replay("ingest", "d1")
	if err == nil || !strings.Contains(err.Error(), "task d1 is done") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("replay of a done task: got %v\n%s\nwant a refusal naming --force", err, out)
	}
	if st, _ := e.store.Get(context.Background(), "d1"); st.State != status.Done || st.Attempts != 1 {
		t.Errorf("after the refused replay: got %s after %d attempts, want done after 1", st.State, st.Attempts)
	}
	if got := len(e.sink.Documents()); got != 1 {
		t.Errorf("sink got %d calls after the refused replay, want 1", got)
	}

	out, err = e.replay("ingest", "d1", "--force", "--timeout", "20s")
	if err != nil {
		t.Fatalf("forced replay: %v\n%s", err, out)
	}
	if !strings.Contains(out, "task d1: done") {
		t.Errorf("forced replay output lacks the outcome:\n%s", out)
	}
	st, err := e.store.Get(context.Background(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Done || st.Attempts != 2 || st.Error != "" {
		t.Errorf("after the forced replay: got %s after %d attempts (%q), want done after 2", st.State, st.Attempts, st.Error)
	}
	docs := e.sink.Documents()
	if len(docs) != 2 || docs[1].Response.GetChunksFailed() != n || docs[1].Response.GetChunksStored() != 0 {
		t.Fatalf("sink: got %d calls, the last %v; want 2, the resend all duplicates", len(docs), docs[len(docs)-1].Response)
	}
}

// TestReplayFailedTaskExitsNonZero: a replay that ends failed says so and
// returns an error; --no-wait returns at once.
func TestReplayFailedTaskExitsNonZero(t *testing.T) {
	e := startReplayEnv(t)
	e.publish(t, "a", "same pdf", 2)
	e.wait(t, "a", status.Done)
	e.publish(t, "b", "same pdf", 2) // the backend refuses the metadata: the hash is a's
	if st := e.wait(t, "b", status.Failed); !strings.Contains(st.Error, "metadata") {
		t.Fatalf("b failed with %q, want a refusal of the metadata", st.Error)
	}

	out, err := e.replay("ingest", "b")
	if err == nil || !strings.Contains(err.Error(), "failed at ingest") || !strings.Contains(out, "backend refused the metadata") {
		t.Errorf("replay of b: got %v\n%s\nwant it failed again at ingest with the reason", err, out)
	}
	out, err = e.replay("--no-wait", "ingest", "b")
	if err != nil || !strings.Contains(out, "1 messages republished") || strings.Contains(out, "task b: failed") {
		t.Errorf("replay --no-wait: got %v\n%s\nwant republished, no outcome", err, out)
	}
	if _, err := e.replay("ingest"); err == nil {
		t.Error("replay without a task id: no error")
	}
}
