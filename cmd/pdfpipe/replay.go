package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

const replayUsage = "replay [--force] [--no-wait] [--timeout D] STAGE TASK_ID (STAGE: fetch, parse, embed or ingest)"

// replay runs one stage again for a task from the retained stream, and
// everything after it: `fetch` downloads again, `parse` re-parses the
// stored PDF, `embed` re-embeds the stored chunks (e.g. after changing the
// model), `ingest` sends the stored vectors to the backend again. The
// task's vectors are purged first when they will be made anew, and every
// republished message carries a replay number so the duplicate window does
// not drop it.
//
// A task that is done is refused without --force: the backend holds the
// whole document and cannot take it twice. With --force it is sent again
// and stays done whatever the backend answers (the backend still holds the
// document it stored). A task still running is refused without --force
// too. replay then waits (up to --timeout) for the task to end, prints the
// outcome and returns an error when it ended failed; --no-wait returns once
// the messages are republished.
func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe "+replayUsage, catalog.CLI)
	force := fs.Bool("force", false, "replay a task that is done or still running")
	noWait := fs.Bool("no-wait", false, "return once republished, without waiting for the outcome")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the outcome")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("replay: %w (usage: %s)", err, replayUsage)
	}
	if len(pos) != 2 {
		return errors.New("replay: want " + replayUsage)
	}
	st, id := pipeline.Stage(pos[0]), pos[1]
	state, ok := map[pipeline.Stage]status.State{pipeline.Fetch: status.Queued, pipeline.Parse: status.Fetching,
		pipeline.Embed: status.Embedding, pipeline.Ingest: status.Embedding}[st]
	if !ok {
		return fmt.Errorf("replay: unknown stage %q (want fetch, parse, embed or ingest)", st)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nc, res, err := openPipeline(sctx, "replay", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	store := status.New(res.Status)
	before, err := store.Get(sctx, id)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if !*force {
		switch {
		case before.State == status.Done:
			return fmt.Errorf("replay: task %s is done: the backend holds the whole document and cannot take it twice "+
				"(a resend only meets duplicate keys, which the backend reports to the user as a failed document); "+
				"use --force to send it anyway (the task stays done)", id)
		case !before.State.Terminal():
			return fmt.Errorf("replay: task %s is still running (%s); use --force to replay it anyway", id, before.State)
		}
	}
	// Reopen first: a stage skips the messages of tasks that have ended.
	if _, err := store.Reopen(sctx, id, state); err != nil {
		return err
	}
	n, err := pipeline.Replay(sctx, res, st, id, int(time.Now().Unix()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %s for task %s: %d messages republished\n", st, id, n)
	if *noWait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	end, err := waitEnd(wctx, res.Status, id)
	if err != nil {
		return fmt.Errorf("replay: task %s has not ended after %s (%w); it goes on: see `pdfpipe status %s`", id, *timeout, err, id)
	}
	switch end.State {
	case status.Done:
		fmt.Fprintf(stdout, "task %s: done\n", id)
		if end.Note != "" {
			fmt.Fprintf(stdout, "note: %s\n", end.Note)
		}
		return nil
	case status.Cancelled:
		fmt.Fprintf(stdout, "task %s: cancelled during %s: %s\n", id, end.Stage, end.Error)
		return fmt.Errorf("replay: task %s was cancelled during %s", id, end.Stage)
	default:
		fmt.Fprintf(stdout, "task %s: failed at %s: %s\n", id, end.Stage, end.Error)
		return fmt.Errorf("replay: task %s failed at %s", id, end.Stage)
	}
}

// waitEnd watches a task's status record until it has ended (done,
// failed or cancelled).
func waitEnd(ctx context.Context, kv jetstream.KeyValue, id string) (status.Status, error) {
	w, err := kv.Watch(ctx, pipeline.Token(id))
	if err != nil {
		return status.Status{}, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return status.Status{}, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return status.Status{}, errors.New("status watch closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := status.Decode(e.Value())
			if err == nil && st.State.Terminal() {
				return st, nil
			}
		}
	}
}
