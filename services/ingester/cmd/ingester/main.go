// Command ingester runs the ingest stage: vectors → backend IngestService.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/ingester"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingester:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
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
