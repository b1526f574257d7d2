package stage_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// harness is a real JetStream server with the pipeline topology; runners
// read the fetch stage's durable consumer.
type harness struct {
	t    testing.TB
	ctx  context.Context
	nc   *nats.Conn
	res  *pipeline.Resources
	cons jetstream.Consumer
	cfg  pipeline.Config
}

func newHarness(t testing.TB, cfg pipeline.Config) *harness {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Stop)
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	res, err := pipeline.Setup(ctx, js, cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	cons, err := res.Consumer(ctx, pipeline.Fetch)
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	return &harness{t: t, ctx: ctx, nc: nc, res: res, cons: cons, cfg: res.Config}
}

// publish sends one fetch message for the task; the body is the task id.
func (h *harness) publish(taskID string) {
	h.t.Helper()
	if _, err := pipeline.Publish(h.ctx, h.res.JS, pipeline.Fetch.Subject(taskID), taskID, "", taskID); err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
}

// runner returns a Runner on the harness consumer with test-sized timings.
func (h *harness) runner(hd stage.Handler, onFail stage.FailFunc) *stage.Runner {
	return &stage.Runner{
		Name:       "test",
		Consumer:   h.cons,
		Handler:    hd,
		OnFail:     onFail,
		MaxDeliver: h.cfg.MaxDeliver,
		Progress:   100 * time.Millisecond,
		Grace:      5 * time.Second,
		BaseDelay:  50 * time.Millisecond,
		MaxDelay:   200 * time.Millisecond,
	}
}

// start runs r until the returned stop is called (also at cleanup); stop
// returns Run's error.
func (h *harness) start(r *stage.Runner) (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-ch:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return within 30s of cancel")
			}
		})
		return runErr
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop, ch
}

// info returns the consumer's current state.
func (h *harness) info() *jetstream.ConsumerInfo {
	h.t.Helper()
	info, err := h.cons.Info(h.ctx)
	if err != nil {
		h.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// waitSettled waits until every one of n published messages is acked or
// terminated: nothing pending, nothing in flight.
func (h *harness) waitSettled(n uint64) *jetstream.ConsumerInfo {
	h.t.Helper()
	var info *jetstream.ConsumerInfo
	testenv.CheckFor(h.t, 20*time.Second, 20*time.Millisecond, func() error {
		info = h.info()
		if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != n {
			return fmt.Errorf("consumer: ack pending %d, pending %d, ack floor %d; want 0, 0, %d",
				info.NumAckPending, info.NumPending, info.AckFloor.Stream, n)
		}
		return nil
	})
	return info
}

type advisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// terminations collects the server's MSG_TERMINATED advisories for the
// fetch consumer.
func (h *harness) terminations() func() []advisory {
	h.t.Helper()
	var mu sync.Mutex
	var got []advisory
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + pipeline.Stream + "." + pipeline.Fetch.Durable()
	sub, err := h.nc.Subscribe(subj, func(m *nats.Msg) {
		var a advisory
		if err := json.Unmarshal(m.Data, &a); err != nil {
			h.t.Errorf("advisory: %v", err)
			return
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	})
	if err != nil {
		h.t.Fatalf("subscribe advisories: %v", err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatalf("flush: %v", err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() []advisory {
		mu.Lock()
		defer mu.Unlock()
		return append([]advisory(nil), got...)
	}
}

// calls records handler invocations.
type calls struct {
	mu    sync.Mutex
	tasks []string
	seen  []uint64 // NumDelivered per call
	at    []time.Time
}

func (c *calls) record(msg jetstream.Msg) uint64 {
	meta, err := msg.Metadata()
	var n uint64
	if err == nil {
		n = meta.NumDelivered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tasks = append(c.tasks, msg.Headers().Get(pipeline.HeaderTaskID))
	c.seen = append(c.seen, n)
	c.at = append(c.at, time.Now())
	return n
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tasks)
}

func (c *calls) snapshot() ([]string, []uint64, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.tasks...), append([]uint64(nil), c.seen...), append([]time.Time(nil), c.at...)
}

// failures records OnFail calls; the first failN calls fail.
type failures struct {
	mu    sync.Mutex
	ids   []string
	errs  []error
	failN int
}

func (f *failures) onFail(_ context.Context, taskID string, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, taskID)
	f.errs = append(f.errs, err)
	if len(f.ids) <= f.failN {
		return errors.New("status store unavailable")
	}
	return nil
}

func (f *failures) snapshot() ([]string, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...), append([]error(nil), f.errs...)
}

// runToTermination publishes one message per task id, starts r, and
// waits until one message was terminated and every message settled.
func (h *harness) runToTermination(r *stage.Runner, terms func() []advisory, taskIDs ...string) *jetstream.ConsumerInfo {
	h.t.Helper()
	for _, id := range taskIDs {
		h.publish(id)
	}
	h.start(r)
	waitCount(h.t, "terminations", func() int { return len(terms()) }, 1)
	return h.waitSettled(uint64(len(taskIDs)))
}

func waitCount(t testing.TB, what string, n func() int, want int) {
	t.Helper()
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := n(); got != want {
			return fmt.Errorf("%s: got %d, want %d", what, got, want)
		}
		return nil
	})
}

func TestSuccessAcks(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: time.Second, MaxDeliver: 3})
	var c calls
	var f failures
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return nil
	}), f.onFail)
	h.publish("t1")
	h.publish("t.2 with spaces")
	h.start(r)

	info := h.waitSettled(2)
	if info.NumRedelivered != 0 {
		t.Errorf("redelivered: got %d, want 0", info.NumRedelivered)
	}
	tasks, seen, _ := c.snapshot()
	if got, want := strings.Join(tasks, ","), "t1,t.2 with spaces"; got != want {
		t.Errorf("handled tasks: got %q, want %q", got, want)
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("call %d: delivery %d, want 1", i, n)
		}
	}
	if ids, _ := f.snapshot(); len(ids) != 0 {
		t.Errorf("OnFail calls: got %v, want none", ids)
	}
	// Acked messages stay acked past AckWait: the floor does not move back
	// and nothing is delivered again.
	if got, want := info.Delivered.Consumer, uint64(2); got != want {
		t.Errorf("consumer deliveries: got %d, want %d", got, want)
	}
}

