package parser_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const samplePages = 3

func samplePDF(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Sample(samplePages)); err != nil {
		t.Fatalf("pdfgen: %v", err)
	}
	return buf.Bytes()
}

// blankPDF is a valid two-page PDF without any text.
func blankPDF(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Doc{Pages: []pdfgen.Page{{}, {}}}); err != nil {
		t.Fatalf("pdfgen: %v", err)
	}
	return buf.Bytes()
}

// garbagePDF has pages whose text is all U+FFFD and private-use
// characters, as fonts without a Unicode mapping give, and a blank page.
func garbagePDF(t *testing.T) []byte {
	t.Helper()
	garbage := pdfgen.Page{Blocks: []pdfgen.Block{{Text: strings.Repeat("\uFFFD", 30) + " " + strings.Repeat("\uE012\uF8FF", 10)}}}
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Doc{Pages: []pdfgen.Page{garbage, {}, garbage}}); err != nil {
		t.Fatalf("pdfgen: %v", err)
	}
	return buf.Bytes()
}

// encryptedPDF encrypts the sample with the user password "user" using
// mutool.
func encryptedPDF(t *testing.T) []byte { return encryptedPDFWith(t, "user") }

// encryptedPDFWith encrypts the sample (AES-256) with user password user.
func encryptedPDFWith(t *testing.T, user string) []byte {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in.pdf")
	if err := os.WriteFile(in, samplePDF(t), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testenv.EncryptPDF(t, in, "aes-256", user, "owner"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func startParser(t *testing.T, e *env) (tempDir string) {
	t.Helper()
	return startParserWith(t, e, parser.Config{})
}

// startParserWith runs a parser with cfg, whose Workers, TempDir and
// RetryDelay are set for tests.
func startParserWith(t *testing.T, e *env, cfg parser.Config) (tempDir string) {
	t.Helper()
	tempDir = t.TempDir()
	cfg.Workers, cfg.TempDir, cfg.RetryDelay = 2, tempDir, 50*time.Millisecond
	svc := parser.New(cfg, e.Res, stagetest.Logger(t))
	stagetest.Run(t, svc.Run)
	return tempDir
}

// submit stores data (when store is set) and publishes the parse job for
// it, after recording the task as the earlier stages would have.
func (e *env) submit(t testing.TB, id, docID string, data []byte, store bool) pipeline.ParseJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	sum := sha256.Sum256(data)
	doc := pipeline.Document{Object: pipeline.Token(id), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	if store {
		if _, err := e.Res.Objects.PutBytes(ctx, doc.Object, data); err != nil {
			t.Fatalf("put object: %v", err)
		}
	}
	return e.publishJob(t, id, docID, doc)
}

// publishJob marks task id fetching and publishes its parse job for doc,
// an object already in the store.
func (e *env) publishJob(t testing.TB, id, docID string, doc pipeline.Document) pipeline.ParseJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	job := pipeline.ParseJob{
		Task:     task.Task{ID: id, DocID: docID, UserID: "u1", FileName: id + ".pdf", URL: "http://example.invalid/" + id},
		Document: doc,
	}
	if _, err := e.Status.Update(ctx, id, func(st *status.Status) { st.State = status.Fetching }); err != nil {
		t.Fatalf("status: %v", err)
	}
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Parse.Subject(id), id, id+":parse", job); err != nil {
		t.Fatalf("publish parse job: %v", err)
	}
	return job
}

func md5ID(docID string, i int) string {
	sum := md5.Sum([]byte(docID + "_" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// expectParsed checks everything a parsed document leaves behind and
// returns its chunks in publication order.
func (e *env) expectParsed(t *testing.T, job pipeline.ParseJob) []pipeline.Chunk {
	t.Helper()
	return e.expectParsedIDs(t, job, func(i int) string { return md5ID(job.Task.DocID, i) })
}

// expectParsedIDs is expectParsed with chunk i's id wantID(i).
func (e *env) expectParsedIDs(t *testing.T, job pipeline.ParseJob, wantID func(i int) string) []pipeline.Chunk {
	t.Helper()
	id := job.Task.ID
	m := e.NextMsg(t, pipeline.Ingest.Subject(id))
	var ij pipeline.IngestJob
	if err := pipeline.Decode(m.Data(), &ij); err != nil {
		t.Fatalf("ingest job: %v", err)
	}
	if ij.Task.ID != id || ij.Task.DocID != job.Task.DocID {
		t.Errorf("ingest job task: got %q/%q, want %q/%q", ij.Task.ID, ij.Task.DocID, id, job.Task.DocID)
	}
	if ij.Document != job.Document {
		t.Errorf("ingest job document: got %+v, want %+v", ij.Document, job.Document)
	}
	if ij.Pages != samplePages {
		t.Errorf("ingest job pages: got %d, want %d", ij.Pages, samplePages)
	}
	if ij.Chunks < 2 {
		t.Fatalf("ingest job chunks: got %d, want at least 2 for a %d-page sample", ij.Chunks, samplePages)
	}

	// Every embed job, in the order the stream stored them.
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	c, err := e.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{pipeline.Embed.Subject(id) + ".>"}})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	var chunks []pipeline.Chunk
	msgs := 0
	for len(chunks) < ij.Chunks {
		m, err := c.Next(jetstream.FetchMaxWait(stagetest.WaitLimit))
		if err != nil {
			t.Fatalf("embed job after chunk %d of %d: %v", len(chunks), ij.Chunks, err)
		}
		msgs++
		ej, err := pipeline.DecodeEmbedJob(m.Data())
		if err != nil {
			t.Fatalf("embed job: %v", err)
		}
		// A job holds consecutive chunks, at the subject of the first.
		first := len(chunks)
		if want := pipeline.Embed.Subject(id, strconv.Itoa(first)); m.Subject() != want {
			t.Errorf("embed job from chunk %d: got subject %s, want %s", first, m.Subject(), want)
		}
		if got, want := m.Headers().Get(jetstream.MsgIDHeader), pipeline.MsgID(id, 0, "embed", strconv.Itoa(first)); got != want {
			t.Errorf("embed job from chunk %d: got message id %q, want %q", first, got, want)
		}
		if got := m.Headers().Get(pipeline.HeaderTaskID); got != id {
			t.Errorf("embed job from chunk %d header: got %q, want %q", first, got, id)
		}
		if ej.TaskID != id || ej.SkipEmbedding {
			t.Errorf("embed job from chunk %d: got task %q skip %v, want %q false", first, ej.TaskID, ej.SkipEmbedding, id)
		}
		if n := len(ej.Chunks); n == 0 || n > 16 {
			t.Errorf("embed job from chunk %d holds %d chunks, want 1 to 16", first, n)
		}
		for _, ch := range ej.All() {
			i := len(chunks)
			if ch.Index != i {
				t.Errorf("chunk %d: got index %d", i, ch.Index)
			}
			if want := wantID(i); ch.ID != want {
				t.Errorf("chunk %d: got id %s, want %s", i, ch.ID, want)
			}
			if strings.TrimSpace(ch.Text) == "" {
				t.Errorf("chunk %d: empty text", i)
			}
			if ch.PageStart < 1 || ch.PageEnd < ch.PageStart || ch.PageEnd > samplePages {
				t.Errorf("chunk %d: pages %d-%d, want within 1-%d", i, ch.PageStart, ch.PageEnd, samplePages)
			}
			if i > 0 && ch.PageStart < chunks[i-1].PageStart {
				t.Errorf("chunk %d starts on page %d, before chunk %d (page %d)", i, ch.PageStart, i-1, chunks[i-1].PageStart)
			}
			if (ch.Chapter == "") != (ch.ChapterNum == "") {
				t.Errorf("chunk %d: chapter %q with number %q", i, ch.Chapter, ch.ChapterNum)
			}
			chunks = append(chunks, ch)
		}
	}
	if len(chunks) != ij.Chunks {
		t.Errorf("embed jobs hold %d chunks, want %d (the ingest job's count)", len(chunks), ij.Chunks)
	}
	if n := e.Subjects(t, pipeline.Embed.Subject(id)+".>"); n != msgs || msgs != (ij.Chunks+15)/16 {
		t.Errorf("got %d embed subjects and %d messages for %d chunks, want %d (16 to a message)", n, msgs, ij.Chunks, (ij.Chunks+15)/16)
	}
	var chapters []string
	for _, ch := range chunks {
		if ch.Chapter != "" && (len(chapters) == 0 || chapters[len(chapters)-1] != ch.Chapter) {
			chapters = append(chapters, ch.Chapter)
		}
	}
	if len(chapters) == 0 || !strings.HasPrefix(chapters[0], "1 ") {
		t.Errorf("chapters %q: want the sample's outline, starting with chapter 1", chapters)
	}

	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.State != status.Embedding || st.Pages != samplePages || st.Chunks != ij.Chunks || st.SHA256 != job.Document.SHA256 {
		t.Errorf("status: got %s pages %d chunks %d sha %s, want %s %d %d %s", st.State, st.Pages, st.Chunks, st.SHA256,
			status.Embedding, samplePages, ij.Chunks, job.Document.SHA256)
	}
	return chunks
}

func expectNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("temp dir holds %d files after the jobs ended, want none", len(left))
	}
}

