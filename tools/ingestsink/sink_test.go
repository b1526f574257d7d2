package ingestsink_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink/internal/syncbuf"
)

type harness struct {
	sink   *ingestsink.Sink
	client cognicore.IngestServiceClient
	out    *syncbuf.Buffer
}

// start serves a sink over bufconn and returns a client for it.
func start(t *testing.T, opts ingestsink.Options) *harness {
	t.Helper()
	out := &syncbuf.Buffer{}
	opts.Output = out
	sink := ingestsink.New(opts)

	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	sink.Register(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &harness{sink: sink, client: cognicore.NewIngestServiceClient(conn), out: out}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func vector(dim int, seed int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(seed*1000+i) / 1e4
	}
	return v
}

// document builds a valid document of n chunks, the way the original
// processor named them.
func document(fileID string, n, dim int) []*cognicore.IngestRequest {
	reqs := []*cognicore.IngestRequest{{RequestType: &cognicore.IngestRequest_Metadata{Metadata: &cognicore.DocumentMetadata{
		FileId:          fileID,
		UserId:          "u1",
		Filename:        fileID + ".pdf",
		TotalPages:      int32(n),
		EstimatedChunks: int32(n),
		FileHash:        sha(fileID),
		FileSize:        1024,
		CreatedAt:       "2025-01-02T03:04:05Z",
	}}}}
	for i := range n {
		reqs = append(reqs, chunkReq(&cognicore.TextChunk{
			ChunkId:         md5hex(fmt.Sprintf("%s_%d", fileID, i)),
			FileId:          fileID,
			Chapter:         "Intro <1> & more",
			ChapterNum:      fmt.Sprintf("1.%d", i),
			ChunkText:       fmt.Sprintf("text of chunk %d", i),
			EmbeddingVector: vector(dim, i),
			ChunkIndex:      int32(i),
			PageStart:       int32(i + 1),
			PageEnd:         int32(i + 2),
		}))
	}
	return reqs
}

func chunkReq(c *cognicore.TextChunk) *cognicore.IngestRequest {
	return &cognicore.IngestRequest{RequestType: &cognicore.IngestRequest_Chunk{Chunk: c}}
}

func chunkOf(req *cognicore.IngestRequest) *cognicore.TextChunk { return req.GetChunk() }

// send streams reqs and returns the server's answer. It is safe to call from
// any goroutine.
func (h *harness) send(t *testing.T, reqs []*cognicore.IngestRequest) (*cognicore.IngestResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := h.client.IngestDocument(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	for _, r := range reqs {
		// io.EOF means the server ended the call; CloseAndRecv has its status.
		if err := stream.Send(r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	return stream.CloseAndRecv()
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got code %s (%v), want %s", got, err, want)
	}
}

func wantResponse(t *testing.T, resp *cognicore.IngestResponse, err error, success bool, received, stored, failed int32) {
	t.Helper()
	if err != nil {
		t.Fatalf("got error %v, want a response", err)
	}
	if resp.GetSuccess() != success || resp.GetChunksReceived() != received ||
		resp.GetChunksStored() != stored || resp.GetChunksFailed() != failed {
		t.Fatalf("got success=%t received=%d stored=%d failed=%d (%q), want %t %d %d %d",
			resp.GetSuccess(), resp.GetChunksReceived(), resp.GetChunksStored(), resp.GetChunksFailed(),
			resp.GetMessage(), success, received, stored, failed)
	}
}

// lines decodes the JSONL output.
func lines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("decode line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

func TestMetadataFirst(t *testing.T) {
	chunk := chunkOf(document("doc-a", 1, ingestsink.DefaultDimension)[1])
	tests := []struct {
		name string
		reqs []*cognicore.IngestRequest
	}{
		{"empty stream", nil},
		{"chunk first", []*cognicore.IngestRequest{chunkReq(chunk)}},
		{"empty message first", []*cognicore.IngestRequest{{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, ingestsink.Options{})
			_, err := h.send(t, tc.reqs)
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(status.Convert(err).Message(), "metadata") {
				t.Errorf("got message %q, want it to mention metadata", status.Convert(err).Message())
			}
			docs := h.sink.Documents()
			if len(docs) != 1 {
				t.Fatalf("got %d documents, want 1", len(docs))
			}
			if docs[0].Metadata != nil || docs[0].Response != nil || docs[0].Err == nil {
				t.Errorf("got metadata=%v response=%v err=%v, want nil, nil, an error",
					docs[0].Metadata, docs[0].Response, docs[0].Err)
			}
			if h.sink.HasChunk(chunk.GetChunkId()) {
				t.Error("chunk sent before metadata was stored")
			}
			if got := h.out.String(); got != "" {
				t.Errorf("got output %q, want none", got)
			}
		})
	}
}

func TestMetadataValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*cognicore.DocumentMetadata)
	}{
		{"empty file_id", func(m *cognicore.DocumentMetadata) { m.FileId = "" }},
		{"empty hash", func(m *cognicore.DocumentMetadata) { m.FileHash = "" }},
		{"short hash", func(m *cognicore.DocumentMetadata) { m.FileHash = m.FileHash[:63] }},
		{"long hash", func(m *cognicore.DocumentMetadata) { m.FileHash += "0" }},
		{"uppercase hash", func(m *cognicore.DocumentMetadata) { m.FileHash = strings.ToUpper(m.FileHash) }},
		{"non-hex hash", func(m *cognicore.DocumentMetadata) { m.FileHash = strings.Repeat("g", 64) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, ingestsink.Options{})
			reqs := document("doc-a", 2, ingestsink.DefaultDimension)
			tc.mutate(reqs[0].GetMetadata())
			_, err := h.send(t, reqs)
			wantCode(t, err, codes.InvalidArgument)
			if h.sink.HasChunk(chunkOf(reqs[1]).GetChunkId()) {
				t.Error("chunk of a rejected document was stored")
			}
		})
	}
}

