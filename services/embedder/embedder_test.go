package embedder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// startupText is what the start-up check of a remote default embeds.
const startupText = "pdfpipe start-up check"

// chunkRequests returns the fake's requests that carried chunk texts
// (everything but the start-up check).
func chunkRequests(log []providertest.Request) []providertest.Request {
	var out []providertest.Request
	for _, r := range log {
		if len(r.Inputs) == 1 && r.Inputs[0] == startupText {
			continue
		}
		out = append(out, r)
	}
	return out
}

// sentOnce asserts that successful requests embedded each text exactly
// once, and nothing else.
func sentOnce(t *testing.T, log []providertest.Request, texts []string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range chunkRequests(log) {
		if r.Status != http.StatusOK {
			continue
		}
		for _, in := range r.Inputs {
			count[in]++
		}
	}
	for i, text := range texts {
		if count[text] != 1 {
			t.Errorf("chunk %d was embedded %d times, want 1", i, count[text])
		}
		delete(count, text)
	}
	for text, n := range count {
		t.Errorf("the provider embedded %q %d times, which is no chunk of the task", text, n)
	}
}

func TestLocalDefaultEmbedsEveryChunkByIndex(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(map[string]string{}) // EMBEDDING_PROVIDER defaults to local
	const task = "6f1c2a9e-1b7d-4f0a-9a63-2c1d1e0b7a11"
	in := h.submit(task, 50)

	vecs := h.waitVectors(task, 50, 20*time.Second)
	checkLocal(t, task, vecs, in)
	h.waitDrained(10 * time.Second)
	if st := h.state(task); st.State.Terminal() {
		t.Errorf("task state %s after embedding, want it left to the ingester", st.State)
	}
}

// Jobs of several chunks, as the parser sends them (binary) and as
// parsers before did (JSON): every chunk gets its vector, with its own
// metadata, and the vectors of one job are stored together in one vector
// batch (split past pipeline.MaxVectorBatchBytes) that points at the job
// for the text.
func TestJobsOfSeveralChunks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		binary   bool
		dim      int
		size     int
		subjects []string
	}{
		{name: "binary embed messages", binary: true, dim: 384, size: 16,
			subjects: []string{"0.16", "16.16", "32.5"}},
		{name: "JSON embed messages of an older parser", dim: 384, size: 16,
			subjects: []string{"0.16", "16.16", "32.5"}},
		{name: "split past the batch size", binary: true, dim: 3072, size: 37, // 21 vectors of 3072 floats fit
			subjects: []string{"0.21", "21.16"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.start(map[string]string{"EMBEDDING_DIMENSION": strconv.Itoa(tc.dim)})
			const task = "b2c4e6f8-0a1b-4c3d-8e5f-6a7b8c9d0e1f"
			h.createTask(task)
			in := texts(task, 37)
			h.publishBatchesAs(task, in, tc.size, tc.binary)

			vecs := h.waitVectors(task, 37, 20*time.Second)
			checkLocalDim(t, task, vecs, in, tc.dim)
			for i, v := range vecs {
				if v.Chunk.Index != i || v.Chunk.ID != fmt.Sprintf("%s-chunk-%d", task, i) || v.Chunk.PageStart != i/3+1 {
					t.Errorf("vector %d carries chunk %+v", i, v.Chunk)
				}
			}
			subjects, err := h.vectorSubjects(task)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, s := range tc.subjects {
				want = append(want, "pdf.vec."+task+"."+s)
			}
			slices.Sort(subjects)
			slices.Sort(want)
			if !slices.Equal(subjects, want) {
				t.Errorf("vector subjects: got %v, want %v", subjects, want)
			}
			h.waitDrained(10 * time.Second)
		})
	}
}

