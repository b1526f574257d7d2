package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// WorkInfo is what a process at work on a task answers on
// pipeline.WorkSubject: the message it holds and how far it is.
type WorkInfo struct {
	Stage     string    `json:"stage"`
	Subject   string    `json:"subject"`
	StreamSeq uint64    `json:"stream_seq"`
	Delivered uint64    `json:"delivered"` // this delivery's number, 1 for the first
	Since     time.Time `json:"since"`
	// Done of Total Units: pages parsed, chunks sent to the backend.
	// Zero when the stage reports no progress.
	Done  int    `json:"done,omitempty"`
	Total int    `json:"total,omitempty"`
	Unit  string `json:"unit,omitempty"`
}

// Work is a handler's hold on the task of the message it works on; see
// Working.
type Work struct {
	ctx         context.Context
	cancel      context.CancelCauseFunc
	info        WorkInfo
	unit        string
	done, total atomic.Int64
	sub         *nats.Subscription
	watch       jetstream.KeyWatcher
}

// Working starts work on msg, a stage's message: until Stop, this process
// answers requests on pipeline.WorkSubject of the message's task with a
// WorkInfo, so `pdfpipe cancel` can tell when no stage works on the task
// any more and `pdfpipe inspect` learns the delivery count. With a status
// bucket (kv not nil), Context ends, with a cause wrapping
// status.ErrTerminal (see TaskEnded), as soon as the task's status record
// is terminal — cancelled, or failed by another stage —, at once if it is
// already: a handler passes it down so its work stops between pages and
// batches, and returns nil when the task has ended. The watch costs one
// KV watch (an ordered consumer) per message at work, so it is for long
// work; unit names what SetProgress counts.
func Working(ctx context.Context, nc *nats.Conn, stage pipeline.Stage, msg jetstream.Msg, kv jetstream.KeyValue, unit string) (*Work, error) {
	taskID := TaskID(msg)
	w := &Work{info: WorkInfo{Stage: string(stage), Subject: msg.Subject(), Delivered: 1, Since: time.Now().UTC()}, unit: unit}
	if md, err := msg.Metadata(); err == nil {
		w.info.StreamSeq, w.info.Delivered = md.Sequence.Stream, md.NumDelivered
	}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	sub, err := nc.Subscribe(pipeline.WorkSubject(taskID), func(m *nats.Msg) {
		data, err := json.Marshal(w.snapshot())
		if err == nil {
			_ = m.Respond(data)
		}
	})
	if err != nil {
		w.cancel(nil)
		return nil, fmt.Errorf("announce work on %s: %w", taskID, err)
	}
	w.sub = sub
	if kv == nil {
		return w, nil
	}
	watch, err := kv.Watch(w.ctx, pipeline.Token(taskID), jetstream.IgnoreDeletes())
	if err != nil {
		w.Stop()
		return nil, fmt.Errorf("watch status of %s: %w", taskID, err)
	}
	w.watch = watch
	go func() {
		// Until the watch ends (Stop, or w.ctx's end): its deliveries
		// must not block.
		for e := range watch.Updates() {
			if e == nil {
				continue // the current value has been delivered
			}
			st, err := status.Decode(e.Value())
			if err == nil && st.State.Terminal() {
				w.cancel(fmt.Errorf("task %s %s: %w", taskID, st.State, status.ErrTerminal))
			}
		}
	}()
	return w, nil
}

// Context is the handler's context, ended when the task ends (with a
// status bucket given to Working) or Stop is called.
func (w *Work) Context() context.Context { return w.ctx }

// SetProgress records how far the work is, in Working's unit; safe for
// concurrent use, and cheap enough to call for every page or chunk.
func (w *Work) SetProgress(done, total int) {
	w.done.Store(int64(done))
	w.total.Store(int64(total))
}

func (w *Work) snapshot() WorkInfo {
	in := w.info
	in.Done, in.Total = int(w.done.Load()), int(w.total.Load())
	if in.Done != 0 || in.Total != 0 {
		in.Unit = w.unit
	}
	return in
}

// Stop ends the work: this process no longer answers for the task, and
// the watch ends. It is safe to call more than once.
func (w *Work) Stop() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
	if w.watch != nil {
		_ = w.watch.Stop()
	}
	w.cancel(context.Canceled)
}

// TaskEnded reports whether ctx ended because its task's status record
// became terminal (see Working): the handler should return nil, so the
// message is acknowledged.
func TaskEnded(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), status.ErrTerminal)
}

// AskWork asks every process at work on the task what it holds. It
// returns at once when no one works on it (the server reports no
// responders), else once no further answer came for 100 ms, or after
// wait.
func AskWork(ctx context.Context, nc *nats.Conn, taskID string, wait time.Duration) ([]WorkInfo, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("ask work on %s: %w", taskID, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(pipeline.WorkSubject(taskID), inbox, nil); err != nil {
		return nil, fmt.Errorf("ask work on %s: %w", taskID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var out []WorkInfo
	for {
		next, stop := ctx, context.CancelFunc(func() {})
		if len(out) > 0 {
			next, stop = context.WithTimeout(ctx, 100*time.Millisecond)
		}
		m, err := sub.NextMsgWithContext(next)
		quiet := len(out) > 0 && errors.Is(next.Err(), context.DeadlineExceeded)
		stop()
		switch {
		case errors.Is(err, nats.ErrNoResponders), err == nil && len(m.Data) == 0 && m.Header.Get("Status") == "503":
			return nil, nil // no one works on it
		case err != nil && ctx.Err() == nil && quiet:
			return out, nil // quiet: everyone has answered
		case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return out, nil // wait is up
		case err != nil:
			return out, fmt.Errorf("ask work on %s: %w", taskID, err)
		}
		var in WorkInfo
		if err := json.Unmarshal(m.Data, &in); err == nil {
			out = append(out, in)
		}
	}
}
