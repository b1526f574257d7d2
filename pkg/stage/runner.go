package stage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

// Handler does a stage's work for one message.
type Handler interface {
	Handle(ctx context.Context, msg jetstream.Msg) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg jetstream.Msg) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msg jetstream.Msg) error { return f(ctx, msg) }

// FailFunc records that a task failed at this stage. It must be durable
// when it returns nil; the message is terminated only then.
type FailFunc func(ctx context.Context, taskID string, err error) error

// Runner pulls from one consumer and runs a handler with bounded concurrency.
type Runner struct {
	Name     string
	Consumer jetstream.Consumer
	Handler  Handler
	OnFail   FailFunc
	Log      *slog.Logger

	// Concurrency is how many messages are handled at once. Default 1.
	Concurrency int
	// MaxDeliver is used until the consumer's own is read (see Refresh):
	// the last delivery fails the task. Default 10.
	MaxDeliver int
	// Progress is how often InProgress is sent while handling, at most: a
	// third of the consumer's AckWait when that is shorter. Default 10s.
	Progress time.Duration
	// Refresh is how often the consumer's AckWait and MaxDeliver are read
	// again: another process's Setup with other settings changes them for
	// every runner on the consumer. Default 30s.
	Refresh time.Duration
	// Grace is how long in-flight handlers may finish after ctx ends. Default 20s.
	Grace time.Duration
	// Poll is how long one pull request waits for a message when none is
	// pending; a shutdown waits for the request in flight. Default 1s.
	Poll time.Duration
	// BaseDelay and MaxDelay bound the redelivery backoff. Defaults 1s and 1m.
	BaseDelay, MaxDelay time.Duration
	// Tracer starts a span per message (named after the stage), a child of
	// the span whose context the message's headers carry; nil: none.
	Tracer trace.TracerProvider
	// Metrics records per message how long the handler took, what it did
	// (Report) and its error's class; nil: nothing.
	Metrics *metrics.Metrics
	// Classify names the class of a handler's error when the stage knows
	// it; "" (or a nil Classify) leaves it to ClassOf.
	Classify func(error) Class

	mu         sync.Mutex
	progress   time.Duration // the InProgress period in use
	sooner     chan struct{} // closed when progress gets shorter
	maxDeliver atomic.Int64  // the MaxDeliver in use
}

func (r *Runner) defaults() {
	if r.Concurrency <= 0 {
		r.Concurrency = 1
	}
	if r.MaxDeliver <= 0 {
		r.MaxDeliver = 10
	}
	if r.Progress <= 0 {
		r.Progress = 10 * time.Second
	}
	if r.Refresh <= 0 {
		r.Refresh = 30 * time.Second
	}
	if r.Grace <= 0 {
		r.Grace = 20 * time.Second
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = time.Second
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = time.Minute
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
}

// Run handles messages until ctx is done, then stops pulling, lets
// in-flight handlers finish within Grace and returns. Unfinished messages
// are not acked and will be redelivered.
func (r *Runner) Run(ctx context.Context) error {
	r.defaults()
	r.Metrics.Stage(r.Name, ClassNames())
	r.follow(r.Consumer.CachedInfo())
	fctx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	go func() {
		t := time.NewTicker(r.Refresh)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
				if info, err := r.Consumer.Info(fctx); err == nil {
					r.follow(info)
				}
			}
		}
	}()
	// Handlers outlive ctx by up to Grace so a shutdown does not cut work
	// that is about to be acked.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var wg sync.WaitGroup
	slots := make(chan struct{}, r.Concurrency) // one per handler at work
	runErr := r.pull(ctx, slots, func(msg jetstream.Msg) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.handle(work, msg, sync.OnceFunc(func() { <-slots }))
		}()
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.Grace):
		r.Log.Warn("shutdown grace exceeded, cancelling in-flight work", "stage", r.Name)
		cancelWork()
		<-done
	}
	return runErr
}