func TestParseGoodPDF(t *testing.T) {
	e := newEnv(t)
	dir := startParser(t, e)
	pdf := samplePDF(t)

	first := e.expectParsed(t, e.submit(t, "task-a", "doc-A", pdf, true))
	// The same document parsed again (another task of the same DocID, as a
	// replay would) gives the same chunks under the same ids.
	again := e.expectParsed(t, e.submit(t, "task-b", "doc-A", pdf, true))
	if len(again) != len(first) {
		t.Fatalf("second parse: got %d chunks, want %d", len(again), len(first))
	}
	for i := range first {
		if again[i] != first[i] {
			t.Errorf("chunk %d differs between two parses:\n got %+v\nwant %+v", i, again[i], first[i])
		}
	}
	e.WaitSettled(t, pipeline.Parse)
	expectNoTempFiles(t, dir)
}

// TestChunkIDDefault: the ids the original service gave known DocIDs
// (md5 hex of "<DocID>_<index>", as Python's hashlib computed them),
// written down once from coreutils' md5sum rather than recomputed with
// the formula under test.
func TestChunkIDDefault(t *testing.T) {
	tests := []struct {
		docID string
		index int
		want  string
	}{
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", 0, "72f441f82a6a9a027202721bc21fb1de"},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", 1, "3c834af9c097a8ed88755cd04c7dcf65"},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", 10, "314e11c81f31d6ca4f83371a3da3e23d"},
		{"d1", 0, "32afa2730b6e86c9d512d060c77c7351"},
		{"d1", 7, "4dc3e1632b0304e01f5fcd06a965afb0"},
	}
	for _, tc := range tests {
		if got := parser.ChunkID(tc.docID, tc.index); got != tc.want {
			t.Errorf("ChunkID(%s, %d): got %s, want %s", tc.docID, tc.index, got, tc.want)
		}
	}
}

