package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

// sample writes pdfgen.Sample(pages) to a file.
func sample(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pages := fs.Int("pages", 40, "number of pages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("sample: want one output file")
	}
	f, err := os.Create(fs.Arg(0))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := pdfgen.Write(w, pdfgen.Sample(*pages)); err != nil {
		f.Close()
		return fmt.Errorf("sample: %w", err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d pages)\n", fs.Arg(0), *pages)
	return nil
}
