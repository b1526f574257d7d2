// Package redisqueue consumes the backend's Redis task list without losing
// entries when the gateway crashes.
//
// Pop moves an entry atomically (BLMOVE) from the queue into this instance's
// processing list, "<queue>:processing:<instance>", where it stays until the
// caller has made the task durable elsewhere and calls Ack, or gives up on it
// and calls DeadLetter. While an instance runs it refreshes the key
// "<queue>:alive:<instance>" (Heartbeat, or Run). Recover puts entries back at
// the head of the queue, so they are popped next, from
//
//   - this instance's processing list, for entries this Queue does not hold
//     (left over from a previous run with the same instance id, or moved there
//     by a pop whose reply was lost), and
//   - the processing lists of other instances whose alive key has expired.
//
// Every move is atomic, so an entry is always in exactly one list. An entry
// can be delivered twice (an instance that stalls longer than HeartbeatTTL
// loses its entries to the others), never zero times: downstream must treat
// task ids idempotently.
//
// InstanceID must be unique among running gateways sharing a queue.
package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for Options.
const (
	DefaultQueue        = "queue:upload_tasks"
	DefaultDLQ          = "queue:dlq"
	DefaultPopFrom      = "right"
	DefaultHeartbeatTTL = 30 * time.Second
)

// Options configures a Queue. The zero value means every default.
type Options struct {
	// Queue is the list the backend pushes to (REDIS_QUEUE_NAME).
	// Default "queue:upload_tasks".
	Queue string
	// DLQ is the dead-letter list. Default "queue:dlq".
	DLQ string
	// PopFrom is the end of Queue entries are taken from: "right" (FIFO
	// for today's LPUSH backend: the oldest task is served first) or
	// "left" (the original worker's BLPOP: FIFO for RPUSH producers, LIFO
	// for an LPUSH one). Default "right".
	PopFrom string
	// InstanceID names this gateway's processing list and alive key.
	// Default "<hostname>-<pid>".
	InstanceID string
	// HeartbeatTTL is how long the alive key lives; Run refreshes it every
	// third of it. Other instances recover this instance's entries once it
	// has expired. Default 30s.
	HeartbeatTTL time.Duration
}

// Validate reports options that cannot work. Empty fields are valid (defaults).
func (o Options) Validate() error {
	switch strings.ToLower(o.PopFrom) {
	case "", "left", "right":
	default:
		return fmt.Errorf("%w: PopFrom %q, want \"left\" or \"right\"", ErrBadOptions, o.PopFrom)
	}
	if o.HeartbeatTTL < 0 {
		return fmt.Errorf("%w: HeartbeatTTL %v is negative", ErrBadOptions, o.HeartbeatTTL)
	}
	if o.HeartbeatTTL > 0 && o.HeartbeatTTL < 3*time.Millisecond {
		return fmt.Errorf("%w: HeartbeatTTL %v is shorter than 3ms", ErrBadOptions, o.HeartbeatTTL)
	}
	d := o.withDefaults()
	if d.Queue == d.DLQ {
		return fmt.Errorf("%w: Queue and DLQ are both %q", ErrBadOptions, d.Queue)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Queue == "" {
		o.Queue = DefaultQueue
	}
	if o.DLQ == "" {
		o.DLQ = DefaultDLQ
	}
	o.PopFrom = strings.ToLower(o.PopFrom)
	if o.PopFrom == "" {
		o.PopFrom = DefaultPopFrom
	}
	if o.InstanceID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "gateway"
		}
		o.InstanceID = host + "-" + strconv.Itoa(os.Getpid())
	}
	if o.HeartbeatTTL == 0 {
		o.HeartbeatTTL = DefaultHeartbeatTTL
	}
	return o
}

// Entry is one task popped from the queue.
type Entry struct {
	// Raw is the entry exactly as the producer pushed it.
	Raw string
}

// Queue is a reliable consumer of one Redis list. Its methods are safe for
// concurrent use.
type Queue struct {
	rdb  *redis.Client
	opts Options
	err  error // from Options.Validate, returned by every method
	log  *slog.Logger

	side       string // "LEFT" or "RIGHT": where entries are popped and put back
	processing string
	procPrefix string
	slice      time.Duration // longest single BLMOVE, bounds cancellation latency

	// popMu orders BLMOVE against the scan of the own processing list, so
	// an entry being popped is never mistaken for a leftover.
	popMu   sync.Mutex
	heldMu  sync.Mutex
	held    map[string]int // entries popped and not yet acked or dead-lettered
	beating atomic.Bool    // the alive key has been set at least once
}

