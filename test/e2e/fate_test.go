package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// upstream is a pipeline without its ingester: gateway, fetcher, parser
// and embedder in this process on a JetStream server that listens, so an
// ingester can run as its own process (or in this one) against it.
type upstream struct {
	url   string
	res   *pipeline.Resources
	store *status.Store
	rdb   *redis.Client
	web   string // base URL serving doc?n=i
	logs  *testenv.LogBuffer
}

// startUpstream runs the stages up to the embedder until the test ends;
// docs PDFs of pages pages each are served by a web server.
func startUpstream(t *testing.T, cfg pipeline.Config, docs, pages int) *upstream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	redisURL := testenv.StartRedis(t)
	env := map[string]string{"REDIS_URL": redisURL, "TEMP_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))

	pdfs := make([][]byte, docs)
	for i := range pdfs {
		pdfs[i] = samplePDF(t, pages, fmt.Sprintf("Fate test document %d", i))
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || i < 0 || i >= docs {
			http.NotFound(w, r)
			return
		}
		w.Write(pdfs[i])
	}))
	t.Cleanup(web.Close)
	env["FETCH_ALLOW_HOSTS"] = web.Listener.Addr().String() // the fetch guard refuses loopback otherwise

	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("upstream")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Setup(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gcfg, err := gateway.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	gcfg.DisableGRPC = true
	gw, err := gateway.New(gcfg, res, nc, log.With("service", "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	fcfg, err := fetcher.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fetcher.New(fcfg, res, log.With("service", "fetcher"))
	if err != nil {
		t.Fatal(err)
	}
	pcfg, err := parser.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	ecfg, err := embedder.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	e, err := embedder.New(ecfg, res, nc, log.With("service", "embedder"))
	if err != nil {
		t.Fatal(err)
	}
	p := parser.New(pcfg, res, log.With("service", "parser"))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Run(gctx) })
	g.Go(func() error { return f.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error { return e.Run(gctx) })

	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("upstream services: %v", err)
		}
		rdb.Close()
		nc.Close()
		srv.Stop()
	})
	return &upstream{url: srv.ClientURL(), res: res, store: status.New(res.Status), rdb: rdb, web: web.URL, logs: logs}
}

// push enqueues task i as today's backend does.
func (u *upstream) push(t *testing.T, i int) {
	t.Helper()
	task := fmt.Sprintf(`{"DocID":"fate-%d","FileName":"f%d.pdf","UserID":"u","URL":"%s/doc?n=%d","RagMode":"true"}`, i, i, u.web, i)
	if err := u.rdb.LPush(context.Background(), "queue:upload_tasks", task).Err(); err != nil {
		t.Fatal(err)
	}
}

// waitAllEnded waits until tasks fate-0…fate-(n-1) have ended.
func (u *upstream) waitAllEnded(t *testing.T, n int, within time.Duration) map[string]status.Status {
	t.Helper()
	got := map[string]status.Status{}
	testenv.CheckFor(t, within, 50*time.Millisecond, func() error {
		for i := range n {
			id := fmt.Sprintf("fate-%d", i)
			if got[id].State.Terminal() {
				continue
			}
			st, err := u.store.Get(context.Background(), id)
			if err != nil {
				return err
			}
			if !st.State.Terminal() {
				return fmt.Errorf("task %s is %s (%s)", id, st.State, st.Note)
			}
			got[id] = st
		}
		return nil
	})
	return got
}

// checkFates checks that every task ended done, that no failure reached
// queue:dlq or document:events, and that the backend holds every chunk of
// every document once.
func (u *upstream) checkFates(t *testing.T, fates map[string]status.Status, sink *ingestsink.Sink, events *eventLog) {
	t.Helper()
	for id, st := range fates {
		if st.State != status.Done {
			t.Errorf("task %s: %s at %s: %s", id, st.State, st.Stage, st.Error)
		}
	}
	if n, err := u.rdb.LLen(context.Background(), "queue:dlq").Result(); err != nil || n != 0 {
		t.Errorf("queue:dlq holds %d entries (%v), want 0", n, err)
	}
	// Events are published before the status change is acked: every
	// failure would be in the log by the time the task ended.
	events.mu.Lock()
	for _, ev := range events.events {
		if ev["type"] == "failed" {
			t.Errorf("failed event: %v", ev)
		}
	}
	events.mu.Unlock()
	stored := map[string]map[int32]int{} // file_id → chunk_index → times stored
	for _, d := range sink.Documents() {
		for _, c := range d.Chunks {
			if c.Stored {
				m := stored[d.Metadata.GetFileId()]
				if m == nil {
					m = map[int32]int{}
					stored[d.Metadata.GetFileId()] = m
				}
				m[c.Chunk.GetChunkIndex()]++
			}
		}
	}
	for id, st := range fates {
		m := stored[id]
		if len(m) != st.Chunks || st.Chunks == 0 {
			t.Errorf("task %s: the backend holds %d distinct chunks, want %d", id, len(m), st.Chunks)
		}
		for i, k := range m {
			if k != 1 || int(i) >= st.Chunks {
				t.Errorf("task %s: chunk %d stored %d times, want once", id, i, k)
			}
		}
	}
}

