package embedder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// dim is the dimension every test asks for (the backend's vector(384)).
const dim = 384

// ackWait is the consumers' AckWait: short, so a handler that waits longer
// without InProgress would be redelivered during the test.
const ackWait = stagetest.AckWait

// harness is one embedded JetStream server with the pipeline's topology,
// and the embedders a test starts on it.
type harness struct {
	t    *testing.T
	ctx  context.Context
	srv  *natsembed.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	res  *pipeline.Resources
	logs *testenv.LogBuffer
	// sealer, when set before start, is the embedders' PDFPIPE_SECRET_KEY.
	sealer *pipeline.Sealer
	// tracer and metrics, when set before start, are the embedders'.
	tracer  trace.TracerProvider
	metrics *metrics.Metrics

	mu       sync.Mutex
	stops    []func()
	stopOnce sync.Once
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := stagetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, srv: env.Srv, nc: env.NC, js: env.JS, res: env.Res, logs: &testenv.LogBuffer{}}
	t.Cleanup(h.stopAll) // runs before the connection and the server go away
	return h
}

// logger writes JSON lines at every level into the harness's buffer.
func (h *harness) logger(name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("service", name)
}

// newService builds an embedder from env (through ConfigFromEnv) on its
// own connection, as a separate replica would have.
func (h *harness) newService(env map[string]string) *embedder.Service {
	h.t.Helper()
	cfg, err := embedder.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		h.t.Fatalf("ConfigFromEnv: %v", err)
	}
	nc, err := h.srv.Connect("embedder")
	if err != nil {
		h.t.Fatalf("connect: %v", err)
	}
	h.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatalf("jetstream: %v", err)
	}
	res, err := pipeline.Setup(h.ctx, js, pipeline.Config{MaxDeliver: stagetest.MaxDeliver, AckWait: ackWait, Sealer: h.sealer,
		Tracer: h.tracer, Metrics: h.metrics})
	if err != nil {
		h.t.Fatalf("pipeline.Setup: %v", err)
	}
	svc, err := embedder.New(cfg, res, nc, h.logger("embedder"))
	if err != nil {
		h.t.Fatalf("embedder.New: %v", err)
	}
	return svc
}

// run starts svc.Run until stopAll, which cancels it, waits for it and
// reports an error it returned.
func (h *harness) run(svc *embedder.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stops = append(h.stops, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Errorf("Run did not return within 30s of its context ending")
		}
	})
}

// start builds and runs an embedder.
func (h *harness) start(env map[string]string) *embedder.Service {
	h.t.Helper()
	svc := h.newService(env)
	h.run(svc)
	return svc
}

// stopAll stops every service started by run and waits for each.
func (h *harness) stopAll() {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		stops := h.stops
		h.mu.Unlock()
		for _, stop := range stops {
			stop()
		}
	})
}

// createTask records the task as the earlier stages would have.
func (h *harness) createTask(taskID string) {
	h.t.Helper()
	ok, err := status.New(h.res.Status).Create(h.ctx, status.Status{TaskID: taskID, State: status.Embedding})
	if err != nil || !ok {
		h.t.Fatalf("create status %s: created %v, err %v", taskID, ok, err)
	}
}

// texts returns n distinct chunk texts of a task.
func texts(taskID string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("Chunk %d of %s: the invoice total for order %d is %d euros, due on day %d.", i, taskID, 1000+i, 37*i+11, i%28+1)
	}
	return out
}

// publish sends the chunks from index first on, in a random order, as
// the parser would (chunk ids like the original's).
func (h *harness) publish(taskID string, texts []string, first int, skip bool) {
	h.t.Helper()
	order := rand.Perm(len(texts))
	for _, j := range order {
		i := first + j
		job := pipeline.EmbedJob{TaskID: taskID, SkipEmbedding: skip, Chunk: pipeline.Chunk{
			ID: fmt.Sprintf("%s-chunk-%d", taskID, i), Index: i, Text: texts[j], PageStart: i/3 + 1, PageEnd: i/3 + 1}}
		if _, err := pipeline.Publish(h.ctx, h.js, pipeline.Embed.Subject(taskID, strconv.Itoa(i)), taskID, "", job); err != nil {
			h.t.Fatalf("publish chunk %d: %v", i, err)
		}
	}
}

// submit records a task and publishes n generated chunks for it, as the
// parser would, and returns their texts.
func (h *harness) submit(taskID string, n int) []string {
	h.t.Helper()
	h.createTask(taskID)
	in := texts(taskID, n)
	h.publish(taskID, in, 0, false)
	return in
}

// publishBatches sends the chunks from index 0 on as parsers before
// binary embed messages did: size to a message (JSON), at the subject of
// each message's first chunk.
func (h *harness) publishBatches(taskID string, texts []string, size int) {
	h.t.Helper()
	h.publishBatchesAs(taskID, texts, size, false)
}

