package ingester_test

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

// publishEmbed stores chunks from..to-1 of task id in one embed message,
// as the parser does, and returns its stream sequence.
func (e *env) publishEmbed(t *testing.T, id string, from, to int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	job := pipeline.EmbedJob{TaskID: id}
	for i := from; i < to; i++ {
		job.Chunks = append(job.Chunks, vectorOf(id, i, dim).Chunk)
	}
	ack, err := e.JS.PublishMsg(ctx, pipeline.NewEmbedMsg(pipeline.Embed.Subject(id, strconv.Itoa(from)), job))
	if err != nil {
		t.Fatalf("embed message from %d: %v", from, err)
	}
	return ack.Sequence
}

// publishBatch stores the vectors of chunks from..to-1 as one vector
// batch pointing at the embed message at source, as the embedder does.
func (e *env) publishBatch(t *testing.T, id string, from, to int, source uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	b := pipeline.VectorBatch{TaskID: id, Model: "test", Source: source, First: from}
	for i := from; i < to; i++ {
		b.Vectors = append(b.Vectors, vectorOf(id, i, dim).Vector)
	}
	m, err := pipeline.NewVectorBatchMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.JS.PublishMsg(ctx, m); err != nil {
		t.Fatalf("vector batch from %d: %v", from, err)
	}
}

// TestIngestVectorBatches: documents whose vectors are stored in batches
// (their text in the embed messages), mixed with single vectors of older
// embedders, or arriving after the ingest job, are each sent whole, in
// order, once every chunk has its vector and not before.
func TestIngestVectorBatches(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)

	const n = 37
	// Every chunk in a batch of 16.
	for f := 0; f < n; f += 16 {
		e.publishBatch(t, "batched", f, min(f+16, n), e.publishEmbed(t, "batched", f, min(f+16, n)))
	}
	e.publishJob(t, "batched", n, "")
	checkDocument(t, waitDocuments(t, sink, 1)[0], "batched", n)
	e.expectDone(t, "batched", n, 1)

	// A rolling upgrade: chunks 16..31 embedded by an older embedder.
	e.publishBatch(t, "mixed", 0, 16, e.publishEmbed(t, "mixed", 0, 16))
	e.publishEmbed(t, "mixed", 16, 32)
	for i := 16; i < 32; i++ {
		e.publishVector(t, "mixed", i)
	}
	e.publishBatch(t, "mixed", 32, n, e.publishEmbed(t, "mixed", 32, n))
	e.publishJob(t, "mixed", n, "")
	checkDocument(t, waitDocuments(t, sink, 2)[1], "mixed", n)
	e.expectDone(t, "mixed", n, 1)

	// Late and out of order: the job waits for the last batch.
	e.publishJob(t, "late", n, "")
	e.waitHeld(t)
	seqs := map[int]uint64{}
	for f := 0; f < n; f += 16 {
		seqs[f] = e.publishEmbed(t, "late", f, min(f+16, n))
	}
	e.publishBatch(t, "late", 32, n, seqs[32])
	e.publishBatch(t, "late", 0, 16, seqs[0])
	if got := len(sink.Documents()); got != 2 {
		t.Fatalf("sink got %d calls before the last batch, want 2", got)
	}
	e.publishBatch(t, "late", 16, 32, seqs[16])
	checkDocument(t, waitDocuments(t, sink, 3)[2], "late", n)
	e.expectDone(t, "late", n, 1)
}

// TestIngestCountsAgainAfterANotification: the server hands a vector to
// the ingester's subscription and queues it for the stream apart, so the
// notification can come before the count sees it. Here the notification
// comes alone (a publish the stream refuses) and the vector is stored
// after the ingester has counted, without one (through a subject
// transform of the stream): the document must be sent within the quick
// re-counts that follow a notification, not after the long recheck.
func TestIngestCountsAgainAfterANotification(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	// test.vec.> is stored as pdf.vec.>, which the ingester watches.
	vs, err := e.JS.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := vs.CachedInfo().Config
	cfg.Subjects = append(cfg.Subjects, "test.vec.>")
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "test.vec.>", Destination: "pdf.vec.>"}
	if _, err := e.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 2, Timeout: 5 * time.Second,
		VectorWait: time.Minute, RetryDelay: 50 * time.Millisecond}, e.Res, e.NC, stagetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ingester.SetVectorRecheck(svc, time.Minute)
	stagetest.Run(t, svc.Run)

	// Watch the ingester count: its stream info requests for the task's
	// subjects, and their answers.
	// A request and its answer reach two subscriptions, in either order:
	// the pair counts once both are seen.
	counted := make(chan struct{}, 16)
	var mu sync.Mutex
	seen := map[string]int{} // reply subject: 1 asked, 2 answered
	pair := func(reply string, half int) {
		mu.Lock()
		defer mu.Unlock()
		if other := seen[reply]; other != 0 && other != half {
			delete(seen, reply)
			counted <- struct{}{}
			return
		}
		seen[reply] = half
	}
	watch, err := e.NC.Subscribe("$JS.API.STREAM.INFO."+pipeline.VectorStream, func(m *nats.Msg) {
		if m.Reply != "" && bytes.Contains(m.Data, []byte("subjects_filter")) {
			pair(m.Reply, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Unsubscribe()
	answers, err := e.NC.Subscribe("_INBOX.>", func(m *nats.Msg) { pair(m.Subject, 2) })
	if err != nil {
		t.Fatal(err)
	}
	defer answers.Unsubscribe()
	if err := e.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	next := func(what string) {
		t.Helper()
		select {
		case <-counted:
		case <-ctx.Done():
			t.Fatalf("the ingester did not count %s", what)
		}
	}
	const id = "settle"
	e.publishJob(t, id, 1, "")
	next("at first") // nothing there; it waits for news
	// The notification alone: a vector the stream refuses.
	note := nats.NewMsg(pipeline.VectorSubject(id, 0))
	note.Header.Set(jetstream.ExpectedStreamHeader, "not-"+pipeline.VectorStream)
	note.Data = pipeline.EncodeVector(vectorOf(id, 0, dim))
	if err := e.NC.PublishMsg(note); err != nil {
		t.Fatal(err)
	}
	next("after the notification") // still nothing
	// Now the vector, stored without a notification on pdf.vec.
	if _, err := e.JS.PublishMsg(ctx, &nats.Msg{Subject: "test.vec." + id + ".0", Data: pipeline.EncodeVector(vectorOf(id, 0, dim)),
		Header: nats.Header{pipeline.HeaderTaskID: []string{id}}}); err != nil {
		t.Fatal(err)
	}
	checkDocument(t, waitDocuments(t, sink, 1)[0], id, 1)
}
