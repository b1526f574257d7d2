package stage

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// endedCache remembers whether tasks have ended, so a thousand chunks of a
// failed task cost one status read, not a thousand: messages of a task
// taken at once share one read, a read that found the task running is
// trusted for a short while, and one that found it ended for the rest of
// that run of the task (a replay or retry reopens a task under a new
// replay number). The zero value is ready.
type endedCache struct {
	mu sync.Mutex
	m  map[string]*endedEntry // by task id
}

type endedEntry struct {
	replay int           // the run the answer is for
	done   chan struct{} // closed once the read is over
	// Set before done is closed, or under mu.
	ended bool
	at    time.Time
	err   error
}

// anyRun marks whichever run of a task was checked last.
const anyRun = -1

// maxEnded bounds the cache's memory; entries are cheap to rebuild.
const maxEnded = 10000

// check reports whether the task has ended, for a message of run replay.
// A read that found the task running is trusted for fresh.
func (c *endedCache) check(ctx context.Context, r StatusReader, taskID string, replay int, fresh time.Duration) (bool, error) {
	for {
		c.mu.Lock()
		e := c.m[taskID]
		if e != nil && e.replay == replay {
			select {
			case <-e.done:
				if e.err == nil && (e.ended || time.Since(e.at) < fresh) {
					ended := e.ended
					c.mu.Unlock()
					return ended, nil
				}
			default: // another message of the task is reading: share its answer
				c.mu.Unlock()
				select {
				case <-e.done:
					continue
				case <-ctx.Done():
					return false, context.Cause(ctx)
				}
			}
		}
		if c.m == nil || len(c.m) >= maxEnded {
			c.m = make(map[string]*endedEntry)
		}
		e = &endedEntry{replay: replay, done: make(chan struct{})}
		c.m[taskID] = e
		c.mu.Unlock()

		st, err := r.Get(ctx, taskID)
		if errors.Is(err, status.ErrNotFound) {
			err = nil // not created yet (replayed by hand, say): running
		}
		c.mu.Lock()
		e.ended, e.at, e.err = err == nil && st.State.Terminal(), time.Now(), err
		ended := e.ended
		c.mu.Unlock()
		close(e.done)
		return ended, err
	}
}

// mark records that the task has ended in run replay, or, with replay
// anyRun, in the run last checked. A message of an earlier run that found
// its run ended says nothing of a later one.
func (c *endedCache) mark(taskID string, replay int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[taskID]
	if e == nil || (replay != anyRun && e.replay != replay) {
		return // no run known, or another one: the next message reads the status
	}
	done := make(chan struct{})
	close(done)
	c.m[taskID] = &endedEntry{replay: e.replay, done: done, ended: true, at: time.Now()}
}