func TestParseContentChunkIDs(t *testing.T) {
	e := newEnv(t)
	startParserWith(t, e, parser.Config{ChunkIDScheme: parser.ChunkIDContent})
	pdf := samplePDF(t)
	sum := sha256.Sum256(pdf)
	digest := pdftext.Options{}.Digest("mupdf")
	want := func(i int) string {
		h := sha256.Sum256([]byte(hex.EncodeToString(sum[:]) + "\x00" + digest + "\x00" + strconv.Itoa(i)))
		return hex.EncodeToString(h[:16])
	}
	// Two tasks with different DocIDs: the ids come from the bytes and the
	// settings only, so both get the same ones.
	first := e.expectParsedIDs(t, e.submit(t, "task-c1", "doc-C1", pdf, true), want)
	again := e.expectParsedIDs(t, e.submit(t, "task-c2", "doc-C2", pdf, true), want)
	if len(first) != len(again) {
		t.Fatalf("second parse: got %d chunks, want %d", len(again), len(first))
	}
	seen := map[string]bool{}
	for i, ch := range first {
		if len(ch.ID) != 32 || ch.ID == md5ID("doc-C1", i) {
			t.Errorf("chunk %d: got id %q, want 32 hex digits other than the docid scheme's", i, ch.ID)
		}
		if seen[ch.ID] {
			t.Errorf("chunk %d: id %s repeated", i, ch.ID)
		}
		seen[ch.ID] = true
	}
	if got := parser.ContentChunkID(hex.EncodeToString(sum[:]), digest, 1); got != want(1) {
		t.Errorf("ContentChunkID: got %s, want %s", got, want(1))
	}
	if a, b := parser.ContentChunkID("x", pdftext.Options{}.Digest("mupdf"), 0),
		parser.ContentChunkID("x", pdftext.Options{ChunkSize: 500}.Digest("mupdf"), 0); a == b {
		t.Errorf("ContentChunkID ignores the chunking settings: %s for both", a)
	}
}

