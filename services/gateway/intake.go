package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/services/gateway/redisqueue"
)

const (
	// keptEntryMax bounds what the status record and the stage messages
	// keep of a queue entry: a longer entry keeps only the fields the
	// pipeline reads (its dead-letter entry, should it fail later, too).
	keptEntryMax = 16 << 10
	// natsHeadroom is what a new status record must leave free of NATS's
	// max payload for what the stages add to it as the task runs.
	natsHeadroom = 64 << 10
	// entryAttempts: an error other than NATS or Redis being unavailable
	// is given this many tries before the entry is dead-lettered with it.
	entryAttempts = 3
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
		s.handle(ctx, e)
	}
	return nil
}

// handle accepts one entry. While NATS or Redis is unavailable it keeps
// the entry and tries again; any other error is the entry's own doing
// (it fails the same way each time), so after a few tries the entry goes
// to the dead-letter list and the intake moves on. The entry's trace
// starts here: the fetch job carries it on.
func (s *Service) handle(ctx context.Context, e redisqueue.Entry) {
	ctx, span := tracing.Tracer(s.res.Config.Tracer).Start(ctx, stageName, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "redis"), attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", s.cfg.Queue), attribute.String(stage.AttrStage, stageName)))
	defer span.End()
	out := &entryOutcome{}
	ctx = context.WithValue(ctx, entryOutcomeKey{}, out)
	start := time.Now()
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := s.accept(ctx, e)
		if err == nil {
			s.observe(span, out, time.Since(start))
			return
		}
		if !unavailable(err) && attempt >= entryAttempts {
			s.log.Warn("entry fails the same way each time; dead-lettering it", "stage", "gateway", "attempts", attempt, "err", err)
			if err = s.reject(ctx, e, err); err == nil {
				s.observe(span, out, time.Since(start))
				return
			}
		}
		class := stage.ClassOf(err)
		if unavailable(err) {
			class = stage.ClassUnavailable // NATS or Redis
		}
		s.res.Config.Metrics.Error(stageName, string(class), metrics.OutcomeRetry)
		s.log.Warn("accepting task; will retry", "attempt", attempt, "err", err)
		sleep(ctx, time.Second)
	}
}

// stageName is the gateway's name in spans and metrics.
const stageName = "gateway"

// entryOutcome is how handling one entry ended: class is set when the
// entry was dead-lettered or its task failed here.
type entryOutcome struct{ class stage.Class }

type entryOutcomeKey struct{}

// failed records, for the entry being handled in ctx, that it was
// dead-lettered or its task failed, with the reason's class.
func failed(ctx context.Context, class stage.Class) {
	if o, ok := ctx.Value(entryOutcomeKey{}).(*entryOutcome); ok {
		o.class = class
	}
}

// observe counts a handled entry: its latency, and a failure's class.
func (s *Service) observe(span trace.Span, out *entryOutcome, d time.Duration) {
	m := s.res.Config.Metrics
	outcome := metrics.OutcomeOK
	if out.class != "" {
		outcome = metrics.OutcomeFailed
		m.Error(stageName, string(out.class), outcome)
		span.SetAttributes(attribute.String(stage.AttrErrorClass, string(out.class)))
		span.SetStatus(codes.Error, "entry dead-lettered or task failed")
	}
	m.Handled(stageName, outcome, d)
	span.SetAttributes(attribute.String(stage.AttrOutcome, outcome))
}

