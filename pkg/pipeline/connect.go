package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// NATSAuth is how a client authenticates to NATS and secures the
// connection: at most one of user/password, token, NKey seed file or
// creds file, and TLS with a CA and an optional client certificate.
// Environment: NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE,
// NATS_CREDS_FILE, NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY.
type NATSAuth struct {
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string
	// TLSCA verifies the server (PEM file); TLSCert and TLSKey are the
	// client's certificate for servers that verify clients.
	TLSCA, TLSCert, TLSKey string
}

// Validate checks that the settings are complete and do not contradict
// each other.
func (a NATSAuth) Validate() error {
	var errs []error
	n := 0
	for _, set := range []bool{a.User != "" || a.Password != "", a.Token != "", a.NKeySeedFile != "", a.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE and NATS_CREDS_FILE: set only one"))
	}
	if (a.User == "") != (a.Password == "") {
		errs = append(errs, errors.New("NATS_USER and NATS_PASSWORD go together"))
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, errors.New("NATS_TLS_CERT and NATS_TLS_KEY go together"))
	}
	return errors.Join(errs...)
}

// Configured says whether any authentication is set (TLS alone is not
// authentication).
func (a NATSAuth) Configured() bool {
	return a.User != "" || a.Token != "" || a.NKeySeedFile != "" || a.CredsFile != ""
}

// LogValue shows which mechanisms are in use, never a secret.
func (a NATSAuth) LogValue() slog.Value {
	auth := "none"
	switch {
	case a.User != "":
		auth = "user " + a.User
	case a.Token != "":
		auth = "token"
	case a.NKeySeedFile != "":
		auth = "nkey " + a.NKeySeedFile
	case a.CredsFile != "":
		auth = "creds " + a.CredsFile
	}
	return slog.GroupValue(slog.String("auth", auth), slog.Bool("tls_ca", a.TLSCA != ""),
		slog.Bool("tls_client_cert", a.TLSCert != ""))
}

// Options are the nats.go options for these settings.
func (a NATSAuth) Options() ([]nats.Option, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		if _, err := os.Stat(a.CredsFile); err != nil {
			return nil, fmt.Errorf("NATS_CREDS_FILE: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.TLSCA != "" || a.TLSCert != "" {
		tc, err := a.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

func (a NATSAuth) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.TLSCA != "" {
		pem, err := os.ReadFile(a.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("NATS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("NATS_TLS_CA %s: no PEM certificate found", a.TLSCA)
		}
		tc.RootCAs = pool
	}
	if a.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_TLS_CERT/NATS_TLS_KEY: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Connect dials NATS at url and keeps reconnecting for as long as the
// process lives: a NATS restart pauses the pipeline, it does not end it.
// opts add authentication and TLS (NATSAuth.Options). Credentials in url
// never reach a log line or an error.
func Connect(url, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats error", "err", err)
		}),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", RedactURL(url), err)
	}
	return nc, nil
}

// RedactURL hides the user information (user, password or token) of each
// URL in a comma-separated NATS URL list: nats://***@host:4222 (see
// envconf.Redact).
func RedactURL(urls string) string { return envconf.Redact(urls) }