func TestRagModeFalseSendsZeroVectorsWithoutAPICalls(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"EMBEDDING_BASE_URL": fake.URL,
		"EMBEDDING_API_KEY":  providertest.OpenAIKey,
	})
	// The start-up check is the one request a remote default costs.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := fake.Requests(); n != 1 {
			return fmt.Errorf("fake saw %d requests, want the start-up check", n)
		}
		return nil
	})
	const task = "rag-off"
	h.createTask(task)
	in := texts(task, 20)
	h.publish(task, in, 0, true)

	vecs := h.waitVectors(task, 20, 20*time.Second)
	zero := make([]float32, dim)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, zero, 0) {
			t.Errorf("chunk %d: vector is not all zeros", i)
		}
		if want := "none (RagMode false)"; v.Model != want {
			t.Errorf("chunk %d: model %q, want %q", i, v.Model, want)
		}
	}
	h.waitDrained(10 * time.Second)
	if n := fake.Requests(); n != 1 {
		t.Errorf("fake saw %d requests, want only the start-up check", n)
	}
	if reqs := chunkRequests(fake.Log()); len(reqs) != 0 {
		t.Errorf("chunks of a RagMode false task were sent to the provider: %+v", reqs[0].Inputs)
	}
}

func TestTaskKeyBeforeTaskUsesOpenAIWithThatKey(t *testing.T) {
	t.Parallel()
	const key = "sk-task-key-2b7e151628aed2a6abf71588"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	const task = "task-with-key"
	// The backend calls ProvideAPIKey before it enqueues the task.
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "OpenAI", Key: key}, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL}) // default stays local
	in := h.submit(task, 50)

	vecs := h.waitVectors(task, 50, 20*time.Second)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
		if want := "openai/" + provider.DefaultOpenAIModel; v.Model != want {
			t.Errorf("chunk %d: model %q, want %q", i, v.Model, want)
		}
	}
	log := fake.Log()
	if len(log) == 0 || len(log) >= len(in) {
		t.Errorf("50 chunks took %d requests, want batches (1..49)", len(log))
	}
	for i, r := range log {
		if got := r.Header.Get("Authorization"); got != "Bearer "+key {
			t.Errorf("request %d: not authorised with the task's key", i)
		}
		if r.Dims != dim {
			t.Errorf("request %d: dimensions %d, want %d", i, r.Dims, dim)
		}
		if r.Model != provider.DefaultOpenAIModel {
			t.Errorf("request %d: model %q, want %q", i, r.Model, provider.DefaultOpenAIModel)
		}
		if r.Status != http.StatusOK {
			t.Errorf("request %d: status %d", i, r.Status)
		}
	}
	sentOnce(t, log, in)
	h.checkSecret(key)
}

func TestKeyArrivingAfterTheChunks(t *testing.T) {
	t.Parallel()
	const key = "sk-late-key-9f86d081884c7d659a2feaa0"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	// The default provider cannot serve tasks: openai at api.openai.com
	// without a key. Tasks wait for their own key.
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"OPENAI_BASE_URL":    fake.URL,
		"API_KEY_WAIT":       "10s",
	})
	const task = "late-key"
	in := h.submit(task, 20)

	// Every chunk is taken and waits for the key.
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := h.js.Consumer(h.ctx, pipeline.Stream, pipeline.Embed.Durable())
		if err != nil {
			return err
		}
		info, err := c.Info(h.ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != len(in) {
			return fmt.Errorf("%d chunks in progress, want %d", info.NumAckPending, len(in))
		}
		return nil
	})
	// The key comes later than AckWait: waiting chunks must be kept in
	// progress, not redelivered and embedded twice. Meanwhile nothing is
	// sent and the task stays alive.
	consistently(t, ackWait+500*time.Millisecond, 50*time.Millisecond, func() error {
		if n := fake.Requests(); n != 0 {
			return fmt.Errorf("fake saw %d requests before the key arrived, want 0", n)
		}
		if st := h.state(task); st.State.Terminal() {
			return fmt.Errorf("task %s before its key arrived: %s", st.State, st.Error)
		}
		return nil
	})
	put := time.Now()
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "openai", Key: key}, time.Hour); err != nil {
		t.Fatal(err)
	}
	vecs := h.waitVectors(task, len(in), 10*time.Second)
	// A KV watch wakes the waiting chunks at once; polling would not.
	if took := time.Since(put); took > 1500*time.Millisecond {
		t.Errorf("vectors arrived %s after the key, want well under a second or so", took)
	}
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
	}
	h.waitDrained(10 * time.Second)
	sentOnce(t, fake.Log(), in)
	for i, r := range fake.Log() {
		if r.Header.Get("Authorization") != "Bearer "+key {
			t.Errorf("request %d: not authorised with the task's key", i)
		}
	}
	h.checkSecret(key)
}

