package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestReplayIngestAfterBackendRefusal: the backend refuses a document (a
// bug on its side), the task fails at ingest; once the backend is fixed,
// replaying the ingest stage from the retained stream sends the stored
// vectors again and the task ends done — no re-fetch, re-parse or
// re-embed. A parse replay republishes every chunk under new message ids.
func TestReplayIngestAfterBackendRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redisURL := testenv.StartRedis(t)
	pdf := samplePDF(t, 5, "Replay document")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pdf) }))
	defer web.Close()
	st := startStack(t, map[string]string{"REDIS_URL": redisURL, "TEMP_DIR": t.TempDir(),
		"FETCH_ALLOW_HOSTS": web.Listener.Addr().String()}) // the fetch guard refuses loopback otherwise
	st.Sink.SetFault(func(string, int) error { return grpcstatus.Error(codes.InvalidArgument, "backend bug") })

	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	if err := rdb.LPush(ctx, "queue:upload_tasks", fmt.Sprintf(`{"DocID":"replay-1","FileName":"r.pdf","UserID":"u","URL":"%s/r.pdf"}`, web.URL)).Err(); err != nil {
		t.Fatal(err)
	}
	store := status.New(st.Res.Status)
	waitState := func(want status.State) status.Status {
		var got status.Status
		testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			var err error
			if got, err = store.Get(ctx, "replay-1"); err != nil {
				return err
			}
			if got.State != want {
				return fmt.Errorf("task is %s (%s), want %s", got.State, got.Error, want)
			}
			return nil
		})
		return got
	}
	if failed := waitState(status.Failed); failed.Stage != "ingest" {
		t.Fatalf("failed at %q, want ingest", failed.Stage)
	}
	embedsBefore := subjectCount(t, st, pipeline.Embed.Filter())

	st.Sink.SetFault(nil) // the backend is fixed
	if _, err := store.Reopen(ctx, "replay-1", status.Embedding); err != nil {
		t.Fatal(err)
	}
	if n, err := pipeline.Replay(ctx, st.Res, pipeline.Ingest, "replay-1", 1); err != nil || n != 1 {
		t.Fatalf("replay ingest: %d messages, %v", n, err)
	}
	done := waitState(status.Done)
	docs := st.Sink.Documents()
	last := docs[len(docs)-1]
	if last.Response == nil || !last.Response.GetSuccess() || len(last.Chunks) != done.Chunks {
		t.Fatalf("after the replay the backend got %v with %d chunks, want success with %d", last.Response, len(last.Chunks), done.Chunks)
	}
	if got := subjectCount(t, st, pipeline.Embed.Filter()); got != embedsBefore {
		t.Errorf("an ingest replay published %d new chunk jobs, want none", got-embedsBefore)
	}

	// A parse replay is not swallowed by the duplicate window.
	if _, err := store.Reopen(ctx, "replay-1", status.Fetching); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Replay(ctx, st.Res, pipeline.Parse, "replay-1", 2); err != nil {
		t.Fatal(err)
	}
	// It publishes every embed job again (16 chunks to a job).
	if want := (done.Chunks + 15) / 16; embedsBefore != want {
		t.Errorf("%d embed jobs for %d chunks, want %d", embedsBefore, done.Chunks, want)
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := subjectCount(t, st, pipeline.Embed.Filter()); got != 2*embedsBefore {
			return fmt.Errorf("%d embed jobs in the stream, want %d", got, 2*embedsBefore)
		}
		return nil
	})
}

func subjectCount(t *testing.T, st *stack, filter string) int {
	t.Helper()
	s, err := st.JS.Stream(context.Background(), pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range info.State.Subjects {
		total += int(n)
	}
	return total
}
