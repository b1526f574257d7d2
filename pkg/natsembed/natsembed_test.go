package natsembed_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
)

func start(t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// roundTrip checks that nc reaches JetStream: a stream is created and a
// message published to it is stored.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "t.1")
	if err != nil {
		t.Fatalf("GetLastMsgForSubject: %v", err)
	}
	if got, want := string(m.Data), "hello"; got != want {
		t.Errorf("stored data: got %q, want %q", got, want)
	}
}

func TestStartInProcess(t *testing.T) {
	srv := start(t, natsembed.Options{StoreDir: t.TempDir()})
	if got := srv.Addr(); got != nil {
		t.Errorf("Addr of a non-listening server: got %v, want nil", got)
	}
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	if got, want := nc.Opts.Name, "test"; got != want {
		t.Errorf("connection name: got %q, want %q", got, want)
	}
	roundTrip(t, nc)
}

func TestStartListen(t *testing.T) {
	srv := start(t, natsembed.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
	addr := srv.Addr()
	if addr == nil {
		t.Fatal("Addr of a listening server: got nil, want a TCP address")
	}
	if !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Errorf("listen address: got %s, want 127.0.0.1:<port> (default host)", addr)
	}
	if strings.HasSuffix(addr.String(), ":4222") || strings.HasSuffix(addr.String(), ":-1") {
		t.Errorf("listen address: got %s, want a free port picked for Port -1", addr)
	}

	// A TCP client reaches it.
	nc, err := nats.Connect(fmt.Sprintf("nats://%s", addr), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("tcp connect %s: %v", addr, err)
	}
	defer nc.Close()
	roundTrip(t, nc)

	// And the in-process client still works alongside.
	inproc, err := srv.Connect("inproc")
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer inproc.Close()
	if err := inproc.Publish("core.subject", []byte("x")); err != nil {
		t.Fatalf("in-process publish: %v", err)
	}
	if err := inproc.Flush(); err != nil {
		t.Fatalf("in-process flush: %v", err)
	}
}

func TestStartRequiresStoreDir(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{})
	if err == nil {
		srv.Stop()
		t.Fatal("Start without StoreDir: got nil error, want one")
	}
	if !strings.Contains(err.Error(), "StoreDir") {
		t.Errorf("error: got %q, want it to name StoreDir", err)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	nc, err := srv.Connect("first")
	if err != nil {
		srv.Stop()
		t.Fatalf("Connect: %v", err)
	}
	roundTrip(t, nc)
	nc.Close()
	srv.Stop()

	srv2 := start(t, natsembed.Options{StoreDir: dir})
	nc2, err := srv2.Connect("second")
	if err != nil {
		t.Fatalf("Connect after restart: %v", err)
	}
	defer nc2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc2)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "t.1")
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if got, want := string(m.Data), "hello"; got != want {
		t.Errorf("data after restart: got %q, want %q", got, want)
	}
}

// The server refuses to listen beyond loopback without authentication.
func TestRefusesOpenListenerWithoutAuth(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1"} {
		_, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: true, Host: host, Port: -1})
		if err == nil || !strings.Contains(err.Error(), "without authentication") {
			t.Errorf("Start on %s without auth: got %v, want a refusal", host, err)
		}
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "[::1]": true, "localhost": true, "127.0.0.2": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "example.com": false} {
		if got := natsembed.LoopbackOnly(host); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", host, got, want)
		}
	}
}