func TestParseBadInput(t *testing.T) {
	good := samplePDF(t)
	tests := []struct {
		name       string
		data       func(t *testing.T) []byte
		missing    bool // the object is not in the store
		wantReason []string
		wantClass  string // pdfpipe_stage_errors_total's class
	}{
		{name: "corrupt", data: func(*testing.T) []byte {
			return []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\n" +
				strings.Repeat("\x00garbage\xff", 200) + "\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
		}, wantReason: []string{"pdf is corrupt"}, wantClass: "bad_input"},
		{name: "truncated", data: func(*testing.T) []byte { return good[:300] },
			wantReason: []string{"truncated", "pdf is corrupt"}, wantClass: "bad_input"},
		{name: "encrypted without password", data: encryptedPDF,
			wantReason: []string{"password required", "pdf is encrypted"}, wantClass: "bad_input"},
		{name: "not a pdf", data: func(*testing.T) []byte { return []byte("Hello, this is a plain text file.\n") },
			wantReason: []string{"no %PDF- header", "not a pdf"}, wantClass: "bad_input"},
		{name: "empty file", data: func(*testing.T) []byte { return nil },
			wantReason: []string{"empty file", "not a pdf"}, wantClass: "bad_input"},
		{name: "no text", data: blankPDF,
			wantReason: []string{"none of the 2 pages has a text layer", "no extractable text"}, wantClass: "bad_input"},
		{name: "unreadable text", data: garbagePDF,
			wantReason: []string{"no page has readable text", "2 of 3 pages is mostly U+FFFD", "1 have no text layer", "pdf text is unreadable"}, wantClass: "bad_input"},
		{name: "object missing", data: func(*testing.T) []byte { return good }, missing: true,
			wantReason: []string{"no longer in the object store"}, wantClass: "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data(t)
			e := newEnv(t)
			reg := e.WithMetrics(t)
			dir := startParser(t, e)
			terms := e.WatchTerminated(t, pipeline.Parse)

			const id = "bad-1"
			e.submit(t, id, id, data, !tc.missing)
			st := e.WaitTerminal(t, id)
			if st.State != status.Failed {
				t.Fatalf("got state %s, want %s", st.State, status.Failed)
			}
			if st.Stage != string(pipeline.Parse) {
				t.Errorf("got failed stage %q, want %q", st.Stage, pipeline.Parse)
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(st.Error, want) {
					t.Errorf("reason %q: want it to contain %q", st.Error, want)
				}
			}
			if adv := stagetest.WaitTerminated(t, terms); adv.Deliveries != 1 {
				t.Errorf("job delivered %d times, want 1 (a bad file is not retried)", adv.Deliveries)
			}
			if n := e.Subjects(t, pipeline.Ingest.Subject(id)); n != 0 {
				t.Errorf("got %d ingest jobs for the failed task, want none", n)
			}

			// The service is still serving: a good document completes.
			chunks := e.expectParsed(t, e.submit(t, "good-after", "good-after", good, true))
			e.WaitSettled(t, pipeline.Parse)
			expectNoTempFiles(t, dir)

			// The failure is counted under its class, the good document's
			// work alone in the stage's counters.
			testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				failed := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total",
					map[string]string{"stage": "parse", "class": tc.wantClass, "disposition": "failed"})
				all := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "parse"})
				work := map[string]float64{"documents": 1, "pages": samplePages, "chunks": float64(len(chunks)), "bytes": float64(len(good))}
				for what, want := range work {
					if got := stagetest.Metric(t, reg, "pdfpipe_"+what+"_total", map[string]string{"stage": "parse"}); got != want {
						return fmt.Errorf("%s_total{stage=parse} = %v, want %v", what, got, want)
					}
				}
				if failed != 1 || all != 1 {
					return fmt.Errorf("errors{class=%s,disposition=failed} = %v, of any class %v; want 1, 1", tc.wantClass, failed, all)
				}
				return nil
			})
		})
	}
}