func TestTransientErrorRetriedWithBackoff(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	var c calls
	var f failures
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		if c.record(msg) < 3 {
			return errors.New("backend busy")
		}
		return nil
	}), f.onFail)
	r.BaseDelay, r.MaxDelay = 200*time.Millisecond, time.Second
	h.publish("t1")
	h.start(r)

	h.waitSettled(1)
	_, seen, at := c.snapshot()
	if got, want := fmt.Sprint(seen), "[1 2 3]"; got != want {
		t.Fatalf("deliveries: got %s, want %s", got, want)
	}
	// Backoff: ~200ms then ~400ms, each within -20% jitter, and well
	// below AckWait (so the nak delay, not AckWait, caused the redelivery).
	for i, min := range []time.Duration{160 * time.Millisecond, 320 * time.Millisecond} {
		gap := at[i+1].Sub(at[i])
		if gap < min {
			t.Errorf("gap before delivery %d: got %v, want at least %v", i+2, gap, min)
		}
		if gap > 4*time.Second {
			t.Errorf("gap before delivery %d: got %v, want well below AckWait", i+2, gap)
		}
	}
	if ids, _ := f.snapshot(); len(ids) != 0 {
		t.Errorf("OnFail calls: got %v, want none", ids)
	}
}

func TestTransientErrorEveryTimeFailsOnLastDelivery(t *testing.T) {
	for _, runnerMax := range []int{3, 0, 50} {
		// The consumer's MaxDeliver counts, whatever the Runner was given.
		t.Run(fmt.Sprint("runner MaxDeliver ", runnerMax), func(t *testing.T) {
			testFailsOnLastDelivery(t, runnerMax)
		})
	}
}

