package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

const statusUsage = "status [--watch [--every D]] TASK_ID"

// showStatus prints a task's status record as JSON, or with --watch a
// live progress line until the task ends.
func showStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe "+statusUsage, catalog.CLI)
	watch := fs.Bool("watch", false, "print a progress line on each change until the task ends (exit 1 if it failed or was cancelled)")
	every := fs.Duration("every", time.Second, "with --watch: how often the stages at work are asked how far they are")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("status: %w (usage: %s)", err, statusUsage)
	}
	if len(pos) != 1 {
		return errors.New("status: want one task id (usage: " + statusUsage + ")")
	}
	id := pos[0]
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, res, err := openPipeline(octx, "status", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if *watch {
		if *every <= 0 {
			return errors.New("status: --every must be positive")
		}
		return watchStatus(ctx, nc, res, id, *every, stdout)
	}
	st, err := status.New(res.Status).Get(octx, id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}
