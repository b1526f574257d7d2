// Command embedder runs the embed stage and answers GetEmbedding queries.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/embedder"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embedder:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := embedder.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return servicemain.Run(ctx, "embedder", getenv, stderr, cfg, func(ctx context.Context, d servicemain.Deps) error {
		svc, err := embedder.New(cfg, d.Res, d.NC, d.Log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
