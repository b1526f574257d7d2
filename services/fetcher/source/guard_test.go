package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
)

// fakeDNS answers lookups from a table; other names do not exist.
type fakeDNS struct {
	mu    sync.Mutex
	names map[string][]string
	asked map[string]int
}

func newFakeDNS(names map[string][]string) *fakeDNS {
	return &fakeDNS{names: names, asked: map[string]int{}}
}

func (r *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked[host]++
	addrs, ok := r.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (r *fakeDNS) lookups(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked[host]
}

// target is a loopback server that must never be reached: it counts the
// connections it accepts.
type target struct {
	*httptest.Server
	conns atomic.Int64
}

func newTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	tg.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(pdfBytes(0, 2000))
	}))
	tg.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tg.conns.Add(1)
		}
	}
	tg.Start()
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) port() string {
	_, p, _ := net.SplitHostPort(tg.Listener.Addr().String())
	return p
}

// TestGuardRefuses opens URLs naming loopback, private, link-local,
// metadata, multicast and reserved addresses in every spelling; each is
// refused at once, permanently, with the rule in the reason, and the
// loopback server behind the loopback spellings is never connected to.
func TestGuardRefuses(t *testing.T) {
	tg := newTarget(t)
	p := tg.port()
	dns := newFakeDNS(map[string][]string{
		"internal.test":    {"127.0.0.1"},
		"rebind.test":      {"192.168.1.20"},
		"mixed.test":       {"8.8.8.8", "10.0.0.7"},
		"v6internal.test":  {"::1"},
		"mapped.test":      {"::ffff:169.254.169.254"},
		"metadata.test":    {"169.254.169.254"},
		"metadata6.test":   {"fd00:ec2::254"},
		"nat64local.test":  {"64:ff9b::7f00:1"},
		"sixtofour.test":   {"2002:c0a8:0101::1"},
		"cgnat.test":       {"100.100.100.200"},
		"multicast6.test":  {"ff02::1"},
		"unspecified.test": {"0.0.0.0"},
	})
	tests := []struct {
		url      string
		wantRule string
	}{
		{"http://127.0.0.1:" + p + "/a.pdf", "127.0.0.1 is loopback (set FETCH_ALLOW_CIDRS to allow)"},
		{"http://127.8.9.10:" + p + "/", "loopback"},
		{"http://[::1]:" + p + "/", "::1 is loopback"},
		{"http://[::ffff:127.0.0.1]:" + p + "/", "loopback"},
		{"http://[::ffff:7f00:1]:" + p + "/", "loopback"},
		{"http://[0:0:0:0:0:ffff:127.0.0.1]:" + p + "/", "loopback"},
		{"http://2130706433:" + p + "/", "non-canonical IPv4 form (decimal, octal or hex) of 127.0.0.1, loopback"},
		{"http://0177.0.0.1:" + p + "/", "non-canonical IPv4 form (decimal, octal or hex) of 127.0.0.1, loopback"},
		{"http://0x7f.1:" + p + "/", "of 127.0.0.1, loopback"},
		{"http://0x7f000001:" + p + "/", "of 127.0.0.1, loopback"},
		{"http://017700000001:" + p + "/", "of 127.0.0.1, loopback"},
		{"http://127.1:" + p + "/", "of 127.0.0.1, loopback"},
		{"http://0:" + p + "/", "of 0.0.0.0, unspecified"},
		{"http://0x08080808:" + p + "/", "non-canonical IPv4 form"}, // public, still ambiguous
		{"http://1.2.3.0x:" + p + "/", "non-canonical IPv4 form"},
		{"http://host.123:" + p + "/", "malformed numeric address"},
		{"http://localhost:" + p + "/", "localhost is a loopback name (set FETCH_ALLOW_HOSTS to allow)"},
		{"http://LOCALHOST.:" + p + "/", "localhost is a loopback name"},
		{"http://api.localhost:" + p + "/", "loopback name"},
		{"http://internal.test:" + p + "/", "internal.test resolves to 127.0.0.1, which is loopback (set FETCH_ALLOW_HOSTS or FETCH_ALLOW_CIDRS to allow)"},
		{"http://v6internal.test:" + p + "/", "resolves to ::1, which is loopback"},
		{"http://rebind.test/", "resolves to 192.168.1.20, which is private (RFC 1918)"},
		{"http://mixed.test/", "resolves to 10.0.0.7, which is private"},
		{"http://mapped.test/", "resolves to 169.254.169.254, which is link-local (cloud metadata)"},
		{"http://metadata.test/latest/meta-data/", "link-local (cloud metadata)"},
		{"http://metadata6.test/", "unique-local (cloud metadata)"},
		{"http://nat64local.test/", "NAT64 address of 127.0.0.1, loopback"},
		{"http://sixtofour.test/", "6to4 address of 192.168.1.1, private (RFC 1918)"},
		{"http://cgnat.test/", "carrier-grade NAT"},
		{"http://multicast6.test/", "multicast"},
		{"http://unspecified.test/", "unspecified"},
		{"http://10.1.2.3/", "10.1.2.3 is private (RFC 1918)"},
		{"http://172.16.0.1/", "private (RFC 1918)"},
		{"http://172.31.255.255/", "private (RFC 1918)"},
		{"http://192.168.0.1/", "private (RFC 1918)"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local (cloud metadata)"},
		{"http://169.254.10.1/", "link-local"},
		{"http://[fd00:ec2::254]/", "unique-local (cloud metadata)"},
		{"http://[fc00::1]/", "unique-local"},
		{"http://[fd12:3456::1]/", "unique-local"},
		{"http://[fe80::1%25eth0]/", "link-local"},
		{"http://[fe80::1]/", "link-local"},
		{"http://100.64.0.1/", "carrier-grade NAT"},
		{"http://100.127.255.254/", "carrier-grade NAT"},
		{"http://224.0.0.1/", "multicast"},
		{"http://239.255.255.250/", "multicast"},
		{"http://[ff02::1]/", "multicast"},
		{"http://0.0.0.0:" + p + "/", "unspecified"},
		{"http://[::]:" + p + "/", "unspecified"},
		{"http://255.255.255.255/", "broadcast"},
		{"http://240.0.0.1/", "reserved"},
		{"http://198.18.0.1/", "reserved (benchmarking)"},
		{"http://192.0.2.1/", "reserved (documentation)"},
		{"http://192.0.0.170/", "reserved"},
		{"http://[64:ff9b::7f00:1]:" + p + "/", "NAT64 address of 127.0.0.1, loopback"},
		{"http://[64:ff9b::a00:1]/", "NAT64 address of 10.0.0.1, private"},
		{"http://[64:ff9b:1::1]/", "reserved (local-use NAT64)"},
		{"http://[2002:7f00:1::1]/", "6to4 address of 127.0.0.1, loopback"},
		{"http://[::127.0.0.1]:" + p + "/", "reserved (IPv4-compatible)"},
		{"http://[2001:db8::1]/", "documentation"},
		{"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"},
		{"https://127.0.0.1:" + p + "/", "loopback"},
	}
	o, err := source.New(source.LoopbackOnly(t, source.Options{Guard: source.Guard{Resolver: dns}, HTTPTimeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			obj, err := o.Open(ctx, tc.url+secretQuery)
			if err == nil {
				obj.Body.Close()
				t.Fatalf("Open(%s): got no error, want it refused", tc.url)
			}
			checkErr(t, err, source.ErrRefused, tc.wantRule)
			var re *source.RefusedError
			if !errors.As(err, &re) {
				t.Errorf("got %T, want a *source.RefusedError in the chain", err)
			}
			if !strings.Contains(err.Error(), " refused: ") {
				t.Errorf("error %q: want it to say refused", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusal took %s, want it at once", d)
			}
		})
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the loopback server got %d connections, want 0", n)
	}
}

// TestGuardCheck covers the rules on addresses that are never dialled.
func TestGuardCheck(t *testing.T) {
	g := source.Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	tests := []struct {
		addr string
		want string // "" = allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of a public address
		{"2002:808:808::1", ""},  // 6to4 of a public address
		{"10.20.3.4", ""},        // allowed CIDR
		{"::ffff:10.20.3.4", ""}, // allowed CIDR, mapped
		{"64:ff9b::a14:304", ""}, // allowed CIDR, NAT64
		{"10.21.0.1", "private (RFC 1918)"},
		{"127.0.0.1", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local (cloud metadata)"},
		{"::ffff:169.254.169.254", "link-local (cloud metadata)"},
		{"fd00:ec2::254", "unique-local (cloud metadata)"},
		{"0.0.0.0", "unspecified (this network)"},
		{"::", "unspecified"},
		{"255.255.255.255", "broadcast"},
		{"224.0.0.251", "multicast"},
		{"ff05::2", "multicast"},
		{"100.64.0.0", "carrier-grade NAT (RFC 6598)"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local (deprecated)"},
		{"64:ff9b::c0a8:0101", "NAT64 address of 192.168.1.1, private (RFC 1918)"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			if got := g.Check(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Check(%s): got %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

// redirector is an allowed origin that redirects as its paths say.
func redirector(t *testing.T, routes map[string]string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch to, ok := routes[r.URL.Path]; {
		case r.URL.Path == "/doc.pdf":
			w.Write(pdfBytes(0, 3000))
		case r.URL.Path == "/loop":
			http.Redirect(w, r, "/loop?n="+r.URL.Query().Get("n")+"x", http.StatusFound)
		case ok:
			http.Redirect(w, r, strings.ReplaceAll(to, "SELF", srv.URL), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestGuardRedirects follows redirects from an allowed origin: every hop
// is checked, into loopback (by address, by name, by a DNS name), into
// another scheme, and in a loop, each refused at once as permanent.
func TestGuardRedirects(t *testing.T) {
	tg := newTarget(t)
	p := tg.port()
	inner := "http://127.0.0.1:" + p + "/secret"
	srv := redirector(t, map[string]string{
		"/to-loopback":      inner,
		"/to-localhost":     "http://localhost:" + p + "/secret",
		"/to-mapped":        "http://[::ffff:127.0.0.1]:" + p + "/secret",
		"/to-decimal":       "http://2130706433:" + p + "/secret",
		"/to-name":          "http://internal.test:" + p + "/secret",
		"/to-metadata":      "http://169.254.169.254/latest/meta-data/iam",
		"/chain-1":          "SELF/chain-2",
		"/chain-2":          "SELF/chain-3",
		"/chain-3":          inner,
		"/to-file":          "file:///etc/passwd",
		"/to-gopher":        "gopher://127.0.0.1:" + p + "/",
		"/five-1":           "SELF/five-2",
		"/five-2":           "SELF/five-3",
		"/five-3":           "SELF/five-4",
		"/five-4":           "SELF/five-5",
		"/five-5":           "SELF/doc.pdf",
		"/six":              "SELF/five-1",
		"/to-relative-good": "/doc.pdf",
	})
	dns := newFakeDNS(map[string][]string{"internal.test": {"127.0.0.1"}})
	o, err := source.New(allowing(t, source.Options{Guard: source.Guard{Resolver: dns}, HTTPTimeout: 5 * time.Second}, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		want     error // nil: the document arrives
		wantText string
	}{
		{"/to-loopback", source.ErrRefused, "redirect to http://127.0.0.1:" + p + " refused: 127.0.0.1 is loopback"},
		{"/to-localhost", source.ErrRefused, "localhost is a loopback name"},
		{"/to-mapped", source.ErrRefused, "loopback"},
		{"/to-decimal", source.ErrRefused, "non-canonical IPv4 form"},
		{"/to-name", source.ErrRefused, "internal.test resolves to 127.0.0.1, which is loopback"},
		{"/to-metadata", source.ErrRefused, "cloud metadata"},
		{"/chain-1", source.ErrRefused, "127.0.0.1 is loopback"},
		{"/to-file", source.ErrBadURL, "redirect to a file: URL (only http and https are fetched)"},
		{"/to-gopher", source.ErrBadURL, "redirect to a gopher: URL"},
		{"/loop", source.ErrBadURL, "more than 5 redirects"},
		{"/six", source.ErrBadURL, "more than 5 redirects"},
		{"/five-1", nil, ""},
		{"/to-relative-good", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			obj, err := o.Open(ctx, srv.URL+tc.path+secretQuery)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Open: got %v, want the document", err)
				}
				defer obj.Body.Close()
				if b, err := io.ReadAll(obj.Body); err != nil || len(b) != 3000 {
					t.Fatalf("read: got %d bytes, %v; want 3000, nil", len(b), err)
				}
				return
			}
			if err == nil {
				obj.Body.Close()
				t.Fatalf("Open: got the document, want %v", tc.want)
			}
			checkErr(t, err, tc.want, tc.wantText)
		})
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the loopback server behind the redirects got %d connections, want 0", n)
	}
	if n := dns.lookups("internal.test"); n == 0 {
		t.Errorf("internal.test was never looked up: the hop was not checked after DNS")
	}
}

// TestGuardAllowList: an allowed host:port lets exactly that server
// through, not another port on the same address nor the same port by
// another name; an allowed CIDR lets its range through; an allowed name is
// dialled whatever it resolves to.
func TestGuardAllowList(t *testing.T) {
	a, b := newTarget(t), newTarget(t)
	dns := newFakeDNS(map[string][]string{"minio.internal": {"127.0.0.1"}, "other.internal": {"127.0.0.1"}})
	tests := []struct {
		name  string
		guard source.Guard
		url   string
		want  error
	}{
		{"allowed host:port", source.Guard{AllowHosts: []string{"127.0.0.1:" + a.port()}}, a.URL, nil},
		{"other port refused", source.Guard{AllowHosts: []string{"127.0.0.1:" + a.port()}}, b.URL, source.ErrRefused},
		{"same port, other spelling refused", source.Guard{AllowHosts: []string{"127.0.0.1:" + a.port()}},
			"http://[::ffff:127.0.0.1]:" + a.port(), source.ErrRefused},
		{"allowed name", source.Guard{AllowHosts: []string{"MINIO.internal:" + a.port()}, Resolver: dns},
			"http://minio.internal:" + a.port(), nil},
		{"allowed name, other name refused", source.Guard{AllowHosts: []string{"minio.internal"}, Resolver: dns},
			"http://other.internal:" + a.port(), source.ErrRefused},
		{"wildcard name", source.Guard{AllowHosts: []string{"*.internal"}, Resolver: dns},
			"http://other.internal:" + b.port(), nil},
		{"allowed CIDR", source.Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, b.URL, nil},
		{"allowed CIDR, name resolving into it", source.Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Resolver: dns},
			"http://other.internal:" + b.port(), nil},
		{"CIDR of another range", source.Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, b.URL, source.ErrRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := source.New(source.LoopbackOnly(t, source.Options{Guard: tc.guard, HTTPTimeout: 5 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			obj, err := o.Open(ctx, tc.url)
			if tc.want != nil {
				if err == nil {
					obj.Body.Close()
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want the document", err)
			}
			defer obj.Body.Close()
			if _, err := io.ReadAll(obj.Body); err != nil {
				t.Fatalf("read: %v", err)
			}
		})
	}
}

// TestGuardIgnoresProxy: a proxy from the environment would connect on
// the fetcher's behalf, past the guard; it is not used, even when its own
// address is allowed. (net/http reads the proxy variables once per
// process: run alone, this test fails if the transport used them.)
func TestGuardIgnoresProxy(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.Write(pdfBytes(0, 2000))
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	o, err := source.New(allowing(t, source.Options{HTTPTimeout: 5 * time.Second}, proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Open(context.Background(), "http://10.9.8.7/doc.pdf")
	if !errors.Is(err, source.ErrRefused) {
		t.Errorf("got %v, want refused", err)
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("the proxy got %d requests, want 0", n)
	}
}

// TestNoRemoteText: what a remote server says — a body, an S3 message,
// an unknown code, a header, a non-HTTP banner, a certificate's names —
// never reaches the error text; the status and a classified cause do.
func TestNoRemoteText(t *testing.T) {
	const secret = "internal-token=s3cr3t host=db.internal:5432"
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "SSH-2.0-OpenSSH_9.6 %s\r\n", secret)
				io.Copy(io.Discard, c)
			}()
		}
	}()
	almostHTTP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer almostHTTP.Close()
	go func() {
		for {
			c, err := almostHTTP.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "HTTX/1.1 %s\r\n\r\n", secret)
				io.Copy(io.Discard, c)
			}()
		}
	}()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(pdfBytes(0, 2000))
	}))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/403":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, secret)
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, secret)
		case "/xml":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<Error><Code>AccessDenied</Code><Message>%s</Message></Error>", secret)
		case "/code":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<Error><Code>%s</Code></Error>", secret)
		case "/html":
			w.Header().Set("Content-Type", "text/html; "+strings.ReplaceAll(secret, " ", ";"))
			io.WriteString(w, "<html>"+secret+"</html>")
		case "/ctype":
			w.Header().Set("Content-Type", "x/"+strings.ReplaceAll(secret, " ", ""))
			io.WriteString(w, "<html>"+secret+"</html>")
		}
	}))
	defer plain.Close()
	tlsPlain := "https://" + plain.Listener.Addr().String() + "/doc.pdf"
	o, err := source.New(allowing(t, source.Options{HTTPTimeout: 5 * time.Second},
		plain.URL, tlsSrv.URL, "http://"+garbage.Addr().String(), "http://"+almostHTTP.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		want     error
		wantText string
		onRead   bool
	}{
		{"403 body", plain.URL + "/403", source.ErrForbidden, "status 403: URL expired or forbidden", false},
		{"500 body", plain.URL + "/500", source.ErrTransient, "status 500: server error", false},
		{"S3 message", plain.URL + "/xml", source.ErrForbidden, "status 403 AccessDenied: URL expired", false},
		{"unknown code", plain.URL + "/code", source.ErrBadURL, "status 400: request rejected", false},
		{"html with a header", plain.URL + "/html", source.ErrNotPDF, "looks like HTML, content-type text/html,", true},
		{"odd content type", plain.URL + "/ctype", source.ErrNotPDF, "looks like HTML, 5", true},
		{"not HTTP", "http://" + garbage.Addr().String() + "/doc.pdf", source.ErrBadURL, "does not speak HTTP", false},
		{"almost HTTP", "http://" + almostHTTP.Addr().String() + "/doc.pdf", source.ErrBadURL, "does not speak HTTP", false},
		{"https to plain HTTP", tlsPlain, source.ErrBadURL, "does not speak TLS", false},
		{"untrusted certificate", tlsSrv.URL + "/doc.pdf", source.ErrBadURL, "TLS certificate", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			obj, err := o.Open(ctx, tc.url)
			if tc.onRead {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer obj.Body.Close()
				_, err = io.ReadAll(obj.Body)
			}
			checkErr(t, err, tc.want, tc.wantText)
			for _, leak := range []string{"s3cr3t", "internal-token", "db.internal", "OpenSSH", "example.com", "Acme"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q quotes the server (%q)", err, leak)
				}
			}
		})
	}
}

