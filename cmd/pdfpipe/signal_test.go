package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// proc is the built binary running one command.
type proc struct {
	cmd         *exec.Cmd
	out, errOut *syncBuffer
	done        chan error
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitFor waits until the process's stdout or stderr holds s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	testenv.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
		if strings.Contains(p.out.String(), s) || strings.Contains(p.errOut.String(), s) {
			return nil
		}
		return fmt.Errorf("no %q yet; stdout:\n%s\nstderr:\n%s", s, p.out.String(), p.errOut.String())
	})
}

// interrupt sends SIGINT and returns the exit code, failing when the
// process does not end within limit.
func (p *proc) interrupt(t *testing.T, limit time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &exit) && exit.Exited():
			return exit.ExitCode()
		default:
			t.Fatalf("%v ended by the signal itself (%v), not by its own exit\nstderr:\n%s", p.cmd.Args, err, p.errOut.String())
		}
	case <-time.After(limit):
		t.Fatalf("%v still runs %s after SIGINT\nstderr:\n%s", p.cmd.Args, limit, p.errOut.String())
	}
	return -1
}

// TestSignalsStopCleanly runs the built pdfpipe and presses Ctrl-C: up
// drains its stages and exits 0; status --watch, a cancel waiting for a
// stage that does not stop, and a run mid-document stop waiting at once,
// say they were interrupted and exit 130.
func TestSignalsStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the pdfpipe binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pdfpipe")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("up", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "data")
		p := start(t, bin, []string{"NATS_STORE_DIR=" + store, "NATS_LISTEN=" + freeAddr(t),
			"REDIS_URL=" + testenv.StartRedis(t), "GRPC_SERVER_PORT=" + freeAddr(t), "GRPC_EMBEDDING_PORT=" + freeAddr(t),
			"GO_GRPC_INGEST_ADDR=127.0.0.1:1", "LOG_LEVEL=info"}, "up")
		testenv.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
			_, err := os.Stat(filepath.Join(store, natsURLFile))
			return err
		})
		if code := p.interrupt(t, 30*time.Second); code != 0 {
			t.Errorf("up after SIGINT: exit %d, want 0\nstderr:\n%s", code, p.errOut.String())
		}
		if s := p.errOut.String(); strings.Contains(s, "panic") || strings.Contains(s, "grace exceeded") {
			t.Errorf("up did not stop cleanly:\n%s", s)
		}
	})

	nc, url, js, res := startPipelineWith(t, pipeline.Config{})
	natsEnv := []string{"NATS_URL=" + url}
	putStatus(t, res.Status, status.Status{TaskID: "stuck", State: status.Parsing, UpdatedAt: time.Now()})
	holdParse(t, nc, js, "stuck", nil) // a parser that never stops

	t.Run("status --watch", func(t *testing.T) {
		p := start(t, bin, natsEnv, "status", "--watch", "stuck")
		p.waitFor(t, "parsing pages 3/10")
		if code := p.interrupt(t, 10*time.Second); code != 130 {
			t.Errorf("status --watch after SIGINT: exit %d, want 130\nstderr:\n%s", code, p.errOut.String())
		}
		if !strings.Contains(p.errOut.String(), "pdfpipe: interrupted") {
			t.Errorf("status --watch does not say it was interrupted:\n%s", p.errOut.String())
		}
	})

	t.Run("cancel", func(t *testing.T) {
		p := start(t, bin, natsEnv, "cancel", "--timeout", "10m", "stuck")
		p.waitFor(t, "waiting for parse (3 of 10 pages) to stop")
		if code := p.interrupt(t, 10*time.Second); code != 130 {
			t.Errorf("cancel after SIGINT: exit %d, want 130\nstderr:\n%s", code, p.errOut.String())
		}
		if !strings.Contains(p.errOut.String(), "task stuck is cancelled; stopped waiting") {
			t.Errorf("cancel does not say the task is cancelled all the same:\n%s", p.errOut.String())
		}
		if st, err := status.New(res.Status).Get(context.Background(), "stuck"); err != nil || st.State != status.Cancelled {
			t.Errorf("task after the interrupted cancel: %s (%v), want cancelled", st.State, err)
		}
	})

	t.Run("run", func(t *testing.T) {
		pdf := filepath.Join(t.TempDir(), "long.pdf")
		if out, err := exec.CommandContext(ctx, bin, "sample", "-pages", "2000", pdf).CombinedOutput(); err != nil {
			t.Fatalf("sample: %v\n%s", err, out)
		}
		out := filepath.Join(t.TempDir(), "chunks.jsonl")
		p := start(t, bin, []string{"TEMP_DIR=" + t.TempDir()}, "run", "-out", out, pdf)
		p.waitFor(t, "long.pdf: parsing")
		if code := p.interrupt(t, 30*time.Second); code != 130 {
			t.Errorf("run after SIGINT: exit %d, want 130\nstdout:\n%s\nstderr:\n%s", code, p.out.String(), p.errOut.String())
		}
		if !strings.Contains(p.errOut.String(), "pdfpipe: interrupted") {
			t.Errorf("run does not say it was interrupted:\n%s", p.errOut.String())
		}
	})
}
