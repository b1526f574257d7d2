package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
)

// openPipeline connects a command-line tool to a running pipeline (see
// natsURLSource, announced on stderr) without changing its configuration. The caller closes nc.
func openPipeline(ctx context.Context, name string, getenv func(string) string, stderr io.Writer) (*nats.Conn, *pipeline.Resources, error) {
	url, from := natsURLSource(getenv)
	announceServer(stderr, url, from)
	r := envconf.New(getenv, catalog.CLI.Settings)
	auth := servicemain.NATSAuthFromEnv(r)
	if err := r.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: config: %w", name, err)
	}
	opts, err := auth.Options()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: config: %w", name, err)
	}
	nc, err := pipeline.Connect(url, "pdfpipe-"+name, slog.New(slog.NewTextHandler(stderr, nil)), opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	res, err := pipeline.Open(ctx, js)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: pipeline on %s: %w", name, pipeline.RedactURL(url), err)
	}
	return nc, res, nil
}
