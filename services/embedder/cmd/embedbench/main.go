// Command embedbench measures the embed stage against the original design.
//
// It starts a local fake of the OpenAI embeddings API (providertest) that
// answers every request after a fixed latency, and embeds the same chunk
// texts (paragraphs of pdfgen.Sample under their headings) twice:
//
//   - the original design: one request per chunk, one at a time;
//   - the embed stage: EmbedJobs published to an in-process JetStream and
//     embedded by ONE embedder service (embedder.New + Run, batching and
//     requests in flight as configured), timed until every vector is on
//     the vector stream.
//
// It prints chunks per second of both and their ratio, and with -replay
// embeds the same texts again as a new task to show the cache answering
// without API requests. -min-ratio makes it exit 1 below a ratio.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embedbench:", err)
		os.Exit(1)
	}
}

type options struct {
	chunks, baseline int
	latency          time.Duration
	env              map[string]string
	replay, verbose  bool
	minRatio         float64
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("embedbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.chunks, "chunks", 2000, "chunks to embed")
	fs.IntVar(&o.baseline, "baseline-chunks", 0, "chunks the original design embeds (0: all; its rate does not depend on the count)")
	fs.DurationVar(&o.latency, "latency", 50*time.Millisecond, "latency of every fake API request")
	fs.BoolVar(&o.replay, "replay", true, "embed the same texts again as another task (cache)")
	fs.BoolVar(&o.verbose, "v", false, "embedder logs on stderr")
	fs.Float64Var(&o.minRatio, "min-ratio", 0, "exit 1 if the speed-up is below this")
	var envs multiFlag
	fs.Var(&envs, "env", "embedder setting NAME=VALUE (repeatable), e.g. -env EMBED_REQUESTS=4")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.env = map[string]string{}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-env %q: want NAME=VALUE", kv)
		}
		o.env[k] = v
	}
	if o.baseline <= 0 || o.baseline > o.chunks {
		o.baseline = o.chunks
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	texts := chunkTexts(o.chunks)
	fake := providertest.StartOpenAI()
	defer fake.Close()
	fake.SetLatency(o.latency)
	fmt.Fprintf(stdout, "fake OpenAI API: %s latency per request; %d chunks, %d bytes on average\n",
		o.latency, len(texts), avgLen(texts))

	base, err := original(ctx, fake, texts[:o.baseline])
	if err != nil {
		return fmt.Errorf("original design: %w", err)
	}
	fmt.Fprintf(stdout, "original design (1 request per chunk, sequential): %d chunks in %s = %.1f chunks/s\n",
		o.baseline, base.Round(time.Millisecond), rate(o.baseline, base))

	st, err := stage(ctx, o, fake, texts, stdout, stderr)
	if err != nil {
		return fmt.Errorf("embed stage: %w", err)
	}
	ratio := rate(len(texts), st) / rate(o.baseline, base)
	fmt.Fprintf(stdout, "speed-up: %.1fx\n", ratio)
	if o.minRatio > 0 && ratio < o.minRatio {
		return fmt.Errorf("speed-up %.1fx is below %.1fx", ratio, o.minRatio)
	}
	return nil
}

