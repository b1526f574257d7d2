package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// defaultNATSURL is used when neither NATS_URL nor a running `pdfpipe up`
// names a server.
const defaultNATSURL = catalog.DefaultNATSURL

// natsURLSource returns the NATS URL a command-line tool uses and where it
// came from: NATS_URL, the nats.url file `pdfpipe up` writes into
// NATS_STORE_DIR (default ./pdfpipe-data), or "" for the default.
func natsURLSource(getenv func(string) string) (url, from string) {
	r := envconf.New(getenv, catalog.CLI.Settings)
	if r.IsSet("NATS_URL") {
		return r.StringOr("NATS_URL", ""), "NATS_URL"
	}
	file := filepath.Join(r.String("NATS_STORE_DIR"), natsURLFile)
	if b, err := os.ReadFile(file); err == nil {
		if u := strings.TrimSpace(string(b)); u != "" {
			if !filepath.IsAbs(file) {
				file = "." + string(filepath.Separator) + file
			}
			return r.StringOr("NATS_URL", u), file
		}
	}
	return r.StringOr("NATS_URL", defaultNATSURL), ""
}

// announceServer says on stderr which server a command uses, without
// credentials, and warns when it is only the default guess.
func announceServer(stderr io.Writer, url, from string) {
	if from == "" {
		fmt.Fprintf(stderr, "pdfpipe: NATS_URL is not set and no %s names a running `pdfpipe up`: "+
			"using the DEFAULT %s, which may be another pipeline's server (set NATS_URL, or run from the directory of `pdfpipe up`)\n",
			filepath.Join("pdfpipe-data", natsURLFile), url)
		return
	}
	fmt.Fprintf(stderr, "pdfpipe: NATS server %s (from %s)\n", pipeline.RedactURL(url), from)
}
