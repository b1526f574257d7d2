package ingester_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// TestIngestAcrossVectorWindows sends a document whose vectors were
// stored out of order and span several read windows, some answers cut
// short by the byte limit.
func TestIngestAcrossVectorWindows(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 1, Timeout: 5 * time.Second,
		VectorWait: 6 * time.Second, RetryDelay: 50 * time.Millisecond}, e.Res, e.NC, stagetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ingester.SetVectorWindow(svc, 4, 3000) // about two vectors per answer
	stagetest.Run(t, svc.Run)

	const id, n = "windows", 14
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		e.publishVector(t, id, i)
	}
	e.publishJob(t, id, n, "")
	docs := waitDocuments(t, sink, 1)
	checkDocument(t, docs[0], id, n)
	e.expectDone(t, id, n, 1)
}

// BenchmarkIngestDocument streams one large document (INGEST_BENCH_CHUNKS
// chunks, default 4000, ~1 KB of text and 384 floats each) from the vector
// stream into the reference sink over loopback gRPC, with the batched
// reader and, as the reference in the same run, the per-chunk reader the
// ingester used before, with vectors stored as JSON (as before) and in
// binary format 1. It reports chunks/s from the ingest job's publish
// to the task's done state.
//
//	go test -run '^$' -bench BenchmarkIngestDocument -benchtime 3x ./services/ingester
func BenchmarkIngestDocument(b *testing.B) {
	n := 4000
	if v, err := strconv.Atoi(os.Getenv("INGEST_BENCH_CHUNKS")); err == nil && v > 0 {
		n = v
	}
	rates := map[string]float64{}
	// per-chunk/json is the ingester and embedder as they were.
	for _, mode := range []string{"per-chunk/json", "batched/json", "batched/binary"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			addr := benchSink(b)
			svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 1, Timeout: 5 * time.Minute,
				VectorWait: time.Minute}, e.Res, e.NC, stagetest.Logger(b))
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(mode, "per-chunk") {
				ingester.UsePerChunkReader(svc)
			}
			stagetest.Run(b, svc.Run)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				id := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(mode, "/", "-"), i)
				publishBenchVectors(b, e.JS, id, n, strings.HasSuffix(mode, "binary"))
				b.StartTimer()
				publishBenchJob(b, e, id, n)
				waitBenchDone(b, e, id)
			}
			rate := float64(n*b.N) / b.Elapsed().Seconds()
			rates[mode] = rate
			b.ReportMetric(rate, "chunks/s")
		})
	}
	if old := rates["per-chunk/json"]; old > 0 {
		b.Logf("against per-chunk/json in the same run: batched/json %.2fx, batched/binary %.2fx (%d chunks per document)",
			rates["batched/json"]/old, rates["batched/binary"]/old, n)
	}
}

// benchSink serves a reference sink that keeps nothing but counts.
func benchSink(b *testing.B) string {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	ingestsink.New(ingestsink.Options{ForgetChunks: true}).Register(gs)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// publishBenchVectors stores n vectors of realistic size, out of order
// within each run of 64 (as several embedders leave them), in binary
// format or as the JSON of earlier versions.
func publishBenchVectors(b *testing.B, js jetstream.JetStream, id string, n int, binary bool) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	text := strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 18)
	order := make([]int, 0, n)
	for base := 0; base < n; base += 64 {
		for _, j := range rng.Perm(min(64, n-base)) {
			order = append(order, base+j)
		}
	}
	var acks []jetstream.PubAckFuture
	for _, i := range order {
		vec := make([]float32, dim)
		for k := range vec {
			vec[k] = rng.Float32()*2 - 1
		}
		v := pipeline.Vector{TaskID: id, Model: "bench", Vector: vec, Chunk: pipeline.Chunk{
			ID: chunkID(id, i), Index: i, Text: text, Chapter: "3 Results", ChapterNum: "3", PageStart: i/3 + 1, PageEnd: i/3 + 1}}
		m := pipeline.NewVectorMsg(pipeline.VectorSubject(id, i), v)
		if !binary {
			var err error
			if m, err = pipeline.NewMsg(pipeline.VectorSubject(id, i), id, v); err != nil {
				b.Fatal(err)
			}
		}
		a, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, a)
		if len(acks) == 512 {
			waitAcks(ctx, b, acks)
			acks = acks[:0]
		}
	}
	waitAcks(ctx, b, acks)
}

func publishBenchJob(b *testing.B, e *env, id string, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	if _, err := e.Status.Update(ctx, id, func(st *status.Status) { st.State = status.Embedding; st.Chunks = n }); err != nil {
		b.Fatal(err)
	}
	job := pipeline.IngestJob{Task: task.Task{ID: id, DocID: docID(id), UserID: "u1", FileName: id + ".pdf"},
		Document: pipeline.Document{Object: id, SHA256: fileHash(id), Size: 1 << 20}, Pages: n / 3, Chunks: n, Chapters: 1}
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Ingest.Subject(id), id, id+":ingest", job); err != nil {
		b.Fatal(err)
	}
}

// waitBenchDone waits (up to 5 minutes) for the task to end done.
func waitBenchDone(b *testing.B, e *env, id string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := e.Res.Status.Watch(ctx, pipeline.Token(id))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Fatalf("task %s did not end", id)
		case u := <-w.Updates():
			if u == nil || u.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := status.Decode(u.Value())
			if err != nil {
				b.Fatal(err)
			}
			if st.State.Terminal() {
				if st.State != status.Done {
					b.Fatalf("task %s: %s (%s)", id, st.State, st.Error)
				}
				return
			}
		}
	}
}

func waitAcks(ctx context.Context, b *testing.B, acks []jetstream.PubAckFuture) {
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			b.Fatal(err)
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
}
