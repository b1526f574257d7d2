package stage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// Replayer is what a stage message decodes into. Every pipeline job says
// which run of its task it belongs to (pipeline.FetchJob.Replay and the
// like: 0 for the first, the replay or retry number after), which tells a
// replay's messages from those of the run that ended before it.
type Replayer interface {
	ReplayNumber() int
}

// Job is one stage message as a stage's work function gets it: decoded,
// with the task it belongs to, a logger naming both, and a publisher for
// what the stage sends on.
type Job[J Replayer] struct {
	Body J
	// TaskID is the task the message belongs to (see TaskID).
	TaskID string
	// Replay is Body's replay number.
	Replay int
	// Delivered is the message's delivery count, 1 the first time.
	Delivered uint64
	// Log has task_id, stage, subject, stream_seq and delivered on every
	// line.
	Log *slog.Logger
	// Msg is the message itself (subject, headers, metadata).
	Msg jetstream.Msg
	// Out publishes the job's messages for the next stage under message
	// ids made from TaskID and Replay. The message is acked only after
	// every one of them is stored.
	Out *Publisher
}

// WorkFunc does a stage's work on one job. Its result is mapped by the
// Runner: nil acks, a Permanent error fails the task, any other error is
// retried; an error wrapping status.ErrTerminal (a status update found
// that the task ended meanwhile) acks the message, the work not done.
type WorkFunc[J Replayer] func(ctx context.Context, job *Job[J]) error

// StatusReader reads a task's status record; *status.Store is one.
type StatusReader interface {
	Get(ctx context.Context, taskID string) (status.Status, error)
}

// Typed is the Handler of a stage whose messages decode into a J. For
// each message it
//
//   - decodes the body with pipeline.Decode; a body that does not decode is
//     a Permanent error naming the stage, the task (from the subject or
//     the task id header) and the reason, so the task fails at once;
//   - skips a task that has ended (its status is terminal): the message
//     is acked and Work is not called. The answer is remembered, so the
//     thousand chunks of a failed task cost one status read;
//   - calls Work with the job, a logger carrying the task's fields, and a
//     publisher, whose publishes it waits for before the message is acked.
//
// ForStage tells a Typed handler of the tasks its runner fails (see
// Ended), so their other messages are skipped without a status read.
type Typed[J Replayer] struct {
	Stage  pipeline.Stage
	Work   WorkFunc[J]
	Status StatusReader
	JS     jetstream.JetStream
	Log    *slog.Logger
	// Fresh is how long a status read that found the task running is
	// trusted. Default 1s. That a task ended is trusted until a message
	// of another run (a replay, a retry) comes: a task does not reopen
	// within a run.
	Fresh time.Duration

	ended endedCache
}

// NewTyped returns the Typed handler of stage st over the pipeline's
// resources.
func NewTyped[J Replayer](res *pipeline.Resources, st pipeline.Stage, log *slog.Logger, work WorkFunc[J]) *Typed[J] {
	return &Typed[J]{Stage: st, Work: work, Status: status.New(res.Status), JS: res.JS, Log: log}
}

// Handle decodes msg, skips it if its task has ended, and calls Work.
func (t *Typed[J]) Handle(ctx context.Context, msg jetstream.Msg) error {
	log, taskID, delivered := messageLog(t.Log, string(t.Stage), msg)
	var body J
	if err := pipeline.Decode(msg.Data(), &body); err != nil {
		return Permanent(fmt.Errorf("%s %s: unreadable message: %w", t.Stage, cmp.Or(taskID, "(no task id)"), err))
	}
	replay := body.ReplayNumber()
	ended, err := t.ended.check(ctx, t.Status, taskID, replay, cmp.Or(t.Fresh, time.Second))
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.Stage, taskID, err)
	}
	if ended {
		log.Debug("task has ended; message skipped")
		return nil
	}
	job := &Job[J]{
		Body: body, TaskID: taskID, Replay: replay, Delivered: delivered, Log: log, Msg: msg,
		Out: &Publisher{JS: t.JS, TaskID: taskID, Replay: replay},
	}
	err = t.Work(ctx, job)
	if err == nil {
		// Nothing is acked before what it published is stored.
		err = job.Out.Wait(ctx)
	}
	if err != nil && errors.Is(err, status.ErrTerminal) && !IsPermanent(err) {
		t.ended.mark(taskID, replay)
		log.Info("task ended meanwhile; message acked", "reason", err)
		return nil
	}
	return err
}

// Ended records that a task has ended, as soon as the runner has failed
// it: its messages taken next are skipped without reading its status,
// even within Fresh of a read that found it running.
func (t *Typed[J]) Ended(taskID string) { t.ended.mark(taskID, anyRun) }

// ender is a Handler that wants to know which tasks its runner failed.
type ender interface{ Ended(taskID string) }
