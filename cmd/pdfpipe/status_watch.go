package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// live is what the stages at work report beside the status record, which
// they write only at the start and end of each stage.
type live struct {
	pagesDone, pagesTotal int  // the parser at work
	embedded              int  // vectors stored (PDFPIPE_VECTORS)...
	embeddedKnown         bool // ...when they could be counted
	sent, sentTotal       int  // the ingester at work: chunks sent to the backend
}

// percent is how far a task is: each running stage's share filled by its
// live figures (parse 25–50 %, embed 50–80 %, ingest 80–100 %); an ended
// task that did not finish stays where it was (last).
func percent(st status.Status, lv live, last int) int {
	frac := func(done, total int) float64 {
		if total <= 0 {
			return 0
		}
		return min(float64(done)/float64(total), 1)
	}
	switch st.State {
	case status.Queued:
		return 0
	case status.Fetching:
		return 10
	case status.Parsing:
		return 25 + int(25*frac(lv.pagesDone, lv.pagesTotal))
	case status.Embedding:
		return 50 + int(30*frac(lv.embedded, st.Chunks))
	case status.Ingesting:
		return min(99, 80+int(20*frac(lv.sent, lv.sentTotal)))
	case status.Done:
		return 100
	}
	return last
}

// progressLine is one line of `status --watch`: the task, how far it is,
// its state, then pages parsed of the document's, chunks embedded of the
// document's, chunks ingested, as far as they are known; the reason of a
// failure or cancel.
func progressLine(st status.Status, lv live, last int) (string, int) {
	pct := percent(st, lv, last)
	parts := []string{fmt.Sprintf("%s %3d%% %s", st.TaskID, pct, st.State)}
	switch {
	case st.State == status.Parsing && lv.pagesTotal > 0:
		parts = append(parts, fmt.Sprintf("pages %d/%d", lv.pagesDone, lv.pagesTotal))
	case st.Pages > 0:
		parts = append(parts, fmt.Sprintf("pages %d", st.Pages))
	}
	running := !st.State.Terminal()
	switch {
	case running && lv.embeddedKnown && st.Chunks > 0:
		parts = append(parts, fmt.Sprintf("chunks embedded %d/%d", lv.embedded, st.Chunks))
	case running && lv.embeddedKnown && (lv.embedded > 0 || st.State == status.Embedding):
		parts = append(parts, fmt.Sprintf("chunks embedded %d", lv.embedded))
	case st.Chunks > 0:
		parts = append(parts, fmt.Sprintf("chunks %d", st.Chunks))
	}
	switch {
	case st.State == status.Ingesting && lv.sentTotal > 0:
		parts = append(parts, fmt.Sprintf("ingested %d/%d", lv.sent, lv.sentTotal))
	case st.State == status.Done && st.Ingested > 0:
		parts = append(parts, fmt.Sprintf("ingested %d", st.Ingested))
	}
	switch st.State {
	case status.Failed:
		parts = append(parts, fmt.Sprintf("at %s: %s", st.Stage, oneLine(st.Error, 200)))
	case status.Cancelled:
		parts = append(parts, fmt.Sprintf("during %s: %s", st.Stage, oneLine(st.Error, 200)))
	}
	return strings.Join(parts, " "), pct
}

// watchStatus prints a progress line for the task on each change of its
// status record, and of the live figures (read every `every` while a
// stage works on it), until the task ends: redrawn in place on a
// terminal, one line per change otherwise. It returns an error when the
// task failed or was cancelled.
func watchStatus(ctx context.Context, nc *nats.Conn, res *pipeline.Resources, id string, every time.Duration, stdout io.Writer) error {
	w, err := res.Status.Watch(ctx, pipeline.Token(id))
	if err != nil {
		return fmt.Errorf("status %s: watch: %w", id, err)
	}
	defer w.Stop()
	vc := &vectorCounter{js: res.JS, id: id}
	defer vc.close()
	tty := isTerminal(stdout)
	prev, pct := "", 0
	var st status.Status
	seen := false
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
	redraw := func() {
		var line string
		line, pct = progressLine(st, readLive(ctx, nc, vc, st), pct)
		show(line)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return fmt.Errorf("status %s: %w", id, ctx.Err())
		case <-tick.C:
			if seen && !st.State.Terminal() {
				redraw()
			}
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
			if st, err = status.Decode(e.Value()); err != nil {
				return fmt.Errorf("status %s: decode: %w", id, err)
			}
			seen = true
			redraw()
			if !st.State.Terminal() {
				continue
			}
			if tty {
				fmt.Fprintln(stdout)
			}
			switch st.State {
			case status.Failed:
				return fmt.Errorf("task %s failed at %s", id, st.Stage)
			case status.Cancelled:
				return fmt.Errorf("task %s was cancelled during %s", id, st.Stage)
			}
			return nil
		}
	}
}

// readLive asks the stages at work on a running task for their progress
// and counts its vectors; what cannot be read stays unknown.
func readLive(ctx context.Context, nc *nats.Conn, vc *vectorCounter, st status.Status) live {
	var lv live
	switch st.State {
	case status.Parsing, status.Embedding, status.Ingesting:
	default:
		return lv
	}
	if at, err := stage.AskWork(ctx, nc, st.TaskID, time.Second); err == nil {
		for _, w := range at {
			switch {
			case w.Stage == string(pipeline.Parse) && w.Unit == "pages":
				lv.pagesDone, lv.pagesTotal = max(lv.pagesDone, w.Done), max(lv.pagesTotal, w.Total)
			case w.Stage == string(pipeline.Ingest) && w.Unit == "chunks":
				lv.sent, lv.sentTotal = max(lv.sent, w.Done), max(lv.sentTotal, w.Total)
			}
		}
	}
	if n, err := vc.count(ctx); err == nil {
		lv.embedded, lv.embeddedKnown = n, true
	}
	return lv
}

// vectorCounter counts a task's vectors: the pending count of a consumer
// of its own on the vector stream, filtered on the task and never pulled
// from (the stream keeps one message per chunk). Cheaper than listing
// every subject of a large document on each read.
type vectorCounter struct {
	js   jetstream.JetStream
	id   string
	cons jetstream.Consumer
}

func (v *vectorCounter) count(ctx context.Context) (int, error) {
	for range 2 {
		if v.cons == nil {
			s, err := v.js.Stream(ctx, pipeline.VectorStream)
			if err != nil {
				return 0, err
			}
			if v.cons, err = s.CreateConsumer(ctx, jetstream.ConsumerConfig{
				Description:   "pdfpipe status --watch: vectors of " + v.id,
				FilterSubject: pipeline.VectorFilter(v.id), DeliverPolicy: jetstream.DeliverAllPolicy,
				AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute,
			}); err != nil {
				return 0, err
			}
		}
		info, err := v.cons.Info(ctx)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			v.cons = nil // removed for inactivity: make another
			continue
		}
		if err != nil {
			return 0, err
		}
		return int(info.NumPending), nil
	}
	return 0, jetstream.ErrConsumerNotFound
}

// close removes the counting consumer (it would expire in a minute).
func (v *vectorCounter) close() {
	if v.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s, err := v.js.Stream(ctx, pipeline.VectorStream); err == nil {
		_ = s.DeleteConsumer(ctx, v.cons.CachedInfo().Name)
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