// pull fetches messages only for free workers, so none waits in a client
// buffer while its AckWait runs out and its deliveries are spent. It holds
// a slot for each message it passes to start, which gives it back when
// the handler is done, and returns once ctx ends.
func (r *Runner) pull(ctx context.Context, slots chan struct{}, start func(jetstream.Msg)) error {
	idle := false // the last pull found nothing: wait for a message
	for {
		select { // a free worker
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		if ctx.Err() != nil { // both were ready
			release(slots, 1)
			return nil
		}
		var batch jetstream.MessageBatch
		var err error
		n := 1
		if idle {
			// Not cancelled with ctx: a message the server sent as the
			// request was dropped would wait out AckWait. Poll bounds
			// the wait.
			batch, err = r.Consumer.Fetch(1, jetstream.FetchMaxWait(r.Poll))
		} else {
			n += reserve(slots) // and every other free one
			batch, err = r.Consumer.FetchNoWait(n)
		}
		if err != nil {
			release(slots, n)
			if r.stopped(ctx, err) {
				return fmt.Errorf("%s: pull: %w", r.Name, err)
			}
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			// Once ctx is done, start nothing new: the message goes back
			// at once, for another replica; but a nak of the last allowed
			// delivery would never come back, so that one is handled,
			// within the shutdown grace.
			if ctx.Err() != nil && !lastDelivery(msg, r.maxDeliveries()) {
				_ = msg.Nak()
				release(slots, 1)
				continue
			}
			start(msg)
		}
		release(slots, n-got)
		idle = got == 0
		if err := batch.Error(); err != nil && r.stopped(ctx, err) {
			return fmt.Errorf("%s: pull: %w", r.Name, err)
		}
	}
}

// reserve takes every free slot without waiting and returns how many.
func reserve(slots chan struct{}) int {
	for n := 0; ; n++ {
		select {
		case slots <- struct{}{}:
		default:
			return n
		}
	}
}

// release gives back n reserved slots.
func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

// stopped reports whether a pull error ends Run; other errors (a
// reconnect, a slow server) are logged and pulling resumes after Poll.
func (r *Runner) stopped(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // the loop ends at its next turn
	}
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrConnectionClosed) {
		return true
	}
	r.Log.Warn("pull failed; retrying", "stage", r.Name, "err", err)
	select {
	case <-ctx.Done():
	case <-time.After(r.Poll):
	}
	return false
}

// follow adopts the consumer's settings: InProgress at least three times
// per AckWait, and its MaxDeliver (when it has one).
func (r *Runner) follow(info *jetstream.ConsumerInfo) {
	p, md := r.Progress, r.MaxDeliver
	if info != nil {
		if aw := info.Config.AckWait; aw > 0 {
			p = min(p, aw/3)
		}
		if info.Config.MaxDeliver > 0 {
			md = info.Config.MaxDeliver
		}
	}
	r.maxDeliver.Store(int64(md))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sooner == nil {
		r.sooner = make(chan struct{})
	}
	if p < r.progress {
		// Handlers at work report at once, before the shorter AckWait
		// runs out on messages they hold.
		close(r.sooner)
		r.sooner = make(chan struct{})
	}
	r.progress = p
}

// ProgressEvery is how often handlers at work report progress, as the
// runner last derived it from Progress and its consumer's AckWait (zero
// before Run).
func (r *Runner) ProgressEvery() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress
}

// pace returns the InProgress period and a channel closed when it gets
// shorter.
func (r *Runner) pace() (time.Duration, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cmp.Or(r.progress, r.Progress), r.sooner
}

func (r *Runner) maxDeliveries() int { return int(r.maxDeliver.Load()) }

