package ingester_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

const dim = 384

// startSink serves the reference IngestService on a loopback port.
func startSink(t *testing.T) (*ingestsink.Sink, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	sink := ingestsink.New(ingestsink.Options{})
	sink.Register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return sink, lis.Addr().String()
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// backendReturns starts a reference backend on addr, the address an
// ingester has been failing to reach (see deadAddr).
func backendReturns(t *testing.T, addr string) *ingestsink.Sink {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the test's port was taken meanwhile: %v", err)
	}
	gs := grpc.NewServer()
	sink := ingestsink.New(ingestsink.Options{})
	sink.Register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return sink
}

func startIngester(t *testing.T, e *env, addr string) {
	t.Helper()
	svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 2, Timeout: 5 * time.Second,
		VectorWait: 6 * time.Second, RetryDelay: 50 * time.Millisecond}, e.Res, e.NC, stagetest.Logger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	stagetest.Run(t, svc.Run)
}

func docID(id string) string { return "doc-" + id }

func chunkID(id string, i int) string {
	sum := md5.Sum([]byte(docID(id) + "_" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

func fileHash(id string) string {
	sum := sha256.Sum256([]byte("pdf bytes of " + id))
	return hex.EncodeToString(sum[:])
}

// publishVector stores the embedded chunk i of task id, as an embedder does.
func (e *env) publishVector(t *testing.T, id string, i int) {
	t.Helper()
	e.publishVectorDim(t, id, i, dim)
}

// publishVectorDim stores chunk i with a vector of d floats.
func (e *env) publishVectorDim(t *testing.T, id string, i, d int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	v := vectorOf(id, i, d)
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.VectorSubject(id, i), id, "", v); err != nil {
		t.Fatalf("publish vector %d: %v", i, err)
	}
}

// vectorOf is chunk i of task id with a vector of d floats.
func vectorOf(id string, i, d int) pipeline.Vector {
	vec := make([]float32, d)
	vec[0] = float32(i)
	vec[1] = 0.5
	return pipeline.Vector{TaskID: id, Model: "test", Vector: vec, Chunk: pipeline.Chunk{
		ID: chunkID(id, i), Index: i, Text: fmt.Sprintf("text %d of %s", i, id),
		Chapter: "1 Introduction", ChapterNum: "1", PageStart: i + 1, PageEnd: i + 2,
	}}
}

// publishJob records the task as the parser leaves it and publishes its
// ingest job; msgID "" uses the parser's message id.
// publishDocument stores n vectors for task id, then its ingest job, as the
// earlier stages would.
func (e *env) publishDocument(t *testing.T, id string, n int) {
	t.Helper()
	for i := range n {
		e.publishVector(t, id, i)
	}
	e.publishJob(t, id, n, "")
}

func (e *env) publishJob(t *testing.T, id string, chunks int, msgID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	_, err := e.Status.Update(ctx, id, func(st *status.Status) { st.State = status.Embedding; st.Chunks = chunks })
	if err != nil && !errors.Is(err, status.ErrTerminal) {
		t.Fatalf("status: %v", err)
	}
	if msgID == "" {
		msgID = id + ":ingest"
	}
	job := pipeline.IngestJob{
		Task: task.Task{ID: id, DocID: docID(id), UserID: "u1", FileName: id + ".pdf",
			CreatedAt: "2026-01-02T03:04:05.123456789Z"},
		Document: pipeline.Document{Object: id, SHA256: fileHash(id), Size: 4321},
		Pages:    chunks + 1, Chunks: chunks, Chapters: 1,
	}
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Ingest.Subject(id), id, msgID, job); err != nil {
		t.Fatalf("publish ingest job: %v", err)
	}
}

// checkDocument checks that one IngestDocument call carried the task's
// metadata first and then chunks 0..n-1 in order, and whether all were
// stored and answered with success.
func checkDocument(t *testing.T, d ingestsink.Document, id string, n int) {
	t.Helper()
	m := d.Metadata
	if m == nil {
		t.Fatalf("document of %s: no metadata", id)
	}
	if m.GetFileId() != docID(id) || m.GetFileHash() != fileHash(id) || m.GetFileSize() != 4321 ||
		m.GetTotalPages() != int32(n+1) || m.GetEstimatedChunks() != int32(n) || m.GetUserId() != "u1" ||
		m.GetFilename() != id+".pdf" || m.GetCreatedAt() != "2026-01-02T03:04:05.123456789Z" {
		t.Errorf("metadata of %s: got %v", id, m)
	}
	if d.Err != nil || d.Response == nil || !d.Response.GetSuccess() || d.Response.GetChunksStored() != int32(n) {
		t.Errorf("document of %s: got response %v, err %v; want success with %d chunks stored", id, d.Response, d.Err, n)
	}
	if len(d.Chunks) != n {
		t.Fatalf("document of %s: got %d chunks, want %d", id, len(d.Chunks), n)
	}
	for i, rc := range d.Chunks {
		c := rc.Chunk
		if int(c.GetChunkIndex()) != i || c.GetChunkId() != chunkID(id, i) || c.GetFileId() != docID(id) {
			t.Errorf("chunk %d: got index %d id %s file %s, want %d %s %s", i, c.GetChunkIndex(), c.GetChunkId(),
				c.GetFileId(), i, chunkID(id, i), docID(id))
		}
		if c.GetChunkText() != fmt.Sprintf("text %d of %s", i, id) || c.GetChapter() != "1 Introduction" ||
			c.GetChapterNum() != "1" || c.GetPageStart() != int32(i+1) || c.GetPageEnd() != int32(i+2) {
			t.Errorf("chunk %d: got %q chapter %q/%q pages %d-%d", i, c.GetChunkText(), c.GetChapter(),
				c.GetChapterNum(), c.GetPageStart(), c.GetPageEnd())
		}
		if v := c.GetEmbeddingVector(); len(v) != dim || v[0] != float32(i) {
			t.Errorf("chunk %d: got a vector of %d floats starting %v, want %d starting %d", i, len(v), v[:min(1, len(v))], dim, i)
		}
		if !rc.Stored {
			t.Errorf("chunk %d not stored: %s", i, rc.Reason)
		}
	}
}

func waitDocuments(t *testing.T, sink *ingestsink.Sink, n int) []ingestsink.Document {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	docs, err := sink.WaitDocuments(ctx, n)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	return docs
}

// expectDone checks the task ended done with n chunks after attempts calls.
func (e *env) expectDone(t *testing.T, id string, n, attempts int) {
	t.Helper()
	st := e.WaitTerminal(t, id)
	if st.State != status.Done || st.Ingested != n || st.Attempts != attempts {
		t.Errorf("status of %s: got %s (%q) ingested %d after %d attempts, want done %d after %d",
			id, st.State, st.Error, st.Ingested, st.Attempts, n, attempts)
	}
}

// waitHeld waits until the ingester holds a message without having acked it
// (it is waiting for vectors).
func (e *env) waitHeld(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	c, err := e.JS.Consumer(ctx, pipeline.Stream, pipeline.Ingest.Durable())
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ingester never took the job")
		case <-tick.C:
		}
	}
}