// accept starts one entry's task, answers an entry for a task that
// exists already, or dead-letters an entry that cannot be used. It
// returns an error only for what may go away by trying again.
func (s *Service) accept(ctx context.Context, e redisqueue.Entry) error {
	maxEntry := s.cfg.MaxEntry
	if maxEntry <= 0 {
		maxEntry = DefaultMaxEntry
	}
	if n := int64(len(e.Raw)); n > maxEntry {
		reason := fmt.Sprintf("entry is %d bytes, more than the %d allowed (REDIS_MAX_ENTRY_SIZE)", n, maxEntry)
		if n <= 16*maxEntry { // name the task if that is cheap
			if t, err := task.Parse([]byte(e.Raw)); err == nil {
				reason = fmt.Sprintf("task %s: %s", t.ID, reason)
			}
		}
		s.log.Warn("oversized task sent to dead-letter list", "stage", "gateway", "reason", reason, "dlq", s.cfg.DLQ)
		failed(ctx, stage.ClassTooLarge)
		return s.queue.DeadLetter(ctx, e, "gateway: "+reason)
	}
	t, err := task.Parse([]byte(e.Raw))
	if err != nil {
		s.log.Warn("malformed task sent to dead-letter list", "stage", "gateway", "reason", err.Error(), "dlq", s.cfg.DLQ)
		failed(ctx, stage.ClassBadInput)
		return s.queue.DeadLetter(ctx, e, "gateway: "+err.Error())
	}
	log := s.log.With("task_id", t.ID)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(stage.AttrTaskID, t.ID))
	kept, trimmed, err := t.Trimmed(keptEntryMax)
	if err != nil {
		failed(ctx, stage.ClassBadInput)
		return s.queue.DeadLetter(ctx, e, "gateway: "+err.Error())
	}
	fp := task.Fingerprint([]byte(e.Raw))
	rec := status.Status{
		TaskID: t.ID, DocID: t.DocID, UserID: t.UserID, FileName: t.FileName, State: status.Queued,
		Task: kept.Raw, TaskTrimmed: trimmed, Entry: fp, Run: 1,
	}
	if err := s.fitsNATS(rec, kept); err != nil {
		reason := fmt.Sprintf("task %s: %v", t.ID, err)
		log.Warn("task too large for NATS sent to dead-letter list", "stage", "gateway", "reason", reason, "dlq", s.cfg.DLQ)
		failed(ctx, stage.ClassTooLarge)
		return s.queue.DeadLetter(ctx, e, "gateway: "+reason)
	}
	if trimmed {
		log.Info("task entry is large; its status keeps only the fields the pipeline reads", "bytes", len(e.Raw))
	}
	created, err := s.status.Create(ctx, rec)
	if err != nil {
		return err
	}
	if created {
		return s.start(ctx, e, log, kept, fp, 1)
	}
	st, err := s.status.Get(ctx, t.ID)
	if err != nil {
		return err
	}
	if st.Entry == fp {
		acked, err := s.ackedBefore(ctx, t.ID, fp, st.Run)
		if err != nil {
			return err
		}
		if !acked {
			// This very entry started the current run and was never
			// acked: recovered after a crash (or pushed twice at once).
			if st.State == status.Queued {
				// Maybe never published: publish again (deduplicated).
				return s.start(ctx, e, log, kept, fp, st.Run)
			}
			log.Info("recovered entry already started its task; not starting it again", "state", st.State)
			return s.ackEntry(ctx, e, t.ID, fp, st.Run)
		}
	}
	return s.repush(ctx, e, log, kept, trimmed, fp, st)
}

// repush handles a new entry for a task that exists: a failed or
// cancelled task is started again from this entry (it may carry a fresh
// URL); a running or done one is not, and the entry goes to the
// dead-letter list with the reason, which the user also sees as a
// DocumentEvent.
func (s *Service) repush(ctx context.Context, e redisqueue.Entry, log *slog.Logger, t task.Task, trimmed bool, fp string, st status.Status) error {
	if st.State == status.Failed || st.State == status.Cancelled {
		next, ok, err := s.status.Retry(ctx, t.ID, func(r *status.Status) {
			r.DocID, r.UserID, r.FileName = t.DocID, t.UserID, t.FileName
			r.Task, r.TaskTrimmed, r.Entry = t.Raw, trimmed, fp
			// What the new run finds out anew; the ingest bookkeeping
			// stays (the backend may hold chunks of an earlier attempt).
			r.Pages, r.EmptyPages, r.Chunks, r.Chapters = 0, 0, 0, 0
		})
		if err != nil {
			return err
		}
		if ok {
			log.Info("task ended before; the entry pushed again starts it anew", "run", next.Run, "ended", st.State, "at_stage", st.Stage)
			return s.start(ctx, e, log, t, fp, next.Run)
		}
		st = next // retried by someone else meanwhile
	}
	var reason string
	ev := DocumentEvent{
		DocID: t.DocumentID(), UserID: t.UserID, Status: string(st.State),
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Progress:  Progress{TotalChunks: st.Chunks},
	}
	if st.State == status.Done {
		reason = fmt.Sprintf("task %s is already done: the backend holds it; not started again", t.ID)
		ev.Type = "completed"
		ev.Progress.ChunksReceived, ev.Progress.ChunksStored, ev.Progress.Percentage = st.Ingested, st.Ingested, 100
	} else {
		reason = fmt.Sprintf("task %s is already running (%s); not started again", t.ID, st.State)
		ev.Type = "processing"
		ev.Progress.Percentage = percentage(st.State)
	}
	ev.Message = reason
	log.Warn("task sent again while it exists; entry sent to dead-letter list", "stage", "gateway", "state", st.State, "dlq", s.cfg.DLQ)
	// Event first: if the dead-letter push fails, the entry is handled
	// again and the user sees the answer twice rather than never.
	if _, err := s.publishProgress(ctx, ev, answerEvent, 0); err != nil {
		return err
	}
	return s.queue.DeadLetter(ctx, e, "gateway: "+reason)
}

