package servicemain_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func TestHealthReadinessAndMetrics(t *testing.T) {
	nc := stagetest.New(t).NC
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	done := make(chan error, 1)
	go func() { done <- servicemain.ServeHealth(ctx, addr, nc) }()

	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		code, _, err := get("/readyz")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("readyz: %d %v", code, err)
		}
		return nil
	})
	code, body, err := get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("metrics: %d %v", code, err)
	}
	for _, want := range []string{`pdfpipe_stage_pending_messages{stage="parse"} 0`, "pdfpipe_jetstream_up 1", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	nc.Close()
	if code, _, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with NATS closed: got %d, want 503", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeHealth: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("ServeHealth did not return after ctx ended")
	}
}
