package fetcher_test

import (
	"context"
	"fmt"

	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/fetcher"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// internalSecret is what an internal server answers; no reason may carry it.
const internalSecret = "internal-token=0b5e1f host=db.internal:5432"

// internal is a loopback service the fetcher must not reach: it counts
// requests and answers with a secret.
func internal(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("%PDF-1.7\n" + internalSecret))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// staticDNS resolves the names it holds and nothing else.
type staticDNS map[string]string

func (d staticDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := d[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// TestFetchRefusesAndFailsAtOnce: URLs into loopback (directly, by name, by
// numeric forms, by redirects) and fetches that cannot succeed (redirect
// loop, redirect to file://, a server that is not HTTP, a DNS name that
// does not exist, a 403 whose body holds a secret) fail on the first
// delivery with a reason naming the rule, never quoting the server, and the
// internal server is never reached.
func TestFetchRefusesAndFailsAtOnce(t *testing.T) {
	inner, innerHits := internal(t)
	innerAddr := inner.Listener.Addr().String()
	_, innerPort, _ := net.SplitHostPort(innerAddr)

	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "-ERR unknown command %s\r\n", internalSecret)
			c.Close()
		}
	}()

	var origin *httptest.Server
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-internal":
			http.Redirect(w, r, inner.URL+"/latest/meta-data", http.StatusFound)
		case "/to-internal-name":
			http.Redirect(w, r, "http://metadata.internal:"+innerPort+"/", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, origin.URL+"/loop", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/forbidden":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<Error><Code>AccessDenied</Code><Message>%s</Message></Error>", internalSecret)
		case "/forbidden-code":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<Error><Code>%s</Code></Error>", internalSecret)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(origin.Close)

	tests := []struct {
		name       string
		url        string
		wantReason []string
	}{
		{"loopback", inner.URL + "/metrics",
			[]string{"fetch id: get " + inner.URL + "/metrics refused: 127.0.0.1 is loopback (set FETCH_ALLOW_CIDRS to allow)"}},
		{"localhost", "http://localhost:" + innerPort + "/", []string{"localhost is a loopback name", "FETCH_ALLOW_HOSTS"}},
		{"decimal", "http://2130706433:" + innerPort + "/", []string{"non-canonical IPv4 form", "127.0.0.1, loopback"}},
		{"octal", "http://0177.0.0.1:" + innerPort + "/", []string{"non-canonical IPv4 form", "127.0.0.1, loopback"}},
		{"hex", "http://0x7f.1:" + innerPort + "/", []string{"non-canonical IPv4 form", "127.0.0.1, loopback"}},
		{"mapped", "http://[::ffff:127.0.0.1]:" + innerPort + "/", []string{"refused", "loopback"}},
		{"ipv6 loopback", "http://[::1]:" + innerPort + "/", []string{"::1 is loopback"}},
		{"name resolving to loopback", "http://metadata.internal:" + innerPort + "/",
			[]string{"metadata.internal resolves to 127.0.0.1, which is loopback"}},
		{"redirect into loopback", origin.URL + "/to-internal",
			[]string{"redirect to http://" + innerAddr + " refused: 127.0.0.1 is loopback"}},
		{"redirect to a name resolving to loopback", origin.URL + "/to-internal-name",
			[]string{"refused: metadata.internal resolves to 127.0.0.1"}},
		{"redirect loop", origin.URL + "/loop", []string{"more than 5 redirects", "bad URL"}},
		{"redirect to file", origin.URL + "/to-file", []string{"redirect to a file: URL", "bad URL"}},
		{"not an HTTP server", "http://" + garbage.Addr().String() + "/doc.pdf", []string{"does not speak HTTP", "bad URL"}},
		{"no such DNS name", "http://nowhere.invalid/doc.pdf", []string{"DNS name nowhere.invalid does not exist", "bad URL"}},
		{"403 with an internal message", origin.URL + "/forbidden", []string{"status 403 AccessDenied: URL expired or forbidden"}},
		{"403 with an internal code", origin.URL + "/forbidden-code", []string{"status 403: URL expired or forbidden"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			startFetcher(t, e, []string{hostOf(t, origin.URL), garbage.Addr().String()}, func(c *fetcher.Config) {
				c.Guard.Resolver = staticDNS{"metadata.internal": "127.0.0.1"}
			})
			terms := e.WatchTerminated(t, pipeline.Fetch)
			start := time.Now()
			e.submit(t, "id", tc.url)
			st := e.WaitTerminal(t, "id")
			if st.State != status.Failed || st.Stage != string(pipeline.Fetch) {
				t.Fatalf("got %s at %q (%s), want failed at fetch", st.State, st.Stage, st.Error)
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(st.Error, want) {
					t.Errorf("reason %q: want it to contain %q", st.Error, want)
				}
			}
			adv := stagetest.WaitTerminated(t, terms)
			if adv.Deliveries != 1 {
				t.Errorf("job delivered %d times, want 1 (a permanent failure)", adv.Deliveries)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("failed after %s, want at once", d)
			}
			for _, text := range []string{st.Error, adv.Reason} {
				for _, leak := range []string{"0b5e1f", "internal-token", "db.internal", "-ERR"} {
					if strings.Contains(text, leak) {
						t.Errorf("reason %q quotes the server (%q)", text, leak)
					}
				}
			}
			e.NoMsg(t, pipeline.Parse.Subject("id"))
		})
	}
	if n := innerHits.Load(); n != 0 {
		t.Errorf("the internal server got %d requests, want 0", n)
	}
}