func TestParseTaskAlreadyFailed(t *testing.T) {
	e := newEnv(t)
	dir := startParser(t, e)
	ctx := context.Background()
	const id = "ended-1"
	if _, err := e.Status.Create(ctx, status.Status{TaskID: id}); err != nil {
		t.Fatal(err)
	}
	if err := e.Status.Fail(ctx, id, string(pipeline.Fetch), errors.New("fetch gave up")); err != nil {
		t.Fatal(err)
	}
	e.submitEnded(t, id, samplePDF(t))
	info := e.WaitSettled(t, pipeline.Parse)
	if info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d messages, want 1", info.Delivered.Consumer)
	}
	if n := e.Subjects(t, pipeline.Embed.Subject(id)+".>"); n != 0 {
		t.Errorf("got %d embed jobs for an ended task, want none", n)
	}
	if n := e.Subjects(t, pipeline.Ingest.Subject(id)); n != 0 {
		t.Errorf("got %d ingest jobs for an ended task, want none", n)
	}
	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Failed || st.Stage != string(pipeline.Fetch) || st.Error != "fetch gave up" {
		t.Errorf("status: got %s at %q (%q), want the earlier failure kept", st.State, st.Stage, st.Error)
	}
	expectNoTempFiles(t, dir)
}

// submitEnded stores data and publishes a parse job for a task that has
// ended, leaving its status alone.
func (e *env) submitEnded(t *testing.T, id string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	if _, err := e.Res.Objects.PutBytes(ctx, pipeline.Token(id), data); err != nil {
		t.Fatalf("put object: %v", err)
	}
	sum := sha256.Sum256(data)
	job := pipeline.ParseJob{Task: task.Task{ID: id, DocID: id},
		Document: pipeline.Document{Object: pipeline.Token(id), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}}
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Parse.Subject(id), id, id+":parse", job); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// TestParseReportsEmptyPages checks that pages without a text layer are
// counted in the ingest job and the task status, pages of undecodable
// text in the status, and that neither produces a chunk.
func TestParseReportsEmptyPages(t *testing.T) {
	e := newEnv(t)
	startParser(t, e)
	text := func(s string) pdfgen.Page { return pdfgen.Page{Blocks: []pdfgen.Block{{Text: s}}} }
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Doc{Pages: []pdfgen.Page{{}, text("Page two has text."), {}, {}, text("Page five too."), text("\uFFFD\uFFFD\uFFFD\uE000\uE001")}}); err != nil {
		t.Fatal(err)
	}
	job := e.submit(t, "task-empty", "doc-E", buf.Bytes(), true)
	var ij pipeline.IngestJob
	if err := pipeline.Decode(e.NextMsg(t, pipeline.Ingest.Subject(job.Task.ID)).Data(), &ij); err != nil {
		t.Fatalf("ingest job: %v", err)
	}
	if ij.Pages != 6 || ij.EmptyPages != 3 || ij.Chunks != 1 {
		t.Errorf("ingest job: got pages %d, empty %d, chunks %d; want 6, 3, 1", ij.Pages, ij.EmptyPages, ij.Chunks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	st, err := e.Status.Get(ctx, job.Task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pages != 6 || st.EmptyPages != 3 || st.UnreadablePages != 1 {
		t.Errorf("status: got pages %d, empty %d, unreadable %d; want 6, 3, 1", st.Pages, st.EmptyPages, st.UnreadablePages)
	}
	c, err := pipeline.DecodeEmbedJob(e.NextMsg(t, pipeline.Embed.Subject(job.Task.ID, "0")).Data())
	if err != nil {
		t.Fatal(err)
	}
	all := c.All()
	if len(all) != 1 {
		t.Fatalf("got %d chunks, want 1", len(all))
	}
	if want := "Page two has text.\n\nPage five too."; all[0].Text != want || all[0].PageStart != 2 || all[0].PageEnd != 5 {
		t.Errorf("chunk: got %q pages %d-%d, want %q pages 2-5", all[0].Text, all[0].PageStart, all[0].PageEnd, want)
	}
}

// BenchmarkParseService runs the parser stage on the PDF named by
// PARSER_BENCH_PDF (skipped when unset) against an in-process JetStream
// server: download, parse, chunk and publish every chunk with its PubAck,
// until the ingest job is stored. bench/parser.sh reports it.
func BenchmarkParseService(b *testing.B) {
	path := os.Getenv("PARSER_BENCH_PDF")
	if path == "" {
		b.Skip("PARSER_BENCH_PDF not set")
	}
	sum, size, err := fileSHA256(path)
	if err != nil {
		b.Fatal(err)
	}
	mupdf.LimitMallocArenas(2) // as cmd/parser does
	parser.TuneGC(os.Getenv)
	// PARSER_BENCH_NATS_URL: a NATS server of its own (bench/parser.sh
	// runs one on the other core, as production runs NATS apart from the
	// parser); otherwise one in this process, sharing the parser's CPU.
	url := os.Getenv("PARSER_BENCH_NATS_URL")
	// PARSER_BENCH_SERVICE=external: a parser process of its own serves
	// the jobs (bench/parser.sh runs cmd/parser and reads its peak RSS);
	// this process only stores the PDF, publishes the job and waits.
	external := os.Getenv("PARSER_BENCH_SERVICE") == "external"
	if external && url == "" {
		b.Fatal("PARSER_BENCH_SERVICE=external needs PARSER_BENCH_NATS_URL")
	}
	pages := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		var e *env
		if url != "" {
			e = externalEnv(b, url)
		} else {
			e = newEnv(b)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		if external {
			done <- nil
		} else {
			svc := parser.New(parser.Config{Workers: 1, TempDir: b.TempDir()}, e.Res, slog.New(slog.DiscardHandler))
			go func() { done <- svc.Run(ctx) }()
		}
		// Storing the PDF is the fetcher's work: the clock starts when
		// the parse job is published.
		id := "bench-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		doc := pipeline.Document{Object: pipeline.Token(id), SHA256: sum, Size: size}
		if err := putFile(ctx, e.Res.Objects, doc.Object, path); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		e.publishJob(b, id, id, doc)
		c, err := e.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{pipeline.Ingest.Subject(id)}})
		if err != nil {
			b.Fatal(err)
		}
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Minute))
		if err != nil {
			b.Fatalf("no ingest job: %v", err)
		}
		var ij pipeline.IngestJob
		if err := pipeline.Decode(m.Data(), &ij); err != nil {
			b.Fatal(err)
		}
		pages += ij.Pages
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
	b.ReportMetric(float64(pages)/b.Elapsed().Seconds(), "pages/s")
}

