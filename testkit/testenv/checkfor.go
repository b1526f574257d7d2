package testenv

import (
	"testing"
	"time"
)

// CheckFor calls f every `every` until it returns nil, and fails the test
// with f's last error if that has not happened within total. f is always
// called at least once.
func CheckFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	if every <= 0 {
		every = time.Millisecond
	}
	deadline := time.NewTimer(total)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("condition not met within %v: %v", total, err)
			return
		case <-tick.C:
		}
	}
}
