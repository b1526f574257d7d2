package stage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeFuture is a PubAckFuture the test resolves.
type fakeFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *fakeFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *fakeFuture) Err() <-chan error            { return f.err }
func (f *fakeFuture) Msg() *nats.Msg               { return f.msg }

// fakeJS records async publishes; every other method is unused.
type fakeJS struct {
	jetstream.JetStream
	futures []*fakeFuture
}

func (j *fakeJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := &fakeFuture{msg: m, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	j.futures = append(j.futures, f)
	return f, nil
}

// publishedThree returns a publisher with a window of 8 that has published
// three messages, none acknowledged yet, and its fake JetStream.
func publishedThree(t *testing.T) (*fakeJS, *Publisher) {
	t.Helper()
	js := &fakeJS{}
	p := &Publisher{JS: js, TaskID: "t", Window: 8, Timeout: time.Minute}
	for i := range 3 {
		if err := p.PublishAsync(context.Background(), "s", i, "x"); err != nil {
			t.Fatal(err)
		}
	}
	return js, p
}

func TestPublisherWindow(t *testing.T) {
	ctx := context.Background()
	t.Run("all acked", func(t *testing.T) {
		js := &fakeJS{}
		p := &Publisher{JS: js, TaskID: "t", Window: 2, Timeout: time.Minute}
		for i, id := range []string{"a", "b"} {
			if err := p.PublishAsync(ctx, "s", i, id); err != nil {
				t.Fatal(err)
			}
		}
		if len(js.futures) != 2 {
			t.Fatalf("got %d publishes, want 2", len(js.futures))
		}
		// The window is full: a third publish must wait for the oldest
		// ack, so with an ended context it fails without publishing.
		ended, cancel := context.WithCancel(ctx)
		cancel()
		if err := p.PublishAsync(ended, "s", 3, "c"); !errors.Is(err, context.Canceled) || len(js.futures) != 2 {
			t.Fatalf("publish into a full window: got %v after %d publishes, want %v after 2", err, len(js.futures), context.Canceled)
		}
		js.futures[1].ok <- &jetstream.PubAck{}
		if err := p.PublishAsync(ctx, "s", 3, "c"); err != nil || len(js.futures) != 3 {
			t.Fatalf("publish after an ack: got %v after %d publishes, want nil after 3", err, len(js.futures))
		}
		js.futures[2].ok <- &jetstream.PubAck{}
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("wait: %v", err)
		}
	})
	t.Run("failed ack", func(t *testing.T) {
		js, p := publishedThree(t)
		boom := errors.New("stream full")
		js.futures[0].ok <- &jetstream.PubAck{}
		js.futures[1].err <- boom
		js.futures[2].ok <- &jetstream.PubAck{}
		if err := p.Wait(ctx); !errors.Is(err, boom) {
			t.Fatalf("wait: got %v, want %v", err, boom)
		}
	})
	t.Run("stored publishes are let go", func(t *testing.T) {
		js, p := publishedThree(t)
		js.futures[0].ok <- &jetstream.PubAck{}
		js.futures[1].ok <- &jetstream.PubAck{}
		if err := p.PublishAsync(ctx, "s", 3, "x"); err != nil {
			t.Fatal(err)
		}
		// The two stored ones are gone (with their messages), the
		// third and the fourth still wait.
		if n := len(p.pending) - p.head; n != 2 {
			t.Errorf("%d publishes held, want 2", n)
		}
		for i, f := range p.pending[:p.head] {
			if f != nil {
				t.Errorf("stored publish %d still referenced", i)
			}
		}
		js.futures[3].err <- errors.New("stream full")
		js.futures[2].ok <- &jetstream.PubAck{}
		if err := p.PublishAsync(ctx, "s", 4, "x"); err == nil || len(js.futures) != 4 {
			t.Errorf("publish after a failed one: got %v after %d publishes, want the failure after 4", err, len(js.futures))
		}
	})
	t.Run("no ack in time", func(t *testing.T) {
		js := &fakeJS{}
		p := &Publisher{JS: js, TaskID: "t", Window: 8, Timeout: 10 * time.Millisecond}
		if err := p.PublishAsync(ctx, "s", 1, "x"); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx); !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			t.Fatalf("wait: got %v, want %v", err, jetstream.ErrAsyncPublishTimeout)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		js := &fakeJS{}
		p := &Publisher{JS: js, TaskID: "t", Window: 8, Timeout: time.Minute}
		if err := p.PublishAsync(ctx, "s", 1, "x"); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := p.Wait(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait: got %v, want %v", err, context.Canceled)
		}
	})
}
