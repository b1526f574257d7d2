package parser

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// Chunk publishing.
const (
	// ackWindow is how many embed messages (each up to 16 chunks) of one
	// document may await their PubAck at once: enough to hide the round
	// trip (a message takes the parser about 5 ms to fill), small enough
	// to keep a slow stream from queueing a whole document in memory. At
	// 256 messages, a NATS server slow to ack left the parser service
	// holding 10 MiB more at its peak on a 2,415-page manual.
	ackWindow = 32
	// pubAckTimeout bounds the wait for one PubAck; past it the job fails
	// (and is redelivered: the republished chunks are deduplicated by
	// their message ids).
	pubAckTimeout = time.Minute
)

// ackWindowPublisher publishes messages asynchronously, keeping at most
// size of them unacknowledged; wait returns once every one is stored. It
// is not safe for concurrent use.
type ackWindowPublisher struct {
	js      jetstream.JetStream
	size    int
	timeout time.Duration
	pending []jetstream.PubAckFuture // oldest first, from head
	head    int
	timer   *time.Timer
}

func newAckWindowPublisher(js jetstream.JetStream, size int, timeout time.Duration) *ackWindowPublisher {
	return &ackWindowPublisher{js: js, size: max(size, 1), timeout: timeout}
}

// publish sends v as pipeline.Publish would, without waiting for its
// PubAck unless size publishes are already outstanding (then the oldest
// is waited for first).
func (p *ackWindowPublisher) publish(ctx context.Context, subj, taskID, msgID string, v any) error {
	m, err := pipeline.NewMsg(subj, taskID, v)
	if err != nil {
		return err
	}
	return p.publishMsg(ctx, m, msgID)
}

// publishMsg is publish of a message already built (a binary embed
// message).
func (p *ackWindowPublisher) publishMsg(ctx context.Context, m *nats.Msg, msgID string) error {
	if err := p.dropAcked(); err != nil {
		return err
	}
	if len(p.pending)-p.head >= p.size {
		if err := p.waitOldest(ctx); err != nil {
			return err
		}
	}
	f, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(msgID))
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	if p.head > 0 && p.head == len(p.pending) {
		p.pending, p.head = p.pending[:0], 0
	}
	p.pending = append(p.pending, f)
	return nil
}

// dropAcked lets go of the publishes at the head of the window that are
// already stored, up to the first one still waiting: each future holds
// its message, and a full window of stored 16-chunk messages held on to
// until the window filled again cost the parser service 7 MiB of peak RSS
// on a 2,415-page manual (54 MiB instead of 47).
func (p *ackWindowPublisher) dropAcked() error {
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

// wait returns once every message published so far is stored, or with the
// first error: a failed publish, ctx's end, or pubAckTimeout.
func (p *ackWindowPublisher) wait(ctx context.Context) error {
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

func (p *ackWindowPublisher) waitOldest(ctx context.Context) error {
	f := p.pending[p.head]
	p.pending[p.head] = nil
	p.head++
	if p.timer == nil {
		p.timer = time.NewTimer(p.timeout)
	} else {
		p.timer.Reset(p.timeout)
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, context.Cause(ctx))
	case <-p.timer.C:
		return fmt.Errorf("publish %s: no PubAck within %s: %w", f.Msg().Subject, p.timeout, jetstream.ErrAsyncPublishTimeout)
	}
}
