package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
)

func TestProvideAPIKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	keyConn, _ := h.serveGRPC()
	client := pb.NewAPIKeyServiceClient(keyConn)
	ctx := context.Background()
	for id, st := range map[string]status.State{"t-failed": status.Failed, "t-done": status.Done, "t-fetching": status.Fetching} {
		if _, err := h.status.Create(ctx, status.Status{TaskID: id, State: st}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name     string
		req      *pb.APIKeyRequest
		wantCode codes.Code // codes.OK: the call succeeds
		wantOK   bool       // response success
		wantProv string     // provider stored; "" means nothing stored
	}{
		{name: "OpenAI as the backend spells it", req: &pb.APIKeyRequest{TaskId: "t-openai", ApiKey: "sk-secret-openai-1", Provider: "OpenAI"}, wantOK: true, wantProv: "openai"},
		{name: "Gemini as the backend spells it", req: &pb.APIKeyRequest{TaskId: "t-gemini", ApiKey: "sk-secret-gemini-2", Provider: "Gemini"}, wantOK: true, wantProv: "gemini"},
		{name: "GEMINI upper case", req: &pb.APIKeyRequest{TaskId: "t-gemini-upper", ApiKey: "sk-secret-gemini-3", Provider: "GEMINI"}, wantOK: true, wantProv: "gemini"},
		{name: "lower case with spaces", req: &pb.APIKeyRequest{TaskId: "t-openai-lower", ApiKey: "sk-secret-openai-4", Provider: " openai "}, wantOK: true, wantProv: "openai"},
		{name: "task already running", req: &pb.APIKeyRequest{TaskId: "t-fetching", ApiKey: "sk-secret-running-5", Provider: "openai"}, wantOK: true, wantProv: "openai"},
		{name: "id that is not a plain token", req: &pb.APIKeyRequest{TaskId: "user 7/doc.pdf", ApiKey: "sk-secret-odd-6", Provider: "openai"}, wantOK: true, wantProv: "openai"},
		{name: "unknown provider", req: &pb.APIKeyRequest{TaskId: "t-unknown", ApiKey: "sk-secret-unknown-7", Provider: "anthropic"}, wantCode: codes.InvalidArgument},
		{name: "empty provider", req: &pb.APIKeyRequest{TaskId: "t-noprov", ApiKey: "sk-secret-noprov-8"}, wantCode: codes.InvalidArgument},
		{name: "empty key", req: &pb.APIKeyRequest{TaskId: "t-nokey", Provider: "openai"}, wantCode: codes.InvalidArgument},
		{name: "empty task id", req: &pb.APIKeyRequest{ApiKey: "sk-secret-noid-9", Provider: "openai"}, wantCode: codes.InvalidArgument},
		{name: "blank task id", req: &pb.APIKeyRequest{TaskId: "  ", ApiKey: "sk-secret-blank-10", Provider: "openai"}, wantCode: codes.InvalidArgument},
		// A failed task runs again when the backend pushes it again, and the
		// older backend sends the key first: the key is kept for that run.
		{name: "task failed earlier, key for its retry", req: &pb.APIKeyRequest{TaskId: "t-failed", ApiKey: "sk-secret-failed-11", Provider: "openai"}, wantOK: true, wantProv: "openai"},
		{name: "task already done", req: &pb.APIKeyRequest{TaskId: "t-done", ApiKey: "sk-secret-done-12", Provider: "gemini"}, wantOK: false},
	}
	var secrets []string
	for _, tc := range tests {
		secrets = append(secrets, tc.req.GetApiKey())
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.ProvideAPIKey(ctx, tc.req)
			if got := grpcstatus.Code(err); got != tc.wantCode {
				t.Fatalf("code: got %v (%v), want %v", got, err, tc.wantCode)
			}
			if err != nil {
				if k := tc.req.GetApiKey(); k != "" && strings.Contains(err.Error(), k) {
					t.Errorf("error message %q contains the API key", err)
				}
			} else if resp.GetSuccess() != tc.wantOK {
				t.Errorf("success: got %v (%q), want %v", resp.GetSuccess(), resp.GetMessage(), tc.wantOK)
			}
			id := strings.TrimSpace(tc.req.GetTaskId())
			if id == "" {
				return
			}
			k, err := pipeline.GetAPIKey(ctx, h.res.Keys, id, 0)
			if tc.wantProv == "" {
				if !errors.Is(err, pipeline.ErrNoKey) {
					t.Errorf("stored key: got %v, %v, want ErrNoKey (nothing stored)", k, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetAPIKey: %v", err)
			}
			if want := (pipeline.APIKey{Provider: tc.wantProv, Key: tc.req.GetApiKey()}); k != want {
				t.Errorf("stored key: got provider %q, key matches %v; want provider %q", k.Provider, k.Key == want.Key, want.Provider)
			}
		})
	}

	t.Run("a different key sent again does not replace the first", func(t *testing.T) {
		// No GRPC_AUTH_TOKEN here: an anonymous caller cannot swap a
		// task's key (TestGRPCSecurity covers the authenticated case).
		for i, k := range []string{"sk-secret-first-13", "sk-secret-first-13", "sk-secret-second-14"} {
			secrets = append(secrets, k)
			resp, err := client.ProvideAPIKey(ctx, &pb.APIKeyRequest{TaskId: "t-again", ApiKey: k, Provider: "openai"})
			wantCode := codes.OK
			if i == 2 {
				wantCode = codes.AlreadyExists
			}
			if got := grpcstatus.Code(err); got != wantCode || (err == nil && !resp.GetSuccess()) {
				t.Fatalf("ProvideAPIKey %d: %v, %v; want %v", i, resp, err, wantCode)
			}
		}
		k, err := pipeline.GetAPIKey(ctx, h.res.Keys, "t-again", 0)
		if err != nil || k.Key != "sk-secret-first-13" {
			t.Errorf("stored key: got provider %q, first key %v (err %v); want the first key", k.Provider, k.Key == "sk-secret-first-13", err)
		}
	})

	t.Run("PDF password beside the API key", func(t *testing.T) {
		const pass = "pdf-secret-password-15"
		secrets = append(secrets, pass)
		resp, err := client.ProvideAPIKey(ctx, &pb.APIKeyRequest{TaskId: "t-openai", ApiKey: pass, Provider: "PDF"})
		if err != nil || !resp.GetSuccess() {
			t.Fatalf("ProvideAPIKey(pdf): %v, %v", resp, err)
		}
		if got, err := pipeline.GetPDFPassword(ctx, h.res.Keys, "t-openai", 0); err != nil || got != pass {
			t.Errorf("stored password matches: %v (err %v)", got == pass, err)
		}
		if k, err := pipeline.GetAPIKey(ctx, h.res.Keys, "t-openai", 0); err != nil || k.Key != "sk-secret-openai-1" {
			t.Errorf("the task's API key was replaced by its PDF password (err %v)", err)
		}
		resp, err = client.ProvideAPIKey(ctx, &pb.APIKeyRequest{TaskId: "t-done", ApiKey: pass, Provider: "pdf"})
		if err != nil || resp.GetSuccess() {
			t.Errorf("password for an ended task: %v, %v; want success=false", resp, err)
		}
	})

	t.Run("keys never logged", func(t *testing.T) {
		logs := h.logs.String()
		if !strings.Contains(logs, "api key stored") {
			t.Fatalf("log capture is not working: no \"api key stored\" line in %q", logs)
		}
		for _, k := range secrets {
			if k != "" && strings.Contains(logs, k) {
				t.Errorf("log output contains API key %q", k)
			}
		}
	})
}

