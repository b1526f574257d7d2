package redisqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pdfpipe/pdfpipe/services/gateway/redisqueue"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const queue = "queue:upload_tasks"

func newRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testenv.StartRedis(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func newQueue(rdb *redis.Client, instance string, mod ...func(*redisqueue.Options)) *redisqueue.Queue {
	opts := redisqueue.Options{InstanceID: instance, HeartbeatTTL: time.Minute}
	for _, m := range mod {
		m(&opts)
	}
	return redisqueue.New(rdb, opts, nil)
}

func list(t *testing.T, rdb *redis.Client, key string) []string {
	t.Helper()
	l, err := rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustPop(t *testing.T, q *redisqueue.Queue) redisqueue.Entry {
	t.Helper()
	e, err := q.Pop(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("Pop: %v", err)
	}
	return e
}

func TestPopOrder(t *testing.T) {
	tests := []struct {
		name    string
		push    string // producer command
		popFrom string
		want    []string
	}{
		{"RPUSH producer, pop left is FIFO", "rpush", "left", []string{"a", "b", "c"}},
		{"LPUSH producer (the backend), default side is right: FIFO", "lpush", "", []string{"a", "b", "c"}},
		{"LPUSH producer, pop left is LIFO like the original", "lpush", "left", []string{"c", "b", "a"}},
		{"LPUSH producer, pop right is FIFO", "lpush", "right", []string{"a", "b", "c"}},
		{"RPUSH producer, pop right is LIFO", "rpush", "right", []string{"c", "b", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := newRedis(t)
			q := newQueue(rdb, "gw1", func(o *redisqueue.Options) { o.PopFrom = tc.popFrom })
			for _, v := range []string{"a", "b", "c"} {
				if err := rdb.Do(ctx, tc.push, queue, v).Err(); err != nil {
					t.Fatal(err)
				}
			}
			var got []redisqueue.Entry
			for range 3 {
				got = append(got, mustPop(t, q))
			}
			var raws []string
			for _, e := range got {
				raws = append(raws, e.Raw)
			}
			if !slices.Equal(raws, tc.want) {
				t.Errorf("popped %v, want %v", raws, tc.want)
			}
			if l := list(t, rdb, q.ProcessingKey()); len(l) != 3 {
				t.Errorf("processing list before Ack: got %v, want 3 entries", l)
			}
			for _, e := range got {
				if err := q.Ack(ctx, e); err != nil {
					t.Fatalf("Ack(%q): %v", e.Raw, err)
				}
			}
			if l := list(t, rdb, q.ProcessingKey()); len(l) != 0 {
				t.Errorf("processing list after Ack: got %v, want empty", l)
			}
			if l := list(t, rdb, queue); len(l) != 0 {
				t.Errorf("queue: got %v, want empty", l)
			}
		})
	}
}

func TestPopKeepsExactBytes(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")
	raw := "{\"DocID\":\"d\",  \"URL\":\"https://h/x?a=1&b=<2>\",\"n\":\"\u00e9\\u00e9\"}\n"
	rdb.RPush(ctx, queue, raw)
	if got := mustPop(t, q).Raw; got != raw {
		t.Errorf("got %q, want %q", got, raw)
	}
}

func TestPopTimeoutReturnsErrEmpty(t *testing.T) {
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")
	start := time.Now()
	e, err := q.Pop(context.Background(), 600*time.Millisecond)
	elapsed := time.Since(start)
	if !errors.Is(err, redisqueue.ErrEmpty) || !errors.Is(err, redis.Nil) {
		t.Fatalf("got (%+v, %v), want ErrEmpty wrapping redis.Nil", e, err)
	}
	if elapsed < 500*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("Pop returned after %v, want about 600ms", elapsed)
	}
}

func TestPopReturnsPromptlyOnCancel(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")

	popCtx, cancel := context.WithCancel(ctx)
	type result struct {
		e   redisqueue.Entry
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := q.Pop(popCtx, 0) // no timeout: until ctx is done
		done <- result{e, err}
	}()
	// Wait until the pop is blocked in Redis.
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		info, err := rdb.Info(ctx, "clients").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "blocked_clients:1") {
			return fmt.Errorf("no blocked client yet: %q", info)
		}
		return nil
	})
	cancel()
	start := time.Now()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("got (%+v, %v), want context.Canceled", r.e, r.err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Pop returned %v after cancel, want under 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return within 5s of cancel")
	}

	// Nothing is taken after the cancel.
	rdb.RPush(ctx, queue, "late")
	if l := list(t, rdb, queue); !slices.Equal(l, []string{"late"}) {
		t.Errorf("queue after cancelled Pop: got %v, want [late]", l)
	}

	// An already-cancelled context returns at once.
	if _, err := q.Pop(popCtx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Pop with cancelled ctx: got %v, want context.Canceled", err)
	}
}

