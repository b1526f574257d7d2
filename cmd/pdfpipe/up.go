package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"path/filepath"
	"strconv"
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
// 127.0.0.1:4222, so `pdfpipe status` and the nats CLI can reach it) and
// keeps its data in NATS_STORE_DIR (default ./pdfpipe-data).
func up(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := envconf.New(getenv)
	pcfg := servicemain.PipelineFromEnv(r)
	listen := r.String("NATS_LISTEN", "127.0.0.1:4222")
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
		host, portStr, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("NATS_LISTEN=%q: %w", listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("NATS_LISTEN=%q: bad port", listen)
		}
		if l, err := net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("NATS_LISTEN=%s is taken (%v): set NATS_LISTEN to a free address, or NATS_URL to use the server there", listen, err)
		} else {
			l.Close()
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
		log.Info("embedded NATS", "listen", listen, "store", abs)
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

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
