package parser_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// cancelBound is how many pages past the progress it reports once its
// task is cancelled a parser may still send chunks of: the pages it reads
// while the cancel reaches it, a few milliseconds.
const cancelBound = 100

// askBriefly bounds the progress reads before the cancel: the parser's
// answer comes at once, and the read must not wait the 100 ms AskWork
// gives further answers while the parser goes on. (After the cancel any
// answer will do: it tells where the parser was when it answered, past
// the cancel.)
const askBriefly = 20 * time.Millisecond

// TestParseStopsWhenCancelled: a 2,000-page document cancelled while the
// parser is at page 200 or so: the parser sends chunks of at most
// cancelBound pages more, acks its job (no redelivery), publishes no
// ingest job, says it has stopped, and the task stays cancelled.
func TestParseStopsWhenCancelled(t *testing.T) {
	const pages = 2000
	e := newEnv(t)
	dir := startParser(t, e)
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Sample(pages)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "manual-1"
	e.submit(t, id, "doc-manual", buf.Bytes(), true)

	// The parser reports its pages while it works.
	var at stage.WorkInfo
	testenv.CheckFor(t, time.Minute, 2*time.Millisecond, func() error {
		got, err := stage.AskWork(ctx, e.NC, id, askBriefly)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Stage != "parse" {
			return fmt.Errorf("at work: %+v, want the parser", got)
		}
		if at = got[0]; at.Done < 200 {
			return fmt.Errorf("parser at page %d of %d", at.Done, at.Total)
		}
		return nil
	})
	if at.Total != pages || at.Unit != "pages" || at.Delivered != 1 {
		t.Errorf("parser's progress: got %+v, want pages of %d on the first delivery", at, pages)
	}
	if _, _, err := e.Status.Cancel(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	// Where the parser is once the cancel is recorded (its answer now, if
	// it has not stopped yet): on a loaded machine the parser goes on
	// between the answer above and the cancel, which is not what is
	// bounded.
	if got, err := stage.AskWork(ctx, e.NC, id, 5*time.Second); err == nil && len(got) == 1 {
		at.Done = max(at.Done, got[0].Done)
	}
	testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		got, err := stage.AskWork(ctx, e.NC, id, 5*time.Second)
		if err != nil || len(got) > 0 {
			return fmt.Errorf("still at work: %+v (%v)", got, err)
		}
		return nil
	})
	info := e.WaitSettled(t, pipeline.Parse)
	if info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
		t.Errorf("parse job: delivered %d times (%d redelivered), want once, acked", info.Delivered.Consumer, info.NumRedelivered)
	}

	last := lastPageSent(ctx, t, e, id)
	t.Logf("cancelled at page %d of %d; chunks sent up to page %d", at.Done, pages, last)
	if last-at.Done > cancelBound {
		t.Errorf("chunks sent up to page %d, %d pages after the progress at the cancel (%d); want at most %d", last, last-at.Done, at.Done, cancelBound)
	}
	if n := e.Subjects(t, pipeline.Ingest.Subject(id)); n != 0 {
		t.Errorf("%d ingest jobs after the cancel, want none", n)
	}
	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != status.Cancelled || st.Stage != "parse" {
		t.Errorf("status: got %s at %q, want cancelled at parse", st.State, st.Stage)
	}
	expectNoTempFiles(t, dir)
}

// lastPageSent reads every embed job of the task and returns the last
// page of its chunks.
func lastPageSent(ctx context.Context, t *testing.T, e *env, id string) int {
	t.Helper()
	n := e.Subjects(t, pipeline.Embed.Subject(id)+".>")
	if n == 0 {
		return 0
	}
	c, err := e.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{pipeline.Embed.Subject(id) + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for range n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("embed job: %v", err)
		}
		var job pipeline.EmbedJob
		if err := pipeline.Decode(m.Data(), &job); err != nil {
			t.Fatal(err)
		}
		for _, c := range job.All() {
			last = max(last, c.PageEnd)
		}
	}
	return last
}
