package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// replay runs one stage again for a task from the retained stream, and
// everything after it: `fetch` downloads again, `parse` re-parses the
// stored PDF, `embed` re-embeds the stored chunks (e.g. after changing the
// model), `ingest` sends the stored vectors to the backend again. The
// task's vectors are purged first when they will be made anew, and every
// republished message carries a replay number so the duplicate window does
// not drop it. The task is reopened even if it had ended.
func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return errors.New("replay: want STAGE TASK_ID (STAGE: fetch, parse, embed or ingest)")
	}
	st, id := pipeline.Stage(args[0]), args[1]
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nc, res, err := openPipeline(ctx, "replay", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	state, ok := map[pipeline.Stage]status.State{pipeline.Fetch: status.Queued, pipeline.Parse: status.Fetching,
		pipeline.Embed: status.Embedding, pipeline.Ingest: status.Embedding}[st]
	if !ok {
		return fmt.Errorf("replay: unknown stage %q (want fetch, parse, embed or ingest)", st)
	}
	// Reopen first: a stage skips the messages of tasks that have ended.
	if _, err := status.New(res.Status).Reopen(ctx, id, state); err != nil {
		return err
	}
	n, err := pipeline.Replay(ctx, res, st, id, int(time.Now().Unix()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %s for task %s: %d messages republished\n", st, id, n)
	return nil
}
