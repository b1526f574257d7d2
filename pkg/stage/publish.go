package stage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

// Publisher defaults.
const (
	// DefaultWindow is how many asynchronous publishes may await their
	// PubAck at once: enough to hide the round trip (an embed message
	// takes the parser about 5 ms to fill), small enough to keep a slow
	// stream from queueing a whole document in memory. At 256 messages, a
	// NATS server slow to ack left the parser service holding 10 MiB more
	// at its peak on a 2,415-page manual.
	DefaultWindow = 32
	// DefaultPubAckTimeout bounds the wait for one PubAck; past it the job
	// fails (and is redelivered: what it publishes again is deduplicated
	// by its message ids).
	DefaultPubAckTimeout = time.Minute
)

// Publisher publishes one job's messages for the next stage: JSON bodies
// with the task id header and a Nats-Msg-Id made from the task, the job's
// replay number and the message's name (pipeline.MsgID), so a redelivered
// job publishes the same messages under the same ids and the stream's
// duplicate window stores each once. Asynchronous publishes keep at most
// Window messages awaiting their PubAck. A Publisher is not safe for
// concurrent use.
type Publisher struct {
	JS     jetstream.JetStream
	TaskID string
	Replay int
	// Window and Timeout default to DefaultWindow and DefaultPubAckTimeout.
	Window  int
	Timeout time.Duration

	pending []jetstream.PubAckFuture // oldest first, from head
	head    int
	timer   *time.Timer
}

// errNoID refuses a publish without a message id: it could be stored twice.
var errNoID = errors.New("no message id")

// Publish stores v at subj once every earlier asynchronous publish is
// stored, and waits for its PubAck. id names the message within its task
// (its kind, and its index when the task has several: "embed", "16"): its
// Nats-Msg-Id is pipeline.MsgID(TaskID, Replay, id...).
func (p *Publisher) Publish(ctx context.Context, subj string, v any, id ...string) error {
	if len(id) == 0 {
		return fmt.Errorf("publish %s: %w", subj, errNoID)
	}
	if err := p.Wait(ctx); err != nil {
		return err
	}
	_, err := pipeline.Publish(ctx, p.JS, subj, p.TaskID, pipeline.MsgID(p.TaskID, p.Replay, id...), v)
	return err
}

// PublishAsync sends what Publish would (with ctx's trace context) without waiting for its PubAck,
// unless Window publishes are awaiting theirs already (then the oldest is
// waited for first). Wait, or the Typed handler before it acks, waits for
// the rest.
func (p *Publisher) PublishAsync(ctx context.Context, subj string, v any, id ...string) error {
	if len(id) == 0 {
		return fmt.Errorf("publish %s: %w", subj, errNoID)
	}
	m, err := pipeline.NewMsg(subj, p.TaskID, v)
	if err != nil {
		return err
	}
	return p.PublishMsgAsync(ctx, m, jetstream.WithMsgID(pipeline.MsgID(p.TaskID, p.Replay, id...)))
}

// PublishMsgAsync is PublishAsync for a message built elsewhere (an embed
// job in its binary form), with its own options; it too carries ctx's
// trace context.
func (p *Publisher) PublishMsgAsync(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) error {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	tracing.Inject(ctx, m.Header) // ctx's trace context, as pipeline.Publish does
	if err := p.dropAcked(); err != nil {
		return err
	}
	if len(p.pending)-p.head >= p.window() {
		if err := p.waitOldest(ctx); err != nil {
			return err
		}
	}
	f, err := p.JS.PublishMsgAsync(m, opts...)
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	if p.head > 0 && p.head == len(p.pending) {
		p.pending, p.head = p.pending[:0], 0
	}
	p.pending = append(p.pending, f)
	return nil
}

func (p *Publisher) window() int {
	if p.Window <= 0 {
		return DefaultWindow
	}
	return p.Window
}

// dropAcked lets go of the publishes at the head of the window that are
// already stored, up to the first one still waiting: each future holds
// its message, and a full window of stored 16-chunk messages held on to
// until the window filled again cost the parser service 7 MiB of peak RSS
// on a 2,415-page manual (54 MiB instead of 47).
func (p *Publisher) dropAcked() error {
	for p.head < len(p.pending) {
		f := p.pending[p.head]
		select {
		case <-f.Ok():
		case err := <-f.Err():
			p.pending[p.head] = nil
			p.head++
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		default:
			return nil
		}
		p.pending[p.head] = nil
		p.head++
	}
	p.pending, p.head = p.pending[:0], 0
	return nil
}

// Wait returns once every message published so far is stored, or with
// the first error: a failed publish, ctx's end, or no PubAck within
// Timeout.
func (p *Publisher) Wait(ctx context.Context) error {
	for p.head < len(p.pending) {
		if err := p.waitOldest(ctx); err != nil {
			return err
		}
	}
	p.pending, p.head = p.pending[:0], 0
	if p.timer != nil {
		p.timer.Stop()
	}
	return nil
}

func (p *Publisher) waitOldest(ctx context.Context) error {
	f := p.pending[p.head]
	p.pending[p.head] = nil
	p.head++
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPubAckTimeout
	}
	if p.timer == nil {
		p.timer = time.NewTimer(timeout)
	} else {
		p.timer.Reset(timeout)
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, context.Cause(ctx))
	case <-p.timer.C:
		return fmt.Errorf("publish %s: no PubAck within %s: %w", f.Msg().Subject, timeout, jetstream.ErrAsyncPublishTimeout)
	}
}
