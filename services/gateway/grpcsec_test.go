package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
	"github.com/pdfpipe/pdfpipe/services/gateway"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const grpcToken = "tok-4f9c2e7a1b3d5f60a8c9e2d1"

// serveTCP runs the gateway's ServeGRPC (the configured security) on
// loopback TCP ports and returns their addresses.
func (h *harness) serveTCP() (keyAddr, embAddr string) {
	h.t.Helper()
	keyLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	embLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gw.ServeGRPC(ctx, keyLis, embLis) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			h.t.Errorf("ServeGRPC: %v", err)
		}
	})
	return keyLis.Addr().String(), embLis.Addr().String()
}

func dialTCP(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func tlsCreds(t *testing.T, ca, cert, key string) credentials.TransportCredentials {
	t.Helper()
	pemCA, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return credentials.NewTLS(tc)
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// With TLS, client certificates and a token, only a caller holding a
// certificate from the client CA and the token gets through; the health
// service needs no token; a key swap without the token fails and leaves the
// victim's key in place.
func TestGRPCSecurity(t *testing.T) {
	t.Parallel()
	certs := testenv.NewCerts(t)
	h := newHarness(t, map[string]string{
		"GRPC_TLS_CERT":      certs.ServerCert,
		"GRPC_TLS_KEY":       certs.ServerKey,
		"GRPC_TLS_CLIENT_CA": certs.CA,
		"GRPC_AUTH_TOKEN":    grpcToken,
	})
	keyAddr, embAddr := h.serveTCP()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	good := tlsCreds(t, certs.CA, certs.ClientCert, certs.ClientKey)
	keys := pb.NewAPIKeyServiceClient(dialTCP(t, keyAddr, good))
	const victimKey = "sk-victim-0a1b2c3d4e5f"
	if _, err := keys.ProvideAPIKey(withToken(ctx, grpcToken), &pb.APIKeyRequest{TaskId: "victim", ApiKey: victimKey, Provider: "openai"}); err != nil {
		t.Fatalf("ProvideAPIKey with certificate and token: %v", err)
	}

	swap := &pb.APIKeyRequest{TaskId: "victim", ApiKey: "sk-attacker-99", Provider: "openai"}
	transport := []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"plaintext", insecure.NewCredentials()},
		{"TLS without client certificate", tlsCreds(t, certs.CA, "", "")},
		{"client certificate of another CA", tlsCreds(t, certs.CA, certs.OtherClientCert, certs.OtherClientKey)},
	}
	for _, tc := range transport {
		t.Run(tc.name, func(t *testing.T) {
			c := pb.NewAPIKeyServiceClient(dialTCP(t, keyAddr, tc.creds))
			_, err := c.ProvideAPIKey(withToken(ctx, grpcToken), swap)
			if err == nil {
				t.Fatal("call succeeded, want a refused connection")
			}
			if got := grpcstatus.Code(err); got != codes.Unavailable {
				t.Errorf("code %v (%v), want Unavailable (handshake refused)", got, err)
			}
		})
	}

	emb := dialTCP(t, embAddr, good)
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"ProvideAPIKey (key swap)", func(ctx context.Context) error { _, err := keys.ProvideAPIKey(ctx, swap); return err }},
		{"ProvideAPIKey (pdf password)", func(ctx context.Context) error {
			_, err := keys.ProvideAPIKey(ctx, &pb.APIKeyRequest{TaskId: "victim", ApiKey: "pw", Provider: "pdf"})
			return err
		}},
		{"GetEmbedding", func(ctx context.Context) error {
			_, err := pb.NewEmbeddingServiceClient(emb).GetEmbedding(ctx, &pb.EmbeddingRequest{Text: "x", ApiKey: "sk-x", Provider: "openai"})
			return err
		}},
		{"GetVector", func(ctx context.Context) error {
			_, err := pb.NewVectorizerServiceClient(emb).GetVector(ctx, &pb.TextRequest{Text: "x"})
			return err
		}},
	}
	for _, c := range calls {
		for _, tok := range []struct{ name, md string }{{"no token", ""}, {"wrong token", "Bearer " + grpcToken + "x"},
			{"token without scheme", grpcToken}, {"basic scheme", "Basic " + grpcToken}} {
			t.Run(c.name+"/"+tok.name, func(t *testing.T) {
				cctx := ctx
				if tok.md != "" {
					cctx = metadata.AppendToOutgoingContext(ctx, "authorization", tok.md)
				}
				err := c.call(cctx)
				if got := grpcstatus.Code(err); got != codes.Unauthenticated {
					t.Errorf("code %v (%v), want Unauthenticated", got, err)
				}
			})
		}
		t.Run(c.name+"/token", func(t *testing.T) {
			if got := grpcstatus.Code(c.call(withToken(ctx, grpcToken))); got == codes.Unauthenticated {
				t.Errorf("refused with the right token")
			}
		})
	}
	// The swap with the token above was made by an authenticated caller:
	// it replaced the key. Put the victim's back and check that no
	// unauthenticated attempt changed it.
	if _, err := keys.ProvideAPIKey(withToken(ctx, grpcToken), &pb.APIKeyRequest{TaskId: "victim", ApiKey: victimKey, Provider: "openai"}); err != nil {
		t.Fatal(err)
	}
	if k, err := pipeline.GetAPIKey(ctx, h.res.Keys, "victim", 0); err != nil || k.Key != victimKey {
		t.Errorf("victim's key after the attempts: matches %v (err %v)", k.Key == victimKey, err)
	}
	for _, addr := range []string{keyAddr, embAddr} {
		resp, err := healthpb.NewHealthClient(dialTCP(t, addr, good)).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health on %s without token: %v, %v; want SERVING", addr, resp, err)
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, grpcToken) || strings.Contains(logs, victimKey) {
		t.Errorf("the token or a key reached the log")
	}
	if strings.Contains(logs, "WITHOUT TLS") || strings.Contains(logs, "WITHOUT authentication") {
		t.Errorf("secured ports logged as insecure")
	}
}

