// Command embedder runs the embed stage and answers GetEmbedding queries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/embedder"
)

const summary = "The embed stage: turns chunks into vectors with the task's or the default provider, and answers GetEmbedding."

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "embedder:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := servicemain.Args(args, stdout, "embedder", summary, embedder.Settings); err != nil {
		return err
	}
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
