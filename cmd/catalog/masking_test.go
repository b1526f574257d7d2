package catalog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/services/parser"
)

// TestNoCredentialInLogsOrErrors: with a secret in every secret setting
// and credentials in every URL or address, no binary's start-up log line
// (its Config's LogValue, the common settings) nor its config error holds
// any of them; the parts that are no secret still show. Each case's URL
// is also made unparsable once, since url.Parse's errors quote the whole
// URL.
func TestNoCredentialInLogsOrErrors(t *testing.T) {
	const secret = "hush" // every credential below contains it
	base := map[string]string{
		"NATS_URL":            "nats://svc:pw-hush@n1:4222,nats://tok-hush@n2:4222",
		"NATS_USER":           "svc",
		"NATS_PASSWORD":       "pw-hush",
		"NATS_TOKEN":          "tok-hush",
		"PDFPIPE_SECRET_KEY":  "key-hush-not-a-key",
		"REDIS_URL":           "redis://default:pw-hush@redis:6379/0",
		"GRPC_AUTH_TOKEN":     "tok-hush-0123456789abcdef",
		"BUCKET_ENDPOINT":     "http://ak:pw-hush@minio:9000",
		"BUCKET_ACCESS_ID":    "ak-hush",
		"BUCKET_ACCESS_KEY":   "sk-hush",
		"EMBEDDING_API_KEY":   "sk-hush",
		"EMBEDDING_BASE_URL":  "https://u:pw-hush@tei.internal/v1?key=tk-hush",
		"OPENAI_BASE_URL":     "https://u:pw-hush@openai.internal/v1",
		"GO_GRPC_INGEST_ADDR": "dns://u:pw-hush@resolver/backend:50051",
	}
	broken := map[string]string{
		"NATS_URL":            "nats://svc:pw-hush@n1:port",
		"REDIS_URL":           "redis://default:pw-hush@redis:port/0",
		"BUCKET_ENDPOINT":     "http://ak:pw-hush@minio:port",
		"EMBEDDING_BASE_URL":  "ht tp://u:pw-hush@tei/v1",
		"GO_GRPC_INGEST_ADDR": "dns://u:pw-hush@resolver:port/backend",
	}
	type logValuer interface{ LogValue() slog.Value }
	readers := map[string]func(getenv func(string) string) (logValuer, error){
		"common":   func(g func(string) string) (logValuer, error) { return servicemain.CommonFromEnv(g) },
		"gateway":  func(g func(string) string) (logValuer, error) { return gateway.ConfigFromEnv(g) },
		"fetcher":  func(g func(string) string) (logValuer, error) { return fetcher.ConfigFromEnv(g) },
		"parser":   func(g func(string) string) (logValuer, error) { return parser.ConfigFromEnv(g) },
		"embedder": func(g func(string) string) (logValuer, error) { return embedder.ConfigFromEnv(g) },
		"ingester": func(g func(string) string) (logValuer, error) { return ingester.ConfigFromEnv(g) },
	}
	// What must still show: the hosts.
	shows := map[string]string{
		"common": "n1:4222", "gateway": "redis:6379", "fetcher": "minio:9000", "embedder": "tei.internal", "ingester": "resolver/backend",
	}
	for _, envName := range []string{"good", "broken"} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		if envName == "broken" {
			for k, v := range broken {
				env[k] = v
			}
		}
		for name, read := range readers {
			t.Run(envName+"/"+name, func(t *testing.T) {
				cfg, err := read(func(k string) string { return env[k] })
				var buf bytes.Buffer
				slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)
				slog.New(slog.NewTextHandler(&buf, nil)).Info("starting", "config", cfg)
				if strings.Contains(buf.String(), secret) {
					t.Errorf("log line holds a credential:\n%s", buf.String())
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("config error holds a credential: %v", err)
				}
				if want := shows[name]; envName == "good" && want != "" && !strings.Contains(buf.String(), want) {
					t.Errorf("log line lacks %q:\n%s", want, buf.String())
				}
				// What the settings feed before anything connects.
				var later error
				switch c := cfg.(type) {
				case embedder.Config:
					c.Default.Provider = "openai"
					_, later = provider.New(c.Default, nil)
				case ingester.Config:
					_, later = ingester.New(c, &pipeline.Resources{}, nil, slog.New(slog.DiscardHandler))
				case fetcher.Config:
					_, later = fetcher.New(c, &pipeline.Resources{}, slog.New(slog.DiscardHandler))
				}
				if later != nil && strings.Contains(later.Error(), secret) {
					t.Errorf("error holds a credential: %v", later)
				}
			})
		}
	}
}