// TestFateIngesterKilledMidStream kills a separately running ingester
// with SIGKILL again and again while documents stream into a backend that
// keeps the chunks of a broken stream (the real backend does). Resends
// then meet the chunks already held as duplicate keys: every task must
// still end done, with no dead letter, no failed event, every chunk once.
func TestFateIngesterKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ingester binary")
	}
	const docs, kills = 24, 20
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "ingester")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pdfpipe/pdfpipe/services/ingester/cmd/ingester")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// MAX_DELIVER is generous: each kill costs every message the process
	// held one delivery, and running out of deliveries is not what this
	// test is about.
	cfg := pipeline.Config{MaxDeliver: 30, AckWait: time.Second}
	u := startUpstream(t, cfg, docs, 8)
	events := collectEvents(ctx, t, u.rdb)

	// A backend that takes 2 ms per chunk, so streams are long enough to
	// be cut; chunks counts what it has read.
	var chunks atomic.Int64
	sink := ingestsink.New(ingestsink.Options{ForgetChunks: false})
	sink.SetFault(func(_ string, pos int) error {
		if pos >= 0 {
			chunks.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	})
	gs := grpc.NewServer()
	sink.Register(gs)
	lis := listen(t)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	logs := &testenv.LogBuffer{}
	env := append(os.Environ(),
		"NATS_URL="+u.url,
		"GO_GRPC_INGEST_ADDR="+lis.Addr().String(),
		"INGEST_WORKERS=4",
		"ACK_WAIT=1s",
		"MAX_DELIVER=30",
		"LOG_LEVEL=warn",
	)
	start := func() *exec.Cmd { return startProcess(t, env, logs, bin) }
	proc := start()
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	for i := range docs {
		u.push(t, i)
	}

	began := time.Now()
	killed := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for killed < kills {
		// Kill once the backend has read a few more chunks: mid-stream.
		from, want := chunks.Load(), int64(3+rng.IntN(40))
		stalled := time.Now().Add(10 * time.Second)
		for chunks.Load()-from < want && time.Now().Before(stalled) {
			<-time.After(time.Millisecond)
		}
		if chunks.Load()-from < want {
			break // nothing left to stream
		}
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		killed++
		proc = start()
	}
	t.Logf("killed the ingester %d times mid-stream in %s", killed, time.Since(began).Round(time.Millisecond))
	if killed < kills/2 {
		t.Errorf("only %d kills happened mid-stream, want at least %d: the test did not test much", killed, kills/2)
	}
	fates := u.waitAllEnded(t, docs, 60*time.Second)
	t.Logf("every task ended %s after the first kill", time.Since(began).Round(time.Millisecond))
	partial := 0
	for _, d := range sink.Documents() {
		if d.Err != nil && !d.RolledBack {
			for _, c := range d.Chunks {
				if c.Stored {
					partial++
					break
				}
			}
		}
	}
	t.Logf("%d broken streams left chunks in the backend", partial)
	if partial == 0 {
		t.Error("no broken stream left chunks behind: the test did not test resends")
	}
	u.checkFates(t, fates, sink, events)
	if t.Failed() {
		t.Logf("ingester logs:\n%s\nupstream logs:\n%s", logs, u.logs)
	}
}

// TestFateBackendOutage: the backend is down longer than MaxDeliver
// deliveries with their backoff (and many AckWaits) while documents reach
// the ingester; once it listens, every document lands, none fails, none is
// sent twice.
func TestFateBackendOutage(t *testing.T) {
	const docs = 8
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := pipeline.Config{MaxDeliver: 3, AckWait: time.Second}
	u := startUpstream(t, cfg, docs, 3)
	events := collectEvents(ctx, t, u.rdb)
	addr := freeAddr(t)

	nc, err := nats.Connect(u.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ictx, stop := context.WithCancel(context.Background())
	svc, err := ingester.New(ingester.Config{Addr: addr, Workers: 2, Timeout: 30 * time.Second, VectorWait: time.Minute,
		RetryDelay: 100 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}, u.res, nc, slog.New(slog.NewTextHandler(u.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ictx) }()
	defer func() { stop(); <-done }()

	for i := range docs {
		u.push(t, i)
	}
	// Every document reaches the ingester and waits for the backend.
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		for i := range docs {
			st, err := u.store.Get(ctx, fmt.Sprintf("fate-%d", i))
			if err != nil {
				return err
			}
			if st.State != status.Embedding && st.State != status.Ingesting || st.Chunks == 0 {
				return fmt.Errorf("fate-%d is %s", i, st.State)
			}
		}
		return nil
	})
	// Not a synchronisation sleep: the scenario is an outage longer than
	// MaxDeliver × backoff (100 ms doubling) and several AckWaits.
	<-time.After(5 * time.Second)

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the backend's port was taken meanwhile: %v", err)
	}
	sink := ingestsink.New(ingestsink.Options{})
	gs := grpc.NewServer()
	sink.Register(gs)
	go gs.Serve(lis)
	defer gs.Stop()
	up := time.Now()
	fates := u.waitAllEnded(t, docs, 30*time.Second)
	t.Logf("all %d documents ended %s after the backend listened", docs, time.Since(up).Round(time.Millisecond))
	u.checkFates(t, fates, sink, events)
	calls := map[string]int{}
	for _, d := range sink.Documents() {
		calls[d.Metadata.GetFileId()]++
	}
	for id, n := range calls {
		if n != 1 {
			t.Errorf("%s was sent %d times, want once", id, n)
		}
	}
	if t.Failed() {
		for _, d := range sink.Documents() {
			t.Logf("call for %s: %d chunks, response %v, err %v", d.Metadata.GetFileId(), len(d.Chunks), d.Response, d.Err)
		}
		t.Logf("logs:\n%s", u.logs)
	}
}