func testFailsOnLastDelivery(t *testing.T, runnerMax int) {
	const maxDeliver = 3
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: maxDeliver})
	terms := h.terminations()
	var c calls
	var f failures
	errBusy := errors.New("backend busy")
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return errBusy
	}), f.onFail)
	r.MaxDeliver = runnerMax
	h.runToTermination(r, terms, "task.7")
	_, seen, _ := c.snapshot()
	if got, want := fmt.Sprint(seen), "[1 2 3]"; got != want {
		t.Errorf("deliveries: got %s, want %s", got, want)
	}
	ids, errs := f.snapshot()
	if len(ids) != 1 {
		t.Fatalf("OnFail calls: got %d (%v), want 1", len(ids), ids)
	}
	if got, want := ids[0], "task.7"; got != want {
		t.Errorf("OnFail task id: got %q, want %q", got, want)
	}
	if !errors.Is(errs[0], errBusy) {
		t.Errorf("OnFail error: got %v, want %v", errs[0], errBusy)
	}
	a := terms()[0]
	if a.StreamSeq != 1 || a.Deliveries != maxDeliver || !strings.Contains(a.Reason, "backend busy") {
		t.Errorf("termination: got %+v, want stream seq 1, %d deliveries, reason with the error", a, maxDeliver)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	terms := h.terminations()
	var c calls
	var f failures
	errBad := errors.New("not a pdf")
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return fmt.Errorf("check header: %w", stage.Permanent(errBad))
	}), f.onFail)
	info := h.runToTermination(r, terms, "t1")
	if got := c.count(); got != 1 {
		t.Errorf("handler calls: got %d, want 1", got)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("redelivered: got %d, want 0", info.NumRedelivered)
	}
	ids, errs := f.snapshot()
	if len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("OnFail calls: got %v, want [t1]", ids)
	}
	if !errors.Is(errs[0], errBad) || !stage.IsPermanent(errs[0]) {
		t.Errorf("OnFail error: got %v, want the permanent %v", errs[0], errBad)
	}
	if a := terms()[0]; a.Deliveries != 1 || !strings.Contains(a.Reason, "not a pdf") {
		t.Errorf("termination: got %+v, want first delivery with the reason", a)
	}
}

func TestLongReasonTruncated(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	terms := h.terminations()
	long := strings.Repeat("x", 1000)
	r := h.runner(stage.HandlerFunc(func(context.Context, jetstream.Msg) error {
		return stage.Permanent(errors.New(long))
	}), nil) // no OnFail: still terminated
	h.publish("t1")
	h.start(r)
	waitCount(t, "terminations", func() int { return len(terms()) }, 1)
	if got := len(terms()[0].Reason); got == 0 || got > 300 {
		t.Errorf("reason length: got %d, want between 1 and 300", got)
	}
}

func TestOnFailErrorRetries(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	terms := h.terminations()
	var c calls
	f := failures{failN: 1}
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return stage.Permanent(errors.New("bad input"))
	}), f.onFail)
	h.runToTermination(r, terms, "t1")
	_, seen, _ := c.snapshot()
	if got, want := fmt.Sprint(seen), "[1 2]"; got != want {
		t.Errorf("deliveries: got %s, want %s (retried after OnFail failed)", got, want)
	}
	ids, _ := f.snapshot()
	if got, want := fmt.Sprint(ids), "[t1 t1]"; got != want {
		t.Errorf("OnFail calls: got %s, want %s", got, want)
	}
}

func TestPanicIsPermanent(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 5})
	terms := h.terminations()
	var c calls
	var f failures
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		if msg.Headers().Get(pipeline.HeaderTaskID) == "boom" {
			var m map[string]int
			m["x"] = 1 // nil map write
		}
		return nil
	}), f.onFail)
	h.publish("boom")
	h.publish("fine")
	h.start(r)

	waitCount(t, "terminations", func() int { return len(terms()) }, 1)
	h.waitSettled(2)
	tasks, _, _ := c.snapshot()
	if got, want := strings.Join(tasks, ","), "boom,fine"; got != want {
		t.Errorf("handled: got %q, want %q (the runner survives the panic)", got, want)
	}
	ids, errs := f.snapshot()
	if len(ids) != 1 || ids[0] != "boom" {
		t.Fatalf("OnFail calls: got %v, want [boom]", ids)
	}
	if !stage.IsPermanent(errs[0]) || !strings.Contains(errs[0].Error(), "nil map") {
		t.Errorf("OnFail error: got %v, want a permanent error naming the panic", errs[0])
	}
}

