package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/parser"
)

// TestHelp: -h lists every setting the parser reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"PDFPIPE_SECRET_KEY": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"NATS_URL": "nats://u:redispw@n:4222", "CHUNK_SIZE": "huge"}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(k string) string { return env[k] }, &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: got %v, want flag.ErrHelp (exit 0)", err)
	}
	bin := servicemain.Binary("parser", envconf.Join(parser.Settings, parser.GCSettings))
	for _, s := range bin.Settings {
		if !strings.Contains(out.String(), envconf.HelpLine(s)+"\n") {
			t.Errorf("-h lacks %q", envconf.HelpLine(s))
		}
	}
	for _, secret := range []string{"tok-0123456789abcdef", "natspw", "redispw", "huge"} {
		if strings.Contains(out.String()+errOut.String(), secret) {
			t.Errorf("-h prints %q from the environment", secret)
		}
	}
	if err := run(context.Background(), []string{"extra"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Error("run extra: got no error")
	}
}
