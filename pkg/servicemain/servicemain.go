// Package servicemain is the shared life cycle of a pdfpipe service binary:
// logger from LOG_LEVEL/LOG_FORMAT, traces (OTEL_*) and metrics, a NATS
// connection (NATS_URL), the pipeline topology, a health endpoint, the
// service's own run function until SIGTERM/SIGINT, then an orderly drain.
package servicemain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/logging"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

// Deps are what a service gets once NATS is up.
type Deps struct {
	NC  *nats.Conn
	Res *pipeline.Resources
	Log *slog.Logger
}

// Common is the configuration every service shares (Settings).
type Common struct {
	NATSURL    string            // NATS_URL
	NATS       pipeline.NATSAuth // NATS_USER, NATS_TOKEN, NATS_TLS_CA, …
	LogLevel   string            // LOG_LEVEL
	LogFormat  string            // LOG_FORMAT
	HealthAddr string            // HEALTH_ADDR; empty disables
	Pipeline   pipeline.Config
	Tracing    tracing.Config // OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, …

	env envconf.Values
}

// LogValue lists the settings read, secrets and URL credentials masked.
func (c Common) LogValue() slog.Value { return c.env.LogValue() }

// CommonFromEnv reads the shared settings.
func CommonFromEnv(getenv envconf.Getenv) (Common, error) {
	r := envconf.New(getenv, Settings)
	c := Common{
		NATSURL:    r.String("NATS_URL"),
		LogLevel:   r.String("LOG_LEVEL"),
		LogFormat:  r.String("LOG_FORMAT"),
		HealthAddr: r.String("HEALTH_ADDR"),
		NATS:       NATSAuthFromEnv(r),
		Pipeline:   PipelineFromEnv(r),
	}
	c.Pipeline.Replicas = r.Int("NATS_REPLICAS")
	c.Pipeline.Sealer = SealerFrom(r)
	tcfg, terr := tracing.FromReader(r)
	c.Tracing = tcfg
	c.env = r.Values()
	return c, errors.Join(r.Err(), terr, c.NATS.Validate())
}

// NATSAuthFromEnv reads how to authenticate to NATS and secure the
// connection (see pipeline.NATSAuth); r reads NATSSettings.
func NATSAuthFromEnv(r *envconf.Reader) pipeline.NATSAuth {
	return pipeline.NATSAuth{
		User:         r.String("NATS_USER"),
		Password:     r.Secret("NATS_PASSWORD"),
		Token:        r.Secret("NATS_TOKEN"),
		NKeySeedFile: r.String("NATS_NKEY_SEED_FILE"),
		CredsFile:    r.String("NATS_CREDS_FILE"),
		TLSCA:        r.String("NATS_TLS_CA"),
		TLSCert:      r.String("NATS_TLS_CERT"),
		TLSKey:       r.String("NATS_TLS_KEY"),
	}
}

// SealerFrom reads PDFPIPE_SECRET_KEY or the file PDFPIPE_SECRET_KEY_FILE
// names (a mounted secret): 32 bytes as 64 hex digits or base64. A bad
// key is r's error, which never contains it; none: nil.
func SealerFrom(r *envconf.Reader) *pipeline.Sealer {
	val := r.Secret("PDFPIPE_SECRET_KEY")
	if val == "" {
		return nil
	}
	s, err := sealer(val)
	if err != nil {
		r.Fail(fmt.Errorf("PDFPIPE_SECRET_KEY (or the file PDFPIPE_SECRET_KEY_FILE names): %w", err))
		return nil
	}
	return s
}

func sealer(val string) (*pipeline.Sealer, error) {
	key, err := pipeline.ParseSecretKey(val)
	if err != nil {
		return nil, err
	}
	return pipeline.NewSealer(key)
}

// WarnInsecure logs, once at start, what is left unprotected: secrets
// stored unsealed, NATS without authentication or TLS.
func WarnInsecure(log *slog.Logger, c Common) {
	if c.Pipeline.Sealer == nil {
		log.Warn("PDFPIPE_SECRET_KEY is not set: API keys and PDF passwords are stored UNSEALED in the NATS KV bucket " +
			pipeline.KeysBucket + " and its store files; set PDFPIPE_SECRET_KEY or PDFPIPE_SECRET_KEY_FILE (32 random bytes, the same on every service)")
	}
	if !c.NATS.Configured() && !strings.Contains(c.NATSURL, "@") {
		log.Warn("NATS without authentication: set NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE or NATS_CREDS_FILE (and NATS_TLS_CA for TLS)",
			"nats", pipeline.RedactURL(c.NATSURL))
	}
}

// PipelineFromEnv reads the topology settings (PipelineSettings; the
// caller reads NATS_REPLICAS and the sealer).
func PipelineFromEnv(r *envconf.Reader) pipeline.Config {
	return pipeline.Config{
		Retention:  r.Duration("PDFPIPE_RETENTION"),
		KeyTTL:     r.Duration("API_KEY_TTL"),
		AckWait:    r.Duration("ACK_WAIT"),
		MaxDeliver: r.Int("MAX_DELIVER"),
	}
}

// Run runs one service until SIGTERM or SIGINT. start must return when its
// ctx ends. Config errors are reported before anything connects.
func Run(ctx context.Context, name string, getenv envconf.Getenv, stderr io.Writer, cfg slog.LogValuer,
	start func(ctx context.Context, d Deps) error) error {
	common, err := CommonFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log, err := logging.New(stderr, common.LogLevel, common.LogFormat)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log = log.With("service", name)
	// common logs every shared setting read (secrets as set or unset).
	log.Info("starting", "config", cfg, "common", common)
	WarnInsecure(log, common)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tp, err := tracing.Start(ctx, common.Tracing, "pdfpipe-"+name)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer ShutdownTracing(ctx, tp, log)
	common.Pipeline.Tracer, common.Pipeline.Metrics = tp, metrics.NewMetrics()

	natsOpts, err := common.NATS.Options()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	nc, err := pipeline.Connect(common.NATSURL, "pdfpipe-"+name, log, natsOpts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	res, err := pipeline.Setup(ctx, js, common.Pipeline)
	if err != nil {
		return fmt.Errorf("setup pipeline: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return start(gctx, Deps{NC: nc, Res: res, Log: log}) })
	if common.HealthAddr != "" {
		g.Go(func() error { return ServeHealth(gctx, common.HealthAddr, nc, common.Pipeline.Metrics) })
	}
	err = g.Wait()
	log.Info("stopping")
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "err", derr)
	}
	return err
}

// ShutdownTracing exports the spans tp still holds, within 5 seconds of
// ctx's end.
func ShutdownTracing(ctx context.Context, tp *tracing.Provider, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(sctx); err != nil {
		log.Warn("exporting the last spans", "err", err)
	}
}

// ServeHealth answers /healthz (process alive), /readyz (NATS connected)
// and /metrics (Prometheus: queue depth per stage from JetStream, Go
// runtime and process, and the process's own collectors, such as the
// stages' metrics.Metrics) on addr until ctx ends.
func ServeHealth(ctx context.Context, addr string, nc *nats.Conn, own ...prometheus.Collector) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(js, pipeline.MetricsTopology()), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range own {
		if c != nil && c != (*metrics.Metrics)(nil) {
			reg.MustRegister(c)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "nats not connected", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health %s: %w", addr, err)
	}
	return nil
}
