package servicemain

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

// NATSSettings say how a binary reaches NATS.
var NATSSettings = envconf.Settings{
	envconf.String("NATS_URL", "nats://127.0.0.1:4222",
		"NATS server with JetStream (v2.11+: per-key TTL); a comma-separated list for a cluster. "+
			"`pdfpipe run` ignores it; `pdfpipe up` embeds a server when it is unset; `status`, `tasks`, `inspect`, `replay` and `cancel` "+
			"fall back to `NATS_STORE_DIR/nats.url`, then to the default with a warning. Logged with user and password masked"),
	envconf.String("NATS_USER", "", "NATS user, with `NATS_PASSWORD`; `pdfpipe up`'s embedded server then requires them"),
	envconf.Secret("NATS_PASSWORD", "NATS password, with `NATS_USER`"),
	envconf.Secret("NATS_TOKEN", "NATS token (likewise required by `pdfpipe up`'s embedded server)"),
	envconf.String("NATS_NKEY_SEED_FILE", "", "file with the NKey seed (`SU…`) to sign in with; `pdfpipe up`'s embedded server then accepts exactly that NKey"),
	envconf.String("NATS_CREDS_FILE", "", "JWT creds file for an operator-mode server (not for `pdfpipe up`'s embedded server)"),
	envconf.String("NATS_TLS_CA", "", "CA (PEM file) that verifies the NATS server"),
	envconf.String("NATS_TLS_CERT", "", "client certificate (PEM file) for NATS servers that require one, with `NATS_TLS_KEY`"),
	envconf.String("NATS_TLS_KEY", "", "key (PEM file) of `NATS_TLS_CERT`"),
	envconf.Int("NATS_REPLICAS", 1, "replicas of streams and buckets (3 in a cluster)"),
}

// SecretSettings hold the key that seals secrets at rest.
var SecretSettings = envconf.Settings{
	envconf.Secret("PDFPIPE_SECRET_KEY",
		"32 random bytes as 64 hex digits or base64 (`openssl rand -hex 32`), or a file holding them: API keys and PDF passwords "+
			"are sealed with AES-256-GCM before they enter `pdfpipe_keys`, and `pdfpipe up` encrypts its embedded store with a key "+
			"derived from it. The same key on every service. Unset: stage binaries store secrets unsealed and warn at start; "+
			"`pdfpipe up` seals with a key it keeps in `NATS_STORE_DIR/secret.key` and leaves the store unencrypted (warned); "+
			"`pdfpipe run` seals with a key of its own that is never written down").WithFile("PDFPIPE_SECRET_KEY_FILE"),
}

// PipelineSettings shape the streams, buckets and consumers.
var PipelineSettings = envconf.Settings{
	envconf.Duration("PDFPIPE_RETENTION", 72*time.Hour, "how long stage messages, vectors, status and PDF bytes are kept for replay"),
	envconf.Duration("API_KEY_TTL", 24*time.Hour, "a stored API key or PDF password expires after this; it is deleted earlier when its task ends"),
	envconf.Duration("ACK_WAIT", 30*time.Second,
		"JetStream ack wait; stages send progress while they work, at least three times per the consumer's actual ack wait "+
			"(the last service to start sets it on the shared consumers; runners read it again every 30 s)"),
	envconf.Int("MAX_DELIVER", 10, "deliveries of one message before its task fails (likewise the consumer's actual value counts)"),
}

// LogSettings shape the log.
var LogSettings = envconf.Settings{
	envconf.String("LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`"),
	envconf.String("LOG_FORMAT", "json", "`json` or `text`"),
}

// HealthSettings place the health and metrics endpoint.
var HealthSettings = envconf.Settings{
	envconf.String("HEALTH_ADDR", "",
		"serve `/healthz`, `/readyz` and `/metrics` (Prometheus: messages waiting, in progress and redelivered per stage, "+
			"stream sizes, read from JetStream; the process's own handling time per stage, documents, pages, chunks and bytes "+
			"done, errors by class, embedding provider requests, tokens and 429s, cache hits — see \"Traces and metrics\" in "+
			"docs/ARCHITECTURE.md) there, e.g. `:8080`; unset: none"),
}

// Settings are what every stage binary reads besides its own.
var Settings = envconf.Join(NATSSettings, SecretSettings, PipelineSettings, LogSettings, HealthSettings, tracing.Settings)

// Binary is a stage binary and every setting it reads: Settings and its
// own.
func Binary(name string, own envconf.Settings) envconf.Binary {
	return envconf.Binary{Name: name, Settings: envconf.Join(Settings, own)}
}

// Args handles a stage binary's command line, which takes no arguments:
// -h (or -help) prints summary and every setting of Binary(name, own) to
// stdout and returns flag.ErrHelp; anything else is an error.
func Args(args []string, stdout io.Writer, name, summary string, own envconf.Settings) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: %s\n\n%s\n\n", name, summary)
		envconf.WriteHelp(stdout, Binary(name, own).Settings)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("no arguments expected: " + name + " is configured by its environment (-h lists it)")
	}
	return nil
}
