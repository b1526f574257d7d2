// Command getembedbench measures GetEmbedding latency through the gateway:
// the gateway's gRPC EmbeddingService on a loopback port, one embedder with
// the local provider, both on an in-process NATS server, and a gRPC client
// firing GetEmbedding calls as the backend does (no provider, no key):
// first -n one after the other, then -n spread over -c concurrent callers.
// It prints p50, p90, p99 and max latency and calls per second of each.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/gateway"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "getembedbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("getembedbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 2000, "calls per phase")
	c := fs.Int("c", 32, "concurrent callers in the concurrent phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "getembedbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		return err
	}
	defer srv.Stop()

	// The embedder, on its own connection, local provider (the default).
	enc, err := srv.Connect("embedder")
	if err != nil {
		return err
	}
	defer enc.Close()
	ejs, err := jetstream.New(enc)
	if err != nil {
		return err
	}
	res, err := pipeline.Setup(ctx, ejs, pipeline.Config{})
	if err != nil {
		return err
	}
	cfg, err := embedder.ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := embedder.New(cfg, res, enc, log)
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Go(func() { _ = svc.Run(rctx) })

	// The gateway's EmbeddingService on a loopback port, its own connection.
	gnc, err := srv.Connect("gateway")
	if err != nil {
		return err
	}
	defer gnc.Close()
	keyLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	embLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wg.Go(func() {
		_ = gateway.Serve(rctx, pb.UnimplementedAPIKeyServiceServer{}, gateway.NewEmbeddingServer(gnc, cfg.Dimension, 30*time.Second), keyLis, embLis)
	})

	conn, err := grpc.NewClient(embLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewEmbeddingServiceClient(conn)
	call := func(i int) (time.Duration, error) {
		start := time.Now()
		r, err := client.GetEmbedding(ctx, &pb.EmbeddingRequest{
			TaskId: fmt.Sprintf("embedding-%d", time.Now().UnixNano()),
			Text:   fmt.Sprintf("what does chapter %d say about the invoice total of order %d?", i%40, i)})
		took := time.Since(start)
		if err == nil && len(r.GetEmbeddings()) != cfg.Dimension {
			err = fmt.Errorf("got %d floats, want %d", len(r.GetEmbeddings()), cfg.Dimension)
		}
		return took, err
	}
	// Wait until the embedder answers (it subscribes when Run starts).
	for {
		if _, err := call(-1); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i := range 200 { // warm-up
		if _, err := call(i); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "GetEmbedding through the gateway (gRPC on loopback → NATS → 1 embedder, local provider, %d dimensions)\n", cfg.Dimension)

	lat := make([]time.Duration, *n)
	start := time.Now()
	for i := range lat {
		if lat[i], err = call(i); err != nil {
			return err
		}
	}
	report(stdout, "sequential", lat, time.Since(start))

	lat = make([]time.Duration, *n)
	errs := make(chan error, *c)
	start = time.Now()
	var cw sync.WaitGroup
	for w := range *c {
		cw.Go(func() {
			for i := w; i < *n; i += *c {
				var err error
				if lat[i], err = call(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	cw.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	report(stdout, fmt.Sprintf("%d concurrent", *c), lat, time.Since(start))
	return nil
}

func report(w io.Writer, name string, lat []time.Duration, total time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	fmt.Fprintf(w, "  %-14s %5d calls: p50 %-9s p90 %-9s p99 %-9s max %-9s %8.0f calls/s\n", name, len(s),
		q(0.50).Round(time.Microsecond), q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond),
		s[len(s)-1].Round(time.Microsecond), float64(len(s))/total.Seconds())
}
