package redisqueue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DLQIndexKey is the hash that remembers, per task id, the dead-letter
// entry RecordTaskFailure pushed for the task's latest failure, so Resolve
// can remove exactly that entry once the task ends well, and a failure
// handled twice is recorded once. Its values are "<failure id>\n<entry>".
func (q *Queue) DLQIndexKey() string { return q.opts.DLQ + ":tasks" }

// recordTaskFailureScript pushes ARGV[3] on the DLQ KEYS[1] and remembers
// it in the index KEYS[2] under task ARGV[1] with failure id ARGV[2]. If
// the index already holds this failure id it does nothing (returns 0); if
// it holds an earlier failure of the task, that entry leaves the DLQ
// first: one entry per task, its latest failure.
var recordTaskFailureScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
	local i = string.find(old, "\n", 1, true)
	if i and string.sub(old, 1, i - 1) == ARGV[2] then
		return 0
	end
	if i then
		redis.call('LREM', KEYS[1], 0, string.sub(old, i + 1))
	end
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. "\n" .. ARGV[3])
return 1
`)

// RecordTaskFailure appends a task that failed in the pipeline to the
// dead-letter list, formatted as DeadLetter does (raw plus final_result
// and failed_at), without touching any processing list. failureID names
// this failure (it must not contain a newline): recording the same
// failure again changes nothing and returns false. A new failure of the
// same task replaces the entry of its earlier one, so the list holds at
// most one entry per task recorded here.
func (q *Queue) RecordTaskFailure(ctx context.Context, taskID, failureID, raw, reason string) (bool, error) {
	if q.err != nil {
		return false, q.err
	}
	if strings.Contains(failureID, "\n") {
		return false, fmt.Errorf("dead-letter task %s: failure id has a newline", taskID)
	}
	payload, err := deadLetterPayload(raw, reason, time.Now())
	if err != nil {
		return false, fmt.Errorf("dead-letter task %s: %w", taskID, err)
	}
	n, err := recordTaskFailureScript.Run(ctx, q.rdb, []string{q.opts.DLQ, q.DLQIndexKey()}, taskID, failureID, payload).Int()
	if err != nil {
		return false, fmt.Errorf("dead-letter task %s to %s: %w", taskID, q.opts.DLQ, err)
	}
	return n == 1, nil
}

// resolveScript removes task ARGV[1]'s indexed entry from the DLQ KEYS[1]
// and the index KEYS[2]; returns how many DLQ entries it removed.
var resolveScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then
	return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
local i = string.find(old, "\n", 1, true)
if not i then
	return 0
end
return redis.call('LREM', KEYS[1], 0, string.sub(old, i + 1))
`)

// Resolve removes the dead-letter entry RecordTaskFailure pushed for the
// task, if it is still in the list: call it when the task ends well after
// all (retried, or replayed). It reports whether an entry was removed.
// Entries pushed by DeadLetter (unusable queue entries) are not indexed
// and stay.
func (q *Queue) Resolve(ctx context.Context, taskID string) (bool, error) {
	if q.err != nil {
		return false, q.err
	}
	n, err := resolveScript.Run(ctx, q.rdb, []string{q.opts.DLQ, q.DLQIndexKey()}, taskID).Int()
	if err != nil {
		return false, fmt.Errorf("resolve dead letter of task %s: %w", taskID, err)
	}
	return n > 0, nil
}
