// Command ingester runs the ingest stage: vectors → backend IngestService.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/ingester"
)

const summary = "The ingest stage: streams each document, once all its vectors exist, to the backend's IngestService."

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ingester:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := servicemain.Args(args, stdout, "ingester", summary, ingester.Settings); err != nil {
		return err
	}
	cfg, err := ingester.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return servicemain.Run(ctx, "ingester", getenv, stderr, cfg, func(ctx context.Context, d servicemain.Deps) error {
		svc, err := ingester.New(cfg, d.Res, d.NC, d.Log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