func TestDuplicateHash(t *testing.T) {
	h := start(t, ingestsink.Options{})
	resp, err := h.send(t, document("doc-a", 2, ingestsink.DefaultDimension))
	wantResponse(t, resp, err, true, 2, 2, 0)

	// Another document with the same bytes: the UNIQUE index fails the call.
	other := document("doc-b", 2, ingestsink.DefaultDimension)
	other[0].GetMetadata().FileHash = sha("doc-a")
	_, err = h.send(t, other)
	wantCode(t, err, codes.Unknown)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "idx_file_hash") {
		t.Errorf("got message %q, want the unique constraint's name", msg)
	}
	if h.sink.HasChunk(chunkOf(other[1]).GetChunkId()) {
		t.Error("chunk of the duplicate-hash document was stored")
	}

	// The same document again: its metadata passes, every chunk is a duplicate.
	resp, err = h.send(t, document("doc-a", 2, ingestsink.DefaultDimension))
	wantResponse(t, resp, err, false, 2, 0, 2)
	if !strings.Contains(resp.GetMessage(), "chunks_pkey") {
		t.Errorf("got message %q, want the primary key violation", resp.GetMessage())
	}

	// A new hash for doc-b is fine.
	resp, err = h.send(t, document("doc-b", 2, ingestsink.DefaultDimension))
	wantResponse(t, resp, err, true, 2, 2, 0)

	if got := len(h.sink.Documents()); got != 4 {
		t.Errorf("got %d documents, want 4", got)
	}
}

func TestDuplicateChunkID(t *testing.T) {
	h := start(t, ingestsink.Options{})

	within := document("doc-a", 3, ingestsink.DefaultDimension)
	chunkOf(within[3]).ChunkId = chunkOf(within[1]).GetChunkId()
	resp, err := h.send(t, within)
	wantResponse(t, resp, err, false, 3, 2, 1)
	if !strings.Contains(resp.GetMessage(), "chunk 2") || !strings.Contains(resp.GetMessage(), "chunks_pkey") {
		t.Errorf("got message %q, want it to name chunk 2 and the primary key", resp.GetMessage())
	}

	across := document("doc-b", 2, ingestsink.DefaultDimension)
	chunkOf(across[2]).ChunkId = chunkOf(within[2]).GetChunkId()
	resp, err = h.send(t, across)
	wantResponse(t, resp, err, false, 2, 1, 1)
	if got, want := resp.GetFileId(), "doc-b"; got != want {
		t.Errorf("got file_id %q, want %q", got, want)
	}

	docs := h.sink.Documents()
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	var stored []bool
	for _, c := range docs[0].Chunks {
		stored = append(stored, c.Stored)
	}
	if fmt.Sprint(stored) != "[true true false]" {
		t.Errorf("got stored flags %v, want [true true false]", stored)
	}
}

