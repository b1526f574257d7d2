package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// GRPCSecurity is the transport security of :50052 and :50053: TLS from a
// certificate and key (GRPC_TLS_CERT, GRPC_TLS_KEY), client certificates
// required and verified against GRPC_TLS_CLIENT_CA (mTLS), and a shared
// bearer token (GRPC_AUTH_TOKEN or GRPC_AUTH_TOKEN_FILE) that every call
// but the health service must carry as `authorization: Bearer <token>`
// metadata. All empty: plain, unauthenticated gRPC (what the backend's
// client dials today), logged as a warning at start.
type GRPCSecurity struct {
	CertFile, KeyFile string
	ClientCAFile      string
	Token             string
}

// grpcSecurityFromEnv reads GRPC_TLS_* and GRPC_AUTH_TOKEN[_FILE].
func grpcSecurityFromEnv(r *envconf.Reader) GRPCSecurity {
	return GRPCSecurity{
		CertFile:     r.String("GRPC_TLS_CERT"),
		KeyFile:      r.String("GRPC_TLS_KEY"),
		ClientCAFile: r.String("GRPC_TLS_CLIENT_CA"),
		Token:        r.Secret("GRPC_AUTH_TOKEN"),
	}
}

// Validate checks that the settings go together.
func (g GRPCSecurity) Validate() error {
	var errs []error
	if (g.CertFile == "") != (g.KeyFile == "") {
		errs = append(errs, errors.New("GRPC_TLS_CERT and GRPC_TLS_KEY go together"))
	}
	if g.ClientCAFile != "" && g.CertFile == "" {
		errs = append(errs, errors.New("GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY"))
	}
	if g.Token != "" && len(g.Token) < 16 {
		errs = append(errs, errors.New("GRPC_AUTH_TOKEN is shorter than 16 characters: use a random one (openssl rand -hex 32)"))
	}
	return errors.Join(errs...)
}

// TLS says whether the ports serve TLS.
func (g GRPCSecurity) TLS() bool { return g.CertFile != "" }

// Authenticates says whether every call is authenticated (token or
// verified client certificate).
func (g GRPCSecurity) Authenticates() bool { return g.Token != "" || g.ClientCAFile != "" }

// LogValue says what is on, never the token.
func (g GRPCSecurity) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("tls", g.TLS()), slog.Bool("client_certs", g.ClientCAFile != ""),
		slog.Bool("token", g.Token != ""))
}

// ServerOptions are the gRPC server options: credentials and the token
// interceptors.
func (g GRPCSecurity) ServerOptions() ([]grpc.ServerOption, error) {
	var opts []grpc.ServerOption
	if g.TLS() {
		cert, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("GRPC_TLS_CERT/GRPC_TLS_KEY: %w", err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if g.ClientCAFile != "" {
			pem, err := os.ReadFile(g.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("GRPC_TLS_CLIENT_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("GRPC_TLS_CLIENT_CA %s: no PEM certificate found", g.ClientCAFile)
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	a := authorizer{clientCerts: g.ClientCAFile != ""}
	if g.Token != "" {
		sum := sha256.Sum256([]byte(g.Token))
		a.token = sum[:]
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream))
	return opts, nil
}

// authorizer checks the bearer token of every call except the health
// service's (probes carry no token; health tells only "serving").
type authorizer struct {
	token       []byte // sha256 of the token; nil: no token required
	clientCerts bool   // every connection presented a verified certificate
}

type authKey struct{}

// Authenticated says whether the call's caller proved who it is: it sent
// the configured bearer token, or its connection presented a client
// certificate that GRPC_TLS_CLIENT_CA verified.
func Authenticated(ctx context.Context) bool {
	ok, _ := ctx.Value(authKey{}).(bool)
	return ok
}

const healthPrefix = "/grpc.health.v1.Health/"

func (a authorizer) check(ctx context.Context, method string) (context.Context, error) {
	if strings.HasPrefix(method, healthPrefix) {
		return ctx, nil
	}
	if a.token == nil {
		return context.WithValue(ctx, authKey{}, a.clientCerts), nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, tok, found := strings.Cut(v, " ")
		if !found || !strings.EqualFold(scheme, "bearer") {
			continue
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], a.token) == 1 {
			return context.WithValue(ctx, authKey{}, true), nil
		}
	}
	return nil, status.Error(codes.Unauthenticated, "missing or wrong bearer token: send metadata `authorization: Bearer <GRPC_AUTH_TOKEN>`")
}

func (a authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if _, err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// peerAddr is the caller's address for a log line.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
