// Command ingest-sink serves the reference cognicore.IngestService (package
// ingestsink) so that pdfpipe can run end to end without the product's
// backend: it enforces the backend's constraints and writes everything it
// stores as JSONL.
//
// Configuration: the flags -addr, -out, -dimension and -shutdown-timeout
// override the environment (INGEST_SINK_ADDR, INGEST_SINK_OUT and
// EMBEDDING_DIMENSION, declared with their defaults in
// ingestsink.Settings); `ingest-sink -h` lists both and exits 0.
//
// Logs are JSON on stderr. The gRPC health service reports SERVING for ""
// and "cognicore.IngestService" until shutdown; SIGINT or SIGTERM stops the
// server gracefully, then forcibly once the deadline passes.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-sink:", err)
		os.Exit(1)
	}
}

// config is the command's configuration.
type config struct {
	Addr            string
	Out             string // "" or "-" means stdout
	Dimension       int
	ShutdownTimeout time.Duration
}

// Validate reports the first invalid setting.
func (c config) Validate() error {
	if c.Addr == "" {
		return errors.New("listen address is empty")
	}
	if c.Dimension <= 0 {
		return fmt.Errorf("dimension %d: must be positive", c.Dimension)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown timeout %s: must be positive", c.ShutdownTimeout)
	}
	return nil
}

// parseConfig reads the environment (ingestsink.Settings), then the
// flags.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	r := envconf.New(getenv, ingestsink.Settings)
	cfg := config{
		Addr:            r.String("INGEST_SINK_ADDR"),
		Out:             r.String("INGEST_SINK_OUT"),
		Dimension:       r.Int("EMBEDDING_DIMENSION"),
		ShutdownTimeout: 10 * time.Second,
	}

	fs := flag.NewFlagSet("ingest-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: ingest-sink [-addr ADDR] [-out FILE.jsonl] [-dimension N] [-shutdown-timeout D]

The reference cognicore.IngestService: enforces the backend's constraints
(metadata first, unique file_hash and chunk_id, the embedding length) and
appends what it stores as JSONL. Flags override the environment.

`)
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output())
		envconf.WriteHelp(fs.Output(), ingestsink.Settings)
	}
	// The flags show no default of their own: their default is the
	// environment's value, which -h must not print (an address may hold
	// credentials).
	addr := fs.String("addr", "", "listen address (default: INGEST_SINK_ADDR)")
	out := fs.String("out", "", `JSONL output file, appended to; "" or "-" is stdout (default: INGEST_SINK_OUT)`)
	dim := fs.Int("dimension", 0, "required embedding length (default: EMBEDDING_DIMENSION)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "graceful-stop deadline")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "addr":
			cfg.Addr = *addr
		case "out":
			cfg.Out = *out
		case "dimension":
			cfg.Dimension = *dim
		}
	})
	if err := r.Err(); err != nil {
		return config{}, fmt.Errorf("config: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// run serves until ctx ends or SIGINT/SIGTERM arrives. JSONL goes to stdout
// unless a file is configured; logs go to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h printed the usage
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("service", "ingest-sink")
	log.Info("config", "addr", envconf.Redact(cfg.Addr), "out", cfg.Out, "dimension", cfg.Dimension,
		"shutdown_timeout", cfg.ShutdownTimeout)

	var out io.Writer = stdout
	if cfg.Out != "" && cfg.Out != "-" {
		f, err := os.OpenFile(cfg.Out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open output: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("close output: %w", cerr)
			}
		}()
		out = f
	}
	// The sink flushes after every document.
	bw := bufio.NewWriter(out)

	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	// Default server options, like the backend (4 MiB messages, default
	// keepalive enforcement).
	srv := grpc.NewServer()
	sink := ingestsink.New(ingestsink.Options{ForgetChunks: true, Dimension: cfg.Dimension, Output: bw, Logger: log})
	sink.Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus(cognicore.IngestService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info("listening", "addr", lis.Addr().String())
		if err := srv.Serve(lis); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		hs.Shutdown()
		stopServer(srv, cfg.ShutdownTimeout, log)
		return nil
	})
	err = g.Wait()
	if ferr := bw.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("flush output: %w", ferr)
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// stopServer stops srv gracefully, and forcibly once timeout has passed.
func stopServer(srv *grpc.Server, timeout time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("graceful stop timed out, stopping", "timeout", timeout)
		srv.Stop()
		<-done
	}
}
