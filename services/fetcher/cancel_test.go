package fetcher_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

// TestFetchStopsWhenCancelled: a download under way stops when its task
// is cancelled: the server sees the request go away, the job is acked
// and no parse job follows.
func TestFetchStopsWhenCancelled(t *testing.T) {
	e := newEnv(t)
	started, gone := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte("%PDF-1.7\n"))
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // the rest never comes: only the client can end this
		close(gone)
	}))
	defer slow.Close()
	startFetcher(t, e, []string{hostOf(t, slow.URL)}, func(c *fetcher.Config) { c.HTTPTimeout = time.Minute })

	const id = "cancel-fetch"
	e.submit(t, id, slow.URL+"/slow.pdf")
	wait(t, started, "the download to start")
	if _, _, err := e.Status.Cancel(context.Background(), id, "test"); err != nil {
		t.Fatal(err)
	}
	wait(t, gone, "the download to be given up")
	info := e.WaitSettled(t, pipeline.Fetch)
	if info.Delivered.Consumer != 1 {
		t.Errorf("fetch job delivered %d times, want once (acked)", info.Delivered.Consumer)
	}
	e.NoMsg(t, pipeline.Parse.Subject(id))
	if st, err := e.Status.Get(context.Background(), id); err != nil || st.State != status.Cancelled || st.Stage != "fetch" {
		t.Errorf("status: got %s at %q (%v), want cancelled at fetch", st.State, st.Stage, err)
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(stagetest.WaitLimit):
		t.Fatalf("waiting for %s: not within %s", what, stagetest.WaitLimit)
	}
}