// start publishes the fetch job of run (1 for the first; a retry's
// messages carry its run number, so the duplicate window does not drop
// them) and acks the entry.
func (s *Service) start(ctx context.Context, e redisqueue.Entry, log *slog.Logger, t task.Task, fp string, run int) error {
	n := 0
	if run > 1 {
		n = run
		// Vectors of an earlier run must not stand in for this run's.
		vs, err := s.res.JS.Stream(ctx, pipeline.VectorStream)
		if err != nil {
			return fmt.Errorf("start task %s: %w", t.ID, err)
		}
		if err := vs.Purge(ctx, jetstream.WithPurgeSubject(pipeline.VectorFilter(t.ID))); err != nil {
			return fmt.Errorf("start task %s: purge vectors: %w", t.ID, err)
		}
	}
	if _, err := pipeline.Publish(ctx, s.res.JS, pipeline.Fetch.Subject(t.ID), t.ID, pipeline.MsgID(t.ID, n, "fetch"),
		pipeline.FetchJob{Task: t, Replay: n}); err != nil {
		return fmt.Errorf("start task %s: %w", t.ID, err)
	}
	log.Info("task accepted", "file", clip(t.FileName, 200), "run", max(run, 1))
	s.res.Config.Metrics.Did(stageName, metrics.Work{Documents: 1})
	return s.ackEntry(ctx, e, t.ID, fp, run)
}

// reject dead-letters an entry that keeps failing with cause. If the
// entry already started its task, the task fails instead (the events
// consumer then dead-letters it, once).
func (s *Service) reject(ctx context.Context, e redisqueue.Entry, cause error) error {
	failed(ctx, stage.ClassOf(cause))
	if t, err := task.Parse([]byte(e.Raw)); err == nil {
		fp := task.Fingerprint([]byte(e.Raw))
		st, err := s.status.Get(ctx, t.ID)
		switch {
		case err == nil && st.Entry == fp && st.State == status.Queued:
			if err := s.status.Fail(ctx, t.ID, "gateway", cause); err != nil {
				return err
			}
			return s.ackEntry(ctx, e, t.ID, fp, st.Run)
		case err != nil && !errors.Is(err, status.ErrNotFound):
			return err
		}
	}
	return s.queue.DeadLetter(ctx, e, "gateway: "+cause.Error())
}

// fitsNATS reports a task whose status record or fetch job would not fit
// in a NATS message (with room left for what the stages add).
func (s *Service) fitsNATS(rec status.Status, t task.Task) error {
	limit := int(s.nc.MaxPayload())
	limit = max(limit-natsHeadroom, limit/2)
	for _, m := range []struct {
		what string
		v    any
	}{{"status record", rec}, {"fetch job", pipeline.FetchJob{Task: t}}} {
		b, err := json.Marshal(m.v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", m.what, err)
		}
		if len(b) > limit {
			return fmt.Errorf("too large for NATS: its %s would be %d bytes, more than the %d a NATS message may carry here (FileName %d bytes, URL %d bytes)",
				m.what, len(b), limit, len(t.FileName), len(t.URL))
		}
	}
	return nil
}

// acceptedKey marks the entry (by fingerprint) and run whose ack started
// a task's current run: an identical entry seen later is a new push, not
// a copy recovered from a processing list.
func (s *Service) acceptedKey(taskID string) string { return s.cfg.Queue + ":accepted:" + taskID }

func acceptedValue(fp string, run int) string { return fmt.Sprintf("%s:%d", fp, max(run, 1)) }

func (s *Service) ackedBefore(ctx context.Context, taskID, fp string, run int) (bool, error) {
	v, err := s.rdb.Get(ctx, s.acceptedKey(taskID)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("task %s: %w", taskID, err)
	}
	return v == acceptedValue(fp, run), nil
}

// ackEntry removes a handled entry from the processing list, marking it
// accepted for as long as the task's status lives. An entry that is no
// longer there (another gateway recovered it while this one stalled) is
// not this gateway's any more: retrying its ack would block the intake
// forever, and the task is started at most once either way.
func (s *Service) ackEntry(ctx context.Context, e redisqueue.Entry, taskID, fp string, run int) error {
	ttl := s.res.Config.Retention
	if ttl <= 0 {
		ttl = 72 * time.Hour
	}
	err := s.queue.AckMark(ctx, e, s.acceptedKey(taskID), acceptedValue(fp, run), ttl)
	if errors.Is(err, redisqueue.ErrNotHeld) {
		s.log.Warn("entry left this gateway's processing list before its ack; another gateway owns it", "task_id", taskID, "err", err)
		return nil
	}
	return err
}

// unavailable reports whether err means NATS or Redis could not be
// reached or did not answer in time: worth waiting for, unlike an error
// the entry itself causes.
func unavailable(err error) bool {
	if stage.NATSUnavailable(err) {
		return true
	}
	for _, target := range []error{
		context.DeadlineExceeded, context.Canceled, nats.ErrTimeout,
		redis.ErrClosed, io.EOF, io.ErrUnexpectedEOF,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var redisErr redis.Error
	if errors.As(err, &redisErr) {
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"} {
			if strings.HasPrefix(redisErr.Error(), p) {
				return true
			}
		}
	}
	return false
}

// clip shortens s for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(s[:n], ""), len(s))
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
