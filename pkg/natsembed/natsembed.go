// Package natsembed runs a JetStream-enabled nats-server inside the
// process: what `pdfpipe run` and `pdfpipe up` use when no NATS_URL is
// given, and what tests use as a real server.
package natsembed

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options for the embedded server.
type Options struct {
	// StoreDir holds JetStream data. Required.
	StoreDir string
	// Listen makes the server accept TCP clients on Host:Port (Port -1
	// picks a free port). Without it only in-process clients connect.
	Listen bool
	Host   string
	Port   int
	// Clients must authenticate with one of these when set: User and
	// Password, Token, or the NKey whose public key is NKey (U…).
	// In-process clients too (pass the matching nats.Option to Connect).
	User, Password string
	Token          string
	NKey           string
	// TLSCert and TLSKey make the listener speak TLS; with TLSClientCA
	// clients must present a certificate it verifies.
	TLSCert, TLSKey, TLSClientCA string
	// JetStreamKey encrypts the store (every stream file) with AES-GCM
	// (nats-server's JetStreamKey). A store written with one key opens
	// only with that key.
	JetStreamKey string
}

// Authenticated says whether clients must authenticate.
func (o Options) Authenticated() bool { return o.User != "" || o.Token != "" || o.NKey != "" }

// LoopbackOnly says whether host is a loopback address (or localhost):
// a listener there is reachable from this machine only.
func LoopbackOnly(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Server is a running embedded server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it is ready.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("natsembed: StoreDir is required")
	}
	so := &server.Options{
		ServerName: "pdfpipe-embedded",
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		DontListen: !opts.Listen,
		Host:       opts.Host,
		Port:       opts.Port,
		NoSigs:     true,
		NoLog:      true,
		// Chunk messages are small; PDF bytes go through the object store.
		MaxPayload: 8 << 20,
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	if opts.Listen && !LoopbackOnly(so.Host) && !opts.Authenticated() {
		return nil, fmt.Errorf("natsembed: refusing to listen on %s without authentication: set a user and password, a token or an NKey, or listen on 127.0.0.1", so.Host)
	}
	switch {
	case opts.User != "":
		so.Username, so.Password = opts.User, opts.Password
	case opts.Token != "":
		so.Authorization = opts.Token
	case opts.NKey != "":
		so.Nkeys = []*server.NkeyUser{{Nkey: opts.NKey}}
	}
	if opts.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: opts.TLSCert, KeyFile: opts.TLSKey,
			CaFile: opts.TLSClientCA, Verify: opts.TLSClientCA != ""})
		if err != nil {
			return nil, fmt.Errorf("natsembed: tls: %w", err)
		}
		so.TLSConfig, so.TLS, so.TLSVerify, so.TLSTimeout = tc, true, opts.TLSClientCA != "", 2
	}
	if opts.JetStreamKey != "" {
		so.JetStreamKey, so.JetStreamCipher = opts.JetStreamKey, server.AES
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after 10s")
	}
	return &Server{Server: s}, nil
}

// Connect opens a client connection to the server, in-process when the
// server does not listen.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.InProcessServer(s.Server)}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect: %w", err)
	}
	return nc, nil
}

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
