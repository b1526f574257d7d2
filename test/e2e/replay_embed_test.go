package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestReplayEmbedAfterBackendRefusal: replaying the embed stage
// republishes the retained (binary) embed messages under new sequences and
// purges the vectors; the embedders store new vector batches pointing at
// the republished messages, and the ingester sends the whole document with
// its texts read there.
func TestReplayEmbedAfterBackendRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redisURL := testenv.StartRedis(t)
	pdf := samplePDF(t, 40, "Replay embed document")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pdf) }))
	defer web.Close()
	st := startStack(t, map[string]string{"REDIS_URL": redisURL, "TEMP_DIR": t.TempDir(),
		"FETCH_ALLOW_HOSTS": web.Listener.Addr().String()})
	st.Sink.SetFault(func(string, int) error { return grpcstatus.Error(codes.InvalidArgument, "backend bug") })

	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	const id = "replay-embed-1"
	if err := rdb.LPush(ctx, "queue:upload_tasks", fmt.Sprintf(`{"DocID":%q,"FileName":"r.pdf","UserID":"u","URL":"%s/r.pdf"}`, id, web.URL)).Err(); err != nil {
		t.Fatal(err)
	}
	store := status.New(st.Res.Status)
	waitState := func(want status.State) status.Status {
		var got status.Status
		testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			var err error
			if got, err = store.Get(ctx, id); err != nil {
				return err
			}
			if got.State != want {
				return fmt.Errorf("task is %s (%s), want %s", got.State, got.Error, want)
			}
			return nil
		})
		return got
	}
	failed := waitState(status.Failed)
	if failed.Stage != "ingest" || failed.Chunks < 17 {
		t.Fatalf("failed at %q with %d chunks, want ingest with more than one embed message's worth", failed.Stage, failed.Chunks)
	}
	embedsBefore := subjectCount(t, st, pipeline.Embed.Filter())

	st.Sink.SetFault(nil)
	if _, err := store.Reopen(ctx, id, status.Embedding); err != nil {
		t.Fatal(err)
	}
	n, err := pipeline.Replay(ctx, st.Res, pipeline.Embed, id, 1)
	if err != nil || n != embedsBefore+1 {
		t.Fatalf("replay embed: %d messages, %v; want %d embed messages and the ingest job", n, err, embedsBefore+1)
	}
	done := waitState(status.Done)
	docs := st.Sink.Documents()
	last := docs[len(docs)-1]
	if last.Response == nil || !last.Response.GetSuccess() || len(last.Chunks) != done.Chunks || done.Chunks != failed.Chunks {
		t.Fatalf("after the replay the backend got %v with %d chunks, want success with %d", last.Response, len(last.Chunks), failed.Chunks)
	}
	for i, c := range last.Chunks {
		if int(c.Chunk.GetChunkIndex()) != i || c.Chunk.GetChunkText() == "" || len(c.Chunk.GetEmbeddingVector()) != 384 {
			t.Fatalf("chunk %d: index %d, %d bytes of text, %d floats", i, c.Chunk.GetChunkIndex(), len(c.Chunk.GetChunkText()), len(c.Chunk.GetEmbeddingVector()))
		}
	}
	if got := subjectCount(t, st, pipeline.Embed.Filter()); got != 2*embedsBefore {
		t.Errorf("%d embed messages retained, want the first run's and the replay's, %d", got, 2*embedsBefore)
	}
}
