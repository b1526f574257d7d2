// Command gateway runs the gateway: Redis tasks and the backend gRPC calls → JetStream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/gateway"
)

const summary = "The pipeline's front door: takes upload tasks from Redis, serves ProvideAPIKey and GetEmbedding,\nreports progress as DocumentEvents."

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := servicemain.Args(args, stdout, "gateway", summary, gateway.Settings); err != nil {
		return err
	}
	cfg, err := gateway.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return servicemain.Run(ctx, "gateway", getenv, stderr, cfg, func(ctx context.Context, d servicemain.Deps) error {
		svc, err := gateway.New(cfg, d.Res, d.NC, d.Log)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}
