// Command parser runs the parse stage: PDF → chunks.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parser:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	mupdf.LimitMallocArenas(2) // see its doc: bounds MuPDF's resident memory
	parser.TuneGC(getenv)
	cfg, err := parser.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return servicemain.Run(ctx, "parser", getenv, stderr, cfg, func(ctx context.Context, d servicemain.Deps) error {
		return parser.New(cfg, d.Res, d.Log).Run(ctx)
	})
}
