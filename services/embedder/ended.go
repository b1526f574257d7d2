package embedder

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// endedCache remembers for a short while whether a task has ended, so a
// thousand chunks of a failed task cost one status read, not a thousand
// API calls.
type endedCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]endedEntry
}

type endedEntry struct {
	ended bool
	at    time.Time
}

func (c *endedCache) check(ctx context.Context, st *status.Store, taskID string) (bool, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[taskID]
	c.mu.Unlock()
	if ok && (e.ended || now.Sub(e.at) < c.ttl) {
		return e.ended, nil
	}
	rec, err := st.Get(ctx, taskID)
	if err != nil && !errors.Is(err, status.ErrNotFound) {
		return false, err
	}
	ended := err == nil && rec.State.Terminal()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 { // bound the memory; entries are cheap to rebuild
		clear(c.m)
	}
	c.m[taskID] = endedEntry{ended: ended, at: now}
	return ended, nil
}

// markEnded records that a task has ended, as soon as this replica failed
// it: the chunks it is about to take cost no API call even within the ttl
// of an earlier "not ended" read.
func (c *endedCache) markEnded(taskID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[taskID] = endedEntry{ended: true, at: time.Now()}
}