// Without any security configured (what the backend dials today) the ports
// work, say so loudly at start, and keep the first key of a task: a second,
// different key is refused, the same key again is accepted.
func TestGRPCInsecureFirstKeyWins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	keyAddr, embAddr := h.serveTCP()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	keys := pb.NewAPIKeyServiceClient(dialTCP(t, keyAddr, insecure.NewCredentials()))
	const first = "sk-first-owner-123456"
	for _, prov := range []string{"openai", "pdf"} {
		req := &pb.APIKeyRequest{TaskId: "t1", ApiKey: first, Provider: prov}
		for i := range 2 {
			if resp, err := keys.ProvideAPIKey(ctx, req); err != nil || !resp.GetSuccess() {
				t.Fatalf("%s call %d: %v, %v", prov, i, resp, err)
			}
		}
		_, err := keys.ProvideAPIKey(ctx, &pb.APIKeyRequest{TaskId: "t1", ApiKey: "sk-attacker-654321", Provider: prov})
		if got := grpcstatus.Code(err); got != codes.AlreadyExists {
			t.Errorf("%s swap: code %v (%v), want AlreadyExists", prov, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk-") {
			t.Errorf("%s swap: error %q names a key", prov, err)
		}
	}
	// A token the gateway does not require changes nothing: still first wins.
	_, err := keys.ProvideAPIKey(withToken(ctx, grpcToken), &pb.APIKeyRequest{TaskId: "t1", ApiKey: "sk-attacker-654321", Provider: "openai"})
	if got := grpcstatus.Code(err); got != codes.AlreadyExists {
		t.Errorf("swap with an unconfigured token: code %v, want AlreadyExists", got)
	}
	if k, err := pipeline.GetAPIKey(ctx, h.res.Keys, "t1", 0); err != nil || k.Key != first {
		t.Errorf("stored key after swap attempts: first %v (err %v)", k.Key == first, err)
	}
	if p, err := pipeline.GetPDFPassword(ctx, h.res.Keys, "t1", 0); err != nil || p != first {
		t.Errorf("stored password after swap attempts: first %v (err %v)", p == first, err)
	}
	testenv.CheckFor(t, waitLong, pollStep, func() error {
		logs := h.logs.String()
		for _, want := range []string{"WITHOUT TLS", "WITHOUT authentication", keyAddr, embAddr, "GRPC_AUTH_TOKEN", "GRPC_TLS_CERT"} {
			if !strings.Contains(logs, want) {
				return errors.New("start-up warning lacks " + want)
			}
		}
		return nil
	})
}

func TestGRPCSecurityConfig(t *testing.T) {
	certs := testenv.NewCerts(t)
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte(grpcToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"cert without key", map[string]string{"GRPC_TLS_CERT": certs.ServerCert}, "GRPC_TLS_KEY"},
		{"client CA without TLS", map[string]string{"GRPC_TLS_CLIENT_CA": certs.CA}, "GRPC_TLS_CLIENT_CA"},
		{"short token", map[string]string{"GRPC_AUTH_TOKEN": "secret"}, "16"},
		{"token and file", map[string]string{"GRPC_AUTH_TOKEN": grpcToken, "GRPC_AUTH_TOKEN_FILE": tokenFile}, "only one"},
		{"token file", map[string]string{"GRPC_AUTH_TOKEN_FILE": tokenFile}, ""},
		{"missing token file", map[string]string{"GRPC_AUTH_TOKEN_FILE": tokenFile + ".none"}, "GRPC_AUTH_TOKEN_FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := gateway.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ConfigFromEnv: %v", err)
				}
				if cfg.GRPC.Token != grpcToken {
					t.Errorf("token from file not read")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ConfigFromEnv: got %v, want an error naming %s", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), grpcToken) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}
