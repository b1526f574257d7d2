package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/sync/errgroup"

	"github.com/pdfpipe/pdfpipe/cmd/allinone"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/logging"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/services/gateway"
)

// up runs every service in this process: against NATS_URL when given,
// else on an embedded NATS server that listens on NATS_LISTEN (default
// 127.0.0.1:4222, or a free port when that is taken; the URL is written to
// NATS_STORE_DIR/nats.url for `pdfpipe status`) and keeps its data in
// NATS_STORE_DIR (default ./pdfpipe-data).
func up(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := envconf.New(getenv)
	pcfg := servicemain.PipelineFromEnv(r)
	listen := r.String("NATS_LISTEN", "")
	storeDir := r.String("NATS_STORE_DIR", "pdfpipe-data")
	auth := servicemain.NATSAuthFromEnv(r)
	listenTLS := natsembed.Options{
		TLSCert:     r.String("NATS_LISTEN_TLS_CERT", ""),
		TLSKey:      r.String("NATS_LISTEN_TLS_KEY", ""),
		TLSClientCA: r.String("NATS_LISTEN_TLS_CLIENT_CA", ""),
	}
	if err := errors.Join(r.Err(), auth.Validate()); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	sealer, err := servicemain.SealerFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	gcfg, err := gateway.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	// A port alone means loopback here: `pdfpipe up` is for development
	// and is not exposed unless GRPC_*_PORT names a host (0.0.0.0:50052).
	gcfg.KeyAddr, gcfg.EmbedAddr = loopbackByDefault(gcfg.KeyAddr), loopbackByDefault(gcfg.EmbedAddr)
	log, err := logging.New(stderr, getenv("LOG_LEVEL"), envOr(getenv, "LOG_FORMAT", "text"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var nc *nats.Conn
	var urlFile, clientURL string // the embedded server's, for `status` and `replay`
	if url := getenv("NATS_URL"); url != "" {
		opts, err := auth.Options()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if nc, err = pipeline.Connect(url, "pdfpipe-up", log, opts...); err != nil {
			return err
		}
		log.Info("using NATS", "url", pipeline.RedactURL(url), "auth", auth)
		if sealer == nil {
			log.Warn("PDFPIPE_SECRET_KEY is not set: API keys and PDF passwords are stored UNSEALED in the NATS server's KV bucket " +
				pipeline.KeysBucket + "; set PDFPIPE_SECRET_KEY or PDFPIPE_SECRET_KEY_FILE (the same on every service using that server)")
		}
	} else {
		if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && !natsembed.LoopbackOnly(h) && !auth.Configured() {
			return fmt.Errorf("NATS_LISTEN=%s is beyond loopback: the embedded NATS refuses to listen there without authentication (set NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_NKEY_SEED_FILE)", listen)
		}
		host, port, err := listenAddr(listen, log)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(storeDir)
		so, err := embeddedOptions(auth, listenTLS, abs, host, port)
		if err != nil {
			return err
		}
		if sealer != nil {
			so.JetStreamKey = sealer.StoreKey()
		} else {
			if sealer, err = dataDirSealer(abs); err != nil {
				return err
			}
			log.Warn("PDFPIPE_SECRET_KEY is not set: API keys and PDF passwords are sealed with a key kept beside the data (" +
				filepath.Join(abs, secretKeyFile) + ") and the store is not encrypted; for protection at rest set PDFPIPE_SECRET_KEY or PDFPIPE_SECRET_KEY_FILE from a secret kept elsewhere")
		}
		srv, err := natsembed.Start(so)
		if err != nil {
			return err
		}
		defer srv.Stop()
		// The in-process connection authenticates like any client, without TLS.
		inproc := auth
		inproc.TLSCA, inproc.TLSCert, inproc.TLSKey = "", "", ""
		opts, err := inproc.Options()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if nc, err = srv.Connect("pdfpipe-up", opts...); err != nil {
			return err
		}
		// `pdfpipe status` and `replay` find the server through this
		// file, written once the pipeline's streams and buckets exist.
		urlFile, clientURL = filepath.Join(abs, natsURLFile), srv.ClientURL()
		log.Info("embedded NATS", "url", srv.ClientURL(), "store", abs, "auth", auth,
			"tls", so.TLSCert != "", "store_encrypted", so.JetStreamKey != "")
		if !so.Authenticated() {
			log.Warn("embedded NATS at " + srv.ClientURL() + " accepts clients WITHOUT authentication (loopback only); set NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_NKEY_SEED_FILE")
		}
	}
	pcfg.Sealer = sealer
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	res, err := pipeline.Setup(ctx, js, pcfg)
	if err != nil {
		return fmt.Errorf("setup pipeline: %w", err)
	}
	if urlFile != "" {
		if err := os.WriteFile(urlFile, []byte(clientURL+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(urlFile)
	}
	gw, err := gateway.New(gcfg, res, nc, log.With("service", "gateway"))
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := allinone.Stages(gctx, g, getenv, res, nc, log, ""); err != nil {
		return err
	}
	g.Go(func() error { return gw.Run(gctx) })
	if addr := getenv("HEALTH_ADDR"); addr != "" {
		g.Go(func() error { return servicemain.ServeHealth(gctx, addr, nc) })
	}
	log.Info("pdfpipe up", "gateway", gcfg)
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "err", derr)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// embeddedOptions configure the embedded server from the client settings:
// the server requires the same user and password, token or NKey (its
// public key from the seed file) that the in-process client and the
// command-line tools present. natsembed refuses to listen beyond loopback
// without one of them.
func embeddedOptions(auth pipeline.NATSAuth, tlsOpts natsembed.Options, storeDir, host string, port int) (natsembed.Options, error) {
	so := natsembed.Options{StoreDir: storeDir, Listen: true, Host: host, Port: port,
		User: auth.User, Password: auth.Password, Token: auth.Token,
		TLSCert: tlsOpts.TLSCert, TLSKey: tlsOpts.TLSKey, TLSClientCA: tlsOpts.TLSClientCA}
	if (so.TLSCert == "") != (so.TLSKey == "") || (so.TLSClientCA != "" && so.TLSCert == "") {
		return so, errors.New("config: NATS_LISTEN_TLS_CERT and NATS_LISTEN_TLS_KEY go together (NATS_LISTEN_TLS_CLIENT_CA needs both)")
	}
	switch {
	case auth.CredsFile != "":
		return so, errors.New("config: NATS_CREDS_FILE needs an operator-mode NATS server: set NATS_URL to it (the embedded server takes NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_NKEY_SEED_FILE)")
	case auth.NKeySeedFile != "":
		seed, err := os.ReadFile(auth.NKeySeedFile)
		if err != nil {
			return so, fmt.Errorf("config: NATS_NKEY_SEED_FILE: %w", err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			return so, fmt.Errorf("config: NATS_NKEY_SEED_FILE %s: not an NKey seed", auth.NKeySeedFile)
		}
		if so.NKey, err = kp.PublicKey(); err != nil {
			return so, fmt.Errorf("config: NATS_NKEY_SEED_FILE: %w", err)
		}
	}
	return so, nil
}

// secretKeyFile, in NATS_STORE_DIR, holds the key `pdfpipe up` seals
// secrets with when PDFPIPE_SECRET_KEY is not set.
const secretKeyFile = "secret.key"

// dataDirSealer reads the store directory's secret key, making one (mode
// 0600) on first use.
func dataDirSealer(dir string) (*pipeline.Sealer, error) {
	path := filepath.Join(dir, secretKeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := f.WriteString(pipeline.NewSecretKey() + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := pipeline.ParseSecretKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pipeline.NewSealer(key)
}

// loopbackByDefault turns ":50052" into "127.0.0.1:50052"; an address
// with a host is kept.
func loopbackByDefault(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// natsURLFile, in NATS_STORE_DIR, holds the embedded server's URL while
// `pdfpipe up` runs.
const natsURLFile = "nats.url"

// listenAddr picks where the embedded server listens: NATS_LISTEN when
// set (it must be free), else 127.0.0.1:4222, or a free port when another
// server already has 4222.
func listenAddr(listen string, log *slog.Logger) (string, int, error) {
	explicit := listen != ""
	if !explicit {
		listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("NATS_LISTEN=%q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("NATS_LISTEN=%q: bad port", listen)
	}
	l, err := net.Listen("tcp", listen)
	switch {
	case err == nil:
		l.Close()
		return host, port, nil
	case explicit:
		return "", 0, fmt.Errorf("NATS_LISTEN=%s is taken (%v): set NATS_LISTEN to a free address, or NATS_URL to use the server there", listen, err)
	default:
		log.Warn("127.0.0.1:4222 is taken by another server; the embedded NATS takes a free port (see its url below, or pdfpipe-data/nats.url)")
		return host, -1, nil
	}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