func TestCrashBetweenPopAndAck(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	rdb.LPush(ctx, queue, "a", "b", "c") // the backend's LPUSH, served oldest first

	crashed := newQueue(rdb, "gw1")
	if got := mustPop(t, crashed).Raw; got != "a" {
		t.Fatalf("first pop: got %q, want a", got)
	}
	// crashed is gone without Ack; the same instance starts again.
	q := newQueue(rdb, "gw1")
	n, err := q.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover: got (%d, %v), want (1, nil)", n, err)
	}

	var seen []string
	var held []redisqueue.Entry
	for range 2 {
		e := mustPop(t, q)
		seen = append(seen, e.Raw)
		held = append(held, e)
	}
	// A periodic Recover must not take back what this Queue holds...
	if n, err := q.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("Recover with entries in flight: got (%d, %v), want (0, nil)", n, err)
	}
	// ...but does take back an entry no one holds (a pop whose reply was lost).
	rdb.LPush(ctx, q.ProcessingKey(), "orphan")
	if n, err := q.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover with an orphan: got (%d, %v), want (1, nil)", n, err)
	}
	for _, e := range held {
		if err := q.Ack(ctx, e); err != nil {
			t.Fatalf("Ack(%q): %v", e.Raw, err)
		}
	}
	for range 2 {
		e := mustPop(t, q)
		seen = append(seen, e.Raw)
		if err := q.Ack(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a", "b", "orphan", "c"}; !slices.Equal(seen, want) {
		t.Errorf("popped %v, want %v (recovered entries first)", seen, want)
	}
	if _, err := q.Pop(ctx, 100*time.Millisecond); !errors.Is(err, redisqueue.ErrEmpty) {
		t.Errorf("Pop after all: got %v, want ErrEmpty", err)
	}
	if l := list(t, rdb, q.ProcessingKey()); len(l) != 0 {
		t.Errorf("processing list: got %v, want empty", l)
	}
}

func TestRecoverOtherInstances(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	rdb.LPush(ctx, queue, "d1", "d2", "d3", "live1")

	dead := newQueue(rdb, "dead", func(o *redisqueue.Options) { o.HeartbeatTTL = 300 * time.Millisecond })
	for _, want := range []string{"d1", "d2", "d3"} {
		if got := mustPop(t, dead).Raw; got != want {
			t.Fatalf("dead popped %q, want %q", got, want)
		}
	}
	live := newQueue(rdb, "live")
	if got := mustPop(t, live).Raw; got != "live1" {
		t.Fatalf("live popped %q, want live1", got)
	}

	me := newQueue(rdb, "me")
	// dead's heartbeat (never refreshed) expires; live's does not.
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		n, err := rdb.Exists(ctx, dead.AliveKey("dead")).Result()
		if err != nil || n != 0 {
			return fmt.Errorf("alive key of dead: exists=%d err=%v", n, err)
		}
		return nil
	})
	n, err := me.Recover(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Recover: got (%d, %v), want (3, nil)", n, err)
	}
	if l := list(t, rdb, dead.ProcessingKey()); len(l) != 0 {
		t.Errorf("dead's processing list: got %v, want empty", l)
	}
	if l := list(t, rdb, live.ProcessingKey()); !slices.Equal(l, []string{"live1"}) {
		t.Errorf("live's processing list: got %v, want [live1] untouched", l)
	}
	var got []string
	for range 3 {
		e := mustPop(t, me)
		got = append(got, e.Raw)
		if err := me.Ack(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"d1", "d2", "d3"}; !slices.Equal(got, want) {
		t.Errorf("me popped %v, want %v in the original order", got, want)
	}
	// Once recovered, the dead instance's late Ack finds nothing.
	if err := dead.Ack(ctx, redisqueue.Entry{Raw: "d1"}); !errors.Is(err, redisqueue.ErrNotHeld) {
		t.Errorf("late Ack by dead: got %v, want ErrNotHeld", err)
	}
}

