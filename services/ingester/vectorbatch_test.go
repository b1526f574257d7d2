package ingester

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

// docChunk is chunk i of task id as the parser would cut it in run run
// (another run of the same task cuts other texts).
func docChunk(id string, i, run int) pipeline.Chunk {
	return pipeline.Chunk{ID: fmt.Sprintf("%s-%d", id, i), Index: i, Text: fmt.Sprintf("run %d: text %d of %s", run, i, id),
		Chapter: "Chapter " + strconv.Itoa(i/7), ChapterNum: strconv.Itoa(i / 7), PageStart: i/3 + 1, PageEnd: i/3 + 2}
}

func docVector(i int) []float32 { return []float32{float32(i), 0.5, -float32(i)} }

// putEmbed stores an embed message of chunks from..to-1 (binary, or the
// JSON of older parsers) and returns its stream sequence.
func putEmbed(t *testing.T, js jetstream.JetStream, id string, from, to, run int, asJSON bool) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	job := pipeline.EmbedJob{TaskID: id}
	for i := from; i < to; i++ {
		job.Chunks = append(job.Chunks, docChunk(id, i, run))
	}
	subj := pipeline.Embed.Subject(id, strconv.Itoa(from))
	var ack *jetstream.PubAck
	var err error
	if asJSON {
		ack, err = pipeline.Publish(ctx, js, subj, id, "", job)
	} else {
		ack, err = js.PublishMsg(ctx, pipeline.NewEmbedMsg(subj, job))
	}
	if err != nil {
		t.Fatalf("embed message %s: %v", subj, err)
	}
	return ack.Sequence
}

// putBatch stores the vectors of chunks from..to-1 as one batch whose
// texts are in the embed message at source.
func putBatch(t *testing.T, js jetstream.JetStream, id string, from, to int, source uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	b := pipeline.VectorBatch{TaskID: id, Model: "test", Source: source, First: from}
	for i := from; i < to; i++ {
		b.Vectors = append(b.Vectors, docVector(i))
	}
	m, err := pipeline.NewVectorBatchMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("vector batch %s: %v", m.Subject, err)
	}
}

