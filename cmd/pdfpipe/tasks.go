package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

const tasksUsage = "tasks [--failed|--running|--done|--cancelled] [--limit N] [--json]"

// tasks lists the task records of the status bucket, newest update first:
// one line per task (or one JSON object per line with --json), at most
// --limit of them.
func tasks(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tasks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe "+tasksUsage, catalog.CLI)
	failed := fs.Bool("failed", false, "only tasks that failed")
	running := fs.Bool("running", false, "only tasks not yet ended")
	done := fs.Bool("done", false, "only tasks that are done")
	cancelled := fs.Bool("cancelled", false, "only tasks that were cancelled")
	limit := fs.Int("limit", 100, "print at most N tasks (the newest)")
	asJSON := fs.Bool("json", false, "one JSON status record per line")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("tasks: %w (usage: %s)", err, tasksUsage)
	}
	if fs.NArg() != 0 {
		return errors.New("tasks: no arguments wanted (usage: " + tasksUsage + ")")
	}
	if *limit <= 0 {
		return errors.New("tasks: --limit must be at least 1")
	}
	keep := func(st status.Status) bool {
		if !*failed && !*running && !*done && !*cancelled {
			return true
		}
		return (*failed && st.State == status.Failed) || (*done && st.State == status.Done) ||
			(*cancelled && st.State == status.Cancelled) || (*running && !st.State.Terminal())
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, res, err := openPipeline(ctx, "tasks", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	all, bad, err := listStatus(ctx, res.Status, keep)
	if err != nil {
		return fmt.Errorf("tasks: %w", err)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].UpdatedAt.Equal(all[j].UpdatedAt) {
			return all[i].UpdatedAt.After(all[j].UpdatedAt)
		}
		return all[i].TaskID < all[j].TaskID
	})
	total := len(all)
	if total > *limit {
		all = all[:*limit]
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "tasks: %d status records could not be read\n", bad)
	}
	if total > len(all) {
		fmt.Fprintf(stderr, "tasks: showing the newest %d of %d (see --limit)\n", len(all), total)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, st := range all {
			st.Task = nil // the task as received may be large; `pdfpipe status` shows it
			if err := enc.Encode(st); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tPAGES\tCHUNKS\tUPDATED\tREASON")
	for _, st := range all {
		reason := ""
		switch st.State {
		case status.Failed:
			reason = st.Stage + ": " + oneLine(st.Error, 120)
		case status.Cancelled:
			reason = "during " + st.Stage + ": " + oneLine(st.Error, 120)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", oneLine(st.TaskID, 60), st.State, st.Pages, st.Chunks,
			st.UpdatedAt.UTC().Format(time.RFC3339), reason)
	}
	return tw.Flush()
}

// listStatus reads every status record that keep accepts; bad counts the
// records that do not decode.
func listStatus(ctx context.Context, kv jetstream.KeyValue, keep func(status.Status) bool) (out []status.Status, bad int, err error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, 0, errors.New("status watch closed")
			}
			if e == nil { // every current record has been delivered
				return out, bad, nil
			}
			st, err := status.Decode(e.Value())
			if err != nil {
				bad++
				continue
			}
			if keep(st) {
				out = append(out, st)
			}
		}
	}
}

// oneLine shortens s to at most n runes on one line, for a table cell.
func oneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\r' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}
