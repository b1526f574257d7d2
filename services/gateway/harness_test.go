package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/test/bufconn"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const (
	queueKey   = "queue:upload_tasks"
	dlqKey     = "queue:dlq"
	instanceID = "gw-test"
	ownProc    = queueKey + ":processing:" + instanceID
	// waitLong bounds every poll: generous for a loaded -race run.
	waitLong = 15 * time.Second
	pollStep = 20 * time.Millisecond
)

// harness is a gateway on a real redis-server and an in-process JetStream
// server. It is not running until run is called.
type harness struct {
	t      *testing.T
	nc     *nats.Conn
	js     jetstream.JetStream
	res    *pipeline.Resources
	rdb    *redis.Client
	cfg    gateway.Config
	gw     *gateway.Service
	status *status.Store
	logs   *testenv.LogBuffer
}

// newHarness starts Redis and NATS and builds a gateway from env (on top
// of REDIS_URL and GATEWAY_ID, which it sets).
func newHarness(t *testing.T, env map[string]string) *harness {
	t.Helper()
	redisURL := testenv.StartRedis(t)
	full := map[string]string{"REDIS_URL": redisURL, "GATEWAY_ID": instanceID}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := gateway.ConfigFromEnv(func(k string) string { return full[k] })
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.DisableGRPC = true

	// A stock nats-server's limits (1 MiB max payload), as in a
	// deployment; the all-in-one binary's embedded server allows more.
	srv, err := server.NewServer(&server.Options{
		ServerName: "gateway-test", JetStream: true, StoreDir: t.TempDir(),
		DontListen: true, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready after 10s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect("", nats.Name("gateway-test"), nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Setup(t.Context(), js, pipeline.Config{})
	if err != nil {
		t.Fatalf("pipeline.Setup: %v", err)
	}

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })

	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(cfg, res, nc, log)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &harness{t: t, nc: nc, js: js, res: res, rdb: rdb, cfg: cfg, gw: gw,
		status: status.New(res.Status), logs: logs}
}

// run runs the gateway until the test ends and checks that it stops cleanly.
func (h *harness) run() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: got %v, want nil after cancel", err)
			}
		case <-time.After(waitLong):
			h.t.Errorf("Run did not return within %v of cancel", waitLong)
		}
	})
	// The events consumer delivers only changes made after it exists.
	testenv.CheckFor(h.t, waitLong, pollStep, func() error {
		_, err := h.js.Consumer(ctx, "KV_"+pipeline.StatusBucket, "gateway-events")
		return err
	})
}

// serveGRPC serves the gateway's gRPC services on in-memory listeners and
// returns client connections to the APIKeyService and the embedding port.
// The embedding client pings like the backend does.
func (h *harness) serveGRPC() (keyConn, embConn *grpc.ClientConn) {
	h.t.Helper()
	keyLis, embLis := bufconn.Listen(1<<20), bufconn.Listen(1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, h.gw.KeyServer(), h.gw.EmbeddingServer(), keyLis, embLis) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			h.t.Errorf("Serve: %v", err)
		}
	})
	dial := func(lis *bufconn.Listener) *grpc.ClientConn {
		cc, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, PermitWithoutStream: true}),
		)
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { cc.Close() })
		return cc
	}
	return dial(keyLis), dial(embLis)
}

func (h *harness) push(cmd, key string, raws ...string) {
	h.t.Helper()
	for _, raw := range raws {
		if err := h.rdb.Do(context.Background(), cmd, key, raw).Err(); err != nil {
			h.t.Fatalf("%s %s: %v", cmd, key, err)
		}
	}
}

func (h *harness) list(key string) []string {
	h.t.Helper()
	l, err := h.rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		h.t.Fatalf("LRANGE %s: %v", key, err)
	}
	return l
}

// waitDrained waits until the queue and every processing list are empty:
// each entry has been started, skipped or dead-lettered (an entry is
// always in exactly one list until then).
func (h *harness) waitDrained() {
	h.t.Helper()
	ctx := context.Background()
	testenv.CheckFor(h.t, waitLong, pollStep, func() error {
		keys, err := h.rdb.Keys(ctx, queueKey+"*").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k != queueKey && !strings.HasPrefix(k, queueKey+":processing:") {
				continue
			}
			if n, err := h.rdb.LLen(ctx, k).Result(); err != nil || n > 0 {
				return fmt.Errorf("%s still holds %d entries (err %v)", k, n, err)
			}
		}
		return nil
	})
}

// fetchCounts returns the number of messages per pdf.fetch subject.
func (h *harness) fetchCounts() map[string]uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), pipeline.Stream)
	if err != nil {
		h.t.Fatalf("stream %s: %v", pipeline.Stream, err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(pipeline.Fetch.Filter()))
	if err != nil {
		h.t.Fatalf("stream info: %v", err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

// fetchJob returns the last fetch message of a task.
func (h *harness) fetchJob(taskID string) (pipeline.FetchJob, *jetstream.RawStreamMsg) {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), pipeline.Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), pipeline.Fetch.Subject(taskID))
	if err != nil {
		h.t.Fatalf("fetch message of %s: %v", taskID, err)
	}
	var job pipeline.FetchJob
	if err := json.Unmarshal(m.Data, &job); err != nil {
		h.t.Fatalf("decode fetch job of %s: %v", taskID, err)
	}
	return job, m
}

// waitFetch waits for the fetch message of a task.
func (h *harness) waitFetch(taskID string) {
	h.t.Helper()
	subj := pipeline.Fetch.Subject(taskID)
	testenv.CheckFor(h.t, waitLong, pollStep, func() error {
		if n := h.fetchCounts()[subj]; n == 0 {
			return fmt.Errorf("no message on %s yet", subj)
		}
		return nil
	})
}

// dlq returns the dead-letter list decoded, oldest first.
func (h *harness) dlq() []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, raw := range h.list(dlqKey) {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			h.t.Fatalf("dead-letter entry %q is not a JSON object: %v", raw, err)
		}
		out = append(out, m)
	}
	return out
}

// checkDeadLetter checks that a dead-letter entry keeps every field of the
// original object (or the whole entry as "raw" when it was not an object),
// names the reason and has a recent failed_at.
func checkDeadLetter(t *testing.T, got map[string]any, original string, reasonHas ...string) {
	t.Helper()
	var orig map[string]any
	if err := json.Unmarshal([]byte(original), &orig); err != nil || orig == nil {
		if got["raw"] != original {
			t.Errorf("dead letter raw: got %v, want the original entry %q", got["raw"], original)
		}
	} else {
		for k, v := range orig {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("dead letter field %s: got %v, want %v (original kept)", k, got[k], v)
			}
		}
	}
	reason, _ := got["final_result"].(string)
	for _, want := range reasonHas {
		if !strings.Contains(reason, want) {
			t.Errorf("final_result: got %q, want it to contain %q", reason, want)
		}
	}
	at, _ := got["failed_at"].(string)
	ts, err := time.Parse(time.RFC3339, at)
	if err != nil {
		t.Errorf("failed_at: got %q, want an RFC 3339 time: %v", at, err)
	} else if d := time.Since(ts); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("failed_at: got %v, want about now", ts)
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