func TestChunkChecks(t *testing.T) {
	tests := []struct {
		name   string
		dim    int // Options.Dimension
		mutate func(*cognicore.TextChunk)
		reason string // "" means the chunk is stored
	}{
		{"default dimension", 0, func(*cognicore.TextChunk) {}, ""},
		{"one short", 0, func(c *cognicore.TextChunk) { c.EmbeddingVector = vector(383, 1) }, "expected 384 dimensions, not 383"},
		{"one long", 0, func(c *cognicore.TextChunk) { c.EmbeddingVector = vector(385, 1) }, "expected 384 dimensions, not 385"},
		{"empty vector", 0, func(c *cognicore.TextChunk) { c.EmbeddingVector = nil }, "expected 384 dimensions, not 0"},
		{"configured dimension", 8, func(c *cognicore.TextChunk) { c.EmbeddingVector = vector(8, 1) }, ""},
		{"384 with dimension 8", 8, func(*cognicore.TextChunk) {}, "expected 8 dimensions, not 384"},
		{"NaN", 0, func(c *cognicore.TextChunk) { c.EmbeddingVector[5] = float32(math.NaN()) }, "NaN"},
		{"Inf", 0, func(c *cognicore.TextChunk) { c.EmbeddingVector[0] = float32(math.Inf(-1)) }, "infinite"},
		{"empty chunk_id", 0, func(c *cognicore.TextChunk) { c.ChunkId = "" }, "chunk_id is empty"},
		{"other file_id", 0, func(c *cognicore.TextChunk) { c.FileId = "doc-z" }, "differs from the metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, ingestsink.Options{Dimension: tc.dim})
			reqs := document("doc-a", 2, ingestsink.DefaultDimension)
			bad := chunkOf(reqs[2])
			if tc.dim != 0 {
				chunkOf(reqs[1]).EmbeddingVector = vector(tc.dim, 0)
			}
			tc.mutate(bad)
			resp, err := h.send(t, reqs)
			if tc.reason == "" {
				wantResponse(t, resp, err, true, 2, 2, 0)
				return
			}
			wantResponse(t, resp, err, false, 2, 1, 1)
			if !strings.Contains(resp.GetMessage(), tc.reason) {
				t.Errorf("got message %q, want it to contain %q", resp.GetMessage(), tc.reason)
			}
			if bad.GetChunkId() != "" && h.sink.HasChunk(bad.GetChunkId()) {
				t.Error("bad chunk was stored")
			}
			doc := h.sink.Documents()[0]
			if got := doc.Chunks[1].Reason; !strings.Contains(got, tc.reason) {
				t.Errorf("got reason %q, want it to contain %q", got, tc.reason)
			}
		})
	}
}

