package fetcher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const maxBytes = 256 << 10

// presigned imitates a presigned URL's query: it must never reach a reason.
const presigned = "?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=deadbeefSECRET"

// origin is the HTTP server the tasks point at; it counts requests per path.
type origin struct {
	*httptest.Server
	pdf []byte

	mu   sync.Mutex
	hits map[string]int
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Sample(2)); err != nil {
		t.Fatalf("pdfgen: %v", err)
	}
	if buf.Len() > maxBytes {
		t.Fatalf("sample pdf is %d bytes, over the test limit %d", buf.Len(), maxBytes)
	}
	o := &origin{pdf: buf.Bytes(), hits: map[string]int{}}
	big := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("0123456789abcdef"), maxBytes/8)...)
	mux := http.NewServeMux()
	mux.HandleFunc("/good.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write(o.pdf)
	})
	mux.HandleFunc("/missing.pdf", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such file", http.StatusNotFound)
	})
	mux.HandleFunc("/expired.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>`+
			`<Message>Request has expired</Message><AWSAccessKeyId>AKIDSECRET</AWSAccessKeyId></Error>`)
	})
	mux.HandleFunc("/login.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><html><head><title>Sign in</title></head><body>Please sign in</body></html>")
	})
	mux.HandleFunc("/empty.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Length", "0")
	})
	mux.HandleFunc("/big-declared.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/big-chunked.pdf", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the limit must hold while streaming.
		w.Header().Set("Content-Type", "application/pdf")
		for i := 0; i < len(big); i += 8 << 10 {
			if _, err := w.Write(big[i:min(i+8<<10, len(big))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) hitsOf(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// refusedURL returns an http URL on a loopback port nobody listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/doc.pdf"
}

// startFetcher runs a fetcher whose guard lets exactly the given
// loopback hosts (host:port) through; edit adjusts the test settings.
func startFetcher(t *testing.T, e *env, allow []string, edit ...func(*fetcher.Config)) {
	t.Helper()
	cfg := fetcher.Config{Workers: 2, MaxBytes: maxBytes, HTTPTimeout: 5 * time.Second,
		RetryDelay: 50 * time.Millisecond, Guard: source.Guard{AllowHosts: allow}}
	for _, f := range edit {
		f(&cfg)
	}
	svc, err := fetcher.New(cfg, e.Res, stagetest.Logger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	stagetest.Run(t, svc.Run)
}

// hostOf returns the host:port of a URL.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url %q: %v", raw, err)
	}
	return u.Host
}

// submit records the task as the gateway does and publishes its fetch job.
func (e *env) submit(t *testing.T, id, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	tk := task.Task{ID: id, DocID: id, UserID: "u1", FileName: id + ".pdf", URL: url}
	if ok, err := e.Status.Create(ctx, status.Status{TaskID: id, DocID: id, UserID: "u1"}); err != nil || !ok {
		t.Fatalf("create status %s: got %v, %v; want true, nil", id, ok, err)
	}
	if _, err := pipeline.Publish(ctx, e.JS, pipeline.Fetch.Subject(id), id, id+":fetch", pipeline.FetchJob{Task: tk}); err != nil {
		t.Fatalf("publish fetch job: %v", err)
	}
}

// expectFetched checks that the task's PDF is in the object store, byte for
// byte, and that its parse job describes it.
func (e *env) expectFetched(t *testing.T, id string, want []byte) {
	t.Helper()
	m := e.NextMsg(t, pipeline.Parse.Subject(id))
	var job pipeline.ParseJob
	if err := pipeline.Decode(m.Data(), &job); err != nil {
		t.Fatalf("parse job: %v", err)
	}
	if got := m.Headers().Get(pipeline.HeaderTaskID); got != id {
		t.Errorf("parse job header %s: got %q, want %q", pipeline.HeaderTaskID, got, id)
	}
	sum := sha256.Sum256(want)
	wantSHA := hex.EncodeToString(sum[:])
	if job.Task.ID != id || job.Task.DocID != id {
		t.Errorf("parse job task: got id %q doc %q, want %q", job.Task.ID, job.Task.DocID, id)
	}
	if job.Document.SHA256 != wantSHA {
		t.Errorf("parse job sha256: got %s, want %s", job.Document.SHA256, wantSHA)
	}
	if job.Document.Size != int64(len(want)) {
		t.Errorf("parse job size: got %d, want %d", job.Document.Size, len(want))
	}
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	got, err := e.Res.Objects.GetBytes(ctx, job.Document.Object)
	if err != nil {
		t.Fatalf("object %q: %v", job.Document.Object, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("stored object: got %d bytes, want the %d bytes served", len(got), len(want))
	}
	st, err := e.Status.Get(ctx, id)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.State.Terminal() {
		t.Errorf("status after fetch: got %s (%s), want a running state", st.State, st.Error)
	}
}

func TestFetchGoodPDF(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	startFetcher(t, e, []string{hostOf(t, o.URL)})

	e.submit(t, "good-1", o.URL+"/good.pdf"+presigned)
	e.expectFetched(t, "good-1", o.pdf)
	e.WaitSettled(t, pipeline.Fetch)
	if got := o.hitsOf("/good.pdf"); got != 1 {
		t.Errorf("got %d requests for the pdf, want 1", got)
	}
}

func TestFetchBadInput(t *testing.T) {
	tests := []struct {
		name string
		path string // on the origin; "" means a refused connection
		// wantDeliveries is how often the job is tried: 1 for permanent
		// problems, MaxDeliver for transient ones.
		wantDeliveries uint64
		wantReason     []string // substrings of the failure reason
		wantClass      string   // pdfpipe_stage_errors_total's class
	}{
		{name: "404", path: "/missing.pdf", wantDeliveries: 1,
			wantReason: []string{"status 404", "not found"}, wantClass: "fetch_refused"},
		{name: "403 expired presigned URL", path: "/expired.pdf", wantDeliveries: 1,
			wantReason: []string{"status 403", "AccessDenied", "URL expired or forbidden"}, wantClass: "fetch_refused"},
		{name: "html instead of pdf", path: "/login.pdf", wantDeliveries: 1,
			wantReason: []string{"no %PDF- header", "looks like HTML", "not a PDF"}, wantClass: "bad_input"},
		{name: "empty body", path: "/empty.pdf", wantDeliveries: 1,
			wantReason: []string{"0 bytes", "empty document"}, wantClass: "bad_input"},
		{name: "declared size over limit", path: "/big-declared.pdf", wantDeliveries: 1,
			wantReason: []string{"over the 256 KiB limit", "too large"}, wantClass: "too_large"},
		{name: "streamed size over limit", path: "/big-chunked.pdf", wantDeliveries: 1,
			wantReason: []string{"256 KiB limit", "too large"}, wantClass: "too_large"},
		{name: "connection refused", path: "", wantDeliveries: 3,
			wantReason: []string{"connection refused", "transient"}, wantClass: "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			reg := e.WithMetrics(t)
			o := newOrigin(t)
			url := refusedURL(t)
			startFetcher(t, e, []string{hostOf(t, o.URL), hostOf(t, url)})
			terms := e.WatchTerminated(t, pipeline.Fetch)

			if tc.path != "" {
				url = o.URL + tc.path + presigned
			}
			const id = "bad-1"
			e.submit(t, id, url)
			st := e.WaitTerminal(t, id)
			if st.State != status.Failed {
				t.Fatalf("got state %s, want %s", st.State, status.Failed)
			}
			if st.Stage != string(pipeline.Fetch) {
				t.Errorf("got failed stage %q, want %q", st.Stage, pipeline.Fetch)
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(st.Error, want) {
					t.Errorf("reason %q: want it to contain %q", st.Error, want)
				}
			}
			if strings.Contains(st.Error, "SECRET") {
				t.Errorf("reason %q leaks the presigned query or credentials", st.Error)
			}
			adv := stagetest.WaitTerminated(t, terms)
			if adv.Deliveries != tc.wantDeliveries {
				t.Errorf("job delivered %d times, want %d", adv.Deliveries, tc.wantDeliveries)
			}
			if tc.path != "" {
				if got := o.hitsOf(tc.path); uint64(got) != tc.wantDeliveries {
					t.Errorf("origin got %d requests, want %d", got, tc.wantDeliveries)
				}
			}
			e.NoMsg(t, pipeline.Parse.Subject(id))
			// Every delivery's error is counted under the class (once the
			// message is settled); the last one failed the task.
			testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				errs := func(labels map[string]string) float64 {
					labels["stage"] = "fetch"
					return stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", labels)
				}
				failed := errs(map[string]string{"class": tc.wantClass, "disposition": "failed"})
				retried := errs(map[string]string{"class": tc.wantClass, "disposition": "retry"})
				all := errs(map[string]string{})
				if failed != 1 || retried != float64(tc.wantDeliveries-1) || all != float64(tc.wantDeliveries) {
					return fmt.Errorf("errors{class=%s}: failed %v, retried %v, of any class %v; want 1, %d, %d",
						tc.wantClass, failed, retried, all, tc.wantDeliveries-1, tc.wantDeliveries)
				}
				return nil
			})

			// The service is still serving: a good task completes.
			e.submit(t, "good-after", o.URL+"/good.pdf")
			e.expectFetched(t, "good-after", o.pdf)
			e.WaitSettled(t, pipeline.Fetch)
			testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				docs := stagetest.Metric(t, reg, "pdfpipe_documents_total", map[string]string{"stage": "fetch"})
				bytes := stagetest.Metric(t, reg, "pdfpipe_bytes_total", map[string]string{"stage": "fetch"})
				if docs != 1 || bytes != float64(len(o.pdf)) {
					return fmt.Errorf("documents %v, bytes %v; want 1 and %d (only the good one)", docs, bytes, len(o.pdf))
				}
				return nil
			})
			if st, err := e.Status.Get(context.Background(), id); err != nil || st.State != status.Failed {
				t.Errorf("bad task afterwards: got %s, %v; want it still failed", st.State, err)
			}
		})
	}
}

// TestFetchConcurrentMixed sends good and bad tasks together: each ends on
// its own, none takes another down.
func TestFetchConcurrentMixed(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	startFetcher(t, e, []string{hostOf(t, o.URL)})
	bad := map[string]string{"m-404": "/missing.pdf", "m-html": "/login.pdf", "m-big": "/big-chunked.pdf"}
	for id, path := range bad {
		e.submit(t, id, o.URL+path)
	}
	for i := range 3 {
		e.submit(t, "m-good-"+strconv.Itoa(i), o.URL+"/good.pdf")
	}
	for id := range bad {
		if st := e.WaitTerminal(t, id); st.State != status.Failed || st.Stage != string(pipeline.Fetch) {
			t.Errorf("task %s: got %s at %q, want failed at fetch", id, st.State, st.Stage)
		}
	}
	for i := range 3 {
		e.expectFetched(t, "m-good-"+strconv.Itoa(i), o.pdf)
	}
	e.WaitSettled(t, pipeline.Fetch)
}