// TestFetchAllowList: with the internal server's address allowed, exactly
// that server is fetched from; another loopback port stays refused.
func TestFetchAllowList(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	other, otherHits := internal(t)
	startFetcher(t, e, []string{hostOf(t, o.URL)})
	e.submit(t, "allowed", o.URL+"/good.pdf")
	e.expectFetched(t, "allowed", o.pdf)
	e.submit(t, "other", other.URL+"/good.pdf")
	if st := e.WaitTerminal(t, "other"); st.State != status.Failed || !strings.Contains(st.Error, "loopback") {
		t.Errorf("other port: got %s (%s), want failed as loopback", st.State, st.Error)
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the server not allowed got %d requests, want 0", n)
	}
}

// TestFetchSlowDripDoesNotStarve: five URLs that send a byte every 50 ms
// would hold both workers for as long as they drip; the rate floor cuts
// each attempt, so a good task submitted after them is fetched within a
// few windows, and the drips fail with the reason.
func TestFetchSlowDripDoesNotStarve(t *testing.T) {
	drip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte("%PDF-1.7\n"))
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
		}
	}))
	t.Cleanup(drip.Close)
	e := newEnv(t)
	reg := e.WithMetrics(t)
	o := newOrigin(t)
	startFetcher(t, e, []string{hostOf(t, o.URL), hostOf(t, drip.URL)}, func(c *fetcher.Config) {
		c.MinRate, c.RateWindow = 16<<10, 300*time.Millisecond
		c.MaxDuration = 5 * time.Second
	})
	for i := range 5 {
		e.submit(t, "drip-"+strconv.Itoa(i), drip.URL+"/slow.pdf?n="+strconv.Itoa(i))
	}
	start := time.Now()
	e.submit(t, "fast", o.URL+"/good.pdf")
	e.expectFetched(t, "fast", o.pdf)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the good task took %s behind the drips, want under 3s", d)
	}
	for i := range 5 {
		st := e.WaitTerminal(t, "drip-"+strconv.Itoa(i))
		if st.State != status.Failed || !strings.Contains(st.Error, "too slow") || !strings.Contains(st.Error, "FETCH_MIN_RATE") {
			t.Errorf("drip %d: got %s (%s), want failed as too slow", i, st.State, st.Error)
		}
	}
	// Cut by the rate floor: every delivery's error is a timeout.
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		all := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "fetch"})
		timeouts := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "fetch", "class": "timeout"})
		failed := stagetest.Metric(t, reg, "pdfpipe_stage_errors_total", map[string]string{"stage": "fetch", "disposition": "failed"})
		if failed != 5 || timeouts != all {
			return fmt.Errorf("errors: %v timeouts of %v, %v failed; want all timeouts, 5 failed", timeouts, all, failed)
		}
		return nil
	})
}