func TestIngestHappyPathAndNoResend(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)

	const id, n = "t1", 5
	e.publishDocument(t, id, n)
	docs := waitDocuments(t, sink, 1)
	checkDocument(t, docs[0], id, n)
	e.expectDone(t, id, n, 1)
	e.WaitSettled(t, pipeline.Ingest)

	// A replayed ingest job of a done task is not sent again: the backend
	// cannot take a document twice.
	e.publishJob(t, id, n, id+":ingest:replay")
	// The consumer counts the new message a moment after its PubAck:
	// settled means settled with it.
	var info *jetstream.ConsumerInfo
	for deadline := time.Now().Add(stagetest.WaitLimit); ; {
		info = e.WaitSettled(t, pipeline.Ingest)
		if info.Delivered.Consumer >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info.Delivered.Consumer != 2 {
		t.Errorf("consumer delivered %d messages, want 2", info.Delivered.Consumer)
	}
	if got := len(sink.Documents()); got != 1 {
		t.Errorf("sink got %d IngestDocument calls, want 1", got)
	}
	if st, _ := e.Status.Get(context.Background(), id); st.State != status.Done || st.Attempts != 1 {
		t.Errorf("status after replay: got %s after %d attempts, want done after 1", st.State, st.Attempts)
	}
}

func TestIngestVectorsLateAndOutOfOrder(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)

	const id, n = "late", 6
	e.publishJob(t, id, n, "")
	e.waitHeld(t)
	for _, i := range []int{4, 1, 5, 0, 3} {
		e.publishVector(t, id, i)
	}
	if got := len(sink.Documents()); got != 0 {
		t.Fatalf("sink got %d calls before the last vector, want 0", got)
	}
	e.publishVector(t, id, 2)
	docs := waitDocuments(t, sink, 1)
	checkDocument(t, docs[0], id, n)
	e.expectDone(t, id, n, 1)
	e.WaitSettled(t, pipeline.Ingest)
	if got := len(sink.Documents()); got != 1 {
		t.Errorf("sink got %d calls, want 1", got)
	}
}

