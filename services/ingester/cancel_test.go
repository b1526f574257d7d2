package ingester_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// holdAt returns a fault hook that holds the stream of fileID at chunk
// position at until release is closed (entered is closed when it gets
// there), then lets it go on.
func holdAt(fileID string, at int) (hook ingestsink.FaultFunc, entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	return func(id string, pos int) error {
		if id == fileID && pos == at {
			close(entered)
			<-release
		}
		return nil
	}, entered, release
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("%s: not within %s", what, waitLimit)
	}
}

// waitLimit bounds the waits of the cancel tests: publishing 800
// vectors under the race detector takes a while.
const waitLimit = 30 * time.Second

// TestIngestCancelAbortsTheStream: a task cancelled while its document
// streams to the backend: the ingester aborts the IngestDocument call
// (the backend sees it cancelled, never closed, so it cannot take it for
// the whole document), stops, acks its job and never sends it again; the
// task stays cancelled, also when the job is delivered again.
func TestIngestCancelAbortsTheStream(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	// Large enough that the stream's flow-control window fills while the
	// backend holds chunk 5: the ingester is mid-stream, not waiting for
	// an answer.
	const id, n = "cancel-mid-stream", 800
	hook, entered, release := holdAt(docID(id), 5)
	sink.SetFault(hook)
	startIngester(t, e, addr)
	e.publishDocument(t, id, n)
	waitClosed(t, entered, "the backend holding chunk 5")
	ctx := context.Background()

	got, err := stage.AskWork(ctx, e.NC, id, 5*time.Second)
	if err != nil || len(got) != 1 || got[0].Stage != "ingest" || got[0].Unit != "chunks" || got[0].Total != n || got[0].Done < 5 || got[0].Done >= n {
		t.Fatalf("at work: got %+v (%v), want the ingester mid-stream, chunks of %d", got, err, n)
	}
	if _, _, err := e.Status.Cancel(ctx, id, "test"); err != nil {
		t.Fatalf("Cancel mid-stream: %v", err)
	}
	testenv.CheckFor(t, waitLimit, 5*time.Millisecond, func() error {
		if got, err := stage.AskWork(ctx, e.NC, id, 5*time.Second); err != nil || len(got) > 0 {
			return fmt.Errorf("still at work: %+v (%v)", got, err)
		}
		return nil
	})
	close(release)
	docs := waitDocuments(t, sink, 1)
	d := docs[0]
	if code := grpcstatus.Code(d.Err); code != codes.Canceled || d.Response != nil {
		t.Errorf("the backend's call: got response %v, error %v; want it cancelled by the client, no response", d.Response, d.Err)
	}
	if len(d.Chunks) >= n {
		t.Errorf("the backend got %d of %d chunks: the stream was finished, not aborted", len(d.Chunks), n)
	}
	info := e.WaitSettled(t, pipeline.Ingest)
	if info.Delivered.Consumer != 1 {
		t.Errorf("ingest job delivered %d times, want once (acked)", info.Delivered.Consumer)
	}

	// The job once more (a redelivery, or the stages of a late parse):
	// skipped, and the task stays as the cancel left it.
	e.publishJob(t, id, n, id+":ingest:again")
	e.WaitSettled(t, pipeline.Ingest)
	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Cancelled || st.Stage != "ingest" || st.Ingested != 0 {
		t.Errorf("status: got %s at %q, ingested %d; want cancelled at ingest, nothing ingested", st.State, st.Stage, st.Ingested)
	}
	if got := len(sink.Documents()); got != 1 {
		t.Errorf("the backend got %d calls, want the one aborted", got)
	}
}

// TestIngestCancelTooLate: once the whole document is on its way to the
// backend, a cancel is refused and the backend's answer decides: the task
// ends done.
func TestIngestCancelTooLate(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	const id, n = "cancel-too-late", 3
	hook, entered, release := holdAt(docID(id), ingestsink.FaultAtEnd)
	sink.SetFault(hook)
	startIngester(t, e, addr)
	e.publishDocument(t, id, n)
	waitClosed(t, entered, "the backend holding the stream's end")
	ctx := context.Background()
	if _, _, err := e.Status.Cancel(ctx, id, "test"); !errors.Is(err, status.ErrSentWhole) {
		t.Errorf("Cancel after the whole document was sent: got %v, want ErrSentWhole", err)
	}
	close(release)
	e.expectDone(t, id, n, 1)
	checkDocument(t, waitDocuments(t, sink, 1)[0], id, n)
}
