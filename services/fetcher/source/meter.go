package source

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMaxDuration = 10 * time.Minute
	DefaultMinRate     = 8 << 10 // bytes per second
	DefaultRateWindow  = 30 * time.Second
)

// limitError is why a download was cut: a stall, the overall deadline or
// too slow a rate. Transient.
type limitError struct{ reason string }

func (e *limitError) Error() string { return e.reason }
func (e *limitError) Unwrap() error { return ErrTransient }

// Timeout reports true: a limit crossed is a timeout (as net.Error says).
func (e *limitError) Timeout() bool { return true }

// limits bound one download.
type limits struct {
	stall       time.Duration // longest single wait for the server
	maxDuration time.Duration // whole download, headers to last byte
	minRate     int64         // bytes/s while waiting on the server; 0: no floor
	window      time.Duration // how much waiting the rate is judged over
}

// meter cancels a download's context, with a limitError as the cause, when
// one wait for the server lasts longer than the stall limit, when the
// download runs past its deadline, or when the time spent waiting on the
// server brought in less than the minimum rate (judged over each window of
// waiting, so time the caller spends between reads never counts against the
// server). Waits are bracketed by begin and end.
type meter struct {
	lim    limits
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	since    time.Time     // start of the current wait; zero when not waiting
	winWait  time.Duration // waiting in this window, finished waits
	winBytes int64
	stall    *time.Timer
	deadline *time.Timer
	tick     *time.Ticker
	done     chan struct{}
	stopped  bool
}

// newMeter starts the clock of a download whose context cancel cancels.
func newMeter(lim limits, cancel context.CancelCauseFunc) *meter {
	m := &meter{lim: lim, cancel: cancel, done: make(chan struct{})}
	m.stall = time.AfterFunc(time.Hour, func() {
		m.fire(fmt.Sprintf("no data from server for %s", lim.stall))
	})
	m.stall.Stop()
	m.deadline = time.AfterFunc(lim.maxDuration, func() {
		m.fire(fmt.Sprintf("download not finished within %s (FETCH_MAX_DURATION)", lim.maxDuration))
	})
	if lim.minRate > 0 && lim.window > 0 {
		m.tick = time.NewTicker(max(lim.window/8, time.Millisecond))
		go m.watchRate()
	}
	return m
}

func (m *meter) fire(reason string) {
	m.cancel(&limitError{reason: reason})
}

// begin marks the start of a wait for the server.
func (m *meter) begin() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.since = time.Now()
	if !m.stopped {
		m.stall.Reset(m.lim.stall)
	}
}

// end marks the end of a wait that brought n bytes.
func (m *meter) end(n int) {
	m.stall.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.since.IsZero() {
		m.winWait += time.Since(m.since)
		m.since = time.Time{}
	}
	m.winBytes += int64(n)
}

func (m *meter) watchRate() {
	for {
		select {
		case <-m.done:
			return
		case <-m.tick.C:
		}
		m.mu.Lock()
		wait := m.winWait
		if !m.since.IsZero() {
			wait += time.Since(m.since)
		}
		if wait < m.lim.window {
			m.mu.Unlock()
			continue
		}
		got := m.winBytes
		m.winWait, m.winBytes = 0, 0
		if !m.since.IsZero() {
			m.since = time.Now()
		}
		m.mu.Unlock()
		if want := int64(float64(m.lim.minRate) * wait.Seconds()); got < want {
			m.fire(fmt.Sprintf("too slow: %s in %s of waiting on the server, below the minimum %s/s (FETCH_MIN_RATE)",
				humanBytes(got), wait.Round(time.Millisecond), humanBytes(m.lim.minRate)))
			return
		}
	}
}

// stop ends the clock. Safe to call more than once.
func (m *meter) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	m.stall.Stop()
	m.deadline.Stop()
	if m.tick != nil {
		m.tick.Stop()
	}
	close(m.done)
}

// meteredReader brackets each Read with begin and end.
type meteredReader struct {
	rc io.ReadCloser
	m  *meter
}

func (r *meteredReader) Read(p []byte) (int, error) {
	r.m.begin()
	n, err := r.rc.Read(p)
	r.m.end(n)
	return n, err
}

func (r *meteredReader) Close() error {
	r.m.stop()
	return r.rc.Close()
}
