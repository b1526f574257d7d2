package fetcher_test

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

// waitLimit bounds every wait in these tests.
const waitLimit = 8 * time.Second

// env is a real in-process JetStream server with the pipeline set up.
type env struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	res    *pipeline.Resources
	status *status.Store
}

func newEnv(t *testing.T) *env {
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
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := pipeline.Setup(ctx, js, pipeline.Config{MaxDeliver: 3, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return &env{nc: nc, js: js, res: res, status: status.New(res.Status)}
}

// run starts a stage's Run and stops it (waiting for it) when the test ends,
// before the connection and the server go away.
func run(t *testing.T, runFn func(context.Context) error) {
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

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitTerminal watches the task's status record until it is done or
// failed and returns it.
func (e *env) waitTerminal(t *testing.T, taskID string) status.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	w, err := e.res.Status.Watch(ctx, pipeline.Token(taskID))
	if err != nil {
		t.Fatalf("watch status: %v", err)
	}
	defer w.Stop()
	var last status.Status
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("task %s: no terminal state after %s; last status %+v", taskID, waitLimit, last)
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

// nextMsg returns the first message stored on subj, waiting for it.
func (e *env) nextMsg(t *testing.T, subj string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := e.js.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatalf("ordered consumer %s: %v", subj, err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(waitLimit))
	if err != nil {
		t.Fatalf("no message on %s: %v", subj, err)
	}
	return m
}

// noMsg fails the test if anything was stored on subj.
func (e *env) noMsg(t *testing.T, subj string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	s, err := e.js.Stream(ctx, pipeline.Stream)
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

// terminated is the JetStream advisory sent when a stage terminates a message.
type terminated struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// watchTerminated collects the terminated-message advisories of a stage's consumer.
func (e *env) watchTerminated(t *testing.T, st pipeline.Stage) <-chan terminated {
	t.Helper()
	ch := make(chan terminated, 16)
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + pipeline.Stream + "." + st.Durable()
	sub, err := e.nc.Subscribe(subj, func(m *nats.Msg) {
		var a terminated
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("decode advisory: %v", err)
			return
		}
		ch <- a
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subj, err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func waitTerminated(t *testing.T, ch <-chan terminated) terminated {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(waitLimit):
		t.Fatalf("no terminated advisory after %s", waitLimit)
		return terminated{}
	}
}

// waitSettled waits until the stage's consumer has nothing pending or
// unacknowledged: every message it got is acked or terminated, and
// none will be redelivered.
func (e *env) waitSettled(t *testing.T, st pipeline.Stage) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := e.js.Consumer(ctx, pipeline.Stream, st.Durable())
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
			t.Fatalf("consumer %s not settled after %s: %+v (err %v)", st.Durable(), waitLimit, info, err)
		case <-tick.C:
		}
	}
}