// New returns a Queue on rdb; it does no I/O. If opts are invalid (see
// Options.Validate) every method returns that error. log may be nil.
func New(rdb *redis.Client, opts Options, log *slog.Logger) *Queue {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	err := opts.Validate()
	opts = opts.withDefaults()
	q := &Queue{
		rdb:        rdb,
		opts:       opts,
		err:        err,
		side:       strings.ToUpper(opts.PopFrom),
		procPrefix: opts.Queue + ":processing:",
		held:       make(map[string]int),
		slice:      250 * time.Millisecond,
	}
	q.processing = q.procPrefix + opts.InstanceID
	q.log = log.With("queue", opts.Queue, "instance", opts.InstanceID)
	// Pop's BLMOVE must come back before the client's read deadline.
	if rt := rdb.Options().ReadTimeout; rt > 0 && rt < 2*q.slice {
		q.slice = max(rt/2, time.Millisecond)
	}
	return q
}

// Options returns the options in use, defaults filled in.
func (q *Queue) Options() Options { return q.opts }

// ProcessingKey is this instance's processing list.
func (q *Queue) ProcessingKey() string { return q.processing }

// AliveKey is the heartbeat key of instance.
func (q *Queue) AliveKey(instance string) string { return q.opts.Queue + ":alive:" + instance }

// Pop waits up to timeout (timeout <= 0: until ctx is done) for an entry,
// moves it into this instance's processing list and returns it. It returns
// ErrEmpty when the timeout passes, and ctx's error, within about 250ms, when
// ctx is done. Before its first pop it sets the alive key, so no other
// instance takes the entry meanwhile; keep Run going while popping.
func (q *Queue) Pop(ctx context.Context, timeout time.Duration) (Entry, error) {
	if q.err != nil {
		return Entry{}, q.err
	}
	if !q.beating.Load() {
		if err := q.Heartbeat(ctx); err != nil {
			return Entry{}, fmt.Errorf("pop %s: %w", q.opts.Queue, err)
		}
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		if err := ctx.Err(); err != nil {
			return Entry{}, fmt.Errorf("pop %s: %w", q.opts.Queue, err)
		}
		wait := q.slice
		if timeout > 0 {
			left := time.Until(deadline)
			if left < time.Millisecond {
				return Entry{}, ErrEmpty
			}
			wait = min(wait, left)
		}
		raw, err := q.popOnce(ctx, wait)
		switch {
		case err == nil:
			return Entry{Raw: raw}, nil
		case errors.Is(err, redis.Nil):
			continue
		default:
			return Entry{}, fmt.Errorf("pop %s: %w", q.opts.Queue, err)
		}
	}
}

func (q *Queue) popOnce(ctx context.Context, wait time.Duration) (string, error) {
	q.popMu.Lock()
	defer q.popMu.Unlock()
	// BLMOVE takes the timeout in (fractional) seconds; 0 would block forever.
	secs := strconv.FormatFloat(max(wait, time.Millisecond).Seconds(), 'f', 3, 64)
	raw, err := q.rdb.Do(ctx, "blmove", q.opts.Queue, q.processing, q.side, "LEFT", secs).Text()
	if err != nil {
		return "", err
	}
	q.heldMu.Lock()
	q.held[raw]++
	q.heldMu.Unlock()
	return raw, nil
}

func (q *Queue) release(raw string) {
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	if q.held[raw] <= 1 {
		delete(q.held, raw)
	} else {
		q.held[raw]--
	}
}

// Ack removes e from the processing list: call it once the task is durably
// handed on (published and acknowledged). It returns ErrNotHeld if e is no
// longer there.
func (q *Queue) Ack(ctx context.Context, e Entry) error {
	if q.err != nil {
		return q.err
	}
	n, err := q.rdb.LRem(ctx, q.processing, 1, e.Raw).Result()
	if err != nil {
		return fmt.Errorf("ack in %s: %w", q.processing, err)
	}
	// Only after the LREM: a recovery scan in between must still see it held.
	q.release(e.Raw)
	if n == 0 {
		return fmt.Errorf("ack in %s: %w", q.processing, ErrNotHeld)
	}
	return nil
}