// putSingles stores chunks from..to-1 one vector each with their text, as
// embedders before batches did.
func putSingles(t *testing.T, js jetstream.JetStream, id string, from, to, run int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	for i := from; i < to; i++ {
		v := pipeline.Vector{TaskID: id, Model: "test", Chunk: docChunk(id, i, run), Vector: docVector(i)}
		if _, err := js.PublishMsg(ctx, pipeline.NewVectorMsg(pipeline.VectorSubject(id, i), v)); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads n vectors of id with the batched reader.
func readAll(ctx context.Context, js jetstream.JetStream, id string, n, window int) ([]pipeline.Vector, error) {
	r := newBatchReader(ctx, js, id, n, window, vectorWindowBytes)
	defer r.Close()
	var out []pipeline.Vector
	for len(out) < n {
		v, err := r.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// checkDoc checks that vecs are chunks 0…n-1 of run run, in order, each
// with its own vector.
func checkDoc(t *testing.T, id string, vecs []pipeline.Vector, n, run int) {
	t.Helper()
	if len(vecs) != n {
		t.Fatalf("got %d vectors, want %d", len(vecs), n)
	}
	for i, v := range vecs {
		if want := docChunk(id, i, run); v.Chunk != want {
			t.Fatalf("chunk %d: got %+v, want %+v", i, v.Chunk, want)
		}
		if want := docVector(i); fmt.Sprint(v.Vector) != fmt.Sprint(want) || v.TaskID != id || v.Model != "test" {
			t.Fatalf("chunk %d: got vector %v of %q (%q), want %v of %q", i, v.Vector, v.TaskID, v.Model, want, id)
		}
	}
}

// TestBatchReaderVectorBatches stores documents as embedders of this
// version do (vector batches pointing at the embed messages for the
// text), as older parsers and embedders did, and mixed, through a real
// NATS server, and reads each back whole and in order.
func TestBatchReaderVectorBatches(t *testing.T) {
	const n = 40
	tests := []struct {
		name  string
		store func(t *testing.T, js jetstream.JetStream, id string)
		run   int // the run whose texts must be read
	}{
		{name: "batches of 16", store: func(t *testing.T, js jetstream.JetStream, id string) {
			for f := 0; f < n; f += 16 {
				putBatch(t, js, id, f, min(f+16, n), putEmbed(t, js, id, f, min(f+16, n), 0, false))
			}
		}},
		{name: "JSON embed messages of an older parser", store: func(t *testing.T, js jetstream.JetStream, id string) {
			for f := 0; f < n; f += 16 {
				putBatch(t, js, id, f, min(f+16, n), putEmbed(t, js, id, f, min(f+16, n), 0, true))
			}
		}},
		{name: "an older embedder's single vectors in between", store: func(t *testing.T, js jetstream.JetStream, id string) {
			putBatch(t, js, id, 0, 16, putEmbed(t, js, id, 0, 16, 0, false))
			putEmbed(t, js, id, 16, 32, 0, false)
			putSingles(t, js, id, 16, 32, 0)
			putBatch(t, js, id, 32, n, putEmbed(t, js, id, 32, n, 0, false))
		}},
		{name: "an embed message in several batches, stored out of order", store: func(t *testing.T, js jetstream.JetStream, id string) {
			seq := putEmbed(t, js, id, 0, n, 0, false)
			for f := 35; f >= 0; f -= 5 {
				putBatch(t, js, id, f, f+5, seq)
			}
		}},
		{name: "texts of an earlier run and another task in between", run: 1, store: func(t *testing.T, js jetstream.JetStream, id string) {
			var seqs []uint64
			for f := 0; f < n; f += 8 {
				putEmbed(t, js, id, f, f+8, 0, false) // the earlier run, same subjects
				putEmbed(t, js, "other-"+id, f, f+8, 0, false)
			}
			for f := 0; f < n; f += 8 {
				seqs = append(seqs, putEmbed(t, js, id, f, f+8, 1, false))
				putEmbed(t, js, "other-"+id, f, f+8, 1, false)
			}
			for k, f := 0, 0; f < n; k, f = k+1, f+8 {
				putBatch(t, js, id, f, f+8, seqs[k])
			}
			// Leftovers of the earlier run's cut, passed over.
			putBatch(t, js, id, 0, 12, seqs[0])
		}},
	}
	e := stagetest.New(t)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
			defer cancel()
			id := "batches-" + strconv.Itoa(k)
			tc.store(t, e.JS, id)
			for _, window := range []int{1, 20, 256} {
				vecs, err := readAll(ctx, e.JS, id, n, window)
				if err != nil {
					t.Fatalf("window %d: read %d: %v", window, len(vecs), err)
				}
				checkDoc(t, id, vecs, n, tc.run)
			}
		})
	}
}

// TestBatchReaderWithoutDirectGets: a service of an earlier version that
// runs Setup switches direct gets off on the stage stream; the texts are
// then read through the JetStream API.
func TestBatchReaderWithoutDirectGets(t *testing.T) {
	e := stagetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	const id, n = "no-direct", 20
	for f := 0; f < n; f += 8 {
		putBatch(t, e.JS, id, f, min(f+8, n), putEmbed(t, e.JS, id, f, min(f+8, n), 0, false))
	}
	s, err := e.JS.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := e.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	vecs, err := readAll(ctx, e.JS, id, n, 256)
	if err != nil {
		t.Fatalf("read %d: %v", len(vecs), err)
	}
	checkDoc(t, id, vecs, n, 0)
}

// TestBatchReaderErrors: a text that is gone is worth a retry (it may be
// a replica behind); a batch that does not match its subject or its embed
// message is permanent.
func TestBatchReaderErrors(t *testing.T) {
	tests := []struct {
		name     string
		store    func(t *testing.T, js jetstream.JetStream, id string)
		wantPerm bool
		want     error
	}{
		{name: "the embed message is gone", want: jetstream.ErrMsgNotFound, store: func(t *testing.T, js jetstream.JetStream, id string) {
			putBatch(t, js, id, 0, 8, putEmbed(t, js, id, 0, 8, 0, false))
			seq := putEmbed(t, js, id, 8, 16, 0, false)
			putBatch(t, js, id, 8, 16, seq)
			s, err := js.Stream(context.Background(), pipeline.Stream)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteMsg(context.Background(), seq); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "the embed message lacks the chunks", wantPerm: true, store: func(t *testing.T, js jetstream.JetStream, id string) {
			putBatch(t, js, id, 0, 16, putEmbed(t, js, id, 0, 8, 0, false))
		}},
		{name: "the source is another task's", wantPerm: true, store: func(t *testing.T, js jetstream.JetStream, id string) {
			// Stored at this task's subject, but the message says another task.
			ctx := context.Background()
			job := pipeline.EmbedJob{TaskID: "someone-else", Chunks: []pipeline.Chunk{docChunk(id, 0, 0)}}
			ack, err := js.PublishMsg(ctx, pipeline.NewEmbedMsg(pipeline.Embed.Subject(id, "0"), job))
			if err != nil {
				t.Fatal(err)
			}
			putBatch(t, js, id, 0, 1, ack.Sequence)
			for i := 1; i < 16; i++ {
				putSingles(t, js, id, i, i+1, 0)
			}
		}},
		{name: "a batch holding other chunks than its subject says", wantPerm: true, store: func(t *testing.T, js jetstream.JetStream, id string) {
			seq := putEmbed(t, js, id, 0, 16, 0, false)
			b := pipeline.VectorBatch{TaskID: id, Source: seq, First: 0, Vectors: [][]float32{{1}, {2}}}
			data, err := pipeline.EncodeVectorBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(context.Background(), pipeline.VectorBatchSubject(id, 0, 16), data); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "garbage at a batch subject", wantPerm: true, store: func(t *testing.T, js jetstream.JetStream, id string) {
			if _, err := js.Publish(context.Background(), pipeline.VectorBatchSubject(id, 0, 16), []byte{pipeline.VectorFormat2, 0xff}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	e := stagetest.New(t)
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
			defer cancel()
			id := "errors-" + strconv.Itoa(k)
			tc.store(t, e.JS, id)
			vecs, err := readAll(ctx, e.JS, id, 16, 8)
			if err == nil {
				t.Fatalf("read %d vectors without an error", len(vecs))
			}
			if stage.IsPermanent(err) != tc.wantPerm {
				t.Errorf("got %v (permanent %t), want permanent %t", err, stage.IsPermanent(err), tc.wantPerm)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}
