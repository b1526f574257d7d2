package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// TestKillNineAndRestart kills `pdfpipe up` with SIGKILL while documents
// are in flight, starts it again on the same JetStream directory, and
// checks that every task ends done and the backend stored every document
// exactly once (the sink behaves like a transactional backend: a stream
// cut by the kill keeps nothing).
func TestKillNineAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pdfpipe binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "pdfpipe")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pdfpipe/pdfpipe/cmd/pdfpipe")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	redisURL := testenv.StartRedis(t)

	const docs = 6
	pdfs := make([][]byte, docs)
	for i := range pdfs {
		pdfs[i] = samplePDF(t, 150, fmt.Sprintf("Crash test document %d", i))
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || i < 0 || i >= docs {
			http.NotFound(w, r)
			return
		}
		w.Write(pdfs[i])
	}))
	defer web.Close()

	sink := ingestsink.New(ingestsink.Options{RollbackBrokenStreams: true})
	sinkSrv := grpc.NewServer()
	sink.Register(sinkSrv)
	sinkLis := listen(t)
	go sinkSrv.Serve(sinkLis)
	defer sinkSrv.Stop()

	natsAddr := freeAddr(t)
	env := append(os.Environ(),
		"NATS_LISTEN="+natsAddr,
		"NATS_STORE_DIR="+t.TempDir(),
		"REDIS_URL="+redisURL,
		"GO_GRPC_INGEST_ADDR="+sinkLis.Addr().String(),
		"GRPC_SERVER_PORT="+freeAddr(t),
		"GRPC_EMBEDDING_PORT="+freeAddr(t),
		"TEMP_DIR="+t.TempDir(),
		"GATEWAY_ID=crash-test",
		"ACK_WAIT=3s",
		"LOG_LEVEL=warn",
		"FETCH_ALLOW_HOSTS="+web.Listener.Addr().String(), // the fetch guard refuses loopback otherwise
	)
	logs := &testenv.LogBuffer{}
	start := func() *exec.Cmd { return startProcess(t, env, logs, bin, "up") }
	first := start()
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })

	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	for i := range docs {
		task := fmt.Sprintf(`{"DocID":"crash-%d","FileName":"c%d.pdf","UserID":"u","URL":"%s/doc?n=%d","RagMode":"true"}`, i, i, web.URL, i)
		if err := rdb.RPush(ctx, "queue:upload_tasks", task).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Kill while work is in flight: after the first document is stored,
	// before the last.
	testenv.CheckFor(t, 60*time.Second, 5*time.Millisecond, func() error {
		if n := len(stored(sink)); n == 0 {
			return fmt.Errorf("no document stored yet\n%s", logs)
		}
		return nil
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if n := len(stored(sink)); n == docs {
		t.Logf("all %d documents were stored before the kill; the restart still must not resend them", docs)
	} else {
		t.Logf("killed with %d of %d documents stored", n, docs)
	}

	second := start()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })

	testenv.CheckFor(t, 90*time.Second, 50*time.Millisecond, func() error {
		if n := len(stored(sink)); n < docs {
			return fmt.Errorf("%d of %d documents stored after the restart\n%s", n, docs, logs)
		}
		return nil
	})
	counts := stored(sink)
	for i := range docs {
		id := fmt.Sprintf("crash-%d", i)
		if counts[id] != 1 {
			t.Errorf("document %s stored %d times, want exactly once", id, counts[id])
		}
	}

	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, pipeline.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	store := status.New(kv)
	for i := range docs {
		id := fmt.Sprintf("crash-%d", i)
		testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			st, err := store.Get(ctx, id)
			if err != nil {
				return err
			}
			if st.State != status.Done {
				return fmt.Errorf("task %s is %s (%s: %s)", id, st.State, st.Stage, st.Error)
			}
			return nil
		})
	}
	// Graceful stop: SIGTERM ends the process cleanly and promptly.
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pdfpipe up after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("pdfpipe up did not stop within 30 s of SIGTERM")
	}
}

// stored counts, per file_id, the IngestDocument calls that succeeded.
func stored(s *ingestsink.Sink) map[string]int {
	n := map[string]int{}
	for _, d := range s.Documents() {
		if d.Response != nil && d.Response.GetSuccess() && !d.RolledBack {
			n[d.Metadata.GetFileId()]++
		}
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