// ackMarkScript removes one ARGV[1] from the processing list KEYS[1] and,
// if it was there, sets KEYS[2] to ARGV[2] for ARGV[3] milliseconds.
// Returns how many it removed (0 or 1).
var ackMarkScript = redis.NewScript(`
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
if n > 0 then
	redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return n
`)

// AckMark is Ack that also sets key to value for ttl in the same atomic
// step, so a caller can later tell an entry it acked from one it never
// did (an entry is acked once; a copy pushed again is a new entry). It
// returns ErrNotHeld, and sets nothing, if e is no longer held.
func (q *Queue) AckMark(ctx context.Context, e Entry, key, value string, ttl time.Duration) error {
	if q.err != nil {
		return q.err
	}
	n, err := ackMarkScript.Run(ctx, q.rdb, []string{q.processing, key}, e.Raw, value, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return fmt.Errorf("ack in %s: %w", q.processing, err)
	}
	q.release(e.Raw)
	if n == 0 {
		return fmt.Errorf("ack in %s: %w", q.processing, ErrNotHeld)
	}
	return nil
}

// deadLetterScript appends ARGV[2] to the dead-letter list KEYS[2] and
// removes one ARGV[1] from the processing list KEYS[1], returning how many
// it removed (0 or 1).
var deadLetterScript = redis.NewScript(`
redis.call('RPUSH', KEYS[2], ARGV[2])
return redis.call('LREM', KEYS[1], 1, ARGV[1])
`)

// DeadLetter appends e to the DLQ list, as the original JSON object plus
// "final_result" (reason) and "failed_at" (RFC 3339, UTC), and removes it
// from the processing list if it is there, in one atomic step. An entry that
// is not a JSON object is kept whole as the string field "raw". e need not
// come from Pop: a task that fails later in the pipeline is dead-lettered the
// same way.
func (q *Queue) DeadLetter(ctx context.Context, e Entry, reason string) error {
	if q.err != nil {
		return q.err
	}
	payload, err := deadLetterPayload(e.Raw, reason, time.Now())
	if err != nil {
		return fmt.Errorf("dead-letter to %s: %w", q.opts.DLQ, err)
	}
	n, err := deadLetterScript.Run(ctx, q.rdb, []string{q.processing, q.opts.DLQ}, e.Raw, payload).Int()
	if err != nil {
		return fmt.Errorf("dead-letter to %s: %w", q.opts.DLQ, err)
	}
	if n > 0 {
		q.release(e.Raw)
	}
	return nil
}

// RecordFailure appends a task that failed later in the pipeline to the
// dead-letter list, as DeadLetter formats it, without touching any
// processing list: the entry left the queue long ago.
func (q *Queue) RecordFailure(ctx context.Context, raw, reason string) error {
	if q.err != nil {
		return q.err
	}
	payload, err := deadLetterPayload(raw, reason, time.Now())
	if err != nil {
		return fmt.Errorf("dead-letter to %s: %w", q.opts.DLQ, err)
	}
	if err := q.rdb.RPush(ctx, q.opts.DLQ, payload).Err(); err != nil {
		return fmt.Errorf("dead-letter to %s: %w", q.opts.DLQ, err)
	}
	return nil
}

func deadLetterPayload(raw, reason string, now time.Time) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		// Not a JSON object (or "null"): keep it whole as a string.
		obj = map[string]json.RawMessage{}
		b, err := json.Marshal(raw)
		if err != nil {
			return "", err
		}
		obj["raw"] = b
	}
	for k, v := range map[string]string{
		"final_result": reason,
		"failed_at":    now.UTC().Format(time.RFC3339),
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		obj[k] = b
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false) // keep & in presigned URLs as it was
	if err := enc.Encode(obj); err != nil {
		return "", err
	}
	return strings.TrimSuffix(sb.String(), "\n"), nil
}

// Heartbeat sets this instance's alive key for HeartbeatTTL.
func (q *Queue) Heartbeat(ctx context.Context) error {
	if q.err != nil {
		return q.err
	}
	key := q.AliveKey(q.opts.InstanceID)
	if err := q.rdb.Set(ctx, key, time.Now().UTC().Format(time.RFC3339Nano), q.opts.HeartbeatTTL).Err(); err != nil {
		return fmt.Errorf("heartbeat %s: %w", key, err)
	}
	q.beating.Store(true)
	return nil
}

// requeueScript moves one occurrence of ARGV[1] from KEYS[1] (this
// instance's processing list) to the ARGV[2] end of KEYS[2] (the queue).
var requeueScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
	return 0
