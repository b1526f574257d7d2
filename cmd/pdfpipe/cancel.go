package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

const cancelUsage = "cancel [--reason TEXT] [--timeout 30s] [--no-wait] TASK_ID"

// cancelTask ends a running task as cancelled and waits until no stage
// works on it any more: the parser stops at its next page, the embedders
// after the job in hand, the ingester aborts the stream it is sending,
// the fetcher its download; the gateway tells the backend with a
// DocumentEvent. A done task is refused (the backend holds it); a failed
// or cancelled one is left as it is. Like a failed task, a cancelled one
// starts again when the backend pushes it again, or with pdfpipe replay.
func cancelTask(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe "+cancelUsage, catalog.CLI)
	reason := fs.String("reason", "cancelled by an operator (pdfpipe cancel)", "why, recorded as the task's reason and sent to the backend")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for every stage to stop")
	noWait := fs.Bool("no-wait", false, "return once the task is marked cancelled, without waiting for the stages")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("cancel: %w (usage: %s)", err, cancelUsage)
	}
	if len(pos) != 1 {
		return errors.New("cancel: want one task id (usage: " + cancelUsage + ")")
	}
	id := pos[0]
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, res, err := openPipeline(octx, "cancel", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	before, after, err := status.New(res.Status).Cancel(octx, id, *reason)
	switch {
	case errors.Is(err, status.ErrNotFound):
		return fmt.Errorf("cancel: task %s not found (no status record; see pdfpipe tasks)", id)
	case errors.Is(err, status.ErrDone):
		return fmt.Errorf("cancel: task %s is done: the backend holds the whole document, and a cancel cannot take it back", id)
	case errors.Is(err, status.ErrSentWhole):
		return fmt.Errorf("cancel: task %s cannot be cancelled any more: ingest attempt %d sent the whole document to the backend, "+
			"which may hold it; the backend's answer ends the task done or failed", id, before.SentWhole)
	case errors.Is(err, status.ErrTerminal):
		fmt.Fprintf(stdout, "task %s has already ended: %s; nothing to cancel\n", id, describeEnd(before))
		return nil
	case err != nil:
		return fmt.Errorf("cancel: %w", err)
	}
	if after.State == status.Done {
		fmt.Fprintf(stdout, "task %s: the replay is cancelled; the task is done again (the backend holds the document it stored before)\n", id)
	} else {
		fmt.Fprintf(stdout, "task %s cancelled during %s (it was %s)\n", id, after.Stage, before.State)
	}
	if *noWait {
		return nil
	}
	return waitStopped(ctx, nc, id, *timeout, stdout, stderr)
}

// waitStopped asks who works on the task until no one answers, or
// timeout passes.
func waitStopped(ctx context.Context, nc *nats.Conn, id string, timeout time.Duration, stdout, stderr io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	said := ""
	for {
		at, err := stage.AskWork(wctx, nc, id, 2*time.Second)
		if err == nil && len(at) == 0 {
			fmt.Fprintf(stdout, "every stage has stopped working on task %s\n", id)
			return nil
		}
		if err == nil {
			if s := describeWork(at); s != said {
				fmt.Fprintf(stderr, "waiting for %s to stop\n", s)
				said = s
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cancel: task %s is cancelled; stopped waiting for its stages: %w", id, ctx.Err())
		case <-wctx.Done():
			still := said
			if still == "" {
				still = fmt.Sprintf("the stages (%v)", err)
			}
			return fmt.Errorf("cancel: task %s is cancelled, but could not confirm within %s that its stages stopped: still at work: %s "+
				"(each stops at its next page or batch; see pdfpipe inspect %s)", id, timeout, still, id)
		case <-tick.C:
		}
	}
}

// describeWork says who is at work, e.g. "parse (page 250 of 2000)".
func describeWork(at []stage.WorkInfo) string {
	var parts []string
	for _, w := range at {
		s := w.Stage
		if w.Unit != "" {
			s += fmt.Sprintf(" (%d of %d %s)", w.Done, w.Total, w.Unit)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// describeEnd says how an ended task ended.
func describeEnd(st status.Status) string {
	switch st.State {
	case status.Failed:
		return fmt.Sprintf("failed at %s: %s", st.Stage, oneLine(st.Error, 200))
	case status.Cancelled:
		return fmt.Sprintf("cancelled during %s: %s", st.Stage, oneLine(st.Error, 200))
	}
	return string(st.State)
}
