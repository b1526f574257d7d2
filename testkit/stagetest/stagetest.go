// Package stagetest runs one pipeline stage against a real in-process
// JetStream server in tests: the pipeline set up, the stage's Run tied to
// the test's life, and waits on status records, subjects and the
// consumer's advisories.
package stagetest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// WaitLimit bounds every wait in these tests.
const WaitLimit = 8 * time.Second

// The consumers' limits in an Env: short, so a handler that waits longer
// than AckWait without InProgress is redelivered within a test.
const (
	AckWait    = 2 * time.Second
	MaxDeliver = 3
)

// Env is a real in-process JetStream server with the pipeline set up
// (MaxDeliver 3, AckWait 2s) for testing one stage.
type Env struct {
	// Srv is the server, for tests that want more connections (one per
	// replica of a stage).
	Srv    *natsembed.Server
	NC     *nats.Conn
	JS     jetstream.JetStream
	Res    *pipeline.Resources
	Status *status.Store
}

// New starts the server and sets the pipeline up; both end with the test.
func New(t testing.TB) *Env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Stop)
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	res, err := pipeline.Setup(ctx, js, pipeline.Config{MaxDeliver: MaxDeliver, AckWait: AckWait})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return &Env{Srv: srv, NC: nc, JS: js, Res: res, Status: status.New(res.Status)}
}

// Run starts a stage's Run and stops it (waiting for it) when the test ends,
// before the connection and the server go away.
func Run(t testing.TB, runFn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got error %v, want nil after cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

// Logger logs into the test log at debug level.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// WaitTerminal watches the task's status record until it is done or
// failed and returns it.
func (e *Env) WaitTerminal(t testing.TB, taskID string) status.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	w, err := e.Res.Status.Watch(ctx, pipeline.Token(taskID))
	if err != nil {
		t.Fatalf("watch status: %v", err)
	}
	defer w.Stop()
	var last status.Status
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("task %s: no terminal state after %s; last status %+v", taskID, WaitLimit, last)
		case u := <-w.Updates():
			if u == nil || u.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := status.Decode(u.Value())
			if err != nil {
				t.Fatalf("decode status: %v", err)
			}
			last = st
			if st.State.Terminal() {
				return st
			}
		}
	}
}

// NextMsg returns the first message stored on subj, waiting for it.
func (e *Env) NextMsg(t testing.TB, subj string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	c, err := e.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatalf("ordered consumer %s: %v", subj, err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(WaitLimit))
	if err != nil {
		t.Fatalf("no message on %s: %v", subj, err)
	}
	return m
}

// NoMsg fails the test if anything was stored on subj.
func (e *Env) NoMsg(t testing.TB, subj string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	s, err := e.JS.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subj)
	if err == nil {
		t.Errorf("got a message on %s (%s), want none", subj, m.Data)
		return
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("get %s: %v", subj, err)
	}
}

// Terminated is the JetStream advisory sent when a stage terminates a message.
type Terminated struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// WatchTerminated collects the Terminated-message advisories of a stage's consumer.
func (e *Env) WatchTerminated(t testing.TB, st pipeline.Stage) <-chan Terminated {
	t.Helper()
	ch := make(chan Terminated, 16)
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + pipeline.Stream + "." + st.Durable()
	sub, err := e.NC.Subscribe(subj, func(m *nats.Msg) {
		var a Terminated
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("decode advisory: %v", err)
			return
		}
		ch <- a
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subj, err)
	}
	if err := e.NC.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func WaitTerminated(t testing.TB, ch <-chan Terminated) Terminated {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(WaitLimit):
		t.Fatalf("no Terminated advisory after %s", WaitLimit)
		return Terminated{}
	}
}

// WaitSettled waits until the stage's consumer has nothing pending or
// unacknowledged: every message it got is acked or Terminated, and
// none will be redelivered.
func (e *Env) WaitSettled(t testing.TB, st pipeline.Stage) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	c, err := e.JS.Consumer(ctx, pipeline.Stream, st.Durable())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var info *jetstream.ConsumerInfo
	for {
		info, err = c.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 &&
			info.Delivered.Stream > 0 && info.AckFloor.Stream >= info.Delivered.Stream {
			return info
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s not settled after %s: %+v (err %v)", st.Durable(), WaitLimit, info, err)
		case <-tick.C:
		}
	}
}

// Subjects counts the distinct subjects matching filter in the stage stream.
func (e *Env) Subjects(t testing.TB, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	s, err := e.JS.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("stream info %s: %v", filter, err)
	}
	return len(info.State.Subjects)
}
