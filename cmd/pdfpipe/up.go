package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/cmd/allinone"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/logging"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/gateway"
)

// up runs every service in this process: against NATS_URL when given,
// else on an embedded NATS server that listens on NATS_LISTEN (default
// 127.0.0.1:4222, or a free port when that is taken; the URL is written to
// NATS_STORE_DIR/nats.url for `pdfpipe status`) and keeps its data in
// NATS_STORE_DIR (default ./pdfpipe-data).
func up(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := envconf.New(getenv)
	pcfg := servicemain.PipelineFromEnv(r)
	listen := r.String("NATS_LISTEN", "")
	storeDir := r.String("NATS_STORE_DIR", "pdfpipe-data")
	if err := r.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	gcfg, err := gateway.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	log, err := logging.New(stderr, getenv("LOG_LEVEL"), envOr(getenv, "LOG_FORMAT", "text"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var nc *nats.Conn
	if url := getenv("NATS_URL"); url != "" {
		if nc, err = pipeline.Connect(url, "pdfpipe-up", log); err != nil {
			return err
		}
		log.Info("using NATS", "url", url)
	} else {
		host, port, err := listenAddr(listen, log)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(storeDir)
		srv, err := natsembed.Start(natsembed.Options{StoreDir: abs, Listen: true, Host: host, Port: port})
		if err != nil {
			return err
		}
		defer srv.Stop()
		if nc, err = srv.Connect("pdfpipe-up"); err != nil {
			return err
		}
		// `pdfpipe status` and `replay` find the server through this file.
		urlFile := filepath.Join(abs, natsURLFile)
		if err := os.WriteFile(urlFile, []byte(srv.ClientURL()+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(urlFile)
		log.Info("embedded NATS", "url", srv.ClientURL(), "store", abs)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	res, err := pipeline.Setup(ctx, js, pcfg)
	if err != nil {
		return fmt.Errorf("setup pipeline: %w", err)
	}
	gw, err := gateway.New(gcfg, res, nc, log.With("service", "gateway"))
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := allinone.Stages(gctx, g, getenv, res, nc, log, ""); err != nil {
		return err
	}
	g.Go(func() error { return gw.Run(gctx) })
	if addr := getenv("HEALTH_ADDR"); addr != "" {
		g.Go(func() error { return servicemain.ServeHealth(gctx, addr, nc) })
	}
	log.Info("pdfpipe up", "gateway", gcfg)
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "err", derr)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// natsURLFile, in NATS_STORE_DIR, holds the embedded server's URL while
// `pdfpipe up` runs.
const natsURLFile = "nats.url"

// listenAddr picks where the embedded server listens: NATS_LISTEN when
// set (it must be free), else 127.0.0.1:4222, or a free port when another
// server already has 4222.
func listenAddr(listen string, log *slog.Logger) (string, int, error) {
	explicit := listen != ""
	if !explicit {
		listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("NATS_LISTEN=%q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("NATS_LISTEN=%q: bad port", listen)
	}
	l, err := net.Listen("tcp", listen)
	switch {
	case err == nil:
		l.Close()
		return host, port, nil
	case explicit:
		return "", 0, fmt.Errorf("NATS_LISTEN=%s is taken (%v): set NATS_LISTEN to a free address, or NATS_URL to use the server there", listen, err)
	default:
		log.Warn("127.0.0.1:4222 is taken by another server; the embedded NATS takes a free port (see its url below, or pdfpipe-data/nats.url)")
		return host, -1, nil
	}
}

// natsURL is where `pdfpipe status` and `replay` look: NATS_URL, else the
// URL a running `pdfpipe up` wrote into NATS_STORE_DIR, else the default.
func natsURL(getenv func(string) string) string {
	if u := getenv("NATS_URL"); u != "" {
		return u
	}
	dir := envOr(getenv, "NATS_STORE_DIR", "pdfpipe-data")
	if b, err := os.ReadFile(filepath.Join(dir, natsURLFile)); err == nil {
		if u := strings.TrimSpace(string(b)); u != "" {
			return u
		}
	}
	return "nats://127.0.0.1:4222"
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
