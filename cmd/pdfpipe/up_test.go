package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// syncBuffer is a log sink that many goroutines write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

// After `pdfpipe up` with PDFPIPE_SECRET_KEY processed an encrypted PDF
// whose task brought its own API key and password, neither secret is in
// any file under the store directory (raw bytes of every file, sealed KV
// and encrypted store), in any log line, or in any message of any stream
// read back through NATS; the keys bucket is empty once the markers
// expired; the CLI needs the NATS token the server requires.
func TestUpKeepsSecretsSealed(t *testing.T) {
	const (
		apiKey    = "sk-up-SECRET-api-key-5e8f1d2c"
		password  = "Up-Pdf-Pass-77x"
		natsToken = "nats-token-3b9d7e1f5a"
		grpcToken = "grpc-token-a1c3e5f7b9d2"
		taskID    = "d-sealed-1"
	)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.pdf")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sample", "-pages", "3", plain}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("sample: %v\n%s", err, errOut.String())
	}
	pdf, err := os.ReadFile(testenv.EncryptPDF(t, plain, "aes-256", password, "owner-pass"))
	if err != nil {
		t.Fatal(err)
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(pdf) }))
	defer files.Close()
	fake := providertest.NewOpenAI(t)
	fake.SetKey(apiKey)

	var received syncBuffer
	sink := ingestsink.New(ingestsink.Options{Output: &received, Dimension: 384})
	sinkLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sinkSrv := grpc.NewServer()
	sink.Register(sinkSrv)
	go sinkSrv.Serve(sinkLis)
	defer sinkSrv.Stop()

	storeDir := filepath.Join(dir, "store")
	keyAddr, embAddr, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	redisURL := testenv.StartRedis(t)
	environ := map[string]string{
		"REDIS_URL":           redisURL,
		"NATS_STORE_DIR":      storeDir,
		"NATS_LISTEN":         natsAddr,
		"NATS_TOKEN":          natsToken,
		"PDFPIPE_SECRET_KEY":  pipeline.NewSecretKey(),
		"API_KEY_TTL":         "1h",
		"GRPC_SERVER_PORT":    keyAddr,
		"GRPC_EMBEDDING_PORT": embAddr,
		"GRPC_AUTH_TOKEN":     grpcToken,
		"GO_GRPC_INGEST_ADDR": sinkLis.Addr().String(),
		"EMBEDDING_PROVIDER":  "openai", // no default key: the task's own key is used
		"OPENAI_BASE_URL":     fake.URL,
		"TEMP_DIR":            dir,
		"LOG_LEVEL":           "debug",
		// the PDF comes from a loopback test server: allow exactly it
		"FETCH_ALLOW_HOSTS": strings.TrimPrefix(files.URL, "http://"),
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- run(ctx, []string{"up"}, env(environ), io.Discard, &logs) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-upDone:
			if err != nil {
				t.Errorf("up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("up did not stop within 30s")
		}
	}
	defer stop()
	defer func() {
		if t.Failed() {
			t.Logf("up log:\n%s", logs.String())
		}
	}()

	// The gRPC ports take the token; the backend gives key and password.
	cc, err := grpc.NewClient(keyAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	keys := pb.NewAPIKeyServiceClient(cc)
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+grpcToken)
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := keys.ProvideAPIKey(authed, &pb.APIKeyRequest{TaskId: taskID, ApiKey: apiKey, Provider: "OpenAI"})
		return err
	})
	if _, err := keys.ProvideAPIKey(authed, &pb.APIKeyRequest{TaskId: taskID, ApiKey: password, Provider: "pdf"}); err != nil {
		t.Fatal(err)
	}
	// Every stream, read back through NATS by a client holding the token.
	nc, err := nats.Connect("nats://"+natsAddr, nats.Token(natsToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nats.Connect("nats://" + natsAddr); err == nil {
		t.Errorf("NATS accepted a client without the token")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer rcancel()
	secrets := [][]byte{[]byte(apiKey), []byte(password)}
	// While the task's key and password are stored: the bucket holds them
	// sealed.
	if n := searchStreams(t, js, secrets); n < 2 {
		t.Errorf("read %d messages with the key and password stored; want at least 2", n)
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	task := fmt.Sprintf(`{"DocID":%q,"FileName":"sealed.pdf","UserID":"u1","URL":%q,"RagMode":"true"}`, taskID, files.URL+"/sealed.pdf")
	if err := rdb.LPush(context.Background(), "queue:upload_tasks", task).Err(); err != nil {
		t.Fatal(err)
	}

	// The CLI finds the server through the store directory and needs the token.
	statusEnv := map[string]string{"NATS_STORE_DIR": storeDir}
	if err := run(context.Background(), []string{"status", taskID}, env(statusEnv), io.Discard, io.Discard); err == nil {
		t.Errorf("pdfpipe status without NATS_TOKEN: got nil error, want refused")
	}
	statusEnv["NATS_TOKEN"] = natsToken
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		var st bytes.Buffer
		if err := run(context.Background(), []string{"status", taskID}, env(statusEnv), &st, io.Discard); err != nil {
			return err
		}
		var s struct {
			State string `json:"state"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(st.Bytes(), &s); err != nil {
			return err
		}
		if s.State == "failed" {
			t.Fatalf("task failed: %s", s.Error)
		}
		if s.State != "done" {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	if len(fake.Log()) == 0 {
		t.Fatal("the provider saw no request: the task's key was not used")
	}

	if n := searchStreams(t, js, secrets); n < 10 {
		t.Errorf("read %d messages from the streams; the search would be vacuous", n)
	}
	// The task ended: its key and password were deleted; what is left in
	// the bucket are purge markers (which expire after KeyMarkerTTL).
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		kv, err := js.KeyValue(rctx, pipeline.KeysBucket)
		if err != nil {
			return err
		}
		for _, k := range []string{pipeline.Token(taskID), pipeline.Token(taskID) + ".pdf"} {
			if _, err := kv.Get(rctx, k); !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("key %s after the task ended: %v", k, err)
			}
		}
		return nil
	})
	nc.Close()
	stop()

	// Raw bytes of every file under the store directory.
	nfiles := 0
	err = filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		nfiles++
		for _, sec := range secrets {
			if bytes.Contains(b, sec) {
				t.Errorf("store file %s holds a secret", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nfiles < 10 {
		t.Errorf("walked %d store files; the search would be vacuous", nfiles)
	}
	all := logs.String()
	for _, s := range []string{apiKey, password, natsToken, grpcToken} {
		if strings.Contains(all, s) {
			t.Errorf("the log holds a secret (%.6s…)", s)
		}
	}
	if !strings.Contains(all, "store_encrypted=true") {
		t.Errorf("the embedded store was not encrypted")
	}
}

// searchStreams reads every message of every stream through NATS and
// reports any that holds a secret in its subject, headers or data; it
// returns how many messages it read.
func searchStreams(t *testing.T, js jetstream.JetStream, secrets [][]byte) int {
	t.Helper()
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	n := 0
	streams := js.ListStreams(rctx)
	for info := range streams.Info() {
		s, err := js.Stream(rctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(rctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("%s #%d: %v", info.Config.Name, seq, err)
			}
			n++
			raw := append([]byte(m.Subject), m.Data...)
			for k, vs := range m.Header {
				raw = append(raw, k...)
				raw = append(raw, strings.Join(vs, ",")...)
			}
			for _, sec := range secrets {
				if bytes.Contains(raw, sec) {
					t.Errorf("stream %s message %d (%s) holds a secret", info.Config.Name, seq, m.Subject)
				}
			}
		}
	}
	if streams.Err() != nil {
		t.Fatal(streams.Err())
	}
	return n
}

func TestUpListenDefaults(t *testing.T) {
	for in, want := range map[string]string{":50052": "127.0.0.1:50052", "0.0.0.0:50052": "0.0.0.0:50052",
		"127.0.0.1:1": "127.0.0.1:1", "[::]:50053": "[::]:50053"} {
		if got := loopbackByDefault(in); got != want {
			t.Errorf("loopbackByDefault(%q) = %q, want %q", in, got, want)
		}
	}
	dir := t.TempDir()
	user, _ := nkeys.CreateUser()
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	seedFile := filepath.Join(dir, "u.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	so, err := embeddedOptions(pipeline.NATSAuth{NKeySeedFile: seedFile}, natsembed.Options{}, dir, "0.0.0.0", 4222)
	if err != nil || so.NKey != pub || !so.Authenticated() {
		t.Errorf("nkey: got %q, %v; want the seed's public key", so.NKey, err)
	}
	if _, err := embeddedOptions(pipeline.NATSAuth{CredsFile: seedFile}, natsembed.Options{}, dir, "127.0.0.1", 4222); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("creds file for the embedded server: got %v, want a refusal pointing to NATS_URL", err)
	}
	// An open listener without auth is refused before anything starts.
	err = run(context.Background(), []string{"up"}, env(map[string]string{
		"NATS_LISTEN": "0.0.0.0:4222", "NATS_STORE_DIR": dir,
		"REDIS_URL": "redis://127.0.0.1:1/0",
	}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "without authentication") {
		t.Errorf("up on 0.0.0.0 without NATS auth: got %v, want a refusal", err)
	}
	// A data-dir key is made once and kept.
	s1, err := dataDirSealer(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := dataDirSealer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s1.StoreKey() != s2.StoreKey() {
		t.Errorf("the data-dir key changed between starts")
	}
	if fi, err := os.Stat(filepath.Join(dir, secretKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

// The nats.url file appears only once the pipeline exists: `pdfpipe
// status` run as soon as it is there finds the status bucket (before, the
// file came first and status said "bucket not found").
func TestUpURLFileAfterSetup(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "data")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up"}, env(map[string]string{
			"NATS_STORE_DIR": store, "NATS_LISTEN": freeAddr(t),
			"REDIS_URL":        testenv.StartRedis(t),
			"GRPC_SERVER_PORT": freeAddr(t), "GRPC_EMBEDDING_PORT": freeAddr(t),
			"GO_GRPC_INGEST_ADDR": "127.0.0.1:1", "LOG_LEVEL": "error",
		}), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("up: %v", err)
		}
	}()
	urlFile := filepath.Join(store, natsURLFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(urlFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", urlFile)
		}
		time.Sleep(time.Millisecond)
	}
	url, err := os.ReadFile(urlFile)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"status", "no-such-task"}, env(map[string]string{"NATS_URL": strings.TrimSpace(string(url))}), &out, &errOut)
	if err == nil || strings.Contains(err.Error(), "bucket not found") || strings.Contains(errOut.String(), "bucket not found") {
		t.Errorf("status right after nats.url appeared: got %v (%s), want the task reported unknown", err, errOut.String())
	}
}