func TestHappyPath(t *testing.T) {
	h := start(t, ingestsink.Options{})
	reqs := document("doc-a", 3, ingestsink.DefaultDimension)
	resp, err := h.send(t, reqs)
	wantResponse(t, resp, err, true, 3, 3, 0)
	if got, want := resp.GetFileId(), "doc-a"; got != want {
		t.Errorf("got file_id %q, want %q", got, want)
	}
	if resp.GetProcessingTimeMs() < 0 {
		t.Errorf("got processing_time_ms %d, want >= 0", resp.GetProcessingTimeMs())
	}

	docs := h.sink.Documents()
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	d := docs[0]
	if !proto.Equal(d.Metadata, reqs[0].GetMetadata()) {
		t.Errorf("got metadata %v, want %v", d.Metadata, reqs[0].GetMetadata())
	}
	if !proto.Equal(d.Response, resp) || d.Err != nil || d.RolledBack {
		t.Errorf("got response %v err %v rolled back %t, want %v, nil, false", d.Response, d.Err, d.RolledBack, resp)
	}
	if len(d.Chunks) != 3 {
		t.Fatalf("got %d chunks, want 3", len(d.Chunks))
	}
	for i, c := range d.Chunks {
		if !proto.Equal(c.Chunk, chunkOf(reqs[i+1])) || !c.Stored || c.Reason != "" {
			t.Errorf("chunk %d: got %v stored=%t reason=%q, want the sent chunk, stored", i, c.Chunk, c.Stored, c.Reason)
		}
	}

	ls := lines(t, h.out.String())
	if len(ls) != 4 {
		t.Fatalf("got %d JSONL lines, want 4:\n%s", len(ls), h.out.String())
	}
	meta := reqs[0].GetMetadata()
	wantMeta := map[string]any{
		"type": "metadata", "file_id": meta.GetFileId(), "user_id": meta.GetUserId(),
		"filename": meta.GetFilename(), "total_pages": float64(3), "estimated_chunks": float64(3),
		"file_hash": meta.GetFileHash(), "file_size": float64(1024), "created_at": meta.GetCreatedAt(),
	}
	for k, want := range wantMeta {
		if got := ls[0][k]; got != want {
			t.Errorf("metadata line %s: got %v, want %v", k, got, want)
		}
	}
	if result, _ := ls[0]["result"].(map[string]any); result["success"] != true || result["chunks_stored"] != float64(3) {
		t.Errorf("metadata line result: got %v, want success with 3 chunks stored", ls[0]["result"])
	}
	for i, l := range ls[1:] {
		c := chunkOf(reqs[i+1])
		want := map[string]any{
			"type": "chunk", "chunk_id": c.GetChunkId(), "file_id": "doc-a", "chunk_index": float64(i),
			"chapter": c.GetChapter(), "chapter_num": c.GetChapterNum(), "chunk_text": c.GetChunkText(),
			"page_start": float64(i + 1), "page_end": float64(i + 2),
		}
		for k, w := range want {
			if got := l[k]; got != w {
				t.Errorf("chunk line %d %s: got %v, want %v", i, k, got, w)
			}
		}
		vec, _ := l["embedding_vector"].([]any)
		if len(vec) != ingestsink.DefaultDimension {
			t.Fatalf("chunk line %d: got %d floats, want %d", i, len(vec), ingestsink.DefaultDimension)
		}
		for j, v := range vec {
			if f, _ := v.(float64); float32(f) != c.GetEmbeddingVector()[j] {
				t.Fatalf("chunk line %d float %d: got %v, want %v", i, j, v, c.GetEmbeddingVector()[j])
			}
		}
	}
	if strings.Contains(h.out.String(), `\u003c`) {
		t.Error("output escapes HTML characters")
	}
}

func TestFault(t *testing.T) {
	boom := status.Error(codes.Unavailable, "boom")
	const n = 4
	tests := []struct {
		name string
		at   int
		err  error
		code codes.Code
		// What stays stored after the fault, and the answer to a clean re-send.
		keptChunks   int
		resendStored int32
	}{
		{"metadata", ingestsink.FaultAtMetadata, boom, codes.Unavailable, 0, n},
		{"chunk, rolled back", 2, boom, codes.Unavailable, 0, n},
		{"chunk, kept", 2, ingestsink.KeepStored(boom), codes.Unavailable, 2, n - 2},
		{"end, rolled back", ingestsink.FaultAtEnd, boom, codes.Unavailable, 0, n},
		{"end, kept", ingestsink.FaultAtEnd, ingestsink.KeepStored(boom), codes.Unavailable, n, 0},
		{"plain error", 1, errors.New("plain"), codes.Unknown, 0, n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, ingestsink.Options{})
			var (
				mu    sync.Mutex
				calls []int
			)
			h.sink.SetFault(func(fileID string, at int) error {
				if fileID != "doc-a" {
					return fmt.Errorf("got file_id %q, want doc-a", fileID)
				}
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, at)
				if at == tc.at {
					return tc.err
				}
				return nil
			})
			reqs := document("doc-a", n, ingestsink.DefaultDimension)
			_, err := h.send(t, reqs)
			wantCode(t, err, tc.code)
			mu.Lock()
			if calls[len(calls)-1] != tc.at {
				t.Errorf("got hook calls %v, want them to end at %d", calls, tc.at)
			}
			mu.Unlock()

			docs := h.sink.Documents()
			if len(docs) != 1 || docs[0].Err == nil || docs[0].Response != nil {
				t.Fatalf("got %d documents (%+v), want 1 ending in an error", len(docs), docs)
			}
			if got, want := docs[0].RolledBack, tc.keptChunks == 0; got != want {
				t.Errorf("got rolled back %t, want %t", got, want)
			}
			for i := range n {
				if got, want := h.sink.HasChunk(chunkOf(reqs[i+1]).GetChunkId()), i < tc.keptChunks; got != want {
					t.Errorf("chunk %d: got stored %t, want %t", i, got, want)
				}
			}
			wantLines := 0
			if tc.keptChunks > 0 {
				wantLines = 1 + tc.keptChunks
			}
			if got := len(lines(t, h.out.String())); got != wantLines {
				t.Errorf("got %d JSONL lines, want %d", got, wantLines)
			}

			h.sink.SetFault(nil)
			resp, err := h.send(t, document("doc-a", n, ingestsink.DefaultDimension))
			wantResponse(t, resp, err, tc.resendStored == n, n, tc.resendStored, n-tc.resendStored)
		})
	}
}

