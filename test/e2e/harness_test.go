package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pdfpipe/pdfpipe/cmd/allinone"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// stack is a running pipeline: gateway and every stage on one JetStream
// server, the reference sink as the backend.
type stack struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Res       *pipeline.Resources
	Sink      *ingestsink.Sink
	Logs      *testenv.LogBuffer
	KeyConn   *grpc.ClientConn // APIKeyService
	EmbedConn *grpc.ClientConn // EmbeddingService, VectorizerService
}

// startStack runs everything until the test ends. env holds the settings
// the services read from their environment.
func startStack(t *testing.T, env map[string]string) *stack {
	t.Helper()
	return startStackWith(t, env, stackOptions{})
}

// stackOptions adjust a stack: the services' tracer and metrics, the
// sink's gRPC server options.
type stackOptions struct {
	Tracer      trace.TracerProvider
	Metrics     *metrics.Metrics
	SinkOptions []grpc.ServerOption
}

// startStackWith is startStack with options.
func startStackWith(t *testing.T, env map[string]string, opts stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	getenv := func(k string) string { return env[k] }
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("e2e")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Setup(ctx, js, pipeline.Config{MaxDeliver: 4, AckWait: 5 * time.Second,
		Tracer: opts.Tracer, Metrics: opts.Metrics})
	if err != nil {
		t.Fatal(err)
	}

	sink := ingestsink.New(ingestsink.Options{Logger: log.With("service", "sink")})
	sinkSrv := grpc.NewServer(opts.SinkOptions...)
	sink.Register(sinkSrv)
	sinkLis := listen(t)

	gcfg, err := gateway.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	gcfg.DisableGRPC = true // served below on free ports
	gw, err := gateway.New(gcfg, res, nc, log.With("service", "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	keyLis, embLis := listen(t), listen(t)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sinkSrv.Serve(sinkLis) })
	g.Go(func() error {
		return gateway.Serve(gctx, gw.KeyServer(), gw.EmbeddingServer(), keyLis, embLis)
	})
	g.Go(func() error { return gw.Run(gctx) })
	if err := allinone.Stages(gctx, g, getenv, res, nc, log, sinkLis.Addr().String()); err != nil {
		t.Fatal(err)
	}
	st := &stack{NC: nc, JS: js, Res: res, Sink: sink, Logs: logs,
		KeyConn: dial(t, keyLis.Addr().String()), EmbedConn: dial(t, embLis.Addr().String())}
	t.Cleanup(func() {
		cancel()
		sinkSrv.Stop()
		if err := g.Wait(); err != nil && ctx.Err() == nil {
			t.Errorf("services ended with: %v", err)
		}
		nc.Close()
		srv.Stop()
	})
	return st
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// samplePDF returns a generated document; seed varies its title so two
// documents never share a hash.
func samplePDF(t *testing.T, pages int, title string) []byte {
	t.Helper()
	d := pdfgen.Sample(pages)
	d.Title = title
	d.Pages[0].Blocks = append([]pdfgen.Block{{Text: title, Size: 20, Bold: true}}, d.Pages[0].Blocks...)
	var b bytes.Buffer
	if err := pdfgen.Write(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// streamContains reports whether any message of stream holds needle.
func streamContains(t *testing.T, js jetstream.JetStream, stream, needle string) bool {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if strings.Contains(string(m.Data), needle) {
			return true
		}
		for _, vs := range m.Header {
			for _, v := range vs {
				if strings.Contains(v, needle) {
					return true
				}
			}
		}
	}
	return false
}

// startProcess starts a built binary with env, its output going to logs.
func startProcess(t *testing.T, env []string, logs io.Writer, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}
