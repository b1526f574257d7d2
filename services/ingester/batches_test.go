package ingester_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
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
