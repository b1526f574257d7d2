// Package allinone wires every pipeline stage into one process, each
// configured from the environment exactly as its own binary would be:
// what `pdfpipe run`, `pdfpipe up` and the end-to-end tests share.
package allinone

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/services/parser"
)

// Stages runs fetcher, parser, embedder and ingester in one errgroup, each
// configured from the environment as its own binary would be; ingestAddr,
// when set, overrides GO_GRPC_INGEST_ADDR.
func Stages(ctx context.Context, g *errgroup.Group, getenv func(string) string, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger, ingestAddr string) error {
	return StagesWith(ctx, g, getenv, res, nc, log, Options{IngestAddr: ingestAddr})
}

// Options adjust what the stages read from the environment.
type Options struct {
	// IngestAddr, when set, overrides GO_GRPC_INGEST_ADDR.
	IngestAddr string
	// FetchAllowHosts are added to FETCH_ALLOW_HOSTS: `pdfpipe run` lets
	// the fetcher reach exactly its own loopback file server's address.
	FetchAllowHosts []string
}

// StagesWith is Stages with Options.
func StagesWith(ctx context.Context, g *errgroup.Group, getenv func(string) string, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger, opts Options) error {
	ingestAddr := opts.IngestAddr
	fcfg, err := fetcher.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("fetcher config: %w", err)
	}
	fcfg.Guard.AllowHosts = append(fcfg.Guard.AllowHosts, opts.FetchAllowHosts...)
	pcfg, err := parser.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("parser config: %w", err)
	}
	ecfg, err := embedder.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("embedder config: %w", err)
	}
	icfg, err := ingester.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("ingester config: %w", err)
	}
	if ingestAddr != "" {
		icfg.Addr = ingestAddr
	}
	f, err := fetcher.New(fcfg, res, log.With("service", "fetcher"))
	if err != nil {
		return err
	}
	e, err := embedder.New(ecfg, res, nc, log.With("service", "embedder"))
	if err != nil {
		return err
	}
	in, err := ingester.New(icfg, res, nc, log.With("service", "ingester"))
	if err != nil {
		return err
	}
	p := parser.New(pcfg, res, log.With("service", "parser"))
	log.Info("stages configured", "fetcher", fcfg, "parser", pcfg, "embedder", ecfg, "ingester", icfg)
	g.Go(func() error { return f.Run(ctx) })
	g.Go(func() error { return p.Run(ctx) })
	g.Go(func() error { return e.Run(ctx) })
	g.Go(func() error { return in.Run(ctx) })
	return nil
}
