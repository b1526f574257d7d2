package main

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/testkit/helptest"
)

// TestHelp: -h lists every setting the fetcher reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"BUCKET_ACCESS_KEY": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"NATS_URL": "nats://u:redispw@n:4222", "MAX_FILE_SIZE": "huge"}
	helptest.Check(t, run, servicemain.Binary("fetcher", fetcher.Settings).Settings, env, "tok-0123456789abcdef", "natspw", "redispw", "huge")
}
