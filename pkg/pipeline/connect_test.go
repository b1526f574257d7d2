package pipeline_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pa55@nats:4222", "nats://***@nats:4222"},
		{"nats://s3cr3t-token@nats:4222", "nats://***@nats:4222"},
		{"tls://a:b@n1:4222, nats://n2:4222,nats://c:d@n3:4222", "tls://***@n1:4222,nats://n2:4222,nats://***@n3:4222"},
		{"u:p@host:4222", "***@host:4222"},
		{"nats://us%er:p@ss@host:4222", "nats://***@host:4222"},
	}
	for _, tc := range tests {
		if got := pipeline.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// startSecureServer runs a real nats-server that requires TLS with a client
// certificate from certs.CA and the given authentication.
func startSecureServer(t *testing.T, certs testenv.Certs, auth natsembed.Options) *natsembed.Server {
	t.Helper()
	auth.StoreDir, auth.Listen, auth.Port = t.TempDir(), true, -1
	auth.TLSCert, auth.TLSKey, auth.TLSClientCA = certs.ServerCert, certs.ServerKey, certs.CA
	srv, err := natsembed.Start(auth)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// Every mechanism NATSAuth offers connects to a server that requires it
// over mutual TLS, and fails without it, with a wrong one, without the
// client certificate or against an unknown CA — and no secret reaches the
// log or an error.
func TestConnectAuthAndTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherSeedFile := filepath.Join(dir, "other.nk")
	if err := os.WriteFile(otherSeedFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	const password, token = "nats-PASS-5d1e9a", "nats-TOKEN-c4b8f2"
	tlsOK := pipeline.NATSAuth{TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey}
	with := func(a pipeline.NATSAuth) pipeline.NATSAuth {
		a.TLSCA, a.TLSCert, a.TLSKey = tlsOK.TLSCA, tlsOK.TLSCert, tlsOK.TLSKey
		return a
	}
	servers := []struct {
		name string
		opts natsembed.Options
		good pipeline.NATSAuth
		bad  map[string]pipeline.NATSAuth
	}{
		{"user and password", natsembed.Options{User: "pdfpipe", Password: password},
			with(pipeline.NATSAuth{User: "pdfpipe", Password: password}),
			map[string]pipeline.NATSAuth{
				"no credentials": tlsOK,
				"wrong password": with(pipeline.NATSAuth{User: "pdfpipe", Password: password + "x"}),
				"no client cert": {User: "pdfpipe", Password: password, TLSCA: certs.CA},
				"client cert of another CA": {User: "pdfpipe", Password: password, TLSCA: certs.CA,
					TLSCert: certs.OtherClientCert, TLSKey: certs.OtherClientKey},
				"server of an unknown CA": {User: "pdfpipe", Password: password, TLSCA: certs.OtherCA,
					TLSCert: certs.ClientCert, TLSKey: certs.ClientKey},
			}},
		{"token", natsembed.Options{Token: token}, with(pipeline.NATSAuth{Token: token}),
			map[string]pipeline.NATSAuth{"wrong token": with(pipeline.NATSAuth{Token: token + "x"})}},
		{"nkey", natsembed.Options{NKey: pub}, with(pipeline.NATSAuth{NKeySeedFile: seedFile}),
			map[string]pipeline.NATSAuth{"other nkey": with(pipeline.NATSAuth{NKeySeedFile: otherSeedFile})}},
	}
	for _, sv := range servers {
		t.Run(sv.name, func(t *testing.T) {
			srv := startSecureServer(t, certs, sv.opts)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			connect := func(a pipeline.NATSAuth) (*nats.Conn, error) {
				opts, err := a.Options()
				if err != nil {
					t.Fatalf("Options: %v", err)
				}
				// Without retrying, so that a refusal is an error here.
				return nats.Connect(srv.ClientURL(), append(opts, nats.MaxReconnects(0))...)
			}
			nc, err := connect(sv.good)
			if err != nil {
				t.Fatalf("connect with %s over mTLS: %v", sv.name, err)
			}
			if !nc.TLSRequired() {
				t.Errorf("connection is not TLS")
			}
			if _, err := nc.Request("$JS.API.INFO", nil, 10*time.Second); err != nil {
				t.Errorf("JetStream over the secured connection: %v", err)
			}
			nc.Close()
			for name, a := range sv.bad {
				nc, err := connect(a)
				if err == nil {
					nc.Close()
					t.Errorf("%s: connected, want refused", name)
					continue
				}
				for _, s := range []string{password, token, string(seed), string(otherSeed)} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("%s: error %q holds a secret", name, err)
					}
				}
			}
			// pipeline.Connect with the same options.
			opts, _ := sv.good.Options()
			nc, err = pipeline.Connect(srv.ClientURL(), "t", log, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if !nc.IsConnected() {
				t.Errorf("pipeline.Connect: not connected")
			}
			if l := logs.String(); strings.Contains(l, password) || strings.Contains(l, token) {
				t.Errorf("log holds a secret: %s", l)
			}
		})
	}
}

func TestNATSAuthValidate(t *testing.T) {
	tests := []struct {
		name string
		a    pipeline.NATSAuth
		ok   bool
	}{
		{"none", pipeline.NATSAuth{}, true},
		{"user without password", pipeline.NATSAuth{User: "u"}, false},
		{"user and token", pipeline.NATSAuth{User: "u", Password: "p", Token: "t"}, false},
		{"token and creds", pipeline.NATSAuth{Token: "t", CredsFile: "c"}, false},
		{"cert without key", pipeline.NATSAuth{TLSCert: "c"}, false},
		{"token and CA", pipeline.NATSAuth{Token: "t", TLSCA: "ca"}, true},
	}
	for _, tc := range tests {
		if err := tc.a.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "auth", pipeline.NATSAuth{User: "u", Password: "pw-SECRET", Token: "tok-SECRET"})
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("LogValue shows a secret: %s", buf.String())
	}
}
