package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// startServer runs an embedded JetStream server for the test.
func startServer(t *testing.T) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// newJS opens a JetStream client on srv, closed at cleanup.
func newJS(t *testing.T, srv *natsembed.Server) jetstream.JetStream {
	t.Helper()
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// setup runs pipeline.Setup on a fresh server.
func setup(t *testing.T, cfg pipeline.Config) *pipeline.Resources {
	t.Helper()
	js := newJS(t, startServer(t))
	r, err := pipeline.Setup(testCtx(t), js, cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return r
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