func TestInProgressPreventsRedelivery(t *testing.T) {
	const ackWait = time.Second
	tests := []struct {
		name     string
		progress time.Duration
		// setupAckWait is the consumer's AckWait when the runner starts;
		// another Setup sets it to ackWait afterwards (0: it is ackWait
		// from the start).
		setupAckWait time.Duration
		inFlight     bool          // the later Setup comes while the message is handled
		refresh      time.Duration // Runner.Refresh
		wantCalls    int           // deliveries seen while the first handler works
	}{
		{name: "progress keeps the message", progress: 300 * time.Millisecond, wantCalls: 1},
		{name: "a third of the consumer's AckWait when shorter", progress: time.Minute, wantCalls: 1},
		{name: "the AckWait another Setup set later", progress: time.Minute, setupAckWait: time.Minute,
			refresh: 100 * time.Millisecond, wantCalls: 1},
		{name: "the AckWait another Setup set while handling", progress: time.Minute, setupAckWait: time.Minute,
			inFlight: true, refresh: 100 * time.Millisecond, wantCalls: 1},
		// Controls: without timely progress the server does redeliver, so
		// the cases above can fail.
		{name: "control: the later AckWait not read again", progress: time.Minute, setupAckWait: time.Minute,
			refresh: time.Hour, wantCalls: 2},
		{name: "control: the AckWait set while handling not read again", progress: time.Minute, setupAckWait: time.Minute,
			inFlight: true, refresh: time.Hour, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, pipeline.Config{AckWait: cmp.Or(tt.setupAckWait, ackWait), MaxDeliver: 5})
			var c calls
			var f failures
			r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
				if c.record(msg) > 1 {
					return nil // a redelivery: finish at once
				}
				select {
				case <-time.After(2500 * time.Millisecond): // long work
				case <-ctx.Done():
					return ctx.Err()
				}
				return nil
			}), f.onFail)
			r.Progress, r.Refresh = tt.progress, tt.refresh
			r.Concurrency = 2 // so a redelivery would run alongside
			h.start(r)
			lowerAckWait := func() {
				if _, err := pipeline.Setup(h.ctx, h.res.JS, pipeline.Config{AckWait: ackWait, MaxDeliver: 5}); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tt.setupAckWait != 0 && tt.inFlight:
				h.publish("slow")
				testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
					if c.count() == 0 {
						return errors.New("not handled yet")
					}
					return nil
				})
				lowerAckWait()
			case tt.setupAckWait != 0:
				lowerAckWait()
				if tt.refresh < time.Hour { // the controls never read it again
					testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
						if got, want := r.ProgressEvery(), ackWait/3; got != want {
							return fmt.Errorf("runner reports every %v, want %v once it read the new AckWait", got, want)
						}
						return nil
					})
				}
				h.publish("slow")
			default:
				h.publish("slow")
			}

			h.waitSettled(1)
			if got := c.count(); got != tt.wantCalls {
				t.Errorf("handler calls: got %d, want %d", got, tt.wantCalls)
			}
			if tt.wantCalls == 1 {
				if info := h.info(); info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
					t.Errorf("consumer: got %d redelivered, %d deliveries; want 0, 1", info.NumRedelivered, info.Delivered.Consumer)
				}
			}
		})
	}
}

func TestConcurrencyLimit(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := newHarness(t, pipeline.Config{AckWait: 10 * time.Second, MaxDeliver: 3})
			var active, peak atomic.Int32
			var c calls
			r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
				c.record(msg)
				now := active.Add(1)
				defer active.Add(-1)
				for {
					p := peak.Load()
					if now <= p || peak.CompareAndSwap(p, now) {
						break
					}
				}
				select { // some work
				case <-time.After(60 * time.Millisecond):
				case <-ctx.Done():
				}
				return nil
			}), nil)
			r.Concurrency = n
			const msgs = 12
			for i := range msgs {
				h.publish(fmt.Sprintf("t%d", i))
			}
			h.start(r)
			h.waitSettled(msgs)
			if got := c.count(); got != msgs {
				t.Errorf("handled: got %d, want %d", got, msgs)
			}
			if got := int(peak.Load()); got != n {
				t.Errorf("peak concurrency: got %d, want %d", got, n)
			}
		})
	}
}

