package ingester_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// countsOnly answers like the real backend: the sink's checks and counts,
// but the message is only "finish N chunks", naming no failure.
type countsOnly struct {
	pb.UnimplementedIngestServiceServer
	sink *ingestsink.Sink
}

func (c countsOnly) IngestDocument(stream pb.IngestService_IngestDocumentServer) error {
	return c.sink.IngestDocument(countsOnlyStream{stream})
}

type countsOnlyStream struct {
	pb.IngestService_IngestDocumentServer
}

func (s countsOnlyStream) SendAndClose(r *pb.IngestResponse) error {
	r = proto.Clone(r).(*pb.IngestResponse)
	r.Message = fmt.Sprintf("finish %d chunks", r.GetChunksReceived())
	return s.IngestService_IngestDocumentServer.SendAndClose(r)
}

// serve starts srv's IngestService on a loopback port.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	register(gs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// TestIngestResendAfterAnEarlierProcess: an earlier ingester process died
// after delivering the first chunks (the backend kept them; the status
// holds the bound it recorded). The resend's answer is success=false;
// what it means depends on what the backend says, with the reference
// sink's reasons and with the real backend's bare counts.
func TestIngestResendAfterAnEarlierProcess(t *testing.T) {
	styles := []struct {
		name     string
		register func(*grpc.Server, *ingestsink.Sink)
		heldNote string // note when the refused chunks are the held ones
		badErr   string // error when a chunk is genuinely bad
	}{
		{"sink reasons", func(g *grpc.Server, s *ingestsink.Sink) { s.Register(g) },
			"already held 2 chunks", "expected 384 dimensions, not 383"},
		{"counts only", func(g *grpc.Server, s *ingestsink.Sink) { pb.RegisterIngestServiceServer(g, countsOnly{sink: s}) },
			"inferred", "earlier attempts delivered at most 2"},
	}
	for _, style := range styles {
		t.Run(style.name, func(t *testing.T) {
			e := newEnv(t)
			sink := ingestsink.New(ingestsink.Options{})
			addr := serve(t, func(g *grpc.Server) { style.register(g, sink) })
			startIngester(t, e, addr)
			ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
			defer cancel()
			// The earlier process's attempt: chunks 0 and 1 reached the
			// backend, the status says at most 2 did.
			earlier := func(id string) {
				for i := range 2 {
					v := vectorOf(id, i, dim)
					c := v.Chunk
					resp, err := sink.IngestSingleChunk(ctx, &pb.TextChunk{ChunkId: c.ID, FileId: docID(id), ChunkText: c.Text,
						ChunkIndex: int32(i), EmbeddingVector: v.Vector})
					if err != nil || !resp.GetSuccess() {
						t.Fatalf("store chunk %d of %s: %v %v", i, id, resp, err)
					}
				}
				if _, err := e.Status.Update(ctx, id, func(st *status.Status) { st.Attempts, st.SentMax = 1, 2 }); err != nil {
					t.Fatal(err)
				}
			}

			const n = 5
			earlier("held")
			e.publishDocument(t, "held", n)
			st := e.WaitTerminal(t, "held")
			if st.State != status.Done || st.Ingested != n || st.Attempts != 2 || !strings.Contains(st.Note, style.heldNote) {
				t.Errorf("held: got %s (%q) ingested %d after %d attempts, note %q; want done %d after 2, note with %q",
					st.State, st.Error, st.Ingested, st.Attempts, st.Note, n, style.heldNote)
			}
			for i := range n {
				if !sink.HasChunk(chunkID("held", i)) {
					t.Errorf("held: chunk %d not in the backend", i)
				}
			}

			// The same, but chunk 3's vector is one float short: the backend
			// does not hold the whole document, the task fails.
			earlier("bad")
			for i := range n {
				d := dim
				if i == 3 {
					d = dim - 1
				}
				e.publishVectorDim(t, "bad", i, d)
			}
			e.publishJob(t, "bad", n, "")
			st = e.WaitTerminal(t, "bad")
			if st.State != status.Failed || st.Stage != string(pipeline.Ingest) || !strings.Contains(st.Error, style.badErr) {
				t.Errorf("bad: got %s at %q (%q), want failed at ingest with %q", st.State, st.Stage, st.Error, style.badErr)
			}
			if strings.Contains(st.Error, "send chunk") {
				t.Errorf("bad: reason %q names a send step; the backend answered", st.Error)
			}
			if sink.HasChunk(chunkID("bad", 3)) {
				t.Error("bad: the short vector was stored")
			}
		})
	}
}

// TestIngestMetadataRefusalNamesTheMetadata: a file_hash held by another
// file_id is refused at the metadata step, whichever Send surfaced it.
func TestIngestMetadataRefusalNamesTheMetadata(t *testing.T) {
	e := newEnv(t)
	sink, addr := startSink(t)
	startIngester(t, e, addr)
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()

	e.publishDocument(t, "first", 2)
	e.expectDone(t, "first", 2, 1)
	// Another task, another DocID, the same PDF: the hash is taken.
	const id, n = "copy", 300
	for i := range n {
		e.publishVector(t, id, i)
	}
	if _, err := e.Status.Update(ctx, id, func(st *status.Status) { st.State = status.Embedding }); err != nil {
		t.Fatal(err)
	}
	job := pipeline.IngestJob{Chunks: n, Pages: 1}
	job.Task.ID, job.Task.DocID, job.Task.UserID, job.Task.FileName = id, docID(id), "u1", "copy.pdf"
	job.Document.SHA256, job.Document.Size = fileHash("first"), 4321
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Ingest.Subject(id), id, id+":ingest", job); err != nil {
		t.Fatal(err)
	}
	st := e.WaitTerminal(t, id)
	if st.State != status.Failed || st.Attempts != 1 {
		t.Fatalf("got %s after %d attempts (%q), want failed after 1", st.State, st.Attempts, st.Error)
	}
	for _, want := range []string{"backend refused the metadata", "file_hash " + fileHash("first"), "duplicate key"} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("reason %q: want it to contain %q", st.Error, want)
		}
	}
	if strings.Contains(st.Error, "chunk") {
		t.Errorf("reason %q names a chunk; the backend refused the metadata", st.Error)
	}
	if got := len(sink.Documents()); got != 2 {
		t.Errorf("sink got %d calls, want 2", got)
	}
}
