package stage

import (
	"context"
	"log/slog"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// ForStage returns the Runner of one pipeline stage as every service runs
// it: the stage's durable consumer, MaxDeliver from the topology, progress
// every third of AckWait, and a task that fails recorded as failed at this
// stage in the status bucket; a handler that has an Ended method (Typed)
// is told of it. Spans and metrics come from res.Config. baseDelay 0 keeps
// the default backoff.
func ForStage(ctx context.Context, res *pipeline.Resources, st pipeline.Stage, h Handler, log *slog.Logger, workers int, baseDelay time.Duration) (*Runner, error) {
	cons, err := res.Consumer(ctx, st)
	if err != nil {
		return nil, err
	}
	store := status.New(res.Status)
	return &Runner{
		Name: string(st), Consumer: cons, Handler: h, Log: log,
		Concurrency: workers, MaxDeliver: res.Config.MaxDeliver,
		Progress: res.Config.AckWait / 3, BaseDelay: baseDelay, Poll: res.Config.PullWait,
		Tracer: res.Config.Tracer, Metrics: res.Config.Metrics,
		OnFail: func(ctx context.Context, taskID string, err error) error {
			if err := store.Fail(ctx, taskID, string(st), err); err != nil {
				return err
			}
			if e, ok := h.(ender); ok {
				e.Ended(taskID) // its other messages are skipped at once
			}
			return nil
		},
	}, nil
}
