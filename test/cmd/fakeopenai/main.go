// Command fakeopenai serves the project's fake OpenAI embeddings API
// (services/embedder/provider/providertest) on a loopback port, answering
// every request after -latency, for benchmarks of the whole pipeline. It
// prints the API's base URL on its first line and serves until SIGINT or
// SIGTERM. The key it accepts is providertest.OpenAIKey.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeopenai:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeopenai", flag.ContinueOnError)
	fs.SetOutput(stderr)
	latency := fs.Duration("latency", 0, "delay of every response")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := providertest.StartOpenAI()
	defer s.Close()
	s.SetLatency(*latency)
	fmt.Fprintln(stdout, s.URL)
	<-ctx.Done()
	return nil
}
