package source_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
)

// secretQuery imitates a presigned URL: none of it may appear in errors.
const secretQuery = "?X-Amz-Credential=AKIDSECRETID%2F20260101&X-Amz-Signature=deadbeefSECRETSIG"

// pdfBytes returns a document of n bytes that starts with junk bytes of
// leading junk, then a PDF header, then filler that varies with position.
func pdfBytes(junk, n int) []byte {
	b := make([]byte, 0, n)
	b = append(b, bytes.Repeat([]byte{'j'}, junk)...)
	b = append(b, "%PDF-1.7\n"...)
	for i := 0; len(b) < n; i++ {
		b = append(b, byte('a'+i%23))
	}
	return b[:n]
}

// serveBytes answers 200 with body; chunked omits Content-Length.
func serveBytes(body []byte, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		if chunked {
			w.(http.Flusher).Flush() // headers out without a length
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for i := 0; i < len(body); i += 4096 {
			w.Write(body[i:min(i+4096, len(body))])
			if chunked {
				w.(http.Flusher).Flush()
			}
		}
	}
}

func serveStatus(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const expiredXML = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Request has expired</Message>` +
	`<X-Amz-Expires>900</X-Amz-Expires><AWSAccessKeyId>AKIDSECRETID</AWSAccessKeyId>` +
	`<RequestId>1</RequestId></Error>`

const htmlPage = "<!doctype html><html><body>Sign in</body></html>"

func TestOpenHTTP(t *testing.T) {
	const maxBytes = 64 << 10
	big := pdfBytes(0, 300<<10)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pdfBytes(0, 4*maxBytes))
	zw.Close()

	tests := []struct {
		name     string
		maxBytes int64 // 0: maxBytes
		handler  http.HandlerFunc
		wantOpen error  // sentinel from Open, nil for success
		wantRead error  // sentinel from reading the body, nil for success
		wantBody []byte // checked when both are nil
		wantSize int64  // checked when Open succeeds
		wantText string // substring of the error text
	}{
		{name: "pdf with length", maxBytes: 1 << 20, handler: serveBytes(big, false),
			wantBody: big, wantSize: int64(len(big))},
		{name: "pdf chunked", maxBytes: 1 << 20, handler: serveBytes(big, true),
			wantBody: big, wantSize: -1},
		{name: "tiny pdf", handler: serveBytes([]byte("%PDF-1.4\n%%EOF\n"), false),
			wantBody: []byte("%PDF-1.4\n%%EOF\n"), wantSize: 15},
		{name: "leading junk", handler: serveBytes(pdfBytes(500, 5000), true),
			wantBody: pdfBytes(500, 5000), wantSize: -1},
		{name: "header starts at byte 1023", handler: serveBytes(pdfBytes(1023, 5000), false),
			wantBody: pdfBytes(1023, 5000), wantSize: 5000},
		{name: "header starts at byte 1024", handler: serveBytes(pdfBytes(1024, 5000), false),
			wantRead: source.ErrNotPDF, wantSize: 5000},
		{name: "exactly max bytes chunked", handler: serveBytes(pdfBytes(0, maxBytes), true),
			wantBody: pdfBytes(0, maxBytes), wantSize: -1},
		{name: "one byte over max chunked", handler: serveBytes(pdfBytes(0, maxBytes+1), true),
			wantRead: source.ErrTooLarge, wantSize: -1, wantText: "64 KiB"},
		{name: "chunked far over max", handler: serveBytes(pdfBytes(0, 10*maxBytes), true),
			wantRead: source.ErrTooLarge, wantSize: -1},
		{name: "gzip expands over max", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(gz.Len()))
			w.Write(gz.Bytes())
		}, wantRead: source.ErrTooLarge, wantSize: -1},
		{name: "content-length over max", handler: serveBytes(pdfBytes(0, maxBytes+1), false),
			wantOpen: source.ErrTooLarge, wantText: "over the 64 KiB limit"},
		{name: "html page", handler: serveStatus(200, "text/html", htmlPage),
			wantRead: source.ErrNotPDF, wantSize: int64(len(htmlPage)), wantText: "looks like HTML, content-type text/html"},
		{name: "long text without header", handler: serveBytes(bytes.Repeat([]byte("x"), 3000), true),
			wantRead: source.ErrNotPDF, wantSize: -1},
		{name: "empty", handler: serveBytes(nil, false), wantRead: source.ErrEmpty, wantSize: 0},
		{name: "empty chunked", handler: serveBytes(nil, true), wantRead: source.ErrEmpty, wantSize: -1},
		{name: "404", handler: serveStatus(404, "text/plain", "nope"), wantOpen: source.ErrNotFound,
			wantText: "status 404"},
		{name: "410", handler: serveStatus(410, "text/plain", ""), wantOpen: source.ErrNotFound},
		{name: "401", handler: serveStatus(401, "text/plain", ""), wantOpen: source.ErrForbidden},
		{name: "403 expired presigned", handler: serveStatus(403, "application/xml", expiredXML),
			wantOpen: source.ErrForbidden, wantText: "URL expired or forbidden"},
		{name: "400", handler: serveStatus(400, "application/xml", "<Error><Code>AuthorizationQueryParametersError</Code></Error>"),
			wantOpen: source.ErrBadURL, wantText: "AuthorizationQueryParametersError"},
		{name: "500", handler: serveStatus(500, "text/plain", "boom"), wantOpen: source.ErrTransient},
		{name: "503 slow down", handler: serveStatus(503, "application/xml", "<Error><Code>SlowDown</Code></Error>"),
			wantOpen: source.ErrTransient, wantText: "SlowDown"},
		{name: "429", handler: serveStatus(429, "text/plain", ""), wantOpen: source.ErrTransient},
		{name: "body cut short", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
			buf.Write(pdfBytes(0, 2000))
			buf.Flush()
		}, wantRead: source.ErrTransient, wantSize: 5000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			max := tc.maxBytes
			if max == 0 {
				max = maxBytes
			}
			o, err := source.New(allowing(t, source.Options{MaxBytes: max, HTTPTimeout: 10 * time.Second}, srv.URL))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			obj, err := o.Open(ctx, srv.URL+"/docs/a.pdf"+secretQuery)
			if tc.wantOpen != nil {
				checkErr(t, err, tc.wantOpen, tc.wantText)
				return
			}
			if err != nil {
				t.Fatalf("Open: got error %v, want none", err)
			}
			defer obj.Body.Close()
			if obj.Size != tc.wantSize {
				t.Errorf("got Size %d, want %d", obj.Size, tc.wantSize)
			}
			got, err := io.ReadAll(obj.Body)
			if tc.wantRead != nil {
				checkErr(t, err, tc.wantRead, tc.wantText)
				if _, again := obj.Body.Read(make([]byte, 10)); !errors.Is(again, tc.wantRead) {
					t.Errorf("second read: got %v, want the same %v (sticky)", again, tc.wantRead)
				}
				return
			}
			if err != nil {
				t.Fatalf("read body: got error %v, want none", err)
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Errorf("got %d bytes (prefix %q), want %d bytes (prefix %q)",
					len(got), got[:min(len(got), 16)], len(tc.wantBody), tc.wantBody[:min(len(tc.wantBody), 16)])
			}
		})
	}
}

// allowing returns opts with a guard that lets exactly the hosts (host:port)
// of urls through: the test servers listen on loopback, which the guard
// refuses by default. Dials beyond loopback fail the test (LoopbackOnly).
func allowing(t testing.TB, opts source.Options, urls ...string) source.Options {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			panic(err)
		}
		opts.Guard.AllowHosts = append(opts.Guard.AllowHosts, u.Host)
	}
	return source.LoopbackOnly(t, opts)
}

// checkErr checks the sentinel, Permanent, the text and that nothing
// secret leaked into the text.
func checkErr(t *testing.T, err, want error, wantText string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	wantPermanent := want != source.ErrTransient
	if got := source.Permanent(err); got != wantPermanent {
		t.Errorf("Permanent(%v): got %v, want %v", err, got, wantPermanent)
	}
	msg := err.Error()
	if !strings.Contains(msg, wantText) {
		t.Errorf("error text %q: want it to contain %q", msg, wantText)
	}
	for _, secret := range []string{"SECRET", "X-Amz-Signature", "X-Amz-Credential"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error text %q contains %q", msg, secret)
		}
	}
}

// TestOpenStreams checks Open returns and the first bytes can be read while
// the server is still holding back the rest of the document.
func TestOpenStreams(t *testing.T) {
	first := pdfBytes(0, 8<<10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write([]byte("tail"))
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	o, err := source.New(allowing(t, source.Options{HTTPTimeout: 10 * time.Second}, srv.URL))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obj, err := o.Open(ctx, srv.URL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Body.Close()
	got := make([]byte, len(first))
	if _, err := io.ReadFull(obj.Body, got); err != nil {
		close(release)
		t.Fatalf("read first part while the server holds the rest: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if !bytes.Equal(got, first) || string(rest) != "tail" {
		t.Errorf("got %d bytes + %q, want %d bytes + %q", len(got), rest, len(first), "tail")
	}
}

func TestOpenHTTPFailures(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/a.pdf" + secretQuery
	l.Close()

	hang := make(chan struct{})
	defer close(hang)
	stallHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stallHeaders.Close()
	stallBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(pdfBytes(0, 2048))
		w.(http.Flusher).Flush()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stallBody.Close()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		url      string
		wantOpen error // sentinel, or context.Canceled
		wantRead error
		wantText string
	}{
		{name: "connection refused", url: refused, wantOpen: source.ErrTransient, wantText: "connection refused"},
		{name: "no response headers", url: stallHeaders.URL + secretQuery, wantOpen: source.ErrTransient,
			wantText: "no data from server for 200ms"},
		{name: "body stalls", url: stallBody.URL + secretQuery, wantRead: source.ErrTransient,
			wantText: "no data from server for 200ms"},
		{name: "caller canceled", ctx: canceled, url: stallBody.URL, wantOpen: context.Canceled},
		{name: "unsupported scheme", url: "ftp://host/a.pdf" + secretQuery, wantOpen: source.ErrBadURL,
			wantText: `unsupported scheme "ftp"`},
		{name: "no scheme", url: "host/a.pdf" + secretQuery, wantOpen: source.ErrBadURL},
		{name: "s3 without endpoint", url: "s3://bucket/a.pdf", wantOpen: source.ErrBadURL,
			wantText: "BUCKET_ENDPOINT"},
	}
	o, err := source.New(allowing(t, source.Options{HTTPTimeout: 200 * time.Millisecond},
		refused, stallHeaders.URL, stallBody.URL))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				ctx = c
			}
			obj, err := o.Open(ctx, tc.url)
			if tc.wantOpen == context.Canceled {
				if !errors.Is(err, context.Canceled) || source.Permanent(err) || errors.Is(err, source.ErrTransient) {
					t.Fatalf("got %v (permanent %v), want context.Canceled, neither permanent nor transient",
						err, source.Permanent(err))
				}
				return
			}
			if tc.wantOpen != nil {
				checkErr(t, err, tc.wantOpen, tc.wantText)
				return
			}
			if err != nil {
				t.Fatalf("Open: got %v, want no error", err)
			}
			defer obj.Body.Close()
			_, err = io.ReadAll(obj.Body)
			checkErr(t, err, tc.wantRead, tc.wantText)
		})
	}
}

func TestStatusErrorFields(t *testing.T) {
	srv := httptest.NewServer(serveStatus(403, "application/xml", expiredXML))
	defer srv.Close()
	o, err := source.New(allowing(t, source.Options{}, srv.URL))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = o.Open(context.Background(), srv.URL+"/a.pdf"+secretQuery)
	var se *source.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("got %T %v, want *source.StatusError", err, err)
	}
	want := source.StatusError{URL: srv.URL + "/a.pdf?REDACTED", StatusCode: 403, Code: "AccessDenied", Kind: source.ErrForbidden}
	if se.URL != want.URL || se.StatusCode != want.StatusCode || se.Code != want.Code || se.Kind != want.Kind {
		t.Errorf("got %+v, want %+v", *se, want)
	}
	if strings.Contains(err.Error(), "Request has expired") {
		t.Errorf("got error %q: it quotes the server's message", err)
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("other"), false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", source.ErrTransient), false},
		{fmt.Errorf("x: %w", source.ErrNotFound), true},
		{fmt.Errorf("x: %w", source.ErrForbidden), true},
		{fmt.Errorf("x: %w", source.ErrTooLarge), true},
		{fmt.Errorf("x: %w", source.ErrNotPDF), true},
		{fmt.Errorf("x: %w", source.ErrEmpty), true},
		{fmt.Errorf("x: %w", source.ErrBadURL), true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := source.Permanent(tc.err); got != tc.want {
				t.Errorf("Permanent(%v): got %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts source.Options
	}{
		{"negative max", source.Options{MaxBytes: -1}},
		{"negative timeout", source.Options{HTTPTimeout: -time.Second}},
		{"endpoint with path", source.Options{S3: source.S3Config{Endpoint: "http://host:9000/bucket"}}},
		{"endpoint with scheme ftp", source.Options{S3: source.S3Config{Endpoint: "ftp://host:9000"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := source.New(tc.opts); err == nil {
				t.Errorf("New(%+v): got no error, want one", tc.opts)
			}
		})
	}
}