func TestBrokenStream(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollback=%t", rollback), func(t *testing.T) {
			h := start(t, ingestsink.Options{RollbackBrokenStreams: rollback})
			reached := make(chan struct{})
			h.sink.SetFault(func(_ string, at int) error {
				if at == 2 {
					close(reached)
				}
				return nil
			})
			reqs := document("doc-a", 4, ingestsink.DefaultDimension)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stream, err := h.client.IngestDocument(ctx)
			if err != nil {
				t.Fatalf("open stream: %v", err)
			}
			for _, r := range reqs[:4] { // metadata and chunks 0-2
				if err := stream.Send(r); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatal("server never reached chunk 2")
			}
			cancel()

			wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer wcancel()
			docs, err := h.sink.WaitDocuments(wctx, 1)
			if err != nil {
				t.Fatalf("wait: %v", err)
			}
			if docs[0].Err == nil || docs[0].RolledBack != rollback {
				t.Errorf("got err %v rolled back %t, want an error and %t", docs[0].Err, docs[0].RolledBack, rollback)
			}
			for i := range 3 {
				if got := h.sink.HasChunk(chunkOf(reqs[i+1]).GetChunkId()); got == rollback {
					t.Errorf("chunk %d: got stored %t, want %t", i, got, !rollback)
				}
			}
			h.sink.SetFault(nil)
			resp, err := h.send(t, reqs)
			if rollback {
				wantResponse(t, resp, err, true, 4, 4, 0)
			} else {
				wantResponse(t, resp, err, false, 4, 1, 3)
			}
		})
	}
}