// faultOnce breaks the first call that reaches chunk at.
func faultOnce(at int, keep bool) ingestsink.FaultFunc {
	var fired atomic.Bool
	return func(fileID string, pos int) error {
		if pos != at || fired.Swap(true) {
			return nil
		}
		err := grpcstatus.Error(codes.Unavailable, "connection to the backend lost")
		if keep {
			return ingestsink.KeepStored(err)
		}
		return err
	}
}

func TestIngestBrokenStreamIsResentWhole(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	sink.SetFault(faultOnce(2, false))
	startIngester(t, e, addr)

	const id, n = "broken", 4
	e.publishDocument(t, id, n)
	e.expectDone(t, id, n, 2)
	e.WaitSettled(t, pipeline.Ingest)
	docs := sink.Documents()
	if len(docs) != 2 {
		t.Fatalf("sink got %d calls, want 2 (broken, then whole)", len(docs))
	}
	if docs[0].Err == nil || !docs[0].RolledBack || len(docs[0].Chunks) != 3 {
		t.Errorf("first call: got err %v rolled back %v with %d chunks, want a fault at chunk 2, rolled back",
			docs[0].Err, docs[0].RolledBack, len(docs[0].Chunks))
	}
	checkDocument(t, docs[1], id, n)
	for i := range n {
		if !sink.HasChunk(chunkID(id, i)) {
			t.Errorf("chunk %d not stored in the backend", i)
		}
	}
}

// TestIngestPartialFirstAttemptEndsDone: the backend keeps the chunks of
// a broken stream (as the real one does); the resend meets them as
// duplicate keys and stores the rest. The backend then holds the whole
// document: the task is done, without a second delivery, every chunk once.
func TestIngestPartialFirstAttemptEndsDone(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	sink.SetFault(faultOnce(2, true))
	startIngester(t, e, addr)

	const id, n = "partial", 4
	e.publishDocument(t, id, n)
	st := e.WaitTerminal(t, id)
	if st.State != status.Done || st.Ingested != n || st.Attempts != 2 {
		t.Fatalf("got %s (%q) ingested %d after %d attempts, want done %d after 2", st.State, st.Error, st.Ingested, st.Attempts, n)
	}
	if !strings.Contains(st.Note, "already held 2 chunks") {
		t.Errorf("note %q: want it to say the backend already held 2 chunks", st.Note)
	}
	info := e.WaitSettled(t, pipeline.Ingest)
	if info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d messages, want 1 (the resend spends no delivery)", info.Delivered.Consumer)
	}
	docs := sink.Documents()
	if len(docs) != 2 {
		t.Fatalf("sink got %d calls, want 2 (partial, then the rest)", len(docs))
	}
	if r := docs[1].Response; r.GetSuccess() || r.GetChunksFailed() != 2 || r.GetChunksStored() != 2 {
		t.Errorf("second call: got %v, want 2 duplicates and 2 stored", r)
	}
	for i := range n {
		if !sink.HasChunk(chunkID(id, i)) {
			t.Errorf("chunk %d not stored in the backend", i)
		}
	}
}