end
if ARGV[2] == 'LEFT' then
	redis.call('LPUSH', KEYS[2], ARGV[1])
else
	redis.call('RPUSH', KEYS[2], ARGV[1])
end
return 1
`)

// adoptScript moves the newest entry of a dead instance's processing list
// KEYS[1] to the ARGV[1] end of the queue KEYS[2], unless the instance's
// alive key KEYS[3] exists. Returns 1 moved, 0 list empty, -1 alive.
var adoptScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then
	return -1
end
if redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', ARGV[1]) then
	return 1
end
return 0
`)

// Recover puts back at the popping end of the queue, so they are taken
// next and in their original order, the entries of this instance's
// processing list that this Queue does not hold, and all entries of other
// instances whose alive key has expired. It returns how many it moved. Call
// it once before popping (it also sets the alive key) and then
// periodically; Run does both.
func (q *Queue) Recover(ctx context.Context) (int, error) {
	if q.err != nil {
		return 0, q.err
	}
	if !q.beating.Load() {
		if err := q.Heartbeat(ctx); err != nil {
			return 0, fmt.Errorf("recover: %w", err)
		}
	}
	own, err := q.recoverOwn(ctx)
	if err != nil {
		return own, err
	}
	others, err := q.recoverOthers(ctx)
	return own + others, err
}

func (q *Queue) recoverOwn(ctx context.Context) (int, error) {
	q.popMu.Lock()
	defer q.popMu.Unlock()
	list, err := q.rdb.LRange(ctx, q.processing, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("recover %s: %w", q.processing, err)
	}
	orphans := make(map[string]int, len(list))
	for _, raw := range list {
		orphans[raw]++
	}
	q.heldMu.Lock()
	for raw, n := range q.held {
		orphans[raw] -= n
	}
	q.heldMu.Unlock()

	// The list is newest first; pushing newest first onto the popping end
	// leaves the oldest to be popped first.
	moved := 0
	for _, raw := range list {
		if orphans[raw] <= 0 {
			continue
		}
		n, err := requeueScript.Run(ctx, q.rdb, []string{q.processing, q.opts.Queue}, raw, q.side).Int()
		if err != nil {
			return moved, fmt.Errorf("recover %s: %w", q.processing, err)
		}
		orphans[raw]--
		moved += n
	}
	if moved > 0 {
		q.log.Info("requeued entries left in own processing list", "count", moved)
	}
	return moved, nil
}

func (q *Queue) recoverOthers(ctx context.Context) (int, error) {
	pattern := escapeGlob(q.procPrefix) + "*"
	moved := 0
	var cursor uint64
	for {
		keys, next, err := q.rdb.ScanType(ctx, cursor, pattern, 100, "list").Result()
		if err != nil {
			return moved, fmt.Errorf("recover: scan %s: %w", pattern, err)
		}
		for _, key := range keys {
			if key == q.processing {
				continue
			}
			instance := strings.TrimPrefix(key, q.procPrefix)
			n, err := q.adopt(ctx, key, instance)
			moved += n
			if err != nil {
				return moved, err
			}
		}
		if next == 0 {
			return moved, nil
		}
		cursor = next
	}
}

func (q *Queue) adopt(ctx context.Context, key, instance string) (int, error) {
	keys := []string{key, q.opts.Queue, q.AliveKey(instance)}
	moved := 0
	for {
		r, err := adoptScript.Run(ctx, q.rdb, keys, q.side).Int()
		if err != nil {
			return moved, fmt.Errorf("recover %s: %w", key, err)
		}
		if r != 1 {
			if moved > 0 {
				q.log.Warn("requeued entries of an instance whose heartbeat expired",
					"dead_instance", instance, "count", moved)
			}
			return moved, nil
		}
		moved++
	}
}

// Run sets the alive key and recovers at once, then every HeartbeatTTL/3,
// until ctx is done; then it returns nil. Redis errors are logged and
// retried at the next tick.
func (q *Queue) Run(ctx context.Context) error {
	if q.err != nil {
		return q.err
	}
	tick := time.NewTicker(q.opts.HeartbeatTTL / 3)
	defer tick.Stop()
	for {
		if err := q.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			q.log.Error("heartbeat failed; other instances may take over this one's entries", "error", err)
		}
		if _, err := q.Recover(ctx); err != nil && ctx.Err() == nil {
			q.log.Error("recover failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
