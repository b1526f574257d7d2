// Command fetcher runs the fetch stage: task URL → object store.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fetcher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := fetcher.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return servicemain.Run(ctx, "fetcher", getenv, stderr, cfg, func(ctx context.Context, d servicemain.Deps) error {
		svc, err := fetcher.New(cfg, d.Res, d.Log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