// fakeEmbedder answers GetEmbedding queries on NATS the way an embedder does.
type fakeEmbedder struct {
	mu      sync.Mutex
	queries []pipeline.EmbedQuery
	reply   func(pipeline.EmbedQuery) []byte // nil: never answer
}

func startFakeEmbedder(t *testing.T, nc *nats.Conn, reply func(pipeline.EmbedQuery) []byte) *fakeEmbedder {
	t.Helper()
	f := &fakeEmbedder{reply: reply}
	sub, err := nc.QueueSubscribe(pipeline.QuerySubject, pipeline.QueryQueue, func(m *nats.Msg) {
		var q pipeline.EmbedQuery
		if err := json.Unmarshal(m.Data, &q); err != nil {
			t.Errorf("embedder got a query that is not JSON: %q", m.Data)
			return
		}
		f.mu.Lock()
		f.queries = append(f.queries, q)
		f.mu.Unlock()
		if f.reply != nil {
			_ = m.Respond(f.reply(q))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return f
}

func (f *fakeEmbedder) seen() []pipeline.EmbedQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

func vector(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i+1) / 1000
	}
	return v
}

func replyJSON(r pipeline.EmbedReply) func(pipeline.EmbedQuery) []byte {
	return func(pipeline.EmbedQuery) []byte {
		b, _ := json.Marshal(r)
		return b
	}
}

func TestEmbeddingCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    func(pipeline.EmbedQuery) []byte
		text     string
		wantCode codes.Code
		wantLen  int
	}{
		{name: "384 floats", reply: replyJSON(pipeline.EmbedReply{Vector: vector(384), Model: "local"}), text: "what is in chapter 2?", wantLen: 384},
		{name: "invalid key", reply: replyJSON(pipeline.EmbedReply{Error: "provider openai: invalid API key", InvalidKey: true}), text: "q", wantCode: codes.Unauthenticated},
		{name: "bad input", reply: replyJSON(pipeline.EmbedReply{Error: "text too long", BadInput: true}), text: "q", wantCode: codes.InvalidArgument},
		{name: "provider error", reply: replyJSON(pipeline.EmbedReply{Error: "provider openai: 503"}), text: "q", wantCode: codes.Unavailable},
		{name: "wrong dimension", reply: replyJSON(pipeline.EmbedReply{Vector: vector(1536)}), text: "q", wantCode: codes.Internal},
		{name: "empty vector", reply: replyJSON(pipeline.EmbedReply{}), text: "q", wantCode: codes.Internal},
		{name: "reply not JSON", reply: func(pipeline.EmbedQuery) []byte { return []byte("oops") }, text: "q", wantCode: codes.Internal},
		{name: "empty text", reply: replyJSON(pipeline.EmbedReply{Vector: vector(384)}), text: "", wantCode: codes.InvalidArgument},
		{name: "blank text", reply: replyJSON(pipeline.EmbedReply{Vector: vector(384)}), text: " \n\t", wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			_, embConn := h.serveGRPC()
			emb := startFakeEmbedder(t, h.nc, tc.reply)
			ctx := context.Background() // the backend sets no deadline

			t.Run("GetEmbedding", func(t *testing.T) {
				resp, err := pb.NewEmbeddingServiceClient(embConn).GetEmbedding(ctx,
					&pb.EmbeddingRequest{TaskId: "embedding-1718000000", Text: tc.text})
				if got := grpcstatus.Code(err); got != tc.wantCode {
					t.Fatalf("code: got %v (%v), want %v", got, err, tc.wantCode)
				}
				if err != nil {
					return
				}
				if !resp.GetSuccess() || int(resp.GetDimension()) != tc.wantLen || !slices.Equal(resp.GetEmbeddings(), vector(tc.wantLen)) {
					t.Errorf("response: got success %v, dimension %d, %d floats; want success, %d, the embedder's vector",
						resp.GetSuccess(), resp.GetDimension(), len(resp.GetEmbeddings()), tc.wantLen)
				}
			})
			t.Run("GetVector", func(t *testing.T) {
				resp, err := pb.NewVectorizerServiceClient(embConn).GetVector(ctx, &pb.TextRequest{Text: tc.text})
				if got := grpcstatus.Code(err); got != tc.wantCode {
					t.Fatalf("code: got %v (%v), want %v", got, err, tc.wantCode)
				}
				if err == nil && !slices.Equal(resp.GetVector(), vector(tc.wantLen)) {
					t.Errorf("vector: got %d floats, want the embedder's %d", len(resp.GetVector()), tc.wantLen)
				}
			})

			qs := emb.seen()
			if strings.TrimSpace(tc.text) == "" {
				if len(qs) != 0 {
					t.Errorf("embedder asked %d times for an empty text, want never", len(qs))
				}
				return
			}
			want := []pipeline.EmbedQuery{{Text: tc.text}, {Text: tc.text}}
			if !reflect.DeepEqual(qs, want) {
				t.Errorf("queries: got %+v, want %+v (no provider or key)", qs, want)
			}
		})
	}
}

func TestGetEmbeddingForwardsProviderAndKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	_, embConn := h.serveGRPC()
	emb := startFakeEmbedder(t, h.nc, replyJSON(pipeline.EmbedReply{Vector: vector(384)}))
	_, err := pb.NewEmbeddingServiceClient(embConn).GetEmbedding(context.Background(),
		&pb.EmbeddingRequest{TaskId: "x", Text: "hello", Provider: "gemini", ApiKey: "sk-secret-query"})
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.EmbedQuery{{Text: "hello", Provider: "gemini", APIKey: "sk-secret-query"}}
	if got := emb.seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("queries: got %+v, want %+v", got, want)
	}
	if strings.Contains(h.logs.String(), "sk-secret-query") {
		t.Error("log output contains the query's API key")
	}
}

// With PDFPIPE_SECRET_KEY the query's own key crosses NATS sealed: a NATS
// client listening on the query subject does not see it.
func TestGetEmbeddingSealsTheQueryKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	key, err := pipeline.ParseSecretKey(pipeline.NewSecretKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := pipeline.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	h.res.Keys = &pipeline.KeysKV{KeyValue: h.res.Keys, Sealer: sealer}
	_, embConn := h.serveGRPC()
	spy, err := h.nc.SubscribeSync(pipeline.QuerySubject)
	if err != nil {
		t.Fatal(err)
	}
	emb := startFakeEmbedder(t, h.nc, replyJSON(pipeline.EmbedReply{Vector: vector(384)}))
	const secret = "sk-secret-sealed-query"
	if _, err := pb.NewEmbeddingServiceClient(embConn).GetEmbedding(context.Background(),
		&pb.EmbeddingRequest{Text: "hello", Provider: "openai", ApiKey: secret}); err != nil {
		t.Fatal(err)
	}
	m, err := spy.NextMsg(waitLong)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Data), secret) {
		t.Errorf("the query on NATS holds the key in the clear: %s", m.Data)
	}
	got := emb.seen()
	if len(got) != 1 || got[0].APIKey != "" || len(got[0].SealedKey) == 0 {
		t.Fatalf("queries: got %+v, want one with a sealed key only", got)
	}
	q := got[0]
	if err := q.OpenQueryKey(sealer); err != nil || q.APIKey != secret || q.Provider != "openai" {
		t.Errorf("opened query: key matches %v, provider %q, err %v", q.APIKey == secret, q.Provider, err)
	}
}

func TestEmbeddingWithoutAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		embedder bool // an embedder that never answers is subscribed
		wantCode codes.Code
	}{
		// QUERY_TIMEOUT is long: only "no responders" can end the call fast.
		{name: "no embedder running", wantCode: codes.Unavailable},
		// The backend sets no deadline: QUERY_TIMEOUT ends the call.
		{name: "embedder never answers", embedder: true, wantCode: codes.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := "1h"
			if tc.embedder {
				timeout = "300ms"
			}
			h := newHarness(t, map[string]string{"QUERY_TIMEOUT": timeout})
			_, embConn := h.serveGRPC()
			if tc.embedder {
				startFakeEmbedder(t, h.nc, nil)
			}
			calls := map[string]func(context.Context) error{
				"GetEmbedding": func(ctx context.Context) error {
					_, err := pb.NewEmbeddingServiceClient(embConn).GetEmbedding(ctx, &pb.EmbeddingRequest{TaskId: "embedding-1", Text: "q"})
					return err
				},
				"GetVector": func(ctx context.Context) error {
					_, err := pb.NewVectorizerServiceClient(embConn).GetVector(ctx, &pb.TextRequest{Text: "q"})
					return err
				},
			}
			for name, call := range calls {
				t.Run(name, func(t *testing.T) {
					// The client sets no deadline; a watchdog fails the test
					// instead of hanging it.
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					watchdog := time.AfterFunc(10*time.Second, cancel)
					defer watchdog.Stop()
					start := time.Now()
					err := call(ctx)
					took := time.Since(start)
					if got := grpcstatus.Code(err); got != tc.wantCode {
						t.Fatalf("code: got %v (%v) after %v, want %v", got, err, took, tc.wantCode)
					}
					if took > 5*time.Second {
						t.Errorf("took %v, want it to end quickly", took)
					}
				})
			}
		})
	}
}

// The gRPC error for a missing embedder says what to do.
func TestNoEmbedderMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	_, embConn := h.serveGRPC()
	_, err := pb.NewEmbeddingServiceClient(embConn).GetEmbedding(context.Background(), &pb.EmbeddingRequest{Text: "q"})
	if msg := grpcstatus.Convert(err).Message(); !strings.Contains(msg, "embedder") {
		t.Errorf("message: got %q, want it to mention the embedder", msg)
	}
}