// handle runs the handler on msg and settles it; it calls free once the
// worker may take the next message: when the handler succeeded (the ack
// overlaps the next pull), else at the end. The handler runs in a span of
// its own (a child of the publisher's, from the message's headers), and
// how long it took, what it reported and how it ended are counted.
func (r *Runner) handle(ctx context.Context, msg jetstream.Msg, free func()) {
	defer free()
	log, taskID, delivered := messageLog(r.Log, r.Name, msg)
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}

	ctx, span := tracing.Tracer(r.Tracer).Start(tracing.Extract(ctx, msg.Headers()), r.Name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.Int64("messaging.nats.stream_sequence", int64(seq)),
			attribute.Int64("messaging.nats.delivered", int64(delivered)),
			attribute.String(AttrTaskID, taskID),
			attribute.String(AttrStage, r.Name),
		))
	defer span.End()
	rep := &report{}
	start := time.Now()
	outcome := metrics.OutcomeRetry
	var class Class
	defer func() {
		r.Metrics.Handled(r.Name, outcome, time.Since(start))
		span.SetAttributes(attribute.String(AttrOutcome, outcome))
		if class != "" {
			r.Metrics.Error(r.Name, string(class), outcome)
			span.SetAttributes(attribute.String(AttrErrorClass, string(class)))
		}
	}()

	hctx, cancel := context.WithCancel(context.WithValue(ctx, reportKey{}, rep))
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		for {
			every, sooner := r.pace()
			t := time.NewTimer(every)
			select {
			case <-hctx.Done():
				t.Stop()
				return
			case <-sooner:
				t.Stop()
			case <-t.C:
			}
			_ = msg.InProgress()
		}
	}()
	err := r.safeHandle(hctx, msg)
	cancel()
	<-progressDone
	if err != nil {
		class = r.classify(err)
		span.SetStatus(codes.Error, truncate(err.Error(), 500))
	}

	switch {
	case err == nil:
		free()
		outcome = metrics.OutcomeOK
		r.Metrics.Did(r.Name, rep.work())
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("ack failed; message will be redelivered", "err", aerr)
		}
	case IsPermanent(err) || delivered >= uint64(r.maxDeliveries()):
		log.Error("task failed", "err", err)
		if r.OnFail != nil {
			if ferr := r.fail(ctx, msg, log, taskID, err, delivered >= uint64(r.maxDeliveries())); ferr != nil {
				log.Error("recording failure; will retry", "err", ferr)
				_ = msg.NakWithDelay(r.backoff(delivered))
				return
			}
		}
		outcome = metrics.OutcomeFailed
		_ = msg.TermWithReason(truncate(err.Error(), 200))
	default:
		d := r.backoff(delivered)
		log.Warn("transient error; retrying", "err", err, "retry_in", d)
		_ = msg.NakWithDelay(d)
	}
}

// messageLog returns the logger of one message of a stage, with task_id,
// stage, subject, stream_seq and delivered, the message's task and its
// delivery count.
func messageLog(base *slog.Logger, stage string, msg jetstream.Msg) (log *slog.Logger, taskID string, delivered uint64) {
	taskID, delivered = TaskID(msg), 1
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		delivered, seq = meta.NumDelivered, meta.Sequence.Stream
	}
	return base.With("task_id", taskID, "stage", stage, "subject", msg.Subject(), "stream_seq", seq, "delivered", delivered), taskID, delivered
}

// TaskID returns the task a stage message belongs to: from its subject
// (pdf.<stage>.<token>…), which is exact, else from the task id header
// (NATS trims header values, so an id with outer spaces survives only in
// the subject).
func TaskID(msg jetstream.Msg) string {
	parts := strings.SplitN(msg.Subject(), ".", 4)
	if len(parts) >= 3 && parts[0] == "pdf" {
		if id, err := pipeline.TaskIDFromToken(parts[2]); err == nil {
			return id
		}
	}
	return msg.Headers().Get(pipeline.HeaderTaskID)
}

func lastDelivery(msg jetstream.Msg, maxDeliver int) bool {
	meta, err := msg.Metadata()
	return err == nil && maxDeliver > 0 && meta.NumDelivered >= uint64(maxDeliver)
}

// fail records the task's failure through OnFail. On the last delivery a
// nak would never be redelivered, so it retries here instead, keeping the
// message in progress, until OnFail succeeds or ctx ends.
func (r *Runner) fail(ctx context.Context, msg jetstream.Msg, log *slog.Logger, taskID string, err error, last bool) error {
	for attempt := uint64(1); ; attempt++ {
		ferr := r.OnFail(ctx, taskID, err)
		if ferr == nil || !last {
			return ferr
		}
		log.Error("recording failure on the last delivery; retrying", "err", ferr)
		every, _ := r.pace()
		select {
		case <-ctx.Done():
			return ferr
		case <-time.After(min(r.backoff(attempt), every)):
		}
		_ = msg.InProgress()
	}
}

// safeHandle turns a panicking handler into a permanent failure of that
// task instead of a dead process.
func (r *Runner) safeHandle(ctx context.Context, msg jetstream.Msg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("%w: %v", errPanic, p))
		}
	}()
	return r.Handler.Handle(ctx, msg)
}

// classify names err's class: the stage's own Classify first, then ClassOf.
func (r *Runner) classify(err error) Class {
	if r.Classify != nil {
		if c := r.Classify(err); c != "" {
			return c
		}
	}
	return ClassOf(err)
}

func (r *Runner) backoff(delivered uint64) time.Duration {
	d := r.BaseDelay
	for i := uint64(1); i < delivered && d < r.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, r.MaxDelay)
	// ±20% jitter so replicas do not retry in lockstep.
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