// fileSHA256 returns the hex SHA-256 and the size of the file at path.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// putFile stores the file at path as object name, streaming it.
func putFile(ctx context.Context, objects jetstream.ObjectStore, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = objects.Put(ctx, jetstream.ObjectMeta{Name: name}, f)
	return err
}

// TestParseTaskPassword opens a PDF encrypted with a user password with
// the password its task sent through the gateway (the keys bucket), also
// when it arrives after the parse started, and fails the task with the
// reason when it is wrong or never comes. The password is in no log line
// and no message.
func TestParseTaskPassword(t *testing.T) {
	const user, wrong = "Pdf-User-Secret-42", "Not-The-Password-Secret-7"
	enc := encryptedPDFWith(t, user)
	tests := []struct {
		name       string
		password   string        // "" sends none
		late       time.Duration // sent this long after the job
		wantReason []string      // empty: the task is parsed
	}{
		{name: "before the job", password: user},
		{name: "after the job", password: user, late: 300 * time.Millisecond},
		{name: "wrong", password: wrong, wantReason: []string{"wrong password", "pdf is encrypted"}},
		{name: "never", wantReason: []string{"password required", "pdf is encrypted", "within 1s", `provider "pdf"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			logs := &testenv.LogBuffer{}
			cfg := parser.Config{Workers: 1, TempDir: t.TempDir(), RetryDelay: 50 * time.Millisecond, PasswordWait: time.Second}
			stagetest.Run(t, parser.New(cfg, e.Res, slog.New(slog.NewTextHandler(logs, nil))).Run)
			const id = "enc-1"
			put := func() {
				if err := pipeline.PutPDFPassword(context.Background(), e.Res.Keys, id, tc.password, time.Hour); err != nil {
					t.Error(err)
				}
			}
			if tc.password != "" && tc.late == 0 {
				put()
			}
			job := e.submit(t, id, id, enc, true)
			if tc.password != "" && tc.late > 0 {
				time.AfterFunc(tc.late, put)
			}
			if len(tc.wantReason) == 0 {
				if chunks := e.expectParsed(t, job); len(chunks) == 0 {
					t.Fatal("no chunks")
				}
			} else {
				st := e.WaitTerminal(t, id)
				if st.State != status.Failed {
					t.Fatalf("got state %s, want %s", st.State, status.Failed)
				}
				for _, want := range tc.wantReason {
					if !strings.Contains(st.Error, want) {
						t.Errorf("reason %q: want it to contain %q", st.Error, want)
					}
				}
			}
			e.WaitSettled(t, pipeline.Parse)
			if !strings.Contains(logs.String(), id) {
				t.Fatalf("log capture is not working: no line names %s", id)
			}
			if !streamContains(t, e, `"`+id+`"`) {
				t.Fatalf("stream reading is not working: no message names %s", id)
			}
			for _, secret := range []string{user, wrong} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("a password appears in the logs:\n%s", logs)
				}
				if streamContains(t, e, secret) {
					t.Errorf("a password appears in a message of %s", pipeline.Stream)
				}
			}
		})
	}
}

// streamContains reports whether any message of the pipeline stream
// contains s.
func streamContains(t *testing.T, e *env, s string) bool {
	t.Helper()
	ctx := t.Context()
	c, err := e.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data()), s) {
			return true
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			return false
		}
	}
}

// externalEnv connects to a NATS server that is not part of the test
// process and sets the pipeline up there.
func externalEnv(b *testing.B, url string) *env {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	// The production settings: Setup sets them on the server's consumers,
	// which a parser process (PARSER_BENCH_SERVICE=external) shares. The
	// tests' short AckWait made it parse fullrefman twice now and then.
	res, err := pipeline.Setup(ctx, js, pipeline.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return &env{&stagetest.Env{NC: nc, JS: js, Res: res, Status: status.New(res.Status)}}
}
