// Package catalog lists every pdfpipe binary, and each command of the
// pdfpipe binary, with the settings it reads: what their -h prints and
// what the README's configuration table is generated from (`go run
// ./cmd/settingsdoc`). It also declares the settings only the pdfpipe
// command reads.
//
// To add a setting, declare it in the Settings list of the package that
// reads it (servicemain, a service, ingestsink, or here for the pdfpipe
// command), read it by name through that package's envconf.Reader, and
// run `go run ./cmd/settingsdoc` to regenerate the README's table. The
// tests here fail while the README differs from the declarations or a
// binary reads a variable no declaration names.
package catalog

//go:generate go run ../settingsdoc

import (
	"fmt"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/services/embedder"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/services/ingester"
	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// DefaultNATSURL is where the pdfpipe commands look for NATS when neither
// NATS_URL nor a running `pdfpipe up` names a server.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// ProfileSettings are read by every pdfpipe command.
var ProfileSettings = envconf.Settings{
	envconf.String("PDFPIPE_CPUPROFILE", "", "write a CPU profile of the `pdfpipe` command to this file (`go tool pprof`)"),
	envconf.String("PDFPIPE_MEMPROFILE", "",
		"write a heap profile taken at the process's resident-memory peak to this file, and split that peak "+
			"(Go heap, stacks, C heap and binary) on stderr at the end"),
}

// MemorySettings bound the memory of `pdfpipe up`.
var MemorySettings = envconf.Settings{
	envconf.String("GOMEMLIMIT", "",
		"the Go runtime's soft memory limit, read by the runtime; `pdfpipe up` sets 160 MiB unless the variable is set "+
			"(most of its Go heap is the embedded NATS server's idle block caches, freed only when the collector runs); `off` for none").
		Computed("`160MiB` for `pdfpipe up`"),
}

// StoreSettings say where `pdfpipe up` keeps its embedded server's data,
// and so where the other commands find its URL.
var StoreSettings = envconf.Settings{
	envconf.String("NATS_STORE_DIR", "pdfpipe-data",
		"`pdfpipe up`'s embedded server's JetStream directory; while it runs its URL is in `NATS_STORE_DIR/nats.url`, "+
			"where `pdfpipe status`, `tasks`, `inspect`, `replay` and `cancel` find it"),
}

// ListenSettings shape `pdfpipe up`'s embedded NATS server.
var ListenSettings = envconf.Settings{
	envconf.String("NATS_LISTEN", "",
		"where `pdfpipe up`'s embedded server listens (beyond loopback only with `NATS_USER`/`NATS_PASSWORD`, `NATS_TOKEN` "+
			"or `NATS_NKEY_SEED_FILE`); unset and 127.0.0.1:4222 taken: a free port").Computed("`127.0.0.1:4222`"),
	envconf.String("NATS_LISTEN_TLS_CERT", "", "TLS certificate (PEM file) of `pdfpipe up`'s embedded server, with `NATS_LISTEN_TLS_KEY`"),
	envconf.String("NATS_LISTEN_TLS_KEY", "", "key (PEM file) of `NATS_LISTEN_TLS_CERT`"),
	envconf.String("NATS_LISTEN_TLS_CLIENT_CA", "",
		"with it, clients of `pdfpipe up`'s embedded server must present a certificate this CA signed"),
}

// Names of the binaries in the README's "used by" column.
const (
	nameRun = "`pdfpipe run`"
	nameUp  = "`pdfpipe up`"
	nameCLI = "`pdfpipe status`/`tasks`/`inspect`/`replay`/`cancel`"
)

// Stage binaries.
var (
	Gateway  = servicemain.Binary("gateway", gateway.Settings)
	Fetcher  = servicemain.Binary("fetcher", fetcher.Settings)
	Parser   = servicemain.Binary("parser", envconf.Join(parser.Settings, parser.GCSettings))
	Embedder = servicemain.Binary("embedder", embedder.Settings)
	Ingester = servicemain.Binary("ingester", ingester.Settings)
)

// Run is `pdfpipe run`: every stage but the gateway on an embedded,
// in-process server it makes for the run, ingesting into its own sink.
var Run = envconf.Binary{Name: nameRun, Settings: envconf.Join(
	servicemain.LogSettings.WithDefault("LOG_LEVEL", "warn").WithDefault("LOG_FORMAT", "text"),
	servicemain.SecretSettings, servicemain.PipelineSettings, ProfileSettings, tracing.Settings,
	fetcher.Settings, parser.Settings, embedder.Settings, ingester.Settings.Without("GO_GRPC_INGEST_ADDR"),
)}

// Up is `pdfpipe up`: every service against NATS_URL or an embedded
// server.
var Up = envconf.Binary{Name: nameUp, Settings: envconf.Join(
	servicemain.NATSSettings.WithDefault("NATS_URL", ""), servicemain.SecretSettings, servicemain.PipelineSettings,
	servicemain.LogSettings.WithDefault("LOG_FORMAT", "text"), servicemain.HealthSettings,
	StoreSettings, ListenSettings, ProfileSettings, MemorySettings, tracing.Settings,
	gateway.Settings, fetcher.Settings, parser.Settings, embedder.Settings, ingester.Settings,
)}

// CLI are `pdfpipe status`, `tasks`, `inspect`, `replay` and `cancel`, which read
// a running pipeline.
var CLI = envconf.Binary{Name: nameCLI, Settings: envconf.Join(
	servicemain.NATSSettings.Without("NATS_REPLICAS").
		WithComputed("NATS_URL", fmt.Sprintf("`NATS_STORE_DIR/nats.url`, else `%s`", DefaultNATSURL)),
	StoreSettings, ProfileSettings,
)}

// IngestSink is the reference IngestService.
var IngestSink = envconf.Binary{Name: "ingest-sink", Settings: ingestsink.Settings}

// Binaries are every binary and command, in the order the README's table
// lists their settings.
func Binaries() []envconf.Binary {
	return []envconf.Binary{Gateway, Fetcher, Parser, Embedder, Ingester, Run, Up, CLI, IngestSink}
}

// Aliases shorten the README's "used by" column.
func Aliases() []envconf.Alias {
	return []envconf.Alias{{Name: "stages", Binaries: []string{Gateway.Name, Fetcher.Name, Parser.Name, Embedder.Name, Ingester.Name}}}
}
