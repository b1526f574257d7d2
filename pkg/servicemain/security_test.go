package servicemain_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A service started with credentials in NATS_URL, or with NATS_TOKEN and
// TLS settings, connects to a server that requires them and never logs a
// credential; one without them does not get in.
func TestRunNATSCredentialsNeverLogged(t *testing.T) {
	certs := testenv.NewCerts(t)
	const password, token = "url-PASS-8c2d", "env-TOKEN-71fa9b"
	userSrv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: true, Port: -1, User: "svc", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(userSrv.Stop)
	tokenSrv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: true, Port: -1, Token: token,
		TLSCert: certs.ServerCert, TLSKey: certs.ServerKey, TLSClientCA: certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tokenSrv.Stop)
	hostPort := strings.TrimPrefix(userSrv.ClientURL(), "nats://")
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"credentials in NATS_URL", map[string]string{"NATS_URL": "nats://svc:" + password + "@" + hostPort}},
		{"user and password variables", map[string]string{"NATS_URL": userSrv.ClientURL(), "NATS_USER": "svc", "NATS_PASSWORD": password}},
		{"token and mTLS variables", map[string]string{"NATS_URL": tokenSrv.ClientURL(), "NATS_TOKEN": token,
			"NATS_TLS_CA": certs.CA, "NATS_TLS_CERT": certs.ClientCert, "NATS_TLS_KEY": certs.ClientKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			started := make(chan struct{})
			err := servicemain.Run(ctx, "probe", func(k string) string { return tc.env[k] }, &logs, nil,
				func(ctx context.Context, d servicemain.Deps) error {
					close(started)
					if _, err := d.Res.JS.AccountInfo(ctx); err != nil {
						return err
					}
					return nil
				})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, logs.String())
			}
			select {
			case <-started:
			default:
				t.Fatal("the service never started")
			}
			l := logs.String()
			for _, s := range []string{password, token} {
				if strings.Contains(l, s) {
					t.Errorf("log holds a credential:\n%s", l)
				}
			}
			if !strings.Contains(l, "PDFPIPE_SECRET_KEY is not set") {
				t.Errorf("no warning about unsealed secrets:\n%s", l)
			}
		})
	}
	// Without credentials the connection is refused (and retried until
	// the context ends); the URL in the error, if any, is redacted.
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = servicemain.Run(ctx, "probe", func(k string) string {
		return map[string]string{"NATS_URL": "nats://svc:wrong-" + password + "@" + hostPort}[k]
	}, &logs, nil, func(context.Context, servicemain.Deps) error { return errors.New("started without credentials") })
	if err == nil || strings.Contains(err.Error(), "started without credentials") {
		t.Errorf("Run with a wrong password: got %v, want a refused connection", err)
	}
	if err != nil && strings.Contains(err.Error(), password) {
		t.Errorf("error holds the password: %v", err)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("log holds the password:\n%s", logs.String())
	}
}

func TestSealerFromEnv(t *testing.T) {
	dir := t.TempDir()
	key := pipeline.NewSecretKey()
	file := dir + "/key"
	if err := writeFile(file, key+"\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    map[string]string
		sealer bool
		err    bool
	}{
		{"unset", nil, false, false},
		{"variable", map[string]string{"PDFPIPE_SECRET_KEY": key}, true, false},
		{"file", map[string]string{"PDFPIPE_SECRET_KEY_FILE": file}, true, false},
		{"both", map[string]string{"PDFPIPE_SECRET_KEY": key, "PDFPIPE_SECRET_KEY_FILE": file}, false, true},
		{"short", map[string]string{"PDFPIPE_SECRET_KEY": key[:20]}, false, true},
		{"missing file", map[string]string{"PDFPIPE_SECRET_KEY_FILE": file + ".none"}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := envconf.New(func(k string) string { return tc.env[k] }, servicemain.SecretSettings)
			s, err := servicemain.SealerFrom(r), r.Err()
			if (err != nil) != tc.err || (s != nil) != tc.sealer {
				t.Fatalf("got sealer %v, err %v; want sealer %v, err %v", s != nil, err, tc.sealer, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), key[:20]) {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
