package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// progress is how far a task is, by its state: the stages do not record
// finer progress while they work (chunks ingested is set at the end).
var progress = map[status.State]int{
	status.Queued: 0, status.Fetching: 10, status.Parsing: 25, status.Embedding: 50,
	status.Ingesting: 80, status.Done: 100,
}

// progressLine is one line of `status --watch`.
func progressLine(st status.Status, last int) (string, int) {
	pct, ok := progress[st.State]
	if !ok {
		pct = last // failed: where it was when it failed
	}
	line := fmt.Sprintf("%s %3d%% %s pages %d chunks %d", st.TaskID, pct, st.State, st.Pages, st.Chunks)
	if st.State == status.Done && st.Ingested > 0 {
		line += fmt.Sprintf(" ingested %d", st.Ingested)
	}
	if st.State == status.Failed {
		line += fmt.Sprintf(" at %s: %s", st.Stage, oneLine(st.Error, 200))
	}
	return line, pct
}

// watchStatus prints a progress line for the task on each change of its
// status record until the task ends: redrawn in place on a terminal, one
// line per change otherwise. It returns an error when the task failed.
func watchStatus(ctx context.Context, kv jetstream.KeyValue, id string, stdout io.Writer) error {
	w, err := kv.Watch(ctx, pipeline.Token(id))
	if err != nil {
		return fmt.Errorf("status %s: watch: %w", id, err)
	}
	defer w.Stop()
	tty := isTerminal(stdout)
	prev, pct, seen := "", 0, false
	show := func(line string) {
		if line == prev {
			return
		}
		prev = line
		if tty {
			fmt.Fprintf(stdout, "\r\033[K%s", line)
			return
		}
		fmt.Fprintln(stdout, line)
	}
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return fmt.Errorf("status %s: %w", id, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("status %s: watch closed", id)
			}
			if e == nil {
				if !seen {
					show(fmt.Sprintf("%s: no status record yet, waiting", id))
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := status.Decode(e.Value())
			if err != nil {
				return fmt.Errorf("status %s: decode: %w", id, err)
			}
			seen = true
			var line string
			line, pct = progressLine(st, pct)
			show(line)
			if !st.State.Terminal() {
				continue
			}
			if tty {
				fmt.Fprintln(stdout)
			}
			if st.State == status.Failed {
				return fmt.Errorf("task %s failed at %s", id, st.Stage)
			}
			return nil
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