func TestRecoverPopRightPutsBackAtRight(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	rdb.LPush(ctx, queue, "a", "b", "c", "d") // list: d c b a; FIFO from the right
	right := func(o *redisqueue.Options) { o.PopFrom = "right" }
	crashed := newQueue(rdb, "gw1", right)
	mustPop(t, crashed)
	mustPop(t, crashed)
	q := newQueue(rdb, "gw1", right)
	if n, err := q.Recover(ctx); err != nil || n != 2 {
		t.Fatalf("Recover: got (%d, %v), want (2, nil)", n, err)
	}
	var got []string
	for range 4 {
		got = append(got, mustPop(t, q).Raw)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("popped %v, want %v", got, want)
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		want   map[string]any // fields besides final_result and failed_at
		popped bool
	}{
		{
			name:   "task object keeps its fields",
			raw:    `{"DocID":"d1","URL":"https://h/x?a=1&b=2","FileSize":1024,"nested":{"k":[1,true,null]}}`,
			want:   map[string]any{"DocID": "d1", "URL": "https://h/x?a=1&b=2", "FileSize": float64(1024), "nested": map[string]any{"k": []any{float64(1), true, nil}}},
			popped: true,
		},
		{
			name:   "earlier final_result is replaced",
			raw:    `{"task_id":"t","final_result":"old","failed_at":"2000-01-01T00:00:00Z","retry_count":3}`,
			want:   map[string]any{"task_id": "t", "retry_count": float64(3)},
			popped: true,
		},
		{name: "not JSON", raw: `DocID=1`, want: map[string]any{"raw": "DocID=1"}, popped: true},
		{name: "JSON array", raw: `[1,2]`, want: map[string]any{"raw": "[1,2]"}, popped: true},
		{name: "JSON null", raw: `null`, want: map[string]any{"raw": "null"}, popped: true},
		{name: "failed later, not in processing", raw: `{"task_id":"t9"}`, want: map[string]any{"task_id": "t9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := newRedis(t)
			q := newQueue(rdb, "gw1")
			e := redisqueue.Entry{Raw: tc.raw}
			if tc.popped {
				rdb.LPush(ctx, queue, tc.raw, "next") // tc.raw is the oldest
				e = mustPop(t, q)
			}
			before := time.Now().Add(-time.Second)
			if err := q.DeadLetter(ctx, e, "gateway: malformed task"); err != nil {
				t.Fatalf("DeadLetter: %v", err)
			}
			after := time.Now().Add(time.Second)

			dlq := list(t, rdb, "queue:dlq")
			if len(dlq) != 1 {
				t.Fatalf("queue:dlq: got %d entries %v, want 1", len(dlq), dlq)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(dlq[0]), &got); err != nil {
				t.Fatalf("DLQ entry %q is not a JSON object: %v", dlq[0], err)
			}
			if got["final_result"] != "gateway: malformed task" {
				t.Errorf("final_result: got %v, want the reason", got["final_result"])
			}
			at, err := time.Parse(time.RFC3339, fmt.Sprint(got["failed_at"]))
			if err != nil || at.Before(before.Truncate(time.Second)) || at.After(after) {
				t.Errorf("failed_at: got %v (%v), want RFC 3339 time of the call", got["failed_at"], err)
			}
			delete(got, "final_result")
			delete(got, "failed_at")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DLQ entry fields: got %v, want %v", got, tc.want)
			}
			if strings.Contains(dlq[0], `\u0026`) {
				t.Errorf("DLQ entry %s escapes &, want it as in the task", dlq[0])
			}
			if l := list(t, rdb, q.ProcessingKey()); len(l) != 0 {
				t.Errorf("processing list: got %v, want empty", l)
			}
			if tc.popped {
				if l := list(t, rdb, queue); !slices.Equal(l, []string{"next"}) {
					t.Errorf("queue: got %v, want [next] untouched", l)
				}
			}
			// A dead-lettered entry is not recovered later.
			if n, err := newQueue(rdb, "gw1").Recover(ctx); err != nil || n != 0 {
				t.Errorf("Recover after DeadLetter: got (%d, %v), want (0, nil)", n, err)
			}
		})
	}
}