// original embeds each text in its own request, one after the other, as
// the Python service did.
func original(ctx context.Context, fake *providertest.OpenAIServer, texts []string) (time.Duration, error) {
	emb, err := provider.New(provider.Config{Provider: "openai", BaseURL: fake.URL, APIKey: providertest.OpenAIKey, MaxBatch: 1}, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, t := range texts {
		if _, err := emb.Embed(ctx, []string{t}, provider.Document); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// stage runs one embedder on an in-process JetStream and times the chunks
// of one task from the first publish to the last vector.
func stage(ctx context.Context, o options, fake *providertest.OpenAIServer, texts []string, stdout, stderr io.Writer) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "embedbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	nc, err := srv.Connect("embedbench")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	res, err := pipeline.Setup(ctx, js, pipeline.Config{})
	if err != nil {
		return 0, err
	}
	env := map[string]string{
		"EMBEDDING_PROVIDER": "openai",
		"EMBEDDING_BASE_URL": fake.URL,
		"EMBEDDING_API_KEY":  providertest.OpenAIKey,
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := embedder.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return 0, err
	}
	logOut, level := io.Discard, slog.LevelWarn
	if o.verbose {
		logOut, level = stderr, slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	enc, err := srv.Connect("embedder")
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	ejs, err := jetstream.New(enc)
	if err != nil {
		return 0, err
	}
	eres, err := pipeline.Setup(ctx, ejs, pipeline.Config{})
	if err != nil {
		return 0, err
	}
	svc, err := embedder.New(cfg, eres, enc, log)
	if err != nil {
		return 0, err
	}
	sent := fake.Requests() // by the original design
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	defer func() { stop(); <-done }()
	// The start-up check is the embedder's first request.
	for fake.Requests() == sent {
		select {
		case err := <-done:
			return 0, fmt.Errorf("embedder stopped: %w", err)
		case <-time.After(time.Millisecond):
		}
	}
	fmt.Fprintf(stdout, "embed stage settings: %v\n", cfg.LogValue())

	took, err := embedTask(ctx, nc, js, res, "bench-task-1", texts)
	if err != nil {
		return 0, err
	}
	reqs, st := fake.Requests()-sent-1, svc.Stats()
	fmt.Fprintf(stdout, "embed stage (1 embedder, in-process JetStream): %d chunks in %s = %.1f chunks/s; %d API requests, %.1f chunks per request\n",
		len(texts), took.Round(time.Millisecond), rate(len(texts), took), reqs, float64(len(texts))/float64(max(reqs, 1)))
	if o.replay {
		before := fake.Requests()
		again, err := embedTask(ctx, nc, js, res, "bench-task-2", texts)
		if err != nil {
			return 0, err
		}
		st2 := svc.Stats()
		fmt.Fprintf(stdout, "replay of the same texts as a new task: %d chunks in %s = %.1f chunks/s; %d API requests, %d cache hits\n",
			len(texts), again.Round(time.Millisecond), rate(len(texts), again), fake.Requests()-before, st2.CacheHits-st.CacheHits)
	}
	return took, nil
}

// embedTask publishes the chunks of a task and waits for all its vectors.
func embedTask(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, res *pipeline.Resources, task string, texts []string) (time.Duration, error) {
	if _, err := status.New(res.Status).Create(ctx, status.Status{TaskID: task, State: status.Embedding}); err != nil {
		return 0, err
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	all := make(chan struct{})
	sub, err := nc.Subscribe(pipeline.VectorFilter(task), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[m.Subject] {
			seen[m.Subject] = true
			if len(seen) == len(texts) {
				close(all)
			}
		}
	})
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	start := time.Now()
	for i, t := range texts {
		job := pipeline.EmbedJob{TaskID: task, Chunk: pipeline.Chunk{ID: fmt.Sprintf("%s-%d", task, i), Index: i, Text: t, PageStart: 1, PageEnd: 1}}
		m, err := pipeline.NewMsg(pipeline.Embed.Subject(task, strconv.Itoa(i)), task, job)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(fmt.Sprintf("%s:embed:%d", task, i))); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-all:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	took := time.Since(start)
	if rec, err := status.New(res.Status).Get(ctx, task); err == nil && rec.State == status.Failed {
		return 0, errors.New("task failed: " + rec.Error)
	}
	return took, nil
}

// chunkTexts returns n distinct chunks: paragraphs of pdfgen.Sample, each
// under its section heading, as the parser cuts them.
func chunkTexts(n int) []string {
	seen := map[string]bool{}
	var out []string
	for pages := 50; len(out) < n; pages *= 2 {
		out, seen = out[:0], map[string]bool{}
		doc := pdfgen.Sample(pages)
		heading := ""
		for _, p := range doc.Pages {
			for _, b := range p.Blocks {
				if b.Bold {
					heading = b.Text
					continue
				}
				t := heading + "\n" + b.Text
				if !seen[t] && len(out) < n {
					seen[t] = true
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func avgLen(texts []string) int {
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	return n / max(1, len(texts))
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