// publishBatchesAs is publishBatches in binary embed messages, as the
// parser sends them now, when binary is set.
func (h *harness) publishBatchesAs(taskID string, texts []string, size int, binary bool) {
	h.t.Helper()
	for first := 0; first < len(texts); first += size {
		var batch []pipeline.Chunk
		for i := first; i < min(first+size, len(texts)); i++ {
			batch = append(batch, pipeline.Chunk{ID: fmt.Sprintf("%s-chunk-%d", taskID, i), Index: i, Text: texts[i], PageStart: i/3 + 1, PageEnd: i/3 + 1})
		}
		job := pipeline.EmbedJob{TaskID: taskID, Chunks: batch}
		subj := pipeline.Embed.Subject(taskID, strconv.Itoa(first))
		var err error
		if binary {
			_, err = h.js.PublishMsg(h.ctx, pipeline.NewEmbedMsg(subj, job))
		} else {
			_, err = pipeline.Publish(h.ctx, h.js, subj, taskID, "", job)
		}
		if err != nil {
			h.t.Fatalf("publish chunks from %d: %v", first, err)
		}
	}
}

// vectorCount is how many chunks of the task have a vector.
func (h *harness) vectorCount(taskID string) (int, error) {
	subjects, err := h.vectorSubjects(taskID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range subjects {
		if sp, ok := pipeline.ParseVectorSubject(taskID, s); ok {
			n += sp.Count
		}
	}
	return n, nil
}

func (h *harness) vectorSubjects(taskID string) ([]string, error) {
	st, err := h.js.Stream(h.ctx, pipeline.VectorStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(h.ctx, jetstream.WithSubjectFilter(pipeline.VectorFilter(taskID)))
	if err != nil {
		return nil, err
	}
	var out []string
	for s := range info.State.Subjects {
		out = append(out, s)
	}
	return out, nil
}

// waitVectors waits until chunks 0..n-1 of the task have vectors, and
// returns them by index. It fails at once if the task fails.
func (h *harness) waitVectors(taskID string, n int, within time.Duration) []pipeline.Vector {
	h.t.Helper()
	testenv.CheckFor(h.t, within, 20*time.Millisecond, func() error {
		if st, err := status.New(h.res.Status).Get(h.ctx, taskID); err == nil && st.State == status.Failed {
			h.t.Fatalf("task %s failed at %s: %s", taskID, st.Stage, st.Error)
		}
		got, err := h.vectorCount(taskID)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("got %d vectors of task %s, want %d", got, taskID, n)
		}
		return nil
	})
	return h.vectors(taskID, n)
}

// vectors reads the vectors of chunks 0..n-1 by subject, each with its
// chunk: from the vector itself (one vector per chunk) or, for a vector
// batch, from the embed message it names.
func (h *harness) vectors(taskID string, n int) []pipeline.Vector {
	h.t.Helper()
	subjects, err := h.vectorSubjects(taskID)
	if err != nil {
		h.t.Fatal(err)
	}
	spans, have := pipeline.CoverVectors(taskID, subjects, n)
	if have != n {
		h.t.Fatalf("vectors of %s: %d of %d chunks stored (%v)", taskID, have, n, subjects)
	}
	vs, err := h.js.Stream(h.ctx, pipeline.VectorStream)
	if err != nil {
		h.t.Fatal(err)
	}
	ss, err := h.js.Stream(h.ctx, pipeline.Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []pipeline.Vector
	for _, sp := range spans {
		m, err := vs.GetLastMsgForSubject(h.ctx, sp.Subject)
		if err != nil {
			h.t.Fatalf("vectors %s: %v", sp.Subject, err)
		}
		if got := m.Header.Get(pipeline.HeaderTaskID); got != taskID {
			h.t.Errorf("vectors %s: header %s = %q, want %q", sp.Subject, pipeline.HeaderTaskID, got, taskID)
		}
		b, err := pipeline.DecodeVectorBatch(m.Data)
		if errors.Is(err, pipeline.ErrNotVectorBatch) {
			v, err := pipeline.DecodeVector(m.Data)
			if err != nil {
				h.t.Fatalf("decode vector %s: %v", sp.Subject, err)
			}
			out = append(out, v)
			continue
		}
		if err != nil {
			h.t.Fatalf("decode vectors %s: %v", sp.Subject, err)
		}
		src, err := ss.GetMsg(h.ctx, b.Source)
		if err != nil {
			h.t.Fatalf("vectors %s: embed message %d: %v", sp.Subject, b.Source, err)
		}
		job, err := pipeline.DecodeEmbedJob(src.Data)
		if err != nil {
			h.t.Fatalf("vectors %s: embed message %d: %v", sp.Subject, b.Source, err)
		}
		for k, vec := range b.Vectors {
			v := pipeline.Vector{TaskID: b.TaskID, Model: b.Model, Vector: vec}
			for _, c := range job.Chunks {
				if c.Index == sp.First+k {
					v.Chunk = c
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// waitFailed waits until the task is failed and returns its record.
func (h *harness) waitFailed(taskID string, within time.Duration) status.Status {
	h.t.Helper()
	var st status.Status
	testenv.CheckFor(h.t, within, 20*time.Millisecond, func() error {
		var err error
		st, err = status.New(h.res.Status).Get(h.ctx, taskID)
		if err != nil {
			return err
		}
		if st.State != status.Failed {
			return fmt.Errorf("task %s is %s, want failed", taskID, st.State)
		}
		return nil
	})
	return st
}

// state returns the task's current state.
func (h *harness) state(taskID string) status.Status {
	h.t.Helper()
	st, err := status.New(h.res.Status).Get(h.ctx, taskID)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitDrained waits until the embed consumer has nothing pending or
// unacknowledged: every chunk was acked or terminated.
func (h *harness) waitDrained(within time.Duration) {
	h.t.Helper()
	testenv.CheckFor(h.t, within, 20*time.Millisecond, func() error {
		c, err := h.js.Consumer(h.ctx, pipeline.Stream, pipeline.Embed.Durable())
		if err != nil {
			return err
		}
		info, err := c.Info(h.ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("embed consumer: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// checkLocal asserts that vecs are the local embedder's vectors of texts.
func checkLocal(t *testing.T, taskID string, vecs []pipeline.Vector, texts []string) {
	t.Helper()
	checkLocalDim(t, taskID, vecs, texts, dim)
}

// checkLocalDim is checkLocal for vectors of d dimensions.
func checkLocalDim(t *testing.T, taskID string, vecs []pipeline.Vector, texts []string, d int) {
	t.Helper()
	local := provider.NewLocal(d)
	for i, v := range vecs {
		checkChunkDim(t, taskID, i, v, texts[i], d)
		if !equal(v.Vector, local.Vector(texts[i]), 0) {
			t.Errorf("chunk %d: vector is not the local embedding of its text", i)
		}
		if want := "local/" + provider.LocalModel; v.Model != want {
			t.Errorf("chunk %d: model %q, want %q", i, v.Model, want)
		}
	}
}

// checkChunk asserts that a vector message carries the chunk it was made for.
func checkChunk(t *testing.T, taskID string, i int, v pipeline.Vector, text string) {
	t.Helper()
	checkChunkDim(t, taskID, i, v, text, dim)
}

func checkChunkDim(t *testing.T, taskID string, i int, v pipeline.Vector, text string, dim int) {
	t.Helper()
	if v.TaskID != taskID || v.Chunk.Index != i || v.Chunk.Text != text || v.Chunk.ID != fmt.Sprintf("%s-chunk-%d", taskID, i) {
		t.Errorf("vector at index %d: task %q chunk %d id %q text %q; want task %q chunk %d text %q",
			i, v.TaskID, v.Chunk.Index, v.Chunk.ID, v.Chunk.Text, taskID, i, text)
	}
	if len(v.Vector) != dim {
		t.Errorf("chunk %d: got %d floats, want %d", i, len(v.Vector), dim)
	}
}

// equal compares vectors component by component within tol.
func equal(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i])-float64(b[i])) > tol {
			return false
		}
	}
	return true
}

// checkSecret stops the services, then asserts that secret appears in no
// log line, no stage or vector message (body or header) and no status record.
func (h *harness) checkSecret(secret string) {
	h.t.Helper()
	if len(secret) < 8 {
		h.t.Fatalf("secret %q too short to search for", secret)
	}
	h.stopAll()
	logs := h.logs.String()
	for n, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, secret) {
			h.t.Errorf("log line %d contains the API key: %s", n+1, line)
		}
	}
	for _, name := range []string{pipeline.Stream, pipeline.VectorStream, "KV_" + pipeline.StatusBucket,
		"KV_" + pipeline.EmbedCacheBucket, "KV_" + pipeline.EmbedRateBucket} {
		st, err := h.js.Stream(h.ctx, name)
		if err != nil {
			h.t.Fatalf("stream %s: %v", name, err)
		}
		info, err := st.Info(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if info.State.Msgs == 0 && (name == pipeline.Stream || name == "KV_"+pipeline.StatusBucket) {
			h.t.Errorf("stream %s is empty: the secret check would be vacuous", name)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := st.GetMsg(h.ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				h.t.Fatalf("stream %s seq %d: %v", name, seq, err)
			}
			if bytes.Contains(m.Data, []byte(secret)) || strings.Contains(m.Subject, secret) {
				h.t.Errorf("stream %s seq %d (%s) contains the API key", name, seq, m.Subject)
			}
			for k, vs := range m.Header {
				for _, v := range vs {
					if strings.Contains(v, secret) {
						h.t.Errorf("stream %s seq %d header %s contains the API key", name, seq, k)
					}
				}
			}
		}
	}
}

// query sends one GetEmbedding request and decodes the reply.
func query(t *testing.T, nc *nats.Conn, q any) (pipeline.EmbedReply, error) {
	t.Helper()
	data, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(pipeline.QuerySubject, data, 10*time.Second)
	if err != nil {
		return pipeline.EmbedReply{}, err
	}
	var r pipeline.EmbedReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("decode reply %q: %v", m.Data, err)
	}
	return r, nil
}

// consistently calls f every `every` for d and fails the test as soon as
// f returns an error: a condition that must hold for a while.
func consistently(t *testing.T, d, every time.Duration, f func() error) {
	t.Helper()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := f(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
