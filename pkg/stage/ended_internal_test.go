package stage

import (
	"context"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

type runningStatus struct{ reads int }

func (r *runningStatus) Get(context.Context, string) (status.Status, error) {
	r.reads++
	return status.Status{TaskID: "t", State: status.Parsing}, nil
}

// A message of an earlier run whose work found that run ended must not
// make the messages of the run now going skipped.
func TestEndedMarkKeepsToItsRun(t *testing.T) {
	ctx := context.Background()
	var c endedCache
	r := &runningStatus{}
	check := func(replay int) bool {
		t.Helper()
		ended, err := c.check(ctx, r, "t", replay, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return ended
	}
	if check(1) {
		t.Fatal("run 1 ended before anything marked it")
	}
	c.mark("t", 0) // a late handler of run 0 saw status.ErrTerminal
	if check(1) {
		t.Error("run 0's end marked run 1 ended")
	}
	c.mark("t", 1)
	if !check(1) {
		t.Error("run 1 marked ended, but its messages are not skipped")
	}
	c.mark("u", anyRun) // no run of u known: nothing to mark
	if ended, _ := c.check(ctx, r, "u", 0, time.Hour); ended {
		t.Error("u ended without a read saying so")
	}
}
