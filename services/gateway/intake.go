package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/gateway/redisqueue"
)

// intake moves tasks from Redis to the fetch subject until ctx ends.
// An entry leaves the gateway's Redis processing list only once its fetch
// job is stored in JetStream (or it is dead-lettered), so a crash at any
// point leaves it to be recovered, and the status compare-and-set plus the
// publish's message id make the recovery start it at most once.
func (s *Service) intake(ctx context.Context) error {
	if n, err := s.queue.Recover(ctx); err != nil {
		s.log.Warn("recovering processing list", "err", err)
	} else if n > 0 {
		s.log.Info("recovered tasks from an earlier run", "count", n)
	}
	for ctx.Err() == nil {
		e, err := s.queue.Pop(ctx, 2*time.Second)
		if errors.Is(err, redisqueue.ErrEmpty) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			s.log.Warn("redis pop", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for ctx.Err() == nil {
			err := s.accept(ctx, e)
			if err == nil {
				break
			}
			// NATS or Redis is unavailable: keep the entry and try again.
			s.log.Warn("accepting task; will retry", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

// accept starts one entry's task, or dead-letters it with the reason.
func (s *Service) accept(ctx context.Context, e redisqueue.Entry) error {
	t, err := task.Parse([]byte(e.Raw))
	if err != nil {
		s.log.Warn("malformed task sent to dead-letter list", "stage", "gateway", "reason", err.Error(), "dlq", s.cfg.DLQ)
		return s.queue.DeadLetter(ctx, e, "gateway: "+err.Error())
	}
	log := s.log.With("task_id", t.ID)
	created, err := s.status.Create(ctx, status.Status{
		TaskID: t.ID, DocID: t.DocID, UserID: t.UserID, FileName: t.FileName, State: status.Queued, Task: t.Raw,
	})
	if err != nil {
		return err
	}
	if !created {
		st, err := s.status.Get(ctx, t.ID)
		if err != nil {
			return err
		}
		if st.State != status.Queued {
			// Started before (a recovered entry, or the same task sent twice).
			log.Info("task already known; not starting it again", "state", st.State)
			return s.ack(ctx, e)
		}
		// Queued but maybe never published: publish again (deduplicated).
	}
	if _, err := pipeline.Publish(ctx, s.res.JS, pipeline.Fetch.Subject(t.ID), t.ID, pipeline.MsgID(t.ID, 0, "fetch"),
		pipeline.FetchJob{Task: t}); err != nil {
		return fmt.Errorf("start task %s: %w", t.ID, err)
	}
	log.Info("task accepted", "file", t.FileName)
	return s.ack(ctx, e)
}

// ack removes a handled entry from the processing list. An entry that is
// no longer there (another gateway recovered it while this one stalled)
// is not this gateway's any more: retrying its ack would block the intake
// forever, and the task is started at most once either way.
func (s *Service) ack(ctx context.Context, e redisqueue.Entry) error {
	err := s.queue.Ack(ctx, e)
	if errors.Is(err, redisqueue.ErrNotHeld) {
		s.log.Warn("entry left this gateway's processing list before its ack; another gateway owns it", "err", err)
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