// TestIngestWaitsOutBackendOutage: the backend is unreachable for longer
// than MaxDeliver redeliveries with their backoff and longer than the
// AckWait; documents wait (held in progress, no delivery spent, the task's
// note saying why) and land soon after the backend listens.
func TestIngestWaitsOutBackendOutage(t *testing.T) {
	e := newEnv(t)
	addr := deadAddr(t)
	startIngester(t, e, addr)

	ids := []string{"out-1", "out-2"}
	const n = 3
	for _, id := range ids {
		e.publishDocument(t, id, n)
	}
	for _, id := range ids {
		e.waitNote(t, id, "waiting for the backend at "+addr)
	}
	// Not a synchronisation sleep: the scenario is the outage lasting
	// beyond MaxDeliver × backoff (50 ms doubling) and the AckWait.
	<-time.After(stagetest.AckWait + stagetest.AckWait/2)
	for _, id := range ids {
		if st, err := e.Status.Get(context.Background(), id); err != nil || st.State.Terminal() || st.Attempts != 0 {
			t.Fatalf("%s during the outage: got %s after %d attempts (%q), %v; want waiting, no attempt", id, st.State, st.Attempts, st.Error, err)
		}
	}

	sink := backendReturns(t, addr)
	up := time.Now()
	for _, id := range ids {
		e.expectDone(t, id, n, 1)
	}
	took := time.Since(up)
	t.Logf("documents landed %s after the backend listened", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("documents landed %s after the backend came back, want within 5s", took)
	}
	info := e.WaitSettled(t, pipeline.Ingest)
	if info.Delivered.Consumer != uint64(len(ids)) {
		t.Errorf("consumer delivered %d messages, want %d (no redelivery)", info.Delivered.Consumer, len(ids))
	}
	docs := sink.Documents()
	if len(docs) != len(ids) {
		t.Fatalf("sink got %d calls, want %d (each document once)", len(docs), len(ids))
	}
	for _, d := range docs {
		if !d.Response.GetSuccess() {
			t.Errorf("call for %s: got %v, want success", d.Metadata.GetFileId(), d.Response)
		}
	}
}

// TestIngestRestartsDuringOutage: the ingester is stopped while it waits
// for the backend as many times as MaxDeliver allows deliveries; each stop
// costs the job a delivery, the last one requeues it instead of failing
// the task, and the document lands once the backend is back.
func TestIngestRestartsDuringOutage(t *testing.T) {
	e := newEnv(t)
	addr := deadAddr(t)
	const id, n = "restarts", 2
	e.publishDocument(t, id, n)
	for range stagetest.MaxDeliver {
		svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 1, Timeout: 5 * time.Second,
			VectorWait: 6 * time.Second, RetryDelay: 50 * time.Millisecond}, e.Res, e.NC, stagetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		e.waitNote(t, id, "waiting for the backend")
		stop()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if st, _ := e.Status.Get(context.Background(), id); st.State.Terminal() {
			t.Fatalf("after a stop during the outage: got %s (%s: %s), want the task still waiting", st.State, st.Stage, st.Error)
		}
		// The next run must see the note written anew.
		if _, err := e.Status.Update(context.Background(), id, func(st *status.Status) { st.Note = "" }); err != nil {
			t.Fatal(err)
		}
	}
	sink := backendReturns(t, addr)
	startIngester(t, e, addr)
	e.expectDone(t, id, n, 1)
	if docs := sink.Documents(); len(docs) != 1 {
		t.Errorf("sink got %d calls, want 1", len(docs))
	}
}

// TestIngestOneHandlerPerTask: two deliveries of one task's job held at
// once by this process (a job published twice, or a copy redelivered
// while the first handler still waits out an outage) stream the
// document once.
func TestIngestOneHandlerPerTask(t *testing.T) {
	e := newEnv(t)
	addr := deadAddr(t)
	startIngester(t, e, addr)
	const id, n = "twice", 2
	e.publishDocument(t, id, n)
	e.publishJob(t, id, n, id+":ingest:again")
	e.waitNote(t, id, "waiting for the backend")
	testenv.CheckFor(t, stagetest.WaitLimit, 10*time.Millisecond, func() error {
		c, err := e.JS.Consumer(context.Background(), pipeline.Stream, pipeline.Ingest.Durable())
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 2 {
			return fmt.Errorf("%d jobs held, want both", info.NumAckPending)
		}
		return nil
	})
	sink := backendReturns(t, addr)
	e.expectDone(t, id, n, 1)
	e.WaitSettled(t, pipeline.Ingest)
	if docs := sink.Documents(); len(docs) != 1 {
		t.Errorf("sink got %d calls, want 1", len(docs))
	}
}