func TestAckTwiceIsNotHeld(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")
	rdb.RPush(ctx, queue, "x")
	e := mustPop(t, q)
	if err := q.Ack(ctx, e); err != nil {
		t.Fatalf("first Ack: %v", err)
	}
	if err := q.Ack(ctx, e); !errors.Is(err, redisqueue.ErrNotHeld) {
		t.Errorf("second Ack: got %v, want ErrNotHeld", err)
	}
}

func TestRunHeartbeatsAndRecovers(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1", func(o *redisqueue.Options) { o.HeartbeatTTL = 300 * time.Millisecond })

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- q.Run(runCtx) }()

	// Alive while Run runs, for longer than one TTL.
	alive := q.AliveKey("gw1")
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		ttl, err := rdb.PTTL(ctx, alive).Result()
		if err != nil || ttl <= 0 || ttl > 300*time.Millisecond {
			return fmt.Errorf("PTTL %s: got %v (%v), want in (0, 300ms]", alive, ttl, err)
		}
		return nil
	})
	// An orphaned list of an instance that never heartbeats is picked up.
	rdb.LPush(ctx, queue+":processing:ghost", "lost")
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if l := list(t, rdb, queue); !slices.Equal(l, []string{"lost"}) {
			return fmt.Errorf("queue: got %v, want [lost]", l)
		}
		return nil
	})
	if n, _ := rdb.Exists(ctx, alive).Result(); n != 1 {
		t.Errorf("alive key gone after several TTLs of Run, want it refreshed")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
}

