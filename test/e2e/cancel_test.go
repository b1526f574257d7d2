package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// pagesPastCancel bounds the pages whose chunks the parser may still send
// after the progress it reports once the cancel is recorded: those it
// reads while the cancel reaches it. Here every stage shares one NATS
// connection (as in pdfpipe up), so the status change that stops the
// parser waits behind the embedders' traffic: up to 110 pages were seen
// on a loaded machine under the race detector, against 0-17 for a parser
// alone (services/parser, bound 100). A tenth of the document.
const pagesPastCancel = 200

// askBriefly bounds the progress reads before the cancel: the parser's
// answer comes at once, and the read must not wait the 100 ms AskWork
// gives further answers while the parser goes on. (After the cancel any
// answer will do: it tells where the parser was when it answered, past
// the cancel.)
const askBriefly = 20 * time.Millisecond

// TestCancelMidParse is the check: a 2,000-page manual pushed by
// the backend is cancelled while it is parsed, as pdfpipe cancel does it
// (the status record, then waiting until no stage answers for the task).
// Parsing stops within a tenth of the document, the task ends
// cancelled, nothing is ingested afterwards, the backend gets a
// "cancelled" DocumentEvent, and nothing is dead-lettered.
func TestCancelMidParse(t *testing.T) {
	const pages, id = 2000, "cancel-manual"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	redisURL := testenv.StartRedis(t)
	pdf := samplePDF(t, pages, "A manual of two thousand pages")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pdf) }))
	defer web.Close()
	st := startStack(t, map[string]string{"REDIS_URL": redisURL, "TEMP_DIR": t.TempDir(),
		"FETCH_ALLOW_HOSTS": web.Listener.Addr().String()})
	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	events := collectEvents(ctx, t, rdb)
	if err := rdb.LPush(ctx, "queue:upload_tasks", fmt.Sprintf(`{"DocID":%q,"FileName":"manual.pdf","UserID":"u1","URL":"%s/manual.pdf"}`, id, web.URL)).Err(); err != nil {
		t.Fatal(err)
	}

	store := status.New(st.Res.Status)
	var at stage.WorkInfo
	testenv.CheckFor(t, 2*time.Minute, 2*time.Millisecond, func() error {
		got, err := stage.AskWork(ctx, st.NC, id, askBriefly)
		if err != nil {
			return err
		}
		for _, w := range got {
			if w.Stage == "parse" {
				if at = w; at.Done >= 200 {
					return nil
				}
			}
		}
		return fmt.Errorf("at work: %+v; waiting for the parser past page 200", got)
	})
	if _, _, err := store.Cancel(ctx, id, "cancelled by the e2e test"); err != nil {
		t.Fatal(err)
	}
	// Where the parser is once the cancel is recorded (if it has not
	// stopped yet): what it parsed between its answer above and the
	// cancel is not what is bounded.
	if got, err := stage.AskWork(ctx, st.NC, id, 5*time.Second); err == nil {
		for _, w := range got {
			if w.Stage == "parse" {
				at.Done = max(at.Done, w.Done)
			}
		}
	}
	testenv.CheckFor(t, time.Minute, 5*time.Millisecond, func() error {
		if got, err := stage.AskWork(ctx, st.NC, id, 5*time.Second); err != nil || len(got) > 0 {
			return fmt.Errorf("still at work: %+v (%v)", got, err)
		}
		return nil
	})
	// Every stage has settled: nothing of the task waits or is at work.
	for _, s := range []pipeline.Stage{pipeline.Fetch, pipeline.Parse, pipeline.Embed, pipeline.Ingest} {
		c, err := st.JS.Consumer(ctx, pipeline.Stream, s.Durable())
		if err != nil {
			t.Fatal(err)
		}
		testenv.CheckFor(t, time.Minute, 10*time.Millisecond, func() error {
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return fmt.Errorf("consumer %s not settled: %+v (%v)", s.Durable(), info, err)
			}
			return nil
		})
	}

	last := lastPageSent(ctx, t, st, id)
	t.Logf("cancelled at page %d of %d; chunks sent up to page %d", at.Done, at.Total, last)
	if at.Total != pages || last-at.Done > pagesPastCancel || last >= pages {
		t.Errorf("chunks sent up to page %d of %d after the parser reported page %d at the cancel; want at most %d more",
			last, at.Total, at.Done, pagesPastCancel)
	}
	got, err := store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != status.Cancelled || got.Stage != "parse" || got.Error != "cancelled by the e2e test" {
		t.Errorf("status: got %s at %q (%q), want cancelled at parse with the reason", got.State, got.Stage, got.Error)
	}
	if n := subjectCount(t, st, pipeline.Ingest.Subject(id)); n != 0 {
		t.Errorf("%d ingest jobs, want none", n)
	}
	for _, d := range st.Sink.Documents() {
		if d.Metadata.GetFileId() == id {
			t.Errorf("the backend got the cancelled document (%d chunks)", len(d.Chunks))
		}
	}
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := events.count(id, "failed"); n != 1 {
			return fmt.Errorf("%d events of type failed, want the cancel's: %v", n, events.all())
		}
		return nil
	})
	for _, ev := range events.all() {
		if ev["doc_id"] == id && ev["type"] == "failed" && ev["status"] != "cancelled" {
			t.Errorf("event %v: want status cancelled", ev)
		}
	}
	if n, err := rdb.LLen(ctx, "queue:dlq").Result(); err != nil || n != 0 {
		t.Errorf("dead-letter list: %d entries (%v), want none for a cancel", n, err)
	}
}

// lastPageSent returns the last page of the chunks of the task's embed
// jobs in the stream.
func lastPageSent(ctx context.Context, t *testing.T, st *stack, id string) int {
	t.Helper()
	filter := pipeline.Embed.Subject(id) + ".>"
	n := subjectCount(t, st, filter)
	if n == 0 {
		return 0
	}
	c, err := st.JS.OrderedConsumer(ctx, pipeline.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
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
