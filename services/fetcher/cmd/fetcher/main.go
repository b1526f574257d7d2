// Command fetcher runs the fetch stage: task URL → object store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
)

const summary = "The fetch stage: copies each task's PDF (http, https or s3://) into the pipeline's object store."

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fetcher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := servicemain.Args(args, stdout, "fetcher", summary, fetcher.Settings); err != nil {
		return err
	}
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
