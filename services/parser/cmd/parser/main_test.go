package main

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/testkit/helptest"
)

// TestHelp: -h lists every setting the parser reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"PDFPIPE_SECRET_KEY": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"NATS_URL": "nats://u:redispw@n:4222", "CHUNK_SIZE": "huge"}
	helptest.Check(t, run, servicemain.Binary("parser", envconf.Join(parser.Settings, parser.GCSettings)).Settings, env, "tok-0123456789abcdef", "natspw", "redispw", "huge")
}
