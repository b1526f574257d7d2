// Package helptest checks a binary's -h: it lists every setting the
// binary declares with its default, needs no valid environment, prints no
// value from it, and the binary refuses other arguments.
package helptest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// Run is a binary's run function as its main calls it.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Check runs -h with env set (values that must never be printed: a
// secret, a URL with credentials, a value that is not valid) and checks
// the listing against want; every value in leaks must be absent from the
// output.
func Check(t *testing.T, run Run, want envconf.Settings, env map[string]string, leaks ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(k string) string { return env[k] }, &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: got %v, want flag.ErrHelp (exit 0)", err)
	}
	for _, s := range want {
		if !strings.Contains(out.String(), envconf.HelpLine(s)+"\n") {
			t.Errorf("-h lacks %q", envconf.HelpLine(s))
		}
	}
	for _, leak := range leaks {
		if strings.Contains(out.String()+errOut.String(), leak) {
			t.Errorf("-h prints %q from the environment", leak)
		}
	}
	if err := run(context.Background(), []string{"extra"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Error("run extra: got no error")
	}
}
