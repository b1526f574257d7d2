package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// pdfpipe up sets its soft memory limit only when GOMEMLIMIT is not set
// (the runtime has applied that one already); pdfpipe run sets none.
func TestTuneMemoryKeepsTheOperatorsLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	tests := []struct {
		name, command, env string
		want               int64
	}{
		{name: "up, unset", command: "up", want: defaultMemoryLimit},
		{name: "up, set", command: "up", env: "1GiB", want: math.MaxInt64},
		{name: "up, off", command: "up", env: "off", want: math.MaxInt64},
		{name: "run", command: "run", want: math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64) // as the runtime starts without GOMEMLIMIT
			tuneMemory(tc.command, func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.env
				}
				return ""
			})
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("memory limit %d, want %d", got, tc.want)
			}
		})
	}
}
