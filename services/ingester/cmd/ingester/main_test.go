package main

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/testkit/helptest"
)

// TestHelp: -h lists every setting the ingester reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"PDFPIPE_SECRET_KEY": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"GO_GRPC_INGEST_ADDR": "dns://u:redispw@dns/backend:50051", "INGEST_WORKERS": "huge"}
	helptest.Check(t, run, servicemain.Binary("ingester", ingester.Settings).Settings, env, "tok-0123456789abcdef", "natspw", "redispw", "huge")
}