func TestWaitDocuments(t *testing.T) {
	h := start(t, ingestsink.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	docs, err := h.sink.WaitDocuments(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(docs) != 0 {
		t.Fatalf("got %d documents, error %v, want 0 and a deadline error", len(docs), err)
	}

	const n = 3
	got := make(chan int, 1)
	go func() {
		docs, _ := h.sink.WaitDocuments(t.Context(), n)
		got <- len(docs)
	}()
	for i := range n {
		resp, err := h.send(t, document(fmt.Sprintf("doc-%d", i), 1, ingestsink.DefaultDimension))
		wantResponse(t, resp, err, true, 1, 1, 0)
	}
	select {
	case k := <-got:
		if k != n {
			t.Errorf("got %d documents, want %d", k, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitDocuments did not return")
	}
}

func TestConcurrentStreams(t *testing.T) {
	h := start(t, ingestsink.Options{})
	const docs, chunks = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, docs+2)
	for i := range docs {
		wg.Go(func() {
			resp, err := h.send(t, document(fmt.Sprintf("doc-%d", i), chunks, ingestsink.DefaultDimension))
			if err != nil || !resp.GetSuccess() {
				errs <- fmt.Errorf("doc-%d: got %v, %v, want success", i, resp, err)
			}
		})
	}
	// Two documents racing for one hash: exactly one wins.
	var wins sync.Map
	for _, id := range []string{"race-1", "race-2"} {
		wg.Go(func() {
			reqs := document(id, 2, ingestsink.DefaultDimension)
			reqs[0].GetMetadata().FileHash = sha("race")
			resp, err := h.send(t, reqs)
			switch {
			case err == nil && resp.GetSuccess():
				wins.Store(id, true)
			case status.Code(err) != codes.Unknown:
				errs <- fmt.Errorf("%s: got %v, %v, want success or codes.Unknown", id, resp, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	winners := 0
	wins.Range(func(any, any) bool { winners++; return true })
	if winners != 1 {
		t.Errorf("got %d winners of the hash race, want 1", winners)
	}

	// Each document's lines are contiguous: metadata, then its chunks in order.
	ls := lines(t, h.out.String())
	if want := docs*(1+chunks) + 1 + 2; len(ls) != want {
		t.Fatalf("got %d lines, want %d", len(ls), want)
	}
	for i := 0; i < len(ls); {
		if ls[i]["type"] != "metadata" {
			t.Fatalf("line %d: got type %v, want metadata", i, ls[i]["type"])
		}
		id := ls[i]["file_id"]
		i++
		for idx := 0; i < len(ls) && ls[i]["type"] == "chunk"; idx++ {
			if ls[i]["file_id"] != id || ls[i]["chunk_index"] != float64(idx) {
				t.Fatalf("line %d: got chunk %v/%v, want %v/%d", i, ls[i]["file_id"], ls[i]["chunk_index"], id, idx)
			}
			i++
		}
	}
}

func TestIngestSingleChunk(t *testing.T) {
	h := start(t, ingestsink.Options{})
	chunk := chunkOf(document("doc-a", 1, ingestsink.DefaultDimension)[1])

	resp, err := h.client.IngestSingleChunk(t.Context(), chunk)
	wantResponse(t, resp, err, true, 1, 1, 0)
	if !h.sink.HasChunk(chunk.GetChunkId()) {
		t.Error("chunk not stored")
	}
	ls := lines(t, h.out.String())
	if len(ls) != 1 || ls[0]["type"] != "chunk" || ls[0]["chunk_id"] != chunk.GetChunkId() {
		t.Errorf("got lines %v, want one chunk line for %s", ls, chunk.GetChunkId())
	}

	resp, err = h.client.IngestSingleChunk(t.Context(), chunk)
	wantResponse(t, resp, err, false, 1, 0, 1)

	short := proto.Clone(chunk).(*cognicore.TextChunk)
	short.ChunkId = "other"
	short.EmbeddingVector = short.EmbeddingVector[:10]
	resp, err = h.client.IngestSingleChunk(t.Context(), short)
	wantResponse(t, resp, err, false, 1, 0, 1)

	h.sink.SetFault(func(string, int) error { return status.Error(codes.Aborted, "boom") })
	fresh := proto.Clone(chunk).(*cognicore.TextChunk)
	fresh.ChunkId = "fresh"
	_, err = h.client.IngestSingleChunk(t.Context(), fresh)
	wantCode(t, err, codes.Aborted)
	if h.sink.HasChunk("fresh") {
		t.Error("chunk stored despite the fault")
	}
	if got := len(h.sink.Documents()); got != 0 {
		t.Errorf("got %d documents, want 0 (single chunks are not documents)", got)
	}

	h2 := start(t, ingestsink.Options{SingleChunkUnimplemented: true})
	_, err = h2.client.IngestSingleChunk(t.Context(), chunk)
	wantCode(t, err, codes.Unimplemented)
}

func TestForgetChunksKeepsOnlyTheOutcome(t *testing.T) {
	h := start(t, ingestsink.Options{ForgetChunks: true})
	s := h.sink
	stream, err := h.client.IngestDocument(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hash := sha("forget")
	if err := stream.Send(&cognicore.IngestRequest{RequestType: &cognicore.IngestRequest_Metadata{Metadata: &cognicore.DocumentMetadata{FileId: "f", FileHash: hash}}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&cognicore.IngestRequest{RequestType: &cognicore.IngestRequest_Chunk{Chunk: &cognicore.TextChunk{ChunkId: "c0", FileId: "f", EmbeddingVector: make([]float32, 384)}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil || !resp.GetSuccess() {
		t.Fatalf("got %v, %v; want success", resp, err)
	}
	docs := s.Documents()
	if len(docs) != 1 || docs[0].Chunks != nil || docs[0].Response.GetChunksStored() != 1 || !s.HasChunk("c0") {
		t.Fatalf("got %d documents, chunks %v, response %v; want the outcome without chunk bodies", len(docs), docs[0].Chunks, docs[0].Response)
	}
}
