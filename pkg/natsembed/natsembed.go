// Package natsembed runs a JetStream-enabled nats-server inside the
// process: what `pdfpipe run` and `pdfpipe up` use when no NATS_URL is
// given, and what tests use as a real server.
package natsembed

import (
	"fmt"
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