func TestKeyNeverArrivingFailsTheTask(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"OPENAI_BASE_URL":    fake.URL,
		"API_KEY_WAIT":       "1s",
	})
	const task = "no-key"
	h.createTask(task)
	h.publish(task, texts(task, 10), 0, false)

	st := h.waitFailed(task, 15*time.Second)
	if st.Stage != string(pipeline.Embed) {
		t.Errorf("failed at stage %q, want %q", st.Stage, pipeline.Embed)
	}
	if !strings.Contains(st.Error, "no API key") || !strings.Contains(st.Error, "1s") {
		t.Errorf("reason %q does not say that no API key arrived within 1s", st.Error)
	}
	h.waitDrained(10 * time.Second)
	if n, _ := h.vectorCount(task); n != 0 {
		t.Errorf("%d vectors stored for a task without a key", n)
	}
	if n := fake.Requests(); n != 0 {
		t.Errorf("fake saw %d requests, want 0", n)
	}
}

func TestWrongKeyFailsTheTaskWithFewRequests(t *testing.T) {
	t.Parallel()
	const wrong = "sk-wrong-key-5e884898da28047151d0e56f"
	fake := providertest.NewOpenAI(t)
	fake.SetKey("sk-the-right-key-000000000000000000")
	h := newHarness(t)
	const task = "wrong-key"
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "openai", Key: wrong}, time.Hour); err != nil {
		t.Fatal(err)
	}
	const workers, requests = 16, 4
	h.start(map[string]string{
		"OPENAI_BASE_URL": fake.URL,
		"EMBED_WORKERS":   fmt.Sprint(workers),
		"EMBED_REQUESTS":  fmt.Sprint(requests),
	})
	in := h.submit(task, 200)

	st := h.waitFailed(task, 15*time.Second)
	if st.Stage != string(pipeline.Embed) || !strings.Contains(st.Error, "invalid API key") {
		t.Errorf("failed at %q with %q, want stage embed and \"invalid API key\"", st.Stage, st.Error)
	}
	h.waitDrained(15 * time.Second)
	log := fake.Log()
	// 401 is permanent and never retried. Only the chunks taken before the
	// first failure reach the provider (at most EMBED_WORKERS, sharing
	// requests); every later chunk of the task is acked without a call.
	if len(log) == 0 || len(log) > workers {
		t.Errorf("fake saw %d requests for a wrong key, want 1..%d", len(log), workers)
	}
	seen := map[string]int{}
	for i, r := range log {
		if r.Status != http.StatusUnauthorized {
			t.Errorf("request %d: status %d, want 401", i, r.Status)
		}
		// A refused request is not parsed by the fake: read its body.
		var body struct {
			Input []string `json:"input"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("request %d body: %v", i, err)
		}
		for _, text := range body.Input {
			if seen[text]++; seen[text] > 1 {
				t.Errorf("text %q was sent again after a 401", text)
			}
		}
	}
	if len(seen) > workers {
		t.Errorf("%d of %d chunks were sent with the wrong key, want at most the %d taken at once", len(seen), len(in), workers)
	}
	t.Logf("wrong key: %d requests carrying %d of %d chunks", len(log), len(seen), len(in))
	// Chunks arriving after the failure cost no request.
	before := fake.Requests()
	h.publish(task, texts(task+"-later", 30), len(in), false)
	h.waitDrained(10 * time.Second)
	if n := fake.Requests(); n != before {
		t.Errorf("chunks of the failed task made %d more requests, want 0", n-before)
	}
	if n, _ := h.vectorCount(task); n != 0 {
		t.Errorf("%d vectors stored for a task with a wrong key", n)
	}
	if st := h.state(task); st.Error == "" || strings.Contains(st.Error, wrong) {
		t.Errorf("failure reason %q is empty or contains the key", st.Error)
	}
	h.checkSecret(wrong)
}

// TestReplayOfATaskThisEmbedderFailed: a task this embedder failed (a
// wrong key) is replayed with the right key; the replay's chunks are
// embedded, not skipped as chunks of an ended task.
func TestReplayOfATaskThisEmbedderFailed(t *testing.T) {
	t.Parallel()
	const right = "sk-the-right-key-111111111111111111"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(right)
	h := newHarness(t)
	const task = "replayed-after-wrong-key"
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "openai", Key: "sk-wrong-key-22222222222222222222"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL})
	in := h.submit(task, 8)
	h.waitFailed(task, 15*time.Second)
	h.waitDrained(10 * time.Second)

	// pdfpipe replay embed: the right key, the task reopened, the chunks
	// published again under the replay's number.
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "openai", Key: right}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := status.New(h.res.Status).Reopen(h.ctx, task, status.Embedding); err != nil {
		t.Fatal(err)
	}
	for i, text := range in {
		job := pipeline.EmbedJob{TaskID: task, Replay: 1, Chunk: pipeline.Chunk{ID: fmt.Sprintf("%s-chunk-%d", task, i), Index: i, Text: text}}
		if _, err := pipeline.Publish(h.ctx, h.res.JS, pipeline.Embed.Subject(task, strconv.Itoa(i)), task, pipeline.MsgID(task, 1, "embed", strconv.Itoa(i)), job); err != nil {
			t.Fatal(err)
		}
	}
	checkFake(t, task, h.waitVectors(task, len(in), 15*time.Second), in)
}

func TestRateLimitIsRetriedAfterRetryAfter(t *testing.T) {
	t.Parallel()
	const key = "sk-rate-limited-c3ab8ff13720e8ad9047"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	fake.FailNext(1, providertest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 200 * time.Millisecond})
	h := newHarness(t)
	const task = "rate-limited"
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "openai", Key: key}, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL})
	in := h.submit(task, 20)

	vecs := h.waitVectors(task, len(in), 20*time.Second)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
	}
	log := fake.Log()
	if len(log) < 2 || log[0].Status != http.StatusTooManyRequests {
		t.Fatalf("fake log %v, want a 429 first and then the retry", statuses(log))
	}
	// The same texts come back, in batches of at most half the size (the
	// batch shrinks on 429), after at least the wait asked for.
	var refused struct {
		Input []string `json:"input"`
	}
	if err := json.Unmarshal(log[0].Body, &refused); err != nil || len(refused.Input) == 0 {
		t.Fatalf("429'd request body: %v", err)
	}
	resent := map[string]bool{}
	for _, r := range log[1:] {
		for _, in := range r.Inputs {
			if slices.Contains(refused.Input, in) && r.Status == http.StatusOK {
				resent[in] = true
				if gap := r.Time.Sub(log[0].Time); gap < 200*time.Millisecond {
					t.Errorf("retried %s after the 429, want at least the 200ms Retry-After", gap)
				}
			}
		}
	}
	if len(resent) != len(refused.Input) {
		t.Fatalf("%d of the %d rate-limited texts were sent again: %v", len(resent), len(refused.Input), statuses(log))
	}
	sentOnce(t, log, in)
	if st := h.state(task); st.State.Terminal() {
		t.Errorf("task %s: %s", st.State, st.Error)
	}
	h.checkSecret(key)
}

func statuses(log []providertest.Request) []int {
	out := make([]int, len(log))
	for i, r := range log {
		out[i] = r.Status
	}
	return out
}

func TestGeminiTaskKey(t *testing.T) {
	t.Parallel()
	const key = "AIza-task-key-7d865e959b2466918c9863"
	fake := providertest.NewGemini(t)
	fake.SetKey(key)
	h := newHarness(t)
	// Gemini is the default provider, without a key of its own: it serves
	// only the tasks that bring one.
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "gemini",
		"EMBEDDING_BASE_URL": fake.URL,
		"API_KEY_WAIT":       "10s",
	})
	const task = "gemini-task"
	if err := pipeline.PutAPIKey(h.ctx, h.res.Keys, task, pipeline.APIKey{Provider: "Gemini", Key: key}, time.Hour); err != nil {
		t.Fatal(err)
	}
	in := h.submit(task, 30)

	vecs := h.waitVectors(task, len(in), 20*time.Second)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		// The client re-normalises Gemini's truncated vectors in float32.
		if !equal(v.Vector, providertest.Vector(in[i], dim), 1e-6) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
		if want := "gemini/" + provider.DefaultGeminiModel; v.Model != want {
			t.Errorf("chunk %d: model %q, want %q", i, v.Model, want)
		}
	}
	log := fake.Log()
	if len(log) == 0 || len(log) >= len(in) {
		t.Errorf("%d chunks took %d requests, want batches", len(in), len(log))
	}
	for i, r := range log {
		if got := r.Header.Get("X-Goog-Api-Key"); got != key {
			t.Errorf("request %d: not authorised with the task's key", i)
		}
		if r.Dims != dim {
			t.Errorf("request %d: outputDimensionality %d, want %d", i, r.Dims, dim)
		}
		if len(r.TaskTypes) != len(r.Inputs) {
			t.Errorf("request %d: %d task types for %d inputs", i, len(r.TaskTypes), len(r.Inputs))
		}
		for _, tt := range r.TaskTypes {
			if tt != "RETRIEVAL_DOCUMENT" {
				t.Errorf("request %d: task type %q, want RETRIEVAL_DOCUMENT", i, tt)
			}
		}
	}
	sentOnce(t, log, in)
	// A keyless default answers queries with a clear error.
	r, err := query(t, h.nc, pipeline.EmbedQuery{Text: "invoice total"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.InvalidKey || r.Error == "" || len(r.Vector) != 0 {
		t.Errorf("query to a keyless gemini default: %+v, want an invalid-key error", r)
	}
	h.checkSecret(key)
}

func TestQueries(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	h := newHarness(t)
	// Two replicas in one queue group; their defaults differ only so that a
	// reply shows which one answered.
	h.start(map[string]string{})
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"EMBEDDING_BASE_URL": fake.URL,
		"EMBEDDING_API_KEY":  providertest.OpenAIKey,
	})
	local := provider.NewLocal(dim)
	localModel := "local/" + provider.LocalModel
	openaiModel := "openai/" + provider.DefaultOpenAIModel
	answered := map[string]int{}
	ask := func(text string) error {
		r, err := query(t, h.nc, pipeline.EmbedQuery{Text: text})
		if err != nil {
			return err
		}
		if r.Error != "" {
			t.Fatalf("query %q: %s", text, r.Error)
		}
		if len(r.Vector) != dim {
			t.Fatalf("query %q: %d floats, want %d", text, len(r.Vector), dim)
		}
		var want []float32
		switch r.Model {
		case localModel:
			want = local.Vector(text)
		case openaiModel:
			want = providertest.Vector(text, dim)
		default:
			t.Fatalf("query %q answered by model %q", text, r.Model)
		}
		if !equal(r.Vector, want, 0) {
			t.Errorf("query %q: vector is not %s's embedding of the text", text, r.Model)
		}
		answered[r.Model]++
		return nil
	}
	// Until both replicas have subscribed, one of them answers everything.
	n := 0
	testenv.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		n++
		if err := ask(fmt.Sprintf("warm-up query %d", n)); err != nil {
			return err
		}
		if answered[localModel] == 0 || answered[openaiModel] == 0 {
			return fmt.Errorf("answers so far: %v", answered)
		}
		return nil
	})
	before := map[string]int{localModel: answered[localModel], openaiModel: answered[openaiModel]}
	for i := range 40 {
		if err := ask(fmt.Sprintf("what is the invoice total of order %d?", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{localModel, openaiModel} {
		if answered[m] == before[m] {
			t.Errorf("of 40 queries none went to %s: %v", m, answered)
		}
	}
	// Each query was embedded by one replica only: the openai replica
	// sent exactly the queries it answered.
	inputs := 0
	for _, r := range chunkRequests(fake.Log()) {
		inputs += len(r.Inputs)
	}
	if inputs != answered[openaiModel] {
		t.Errorf("openai replica embedded %d query texts but answered %d", inputs, answered[openaiModel])
	}

	for _, bad := range []string{`{"text":""}`, `{"text":"  \n"}`, `not json`} {
		m, err := h.nc.Request(pipeline.QuerySubject, []byte(bad), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := string(m.Data)
		if !strings.Contains(r, `"bad_input":true`) || strings.Contains(r, `"vector"`) {
			t.Errorf("query %q: reply %s, want bad_input and no vector", bad, r)
		}
	}
}

func TestAPIKeyFile(t *testing.T) {
	t.Parallel()
	const key = "sk-from-file-4e07408562bedb8b60ce05c1"
	path := filepath.Join(t.TempDir(), "embedding-api-key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER":     "openai",
		"EMBEDDING_BASE_URL":     fake.URL,
		"EMBEDDING_API_KEY_FILE": path,
	})
	const task = "key-file"
	in := h.submit(task, 10)
	vecs := h.waitVectors(task, len(in), 20*time.Second)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the provider's embedding of its text", i)
		}
	}
	log := fake.Log()
	if len(chunkRequests(log)) == 0 {
		t.Fatal("no chunk reached the provider")
	}
	for i, r := range log {
		if r.Header.Get("Authorization") != "Bearer "+key || r.Status != http.StatusOK {
			t.Errorf("request %d: status %d, not authorised with the file's key", i, r.Status)
		}
	}
	h.checkSecret(key)

	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		_, err := embedder.ConfigFromEnv(func(k string) string {
			return map[string]string{"EMBEDDING_API_KEY_FILE": missing}[k]
		})
		if err == nil || !strings.Contains(err.Error(), "EMBEDDING_API_KEY_FILE") {
			t.Errorf("got %v, want an error naming EMBEDDING_API_KEY_FILE", err)
		}
	})
}

func TestKeylessCompatibleServerServesTasks(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	fake.SetKey("") // Text Embeddings Inference and Ollama take no key
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"EMBEDDING_BASE_URL": fake.URL,
		"API_KEY_WAIT":       "30s",
	})
	const task = "tei-default"
	in := h.submit(task, 10)
	// Far less than API_KEY_WAIT: the tasks do not wait for a key.
	vecs := h.waitVectors(task, len(in), 10*time.Second)
	for i, v := range vecs {
		checkChunk(t, task, i, v, in[i])
		if !equal(v.Vector, providertest.Vector(in[i], dim), 0) {
			t.Errorf("chunk %d: vector is not the server's embedding of its text", i)
		}
	}
	sentOnce(t, fake.Log(), in)
}

func TestStartupCheckOfTheDefaultProvider(t *testing.T) {
	t.Parallel()
	const wrong = "sk-wrong-default-1f2d3c4b5a69788796a5"
	tests := []struct {
		name    string
		setup   func(*providertest.OpenAIServer)
		key     string
		wantErr error
		want    string
	}{
		{"server gives another dimension", func(f *providertest.OpenAIServer) { f.ForceDimension(768) },
			providertest.OpenAIKey, provider.ErrDimensionMismatch, "768"},
		{"wrong default key", func(*providertest.OpenAIServer) {}, wrong, provider.ErrInvalidKey, "invalid API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewOpenAI(t)
			tt.setup(fake)
			h := newHarness(t)
			svc := h.newService(map[string]string{
				"EMBEDDING_PROVIDER": "openai",
				"EMBEDDING_BASE_URL": fake.URL,
				"EMBEDDING_API_KEY":  tt.key,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := svc.Run(ctx)
			if ctx.Err() != nil {
				t.Fatalf("Run ran until its context ended (%v), want a start-up error", err)
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want %v mentioning %q", err, tt.wantErr, tt.want)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Errorf("Run's error contains the key")
			}
			if n := fake.Requests(); n != 1 {
				t.Errorf("start-up check sent %d requests, want 1 (permanent errors are not retried)", n)
			}
			if strings.Contains(h.logs.String(), tt.key) {
				t.Errorf("logs contain the key")
			}
		})
	}
}

// TestDimensionsParamCanBeSwitchedOff: a server whose model is natively 384
// and that rejects OpenAI's `dimensions` gets requests without it.
func TestDimensionsParamCanBeSwitchedOff(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	fake.SetKey("")
	fake.AddModel("paraphrase-multilingual-MiniLM-L12-v2", dim, false)
	h := newHarness(t)
	h.start(map[string]string{
		"EMBEDDING_PROVIDER":        "openai",
		"EMBEDDING_BASE_URL":        fake.URL,
		"EMBEDDING_MODEL_NAME":      "paraphrase-multilingual-MiniLM-L12-v2",
		"EMBEDDING_SEND_DIMENSIONS": "false",
	})
	const task = "no-dimensions"
	in := h.submit(task, 5)
	h.waitVectors(task, len(in), 10*time.Second)
	for _, r := range fake.Log() {
		if r.Dims != 0 {
			t.Errorf("request sent dimensions=%d, want none", r.Dims)
		}
	}
}

// A GetEmbedding query that brings its own key goes to the configured
// server (OPENAI_BASE_URL) with the configured model, not to the public
// endpoint with the SDK's default model.
func TestQueryWithOwnKeyUsesConfiguredServerAndModel(t *testing.T) {
	t.Parallel()
	const key = "sk-query-key-6bc1bee22e409f96e93d7e11"
	const model = "tenant-embed-384"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	fake.AddModel(model, 1024, true)
	h := newHarness(t)
	rec, reg := h.observe()
	svc := h.start(map[string]string{ // the default stays local
		"OPENAI_BASE_URL":        fake.URL,
		"OPENAI_EMBEDDING_MODEL": model,
	})
	const text = "quarterly revenue by region"
	var r pipeline.EmbedReply
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error { // until the embedder subscribed
		var err error
		r, err = query(t, h.nc, pipeline.EmbedQuery{Text: text, Provider: "OpenAI", APIKey: key})
		return err
	})
	if r.Error != "" {
		t.Fatalf("query with its own key: %s", r.Error)
	}
	if !equal(r.Vector, providertest.Vector(text, dim), 0) {
		t.Errorf("query vector is not the configured server's embedding of its text")
	}
	if want := "openai/" + model; r.Model != want {
		t.Errorf("reply model %q, want %q", r.Model, want)
	}
	log := fake.Log()
	if len(log) != 1 {
		t.Fatalf("configured server saw %d requests, want 1", len(log))
	}
	if got := log[0].Header.Get("Authorization"); got != "Bearer "+key {
		t.Errorf("request not authorised with the query's key")
	}
	if log[0].Model != model {
		t.Errorf("request model %q, want the configured %q", log[0].Model, model)
	}
	if len(log[0].Inputs) != 1 || log[0].Inputs[0] != text {
		t.Errorf("request inputs %q, want [%q]", log[0].Inputs, text)
	}

	// The request is counted and traced like the embedder's own.
	if got := svc.Stats().Requests; got != 1 {
		t.Errorf("stats count %d provider requests, want 1", got)
	}
	if got := stagetest.Metric(t, reg, "pdfpipe_embed_provider_requests_total", map[string]string{"provider": "openai", "status": "ok"}); got != 1 {
		t.Errorf("pdfpipe_embed_provider_requests_total{provider=openai,status=ok} = %v, want 1", got)
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, s := range rec.Ended() {
			if s.Name() == "embeddings "+model {
				return nil
			}
		}
		return fmt.Errorf("no span %q among %d ended", "embeddings "+model, len(rec.Ended()))
	})

	// The same text with a wrong key reaches the provider and is refused:
	// no cached vector answers it.
	r, err := query(t, h.nc, pipeline.EmbedQuery{Text: text, Provider: "openai", APIKey: "sk-wrong-key-00000000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.InvalidKey || len(r.Vector) != 0 {
		t.Errorf("query with a wrong key: invalid_key=%v, %d floats, error %q; want refused by the provider", r.InvalidKey, len(r.Vector), r.Error)
	}
	if n := len(fake.Log()); n != 2 {
		t.Errorf("the provider saw %d requests, want 2 (the wrong key's too)", n)
	}
	for _, secret := range []string{key, "sk-wrong-key-00000000000000000000"} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("the embedder's log holds a query's key")
		}
	}
}

// A task key sealed with a PDFPIPE_SECRET_KEY this embedder does not have
// fails the task at once with a reason naming the setting; it is not
// retried until MAX_DELIVER and never reaches a provider.
func TestTaskKeySealedElsewhereFailsClearly(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t)
	h := newHarness(t)
	key, err := pipeline.ParseSecretKey(pipeline.NewSecretKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := pipeline.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealedKV := &pipeline.KeysKV{KeyValue: h.res.Keys, Sealer: sealer}
	const task = "task-sealed-elsewhere"
	if err := pipeline.PutAPIKey(h.ctx, sealedKV, task, pipeline.APIKey{Provider: "openai", Key: providertest.OpenAIKey}, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL, "EMBEDDING_PROVIDER": "openai"}) // keyless default: needs the task's key
	h.submit(task, 3)
	st := h.waitFailed(task, 20*time.Second)
	if !strings.Contains(st.Error, "PDFPIPE_SECRET_KEY") {
		t.Errorf("reason %q does not name PDFPIPE_SECRET_KEY", st.Error)
	}
	if n := fake.Requests(); n != 0 {
		t.Errorf("provider saw %d requests, want none", n)
	}
	if strings.Contains(h.logs.String(), "transient error; retrying") {
		t.Errorf("a sealing mismatch was retried; want the task failed at the first delivery")
	}
}

// A query whose key the gateway sealed is opened with the shared
// PDFPIPE_SECRET_KEY; one sealed with another key is refused and never
// reaches a provider.
func TestQueryWithSealedKey(t *testing.T) {
	t.Parallel()
	const key = "sk-sealed-query-key-99aa"
	fake := providertest.NewOpenAI(t)
	fake.SetKey(key)
	h := newHarness(t)
	newSealer := func() *pipeline.Sealer {
		k, err := pipeline.ParseSecretKey(pipeline.NewSecretKey())
		if err != nil {
			t.Fatal(err)
		}
		s, err := pipeline.NewSealer(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	shared, other := newSealer(), newSealer()
	h.sealer = shared
	h.start(map[string]string{"OPENAI_BASE_URL": fake.URL})
	ask := func(s *pipeline.Sealer) (pipeline.EmbedReply, error) {
		q := pipeline.EmbedQuery{Text: "sealed question", Provider: "openai", APIKey: key}
		q.SealQueryKey(s)
		return query(t, h.nc, q)
	}
	var r pipeline.EmbedReply
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var err error
		r, err = ask(shared)
		return err
	})
	if r.Error != "" || len(r.Vector) != dim {
		t.Fatalf("query with a sealed key: %+v", r)
	}
	r, err := ask(other)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == "" || !strings.Contains(r.Error, "PDFPIPE_SECRET_KEY") {
		t.Errorf("query sealed with another key: error %q, want one naming PDFPIPE_SECRET_KEY", r.Error)
	}
	if n := fake.Requests(); n != 1 {
		t.Errorf("provider saw %d requests, want 1 (only the query that opened)", n)
	}
}

// A job whose chunks are not consecutive (no parser cuts one, but a
// message is input) is stored as one batch per run of consecutive
// indexes, so no subject claims a chunk it does not hold.
func TestJobOfScatteredChunks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(map[string]string{})
	const task = "c0ffee00-0a1b-4c3d-8e5f-6a7b8c9d0e1f"
	h.createTask(task)
	in := texts(task, 3)
	job := pipeline.EmbedJob{TaskID: task}
	for k, i := range []int{0, 1, 5} {
		job.Chunks = append(job.Chunks, pipeline.Chunk{ID: fmt.Sprintf("%s-chunk-%d", task, i), Index: i, Text: in[k]})
	}
	if _, err := h.js.PublishMsg(h.ctx, pipeline.NewEmbedMsg(pipeline.Embed.Subject(task, "0"), job)); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		subjects, err := h.vectorSubjects(task)
		if err != nil {
			return err
		}
		slices.Sort(subjects)
		if want := []string{"pdf.vec." + task + ".0.2", "pdf.vec." + task + ".5.1"}; !slices.Equal(subjects, want) {
			return fmt.Errorf("vector subjects: got %v, want %v", subjects, want)
		}
		return nil
	})
}