// waitNote waits until the task's note contains want.
func (e *env) waitNote(t *testing.T, id, want string) {
	t.Helper()
	testenv.CheckFor(t, stagetest.WaitLimit, 10*time.Millisecond, func() error {
		st, err := e.Status.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if !strings.Contains(st.Note, want) {
			return fmt.Errorf("note of %s: got %q, want it to contain %q", id, st.Note, want)
		}
		return nil
	})
}

func TestIngestStopsWaitingWhenTaskFailsElsewhere(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)

	const id = "embedfail"
	e.publishVector(t, id, 0)
	e.publishJob(t, id, 3, "")
	e.waitHeld(t)
	ctx := context.Background()
	if err := e.Status.Fail(ctx, id, string(pipeline.Embed), errors.New("invalid API key")); err != nil {
		t.Fatal(err)
	}
	info := e.WaitSettled(t, pipeline.Ingest)
	if info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d messages, want 1", info.Delivered.Consumer)
	}
	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Failed || st.Stage != string(pipeline.Embed) || st.Error != "invalid API key" || st.Attempts != 0 {
		t.Errorf("status: got %s at %q (%q) after %d attempts, want the embedder's failure kept, no attempt",
			st.State, st.Stage, st.Error, st.Attempts)
	}
	if got := len(sink.Documents()); got != 0 {
		t.Errorf("sink got %d calls for a failed task, want 0", got)
	}

	// The service goes on with other documents.
	e.publishVector(t, "next", 0)
	e.publishJob(t, "next", 1, "")
	checkDocument(t, waitDocuments(t, sink, 1)[0], "next", 1)
	e.expectDone(t, "next", 1, 1)
}

// TestIngestWaitLongerThanAckWait holds a document (waiting for its last
// vector) past the consumer's AckWait: the ingester keeps the message with
// InProgress, so it is not redelivered to a second worker that would send
// the document again and fail it on duplicate keys.
func TestIngestWaitLongerThanAckWait(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)

	const id, n = "slow", 3
	e.publishVector(t, id, 0)
	e.publishVector(t, id, 1)
	e.publishJob(t, id, n, "")
	e.waitHeld(t)
	// Not a synchronisation sleep: the scenario is time passing beyond AckWait.
	<-time.After(e.Res.Config.AckWait + e.Res.Config.AckWait/2)
	e.publishVector(t, id, 2)
	e.expectDone(t, id, n, 1)
	info := e.WaitSettled(t, pipeline.Ingest)
	if info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d messages, want 1 (no redelivery while held)", info.Delivered.Consumer)
	}
	docs := sink.Documents()
	if len(docs) != 1 {
		t.Fatalf("sink got %d calls, want 1", len(docs))
	}
	checkDocument(t, docs[0], id, n)
}

// TestIngestLostAnswerIsDone covers the window between the backend's
// commit and its answer reaching the ingester: the backend stored the
// whole document, the answer was lost, the resend is refused because every
// chunk is already there. The task is done, and the document stored once.
func TestIngestLostAnswerIsDone(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	sink.SetFault(faultOnce(ingestsink.FaultAtEnd, true))
	startIngester(t, e, addr)

	const id, n = "lost-answer", 3
	e.publishDocument(t, id, n)
	st := e.WaitTerminal(t, id)
	if st.State != status.Done || st.Attempts != 2 || !strings.Contains(st.Note, "stored by attempt 1") || st.Error != "" {
		t.Fatalf("got %s after %d attempts (note %q, error %q), want done after 2, stored by attempt 1", st.State, st.Attempts, st.Note, st.Error)
	}
	docs := sink.Documents()
	if len(docs) != 2 || !sink.HasChunk(docs[0].Chunks[n-1].Chunk.GetChunkId()) {
		t.Fatalf("sink got %d calls; want the committed one and the refused copy", len(docs))
	}
	if docs[1].Response.GetSuccess() || docs[1].Response.GetChunksFailed() != n {
		t.Errorf("copy: got %v, want every chunk refused as a duplicate", docs[1].Response)
	}
}