// TestSlowServer: a server that drips bytes fails by the rate floor, one
// that is fast enough but never ends by the overall deadline; both as
// transient, well before the stall limit.
func TestSlowServer(t *testing.T) {
	drip := func(every time.Duration, chunk int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Write(pdfBytes(0, 100))
			for {
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(every):
				}
				if _, err := w.Write(make([]byte, chunk)); err != nil {
					return
				}
			}
		}
	}
	slow := httptest.NewServer(drip(20*time.Millisecond, 1))
	defer slow.Close()
	endless := httptest.NewServer(drip(5*time.Millisecond, 16<<10))
	defer endless.Close()
	stallHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stallHeaders.Close()

	tests := []struct {
		name     string
		url      string
		onOpen   bool
		wantText string
	}{
		{"drip", slow.URL, false, "too slow"},
		{"endless", endless.URL, false, "not finished within 1.5s (FETCH_MAX_DURATION)"},
		{"no headers", stallHeaders.URL, true, "too slow: 0 bytes"},
	}
	o, err := source.New(allowing(t, source.Options{
		MaxBytes: 1 << 40, HTTPTimeout: time.Minute, MaxDuration: 1500 * time.Millisecond,
		MinRate: 64 << 10, RateWindow: 300 * time.Millisecond,
	}, slow.URL, endless.URL, stallHeaders.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Far beyond the limits: without them this is what ends the read.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			obj, err := o.Open(ctx, tc.url)
			if !tc.onOpen {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer obj.Body.Close()
				_, err = io.Copy(io.Discard, obj.Body)
			}
			checkErr(t, err, source.ErrTransient, tc.wantText)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failed after %s, want within the limits (1.5s)", d)
			}
		})
	}
}

