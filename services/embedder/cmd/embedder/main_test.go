package main

import (
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/testkit/helptest"
)

// TestHelp: -h lists every setting the embedder reads with its default,
// needs no valid environment, and prints no value from it.
func TestHelp(t *testing.T) {
	env := map[string]string{"EMBEDDING_API_KEY": "tok-0123456789abcdef", "NATS_PASSWORD": "natspw",
		"EMBEDDING_BASE_URL": "https://u:redispw@tei/v1", "EMBED_WORKERS": "huge"}
	helptest.Check(t, run, servicemain.Binary("embedder", embedder.Settings).Settings, env, "tok-0123456789abcdef", "natspw", "redispw", "huge")
}
