package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink/internal/syncbuf"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{Addr: "127.0.0.1:50051", Dimension: 384, ShutdownTimeout: 10 * time.Second}},
		{
			name: "environment",
			env:  map[string]string{"INGEST_SINK_ADDR": "127.0.0.1:6000", "INGEST_SINK_OUT": "/tmp/x.jsonl", "EMBEDDING_DIMENSION": "768"},
			want: config{Addr: "127.0.0.1:6000", Out: "/tmp/x.jsonl", Dimension: 768, ShutdownTimeout: 10 * time.Second},
		},
		{
			name: "flags override environment",
			args: []string{"-addr", ":7000", "-out", "-", "-dimension", "8", "-shutdown-timeout", "1s"},
			env:  map[string]string{"INGEST_SINK_ADDR": "127.0.0.1:6000", "EMBEDDING_DIMENSION": "768"},
			want: config{Addr: ":7000", Out: "-", Dimension: 8, ShutdownTimeout: time.Second},
		},
		{name: "bad dimension env", env: map[string]string{"EMBEDDING_DIMENSION": "big"}, wantErr: "EMBEDDING_DIMENSION"},
		{name: "zero dimension", args: []string{"-dimension", "0"}, wantErr: "must be positive"},
		{name: "empty address", args: []string{"-addr", ""}, wantErr: "address"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "parse flags"},
		{name: "extra argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, env(tc.env), &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// listenAddr polls the JSON logs for the "listening" record.
func listenAddr(t *testing.T, logs *syncbuf.Buffer, errc <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				return rec.Addr
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("run returned early: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no listening record in logs:\n%s", logs.String())
	return ""
}

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sink.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-out", out}, env(map[string]string{"EMBEDDING_DIMENSION": "4"}), &stdout, &stderr)
	}()
	addr := listenAddr(t, &stderr, errc)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer conn.Close()

	for _, svc := range []string{"", "cognicore.IngestService"} {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: got %v, %v, want SERVING", svc, resp, err)
		}
	}

	stream, err := cognicore.NewIngestServiceClient(conn).IngestDocument(t.Context())
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	reqs := []*cognicore.IngestRequest{
		{RequestType: &cognicore.IngestRequest_Metadata{Metadata: &cognicore.DocumentMetadata{
			FileId: "doc-1", FileHash: strings.Repeat("ab", 32),
		}}},
		{RequestType: &cognicore.IngestRequest_Chunk{Chunk: &cognicore.TextChunk{
			ChunkId: "c0", FileId: "doc-1", EmbeddingVector: []float32{1, 2, 3, 4},
		}}},
	}
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil || !resp.GetSuccess() || resp.GetChunksStored() != 1 {
		t.Fatalf("got %v, %v, want success with 1 chunk stored", resp, err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: got %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"type":"metadata"`) || !strings.Contains(lines[1], `"chunk_id":"c0"`) {
		t.Errorf("got output %q, want a metadata line and a chunk line for c0", b)
	}
	if stdout.String() != "" {
		t.Errorf("got stdout %q, want nothing (output goes to the file)", stdout.String())
	}
	if logs := stderr.String(); !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("got logs without a stopped record:\n%s", logs)
	}
}

func TestRunStdout(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-dimension", "2"}, env(nil), &stdout, &stderr)
	}()
	addr := listenAddr(t, &stderr, errc)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer conn.Close()
	resp, err := cognicore.NewIngestServiceClient(conn).IngestSingleChunk(t.Context(),
		&cognicore.TextChunk{ChunkId: "c9", FileId: "doc-9", EmbeddingVector: []float32{1, 2}})
	if err != nil || !resp.GetSuccess() {
		t.Fatalf("got %v, %v, want success", resp, err)
	}
	// The sink flushes per call, so the line is on stdout before shutdown.
	if got := stdout.String(); !strings.Contains(got, `"chunk_id":"c9"`) {
		t.Errorf("got stdout %q, want the chunk line", got)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRunListenError(t *testing.T) {
	err := run(t.Context(), []string{"-addr", "256.0.0.1:1"}, env(nil), &syncbuf.Buffer{}, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("got %v, want a listen error", err)
	}
}

// TestRunShutdownDeadline holds a stream open so that GracefulStop cannot
// finish: run must fall back to Stop once the deadline passes.
func TestRunShutdownDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-shutdown-timeout", "100ms"}, env(nil), &stdout, &stderr)
	}()
	addr := listenAddr(t, &stderr, errc)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer conn.Close()
	// A health Watch stays open until the client ends it; its first answer
	// proves the server is holding the stream.
	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("watch recv: %v", err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return: no Stop fallback")
	}
	if logs := stderr.String(); !strings.Contains(logs, "graceful stop timed out") {
		t.Errorf("got logs without the fallback record:\n%s", logs)
	}
	// Stop cut the stream: after the NOT_SERVING update it ends in an error.
	for {
		resp, err := watch.Recv()
		if err != nil {
			break
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("got status %s after shutdown, want NOT_SERVING", resp.GetStatus())
		}
	}
}

// TestHelp: -h prints every flag and every setting with its default, is
// no failure (exit 0) even when the environment is bad, and prints nothing
// from the environment.
func TestHelp(t *testing.T) {
	bad := env(map[string]string{"EMBEDDING_DIMENSION": "big", "INGEST_SINK_ADDR": "u:hush@[::1]:50051"})
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr syncbuf.Buffer
		if err := run(t.Context(), []string{arg}, bad, &stdout, &stderr); err != nil {
			t.Fatalf("ingest-sink %s: got %v, want nil", arg, err)
		}
		usage := stdout.String() + stderr.String()
		for _, flag := range []string{"usage: ingest-sink", "-addr", "-out", "-dimension", "-shutdown-timeout", "INGEST_SINK_ADDR"} {
			if !strings.Contains(usage, flag) {
				t.Errorf("ingest-sink %s: usage lacks %s:\n%s", arg, flag, usage)
			}
		}
		for _, s := range ingestsink.Settings {
			if !strings.Contains(usage, envconf.HelpLine(s)+"\n") {
				t.Errorf("ingest-sink %s: usage lacks %q", arg, envconf.HelpLine(s))
			}
		}
		if strings.Contains(usage, "hush") || strings.Contains(usage, "big") {
			t.Errorf("ingest-sink %s: usage prints the environment:\n%s", arg, usage)
		}
	}
}