// Several instances popping at once take every entry exactly once.
func TestConcurrentInstances(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	const n = 200
	var want []string
	for i := range n {
		want = append(want, strconv.Itoa(i))
	}
	rdb.RPush(ctx, queue, toAny(want)...)

	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for i := range 3 {
		q := newQueue(rdb, fmt.Sprintf("gw%d", i))
		for range 2 { // two workers share one Queue
			wg.Go(func() {
				for {
					e, err := q.Pop(ctx, 200*time.Millisecond)
					if errors.Is(err, redisqueue.ErrEmpty) {
						return
					}
					if err != nil {
						t.Errorf("Pop: %v", err)
						return
					}
					if _, err := q.Recover(ctx); err != nil { // must not disturb the others
						t.Errorf("Recover: %v", err)
					}
					mu.Lock()
					got = append(got, e.Raw)
					mu.Unlock()
					if err := q.Ack(ctx, e); err != nil {
						t.Errorf("Ack: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(got, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	if !slices.Equal(got, want) {
		t.Errorf("got %d entries, want each of %d exactly once", len(got), n)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opts redisqueue.Options
		ok   bool
	}{
		{"zero value", redisqueue.Options{}, true},
		{"right, any case", redisqueue.Options{PopFrom: "RIGHT"}, true},
		{"bad side", redisqueue.Options{PopFrom: "middle"}, false},
		{"negative TTL", redisqueue.Options{HeartbeatTTL: -time.Second}, false},
		{"queue is DLQ", redisqueue.Options{Queue: "q", DLQ: "q"}, false},
		{"default queue as DLQ", redisqueue.Options{DLQ: "queue:upload_tasks"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, redisqueue.ErrBadOptions) {
				t.Errorf("got %v, want ErrBadOptions", err)
			}
		})
	}

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	d := redisqueue.New(rdb, redisqueue.Options{}, nil).Options()
	if d.Queue != "queue:upload_tasks" || d.DLQ != "queue:dlq" || d.PopFrom != "right" ||
		d.HeartbeatTTL != 30*time.Second || d.InstanceID == "" {
		t.Errorf("defaults: got %+v", d)
	}
	bad := redisqueue.New(rdb, redisqueue.Options{PopFrom: "middle"}, nil)
	if _, err := bad.Pop(context.Background(), time.Second); !errors.Is(err, redisqueue.ErrBadOptions) {
		t.Errorf("Pop with bad options: got %v, want ErrBadOptions", err)
	}
}

func TestAckMark(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")
	rdb.LPush(ctx, queue, "x")
	e := mustPop(t, q)
	if err := q.AckMark(ctx, e, "mark:t1", "fp1", time.Minute); err != nil {
		t.Fatalf("AckMark: %v", err)
	}
	if v, err := rdb.Get(ctx, "mark:t1").Result(); err != nil || v != "fp1" {
		t.Errorf("mark: got %q, %v; want fp1", v, err)
	}
	if ttl := rdb.PTTL(ctx, "mark:t1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("mark TTL: got %v, want in (0, 1m]", ttl)
	}
	if l := list(t, rdb, q.ProcessingKey()); len(l) != 0 {
		t.Errorf("processing list: got %v, want empty", l)
	}
	// An entry no longer held is not acked and marks nothing.
	if err := q.AckMark(ctx, e, "mark:t2", "fp2", time.Minute); !errors.Is(err, redisqueue.ErrNotHeld) {
		t.Errorf("second AckMark: got %v, want ErrNotHeld", err)
	}
	if n := rdb.Exists(ctx, "mark:t2").Val(); n != 0 {
		t.Errorf("mark of an entry not held: set, want nothing set")
	}
}

func TestRecordTaskFailureAndResolve(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	q := newQueue(rdb, "gw1")
	const raw = `{"DocID":"d1","URL":"https://h/a.pdf?a=1&b=2"}`
	other := `{"DocID":"d2"}`
	rdb.RPush(ctx, "queue:dlq", other) // an unrelated entry stays throughout

	record := func(failure, reason string, want bool) {
		t.Helper()
		got, err := q.RecordTaskFailure(ctx, "d1", failure, raw, reason)
		if err != nil || got != want {
			t.Fatalf("RecordTaskFailure(%s): got (%v, %v), want (%v, nil)", failure, got, err, want)
		}
	}
	reasons := func() []string {
		t.Helper()
		var out []string
		for _, s := range list(t, rdb, "queue:dlq") {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				t.Fatal(err)
			}
			r, _ := m["final_result"].(string)
			out = append(out, fmt.Sprint(m["DocID"], ":", r))
		}
		return out
	}

	record("f1", "fetch: 404", true)
	record("f1", "fetch: 404", false) // the same failure handled again
	if got, want := reasons(), []string{"d2:", "d1:fetch: 404"}; !slices.Equal(got, want) {
		t.Fatalf("DLQ after one failure recorded twice: got %v, want %v", got, want)
	}
	record("f2", "ingest: refused", true) // a later failure replaces the entry
	if got, want := reasons(), []string{"d2:", "d1:ingest: refused"}; !slices.Equal(got, want) {
		t.Fatalf("DLQ after a second failure: got %v, want %v", got, want)
	}
	if removed, err := q.Resolve(ctx, "d1"); err != nil || !removed {
		t.Fatalf("Resolve: got (%v, %v), want (true, nil)", removed, err)
	}
	if got := list(t, rdb, "queue:dlq"); !slices.Equal(got, []string{other}) {
		t.Errorf("DLQ after Resolve: got %v, want only the unrelated entry", got)
	}
	if n := rdb.HLen(ctx, q.DLQIndexKey()).Val(); n != 0 {
		t.Errorf("index after Resolve: %d fields, want none", n)
	}
	if removed, err := q.Resolve(ctx, "d1"); err != nil || removed {
		t.Errorf("second Resolve: got (%v, %v), want (false, nil)", removed, err)
	}
	// An operator who took the entry off the list already: Resolve just forgets it.
	record("f3", "parse: damaged", true)
	rdb.RPop(ctx, "queue:dlq")
	if removed, err := q.Resolve(ctx, "d1"); err != nil || removed {
		t.Errorf("Resolve of an entry taken by hand: got (%v, %v), want (false, nil)", removed, err)
	}
	if got := list(t, rdb, "queue:dlq"); !slices.Equal(got, []string{other}) {
		t.Errorf("DLQ: got %v, want only the unrelated entry", got)
	}
}
