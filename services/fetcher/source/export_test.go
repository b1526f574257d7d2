package source

import (
	"fmt"
	"net/netip"
	"testing"
)

// LoopbackOnly returns opts whose dials fail the test, and do not happen,
// unless they go to loopback: whatever the guard lets through, no test
// sends a packet anywhere else.
func LoopbackOnly(t testing.TB, opts Options) Options {
	opts.beforeDial = func(ap netip.AddrPort) error {
		if !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("dial %s: a test must never reach beyond loopback", ap)
			return fmt.Errorf("dial %s: not loopback in a test", ap)
		}
		return nil
	}
	return opts
}
