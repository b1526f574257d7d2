package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

const inspectUsage = "inspect [--all] TASK_ID"

// storedMsg is one retained message of a task.
type storedMsg struct {
	stream  string
	subject string
	seq     uint64
	size    int
	time    time.Time
}

// inspect prints every retained message of a task in both streams, oldest
// first: time, stream, sequence, subject, size and, for stage messages,
// how often it was delivered and where the stage's consumer is with it
// (acked, at work, in flight, waiting). The
// vectors are summed up in one line unless --all.
func inspect(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe "+inspectUsage, catalog.CLI)
	all := fs.Bool("all", false, "one line per vector too")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("inspect: %w (usage: %s)", err, inspectUsage)
	}
	if fs.NArg() != 1 {
		return errors.New("inspect: want " + inspectUsage)
	}
	id := fs.Arg(0)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nc, res, err := openPipeline(ctx, "inspect", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	tok := pipeline.Token(id)
	if st, err := status.New(res.Status).Get(ctx, id); err == nil {
		fmt.Fprintf(stdout, "task %s: %s", id, st.State)
		switch st.State {
		case status.Failed:
			fmt.Fprintf(stdout, " at %s: %s", st.Stage, oneLine(st.Error, 200))
		case status.Cancelled:
			fmt.Fprintf(stdout, " during %s: %s", st.Stage, oneLine(st.Error, 200))
		}
		fmt.Fprintf(stdout, " (pages %d, chunks %d, updated %s)\n", st.Pages, st.Chunks, st.UpdatedAt.UTC().Format(time.RFC3339))
	} else if errors.Is(err, status.ErrNotFound) {
		fmt.Fprintf(stdout, "task %s: no status record\n", id)
	} else {
		return fmt.Errorf("inspect %s: %w", id, err)
	}
	stageMsgs, err := readTaskMsgs(ctx, res.JS, pipeline.Stream, "pdf.*."+tok, "pdf.*."+tok+".>")
	if err != nil {
		return fmt.Errorf("inspect %s: %w", id, err)
	}
	vecs, err := readTaskMsgs(ctx, res.JS, pipeline.VectorStream, pipeline.VectorFilter(id))
	if err != nil {
		return fmt.Errorf("inspect %s: %w", id, err)
	}
	if len(stageMsgs)+len(vecs) == 0 {
		fmt.Fprintf(stdout, "no retained messages for task %s\n", id)
		return nil
	}
	consumers := map[string]*jetstream.ConsumerInfo{}
	for _, s := range []pipeline.Stage{pipeline.Fetch, pipeline.Parse, pipeline.Embed, pipeline.Ingest} {
		c, err := res.JS.Consumer(ctx, pipeline.Stream, s.Durable())
		if err != nil {
			continue // no such consumer: no position to show
		}
		if ci, err := c.Info(ctx); err == nil {
			consumers[string(s)] = ci
		}
	}
	// Who is at work on the task: the delivery count of the messages they hold.
	held := map[uint64]stage.WorkInfo{}
	if at, err := stage.AskWork(ctx, nc, id, 2*time.Second); err == nil {
		for _, w := range at {
			held[w.StreamSeq] = w
		}
	}
	lines := stageMsgs
	if *all {
		lines = append(lines, vecs...)
	}
	sort.Slice(lines, func(i, j int) bool {
		if !lines[i].time.Equal(lines[j].time) {
			return lines[i].time.Before(lines[j].time)
		}
		return lines[i].stream < lines[j].stream || lines[i].stream == lines[j].stream && lines[i].seq < lines[j].seq
	})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTREAM\tSEQ\tSUBJECT\tSIZE\tDELIVERIES\tCONSUMER")
	pending := map[string]bool{}
	for _, m := range lines {
		deliveries, where := "", ""
		if m.stream == pipeline.Stream {
			where = consumerPosition(consumers, m)
			if where != "acked" && where != "-" {
				pending[stageOf(m.subject)] = true
			}
			deliveries, where = deliveryCount(where, held[m.seq], m.time)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", m.time.UTC().Format("2006-01-02T15:04:05.000Z"), m.stream, m.seq, m.subject, m.size, deliveries, where)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(vecs) > 0 && !*all {
		var size, chunks int
		for _, v := range vecs {
			size += v.size
			if sp, ok := pipeline.ParseVectorSubject(id, v.subject); ok {
				chunks += sp.Count // a vector batch holds several
			}
		}
		first, last := vecs[0], vecs[len(vecs)-1]
		fmt.Fprintf(stdout, "vectors: %d messages, %d chunks in %s, %d bytes, seq %d..%d, first %s at %s, last %s at %s (--all lists them)\n",
			len(vecs), chunks, pipeline.VectorStream, size, first.seq, last.seq,
			first.subject, first.time.UTC().Format(time.RFC3339), last.subject, last.time.UTC().Format(time.RFC3339))
	}
	for _, s := range []string{"fetch", "parse", "embed", "ingest"} {
		if ci := consumers[s]; ci != nil && pending[s] {
			fmt.Fprintf(stdout, "consumer %s (all tasks): %d not yet delivered, %d in flight (unacked), %d redelivered\n",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
	}
	return nil
}

// deliveryCount gives a stage message's deliveries and position: "acked";
// "0" while waiting; for a message a stage is at work on (held, from
// stage.AskWork) the number of its delivery, with what the stage says;
// "≥1" for one delivered but neither acked nor at work (acked out of
// order above the ack floor, or waiting to be redelivered after a nak).
func deliveryCount(where string, held stage.WorkInfo, stored time.Time) (deliveries, position string) {
	switch {
	case where == "acked":
		return "acked", where
	case where == "waiting":
		return "0", where
	case where == "in flight" && held.Delivered > 0:
		at := fmt.Sprintf("at work: %s since %s", held.Stage, held.Since.UTC().Format(time.RFC3339))
		if held.Unit != "" {
			at += fmt.Sprintf(", %d of %d %s", held.Done, held.Total, held.Unit)
		}
		return strconv.FormatUint(held.Delivered, 10), at
	case where == "in flight":
		return "≥1", where
	}
	return "-", where
}

// stageOf is the stage token of a stage subject pdf.<stage>.<task>...
func stageOf(subject string) string {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// consumerPosition says where the stage's durable consumer is with a
// message: acked (at or below its ack floor), in flight (delivered, not
// known acked: a message acked out of order above the floor shows here
// too) or waiting (not delivered yet). Per-message delivery counts are not
// in the consumer's info: the stage at work on a message says it (see
// deliveryCount); the consumer's redelivered total is printed below.
func consumerPosition(consumers map[string]*jetstream.ConsumerInfo, m storedMsg) string {
	ci := consumers[stageOf(m.subject)]
	if ci == nil {
		return "-"
	}
	switch {
	case m.seq <= ci.AckFloor.Stream:
		return "acked"
	case m.seq > ci.Delivered.Stream:
		return "waiting"
	default:
		return "in flight"
	}
}

// readTaskMsgs reads every retained message of stream matching filters
// with an ordered consumer; the count to expect comes from the stream's
// per-subject state, so an empty result costs no wait.
func readTaskMsgs(ctx context.Context, js jetstream.JetStream, stream string, filters ...string) ([]storedMsg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	var want uint64
	for _, f := range filters {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", stream, err)
		}
		for _, n := range info.State.Subjects {
			want += n
		}
	}
	if want == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	out := make([]storedMsg, 0, want)
	for uint64(len(out)) < want {
		batch, err := c.Fetch(int(min(want-uint64(len(out)), 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", stream, err)
		}
		n := len(out)
		last := false
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			out = append(out, storedMsg{stream: stream, subject: m.Subject(), seq: md.Sequence.Stream, size: len(m.Data()), time: md.Timestamp})
			last = md.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("stream %s: %w", stream, err)
		}
		if last || len(out) == n { // the rest expired or was purged meanwhile
			break
		}
	}
	return out, nil
}