func TestCancelWaitsForInFlight(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 10 * time.Second, MaxDeliver: 3})
	release := make(chan struct{})
	var finished atomic.Bool
	var c calls
	r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
		c.record(msg)
		<-release
		if ctx.Err() != nil {
			return ctx.Err()
		}
		finished.Store(true)
		return nil
	}), nil)
	h.publish("t1")
	stop, done := h.start(r)
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseOnce) // runs before the runner's stop
	waitCount(t, "handler calls", c.count, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a handler was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	releaseOnce()
	if err := <-stopped; err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if !finished.Load() {
		t.Error("Run returned before the handler finished")
	}
	// The in-flight message was acked although ctx had ended.
	h.waitSettled(1)
}

func TestGraceExceededCancelsHandler(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 10 * time.Second, MaxDeliver: 3})
	var c calls
	var sawCancel atomic.Bool
	r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
		c.record(msg)
		<-ctx.Done() // never finishes on its own
		sawCancel.Store(true)
		return ctx.Err()
	}), nil)
	r.Grace = 300 * time.Millisecond
	h.publish("stuck")
	stop, _ := h.start(r)
	waitCount(t, "handler calls", c.count, 1)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	el := time.Since(start)
	if !sawCancel.Load() {
		t.Error("handler context was not cancelled after Grace")
	}
	if el < 300*time.Millisecond {
		t.Errorf("Run returned after %v, before Grace", el)
	}
	if el > 10*time.Second {
		t.Errorf("Run returned after %v, want about Grace", el)
	}
}

// After ctx ends no new message is started: the rest are left for the
// next runner, at once, and Grace bounds the shutdown.
func TestCancelStartsNoNewWork(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 10 * time.Second, MaxDeliver: 5})
	release := make(chan struct{})
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	var c calls
	r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
		if c.record(msg) == 1 && msg.Headers().Get(pipeline.HeaderTaskID) == "t0" {
			<-release
		}
		return nil
	}), nil)
	r.Concurrency = 1
	for i := range 3 {
		h.publish(fmt.Sprintf("t%d", i))
	}
	stop, _ := h.start(r)
	t.Cleanup(releaseOnce) // runs before the runner's stop
	waitCount(t, "handler calls", c.count, 1)
	// The runner holds only the message its one worker handles.
	if got := h.info().NumAckPending; got != 1 {
		t.Errorf("ack pending: got %d, want 1", got)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.AfterFunc(100*time.Millisecond, releaseOnce)
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	tasks, _, _ := c.snapshot()
	if got, want := strings.Join(tasks, ","), "t0"; got != want {
		t.Errorf("handled by the stopped runner: got %q, want %q", got, want)
	}

	// A new runner gets the rest, without waiting for AckWait.
	var c2 calls
	r2 := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c2.record(msg)
		return nil
	}), nil)
	h.start(r2)
	start := time.Now()
	h.waitSettled(3)
	tasks, _, _ = c2.snapshot()
	if got, want := strings.Join(tasks, ","), "t1,t2"; got != want {
		t.Errorf("handled by the next runner: got %q, want %q", got, want)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("left messages redelivered after %v, want promptly (nak, not AckWait)", el)
	}
}

