package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// TestPipelineEndToEnd pushes tasks the way the real backend does and
// checks what reaches its IngestService:
//   - today's backend shape (LPUSH, presigned http URL, no task_id), embedded
//     with the default local provider;
//   - the original README shape (RPUSH, s3:// URL on a real S3 server, with
//     task_id) whose OpenAI key arrives first through ProvideAPIKey;
//   - a malformed entry, which lands in queue:dlq while the next task still
//     completes;
//   - GetEmbedding over gRPC.
func TestPipelineEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	redisURL := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	openai := providertest.NewOpenAI(t)

	// The README-shape document lives on the S3 server.
	readmePDF := samplePDF(t, 12, "Document from S3")
	mc, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, "uploads", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "uploads", "u1/readme.pdf", bytes.NewReader(readmePDF), int64(len(readmePDF)),
		minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	// Today's backend sends a presigned http URL.
	backendPDF := samplePDF(t, 8, "Document from the backend")
	laterPDF := samplePDF(t, 3, "Document after the malformed one")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bucket/backend.pdf":
			w.Write(backendPDF)
		case "/bucket/later.pdf":
			w.Write(laterPDF)
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()

	st := startStack(t, map[string]string{
		// The fetch guard refuses loopback: allow exactly the origin.
		"FETCH_ALLOW_HOSTS": web.Listener.Addr().String(),
		"REDIS_URL":         redisURL,
		"BUCKET_ENDPOINT":   s3.Endpoint,
		"BUCKET_ACCESS_ID":  s3.AccessKey,
		"BUCKET_ACCESS_KEY": s3.SecretKey,
		"OPENAI_BASE_URL":   openai.URL,
		"TEMP_DIR":          t.TempDir(),
		"API_KEY_WAIT":      "20s",
	})
	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	events := collectEvents(ctx, t, rdb)

	// The key arrives before its task, as the backend sends it.
	kr, err := pb.NewAPIKeyServiceClient(st.KeyConn).ProvideAPIKey(ctx, &pb.APIKeyRequest{
		TaskId: "readme-task-1", ApiKey: providertest.OpenAIKey, Provider: "OpenAI"})
	if err != nil || !kr.GetSuccess() {
		t.Fatalf("ProvideAPIKey: %v %v", kr, err)
	}

	backendTask := fmt.Sprintf(`{"DocID":"6f1c2a9e-1b7d-4f0a-9a63-2c1d1e0b7a11","FileName":"backend.pdf","UserID":"u1","CreatedAt":"%s","URL":"%s/bucket/backend.pdf?X-Amz-Signature=abc","RagMode":"true"}`,
		time.Now().UTC().Format(time.RFC3339Nano), web.URL)
	readmeTask := `{"DocID":"readme-doc-1","UserID":"u1","FileName":"readme.pdf","URL":"s3://uploads/u1/readme.pdf","FileSize":1024000,"task_id":"readme-task-1"}`
	if err := rdb.LPush(ctx, "queue:upload_tasks", backendTask).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, "queue:upload_tasks", readmeTask).Err(); err != nil {
		t.Fatal(err)
	}

	docs, err := st.Sink.WaitDocuments(ctx, 2)
	if err != nil {
		t.Fatalf("waiting for the backend to receive 2 documents: %v\nlogs:\n%s", err, st.Logs)
	}
	byID := map[string]ingestsink.Document{}
	for _, d := range docs {
		byID[d.Metadata.GetFileId()] = d
	}
	checkDocument(t, byID["6f1c2a9e-1b7d-4f0a-9a63-2c1d1e0b7a11"], backendPDF, 8, func(i int, text string, vec []float32) error {
		if n := norm(vec); math.Abs(n-1) > 1e-3 {
			return fmt.Errorf("local vector norm %.4f, want 1", n)
		}
		return nil
	})
	checkDocument(t, byID["readme-doc-1"], readmePDF, 12, func(i int, text string, vec []float32) error {
		want := providertest.Vector(text, 384)
		for j := range want {
			if math.Abs(float64(want[j]-vec[j])) > 1e-6 {
				return fmt.Errorf("vector is not OpenAI's vector of this chunk's text (component %d: got %g, want %g)", j, vec[j], want[j])
			}
		}
		return nil
	})

	// The task's own key was used, asking for 384 dimensions.
	log := openai.Log()
	if len(log) == 0 {
		t.Fatal("the OpenAI fake got no request: the task's key was not used")
	}
	inputs := 0
	for _, r := range log {
		if got := r.Header.Get("Authorization"); got != "Bearer "+providertest.OpenAIKey {
			t.Errorf("OpenAI request authorised with %q, want the task's key", got)
		}
		if r.Dims != 384 {
			t.Errorf("OpenAI request asked for %d dimensions, want 384", r.Dims)
		}
		inputs += len(r.Inputs)
	}
	if n := len(byID["readme-doc-1"].Chunks); inputs != n {
		t.Errorf("OpenAI embedded %d texts, want %d (one per chunk)", inputs, n)
	}
	if len(log) >= len(byID["readme-doc-1"].Chunks) {
		t.Errorf("%d OpenAI requests for %d chunks: chunks were not batched", len(log), len(byID["readme-doc-1"].Chunks))
	}

	// GetEmbedding, as the backend calls it: no provider, no key, no deadline.
	er, err := pb.NewEmbeddingServiceClient(st.EmbedConn).GetEmbedding(ctx, &pb.EmbeddingRequest{
		TaskId: fmt.Sprintf("embedding-%d", time.Now().Unix()), Text: "什么是 JetStream？"})
	if err != nil {
		t.Fatalf("GetEmbedding: %v", err)
	}
	if !er.GetSuccess() || len(er.GetEmbeddings()) != 384 || er.GetDimension() != 384 {
		t.Fatalf("GetEmbedding: success=%v, %d floats, dimension %d; want 384", er.GetSuccess(), len(er.GetEmbeddings()), er.GetDimension())
	}
	vr, err := pb.NewVectorizerServiceClient(st.EmbedConn).GetVector(ctx, &pb.TextRequest{Text: "legacy"})
	if err != nil || len(vr.GetVector()) != 384 {
		t.Fatalf("GetVector: %d floats, %v; want 384", len(vr.GetVector()), err)
	}

	// A malformed entry goes to the dead-letter list; the next task completes.
	if err := rdb.LPush(ctx, "queue:upload_tasks", `{"DocID":"broken","FileName":"x.pdf"`).Err(); err != nil {
		t.Fatal(err)
	}
	laterTask := fmt.Sprintf(`{"DocID":"later-doc","FileName":"later.pdf","UserID":"u2","URL":"%s/bucket/later.pdf","RagMode":"false"}`, web.URL)
	if err := rdb.LPush(ctx, "queue:upload_tasks", laterTask).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		n, err := rdb.LLen(ctx, "queue:dlq").Result()
		if err != nil || n == 0 {
			return fmt.Errorf("queue:dlq has %d entries (%v)", n, err)
		}
		return nil
	})
	dead, err := rdb.LIndex(ctx, "queue:dlq", 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(dead), &entry); err != nil {
		t.Fatalf("dlq entry %q: %v", dead, err)
	}
	if reason, _ := entry["final_result"].(string); !strings.Contains(reason, "JSON") && !strings.Contains(reason, "json") {
		t.Errorf("dlq final_result %q does not say the entry is not valid JSON", reason)
	}
	if _, ok := entry["failed_at"].(string); !ok {
		t.Errorf("dlq entry has no failed_at: %v", entry)
	}
	docs, err = st.Sink.WaitDocuments(ctx, 3)
	if err != nil {
		t.Fatalf("the task after the malformed one did not complete: %v", err)
	}
	later := docs[2]
	if later.Metadata.GetFileId() != "later-doc" || later.Response == nil || !later.Response.GetSuccess() {
		t.Fatalf("third document: file_id %q, response %v", later.Metadata.GetFileId(), later.Response)
	}
	for _, c := range later.Chunks {
		if norm(c.Chunk.GetEmbeddingVector()) != 0 || len(c.Chunk.GetEmbeddingVector()) != 384 {
			t.Fatalf("RagMode false: chunk %d has a non-zero or wrong-sized vector", c.Chunk.GetChunkIndex())
		}
	}

	// Every task is done; the key was removed when its task ended.
	store := status.New(st.Res.Status)
	for _, id := range []string{"6f1c2a9e-1b7d-4f0a-9a63-2c1d1e0b7a11", "readme-task-1", "later-doc"} {
		testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			s, err := store.Get(ctx, id)
			if err != nil {
				return err
			}
			if s.State != status.Done {
				return fmt.Errorf("task %s is %s (%s)", id, s.State, s.Error)
			}
			return nil
		})
	}
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, err := st.Res.Keys.Get(ctx, pipeline.Token("readme-task-1")); err == nil {
			return errors.New("the API key is still stored after its task ended")
		}
		return nil
	})

	// The user saw progress for each document on document:events.
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, doc := range []string{"6f1c2a9e-1b7d-4f0a-9a63-2c1d1e0b7a11", "readme-doc-1"} {
			if events.count(doc, "processing") == 0 {
				return fmt.Errorf("no processing event for %s; got %v", doc, events.all())
			}
		}
		return nil
	})

	// The key never appears in a log line or in any stage message.
	if strings.Contains(st.Logs.String(), providertest.OpenAIKey) {
		t.Error("the API key appears in the logs")
	}
	for _, stream := range []string{pipeline.Stream, pipeline.VectorStream, "KV_" + pipeline.StatusBucket} {
		if streamContains(t, st.JS, stream, providertest.OpenAIKey) {
			t.Errorf("the API key appears in stream %s", stream)
		}
	}
}

