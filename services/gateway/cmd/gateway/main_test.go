package main

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/testkit/helptest"
)

// TestHelp: -h lists every setting the gateway reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"GRPC_AUTH_TOKEN": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"REDIS_URL": "redis://:redispw@redis:6379/0", "REDIS_MAX_ENTRY_SIZE": "huge"}
	helptest.Check(t, run, servicemain.Binary("gateway", gateway.Settings).Settings, env, "tok-0123456789abcdef", "natspw", "redispw", "huge")
}