// A message no worker handles gets no InProgress, so the runner must not
// hold one: while its only worker is busy for several AckWaits, the others
// stay on the server and each is delivered exactly once.
func TestSlowHandlerSpendsNoDeliveries(t *testing.T) {
	const (
		ackWait = 500 * time.Millisecond
		msgs    = 3
	)
	h := newHarness(t, pipeline.Config{AckWait: ackWait, MaxDeliver: 3})
	var c calls
	var f failures
	r := h.runner(stage.HandlerFunc(func(ctx context.Context, msg jetstream.Msg) error {
		c.record(msg)
		select { // slow work: four AckWaits
		case <-time.After(4 * ackWait):
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}), f.onFail)
	r.Concurrency = 1
	for i := range msgs {
		h.publish(fmt.Sprintf("t%d", i))
	}
	h.start(r)
	waitCount(t, "handler calls", c.count, 1)
	if got := h.info().NumAckPending; got != 1 {
		t.Errorf("ack pending while the worker is busy: got %d, want 1", got)
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		info := h.info()
		if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != msgs {
			return fmt.Errorf("consumer: ack pending %d, pending %d, ack floor %d; want 0, 0, %d",
				info.NumAckPending, info.NumPending, info.AckFloor.Stream, msgs)
		}
		return nil
	})
	tasks, seen, _ := c.snapshot()
	if got, want := strings.Join(tasks, ","), "t0,t1,t2"; got != want {
		t.Errorf("handled: got %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(seen), "[1 1 1]"; got != want {
		t.Errorf("deliveries: got %s, want %s", got, want)
	}
	if info := h.info(); info.NumRedelivered != 0 || info.Delivered.Consumer != msgs {
		t.Errorf("consumer: got %d redelivered, %d deliveries; want 0, %d", info.NumRedelivered, info.Delivered.Consumer, msgs)
	}
	if ids, _ := f.snapshot(); len(ids) != 0 {
		t.Errorf("OnFail calls: got %v, want none", ids)
	}
}

func TestRunDefaults(t *testing.T) {
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: 3})
	var c calls
	// Only the required fields: defaults must make it work.
	r := &stage.Runner{Name: "d", Consumer: h.cons, Handler: stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return nil
	})}
	h.publish("t1")
	h.start(r)
	h.waitSettled(1)
	if got := c.count(); got != 1 {
		t.Errorf("handler calls: got %d, want 1", got)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("base")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"permanent", stage.Permanent(base), true},
		{"wrapped permanent", fmt.Errorf("parse: %w", stage.Permanent(base)), true},
		{"joined", errors.Join(errors.New("x"), stage.Permanent(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stage.IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent: got %v, want %v", got, tt.want)
			}
		})
	}
	if stage.Permanent(nil) != nil {
		t.Error("Permanent(nil): got non-nil, want nil")
	}
	p := stage.Permanent(base)
	if !errors.Is(p, base) {
		t.Error("Permanent(base) does not wrap base")
	}
	if got, want := p.Error(), "base"; got != want {
		t.Errorf("Error: got %q, want %q", got, want)
	}
}

// On the last delivery a nak never comes back, so a failing OnFail must
// be retried without one: the task's failure is still recorded.
func TestOnFailErrorOnLastDelivery(t *testing.T) {
	const maxDeliver = 2
	h := newHarness(t, pipeline.Config{AckWait: 5 * time.Second, MaxDeliver: maxDeliver})
	terms := h.terminations()
	var c calls
	f := failures{failN: 2}
	r := h.runner(stage.HandlerFunc(func(_ context.Context, msg jetstream.Msg) error {
		c.record(msg)
		return errors.New("backend busy")
	}), f.onFail)
	h.runToTermination(r, terms, "t1")
	_, seen, _ := c.snapshot()
	if got, want := fmt.Sprint(seen), "[1 2]"; got != want {
		t.Errorf("deliveries: got %s, want %s", got, want)
	}
	ids, _ := f.snapshot()
	if got, want := fmt.Sprint(ids), "[t1 t1 t1]"; got != want {
		t.Errorf("OnFail calls: got %s, want %s", got, want)
	}
}

// BenchmarkThroughput measures messages per second through a runner with
// a trivial handler, and with one that works 1ms (a quick real stage).
func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		n    int
		work time.Duration
	}{{1, 0}, {4, 0}, {1, time.Millisecond}, {4, time.Millisecond}} {
		n := bc.n
		b.Run(fmt.Sprintf("concurrency %d work %v", n, bc.work), func(b *testing.B) {
			h := newHarness(b, pipeline.Config{AckWait: 10 * time.Second, MaxDeliver: 3})
			for i := range b.N {
				h.publish(fmt.Sprintf("t%d", i))
			}
			var handled atomic.Int64
			r := h.runner(stage.HandlerFunc(func(context.Context, jetstream.Msg) error {
				time.Sleep(bc.work) // the stage's work, not synchronisation
				handled.Add(1)
				return nil
			}), nil)
			r.Concurrency = n
			b.ResetTimer()
			start := time.Now()
			stop, _ := h.start(r)
			testenv.CheckFor(b, time.Minute, time.Millisecond, func() error {
				if got := handled.Load(); got < int64(b.N) {
					return fmt.Errorf("handled %d of %d", got, b.N)
				}
				return nil
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if err := stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