// checkDocument checks one IngestDocument call: success, metadata as the
// backend needs it, every chunk once and in order with a 384-float vector.
func checkDocument(t *testing.T, d ingestsink.Document, pdf []byte, pages int, checkVec func(i int, text string, vec []float32) error) {
	t.Helper()
	if d.Metadata == nil {
		t.Fatal("document not received")
	}
	md := d.Metadata
	if d.Err != nil || d.Response == nil || !d.Response.GetSuccess() {
		t.Fatalf("%s: response %v, error %v", md.GetFileId(), d.Response, d.Err)
	}
	if md.GetFileHash() != sha256Hex(pdf) {
		t.Errorf("%s: file_hash %s, want the SHA-256 of the PDF %s", md.GetFileId(), md.GetFileHash(), sha256Hex(pdf))
	}
	if md.GetFileSize() != int64(len(pdf)) || md.GetTotalPages() != int32(pages) {
		t.Errorf("%s: file_size %d total_pages %d, want %d and %d", md.GetFileId(), md.GetFileSize(), md.GetTotalPages(), len(pdf), pages)
	}
	if int(md.GetEstimatedChunks()) != len(d.Chunks) || len(d.Chunks) == 0 {
		t.Errorf("%s: estimated_chunks %d, received %d", md.GetFileId(), md.GetEstimatedChunks(), len(d.Chunks))
	}
	lastPage := 0
	for i, rc := range d.Chunks {
		c := rc.Chunk
		if int(c.GetChunkIndex()) != i {
			t.Fatalf("%s: chunk %d arrived at position %d: not in order", md.GetFileId(), c.GetChunkIndex(), i)
		}
		sum := md5.Sum([]byte(fmt.Sprintf("%s_%d", md.GetFileId(), i)))
		if c.GetChunkId() != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: chunk %d id %s, want md5(DocID_index)", md.GetFileId(), i, c.GetChunkId())
		}
		if len(c.GetEmbeddingVector()) != 384 {
			t.Fatalf("%s: chunk %d has %d floats, want 384", md.GetFileId(), i, len(c.GetEmbeddingVector()))
		}
		if c.GetChunkText() == "" || c.GetPageStart() < 1 || c.GetPageEnd() < c.GetPageStart() || int(c.GetPageEnd()) > pages {
			t.Errorf("%s: chunk %d text %q pages %d-%d", md.GetFileId(), i, c.GetChunkText(), c.GetPageStart(), c.GetPageEnd())
		}
		if int(c.GetPageStart()) < lastPage {
			t.Errorf("%s: chunk %d starts on page %d, before page %d of the chunk before", md.GetFileId(), i, c.GetPageStart(), lastPage)
		}
		lastPage = int(c.GetPageStart())
		// Only the title page's text, before the first heading, has no chapter.
		if (c.GetChapter() == "" || c.GetChapterNum() == "") && (i > 0 && d.Chunks[i-1].Chunk.GetChapter() != "" || c.GetPageStart() > 1) {
			t.Errorf("%s: chunk %d (page %d) has no chapter (%q, %q) although the PDF has an outline", md.GetFileId(), i, c.GetPageStart(), c.GetChapter(), c.GetChapterNum())
		}
		if err := checkVec(i, c.GetChunkText(), c.GetEmbeddingVector()); err != nil {
			t.Fatalf("%s: chunk %d: %v", md.GetFileId(), i, err)
		}
	}
	if d.Chunks[len(d.Chunks)-1].Chunk.GetPageEnd() != int32(pages) {
		t.Errorf("%s: last chunk ends on page %d, want the last page %d", md.GetFileId(), d.Chunks[len(d.Chunks)-1].Chunk.GetPageEnd(), pages)
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// eventLog records DocumentEvents published on document:events.
type eventLog struct {
	mu     sync.Mutex
	events []map[string]any
}

func (e *eventLog) count(doc, typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev["doc_id"] == doc && ev["type"] == typ {
			n++
		}
	}
	return n
}

func (e *eventLog) all() []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]any(nil), e.events...)
}

func collectEvents(ctx context.Context, t *testing.T, rdb *redis.Client) *eventLog {
	t.Helper()
	sub := rdb.Subscribe(ctx, "document:events")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	log := &eventLog{}
	go func() {
		for m := range sub.Channel() {
			var ev map[string]any
			if json.Unmarshal([]byte(m.Payload), &ev) == nil {
				log.mu.Lock()
				log.events = append(log.events, ev)
				log.mu.Unlock()
			}
		}
	}()
	return log
}
