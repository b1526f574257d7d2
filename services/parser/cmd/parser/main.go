// Command parser runs the parse stage: PDF → chunks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
)

const summary = "The parse stage: reads each fetched PDF page by page and publishes its chunks to the embedders."

// settings are the parser's own: the stage's and the collector's.
var settings = envconf.Join(parser.Settings, parser.GCSettings)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "parser:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := servicemain.Args(args, stdout, "parser", summary, settings); err != nil {
		return err
	}
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