// rebindDNS answers first with one address, then with another: a name
// that passes the check once and then points inward.
type rebindDNS struct {
	calls         atomic.Int64
	first, second netip.Addr
}

func (r *rebindDNS) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	if r.calls.Add(1) == 1 {
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.second}, nil
}

// TestGuardRebinding: the decision is not cached per name. A name that
// resolved to an allowed address for the first connection and to loopback
// for the next (a redirect to the same name) is refused on the second.
func TestGuardRebinding(t *testing.T) {
	tg := newTarget(t)
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	first := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://rebind.test:"+tg.port()+"/secret", http.StatusFound)
	})}}
	first.Start()
	defer first.Close()
	dns := &rebindDNS{first: netip.MustParseAddr("127.0.0.2"), second: netip.MustParseAddr("127.0.0.1")}
	o, err := source.New(source.LoopbackOnly(t, source.Options{HTTPTimeout: 5 * time.Second, Guard: source.Guard{
		Resolver:   dns,
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, // stands in for a public address
	}}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Open(context.Background(), "http://rebind.test:"+port+"/doc.pdf")
	checkErr(t, err, source.ErrRefused, "rebind.test resolves to 127.0.0.1, which is loopback")
	if n := dns.calls.Load(); n != 2 {
		t.Errorf("got %d lookups, want 2 (one per connection)", n)
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the loopback server got %d connections, want 0", n)
	}
}
