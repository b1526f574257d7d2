package source

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"
)

// DefaultMaxRedirects is how many redirects a download may follow.
const DefaultMaxRedirects = 5

// maxHeaderBytes bounds a response's headers.
const maxHeaderBytes = 64 << 10

// errNotHTTP is returned by a connection's first read when the server's
// first bytes are neither an HTTP status line nor a TLS record.
var errNotHTTP = errors.New("the server does not speak HTTP")

// newHTTPClient returns the client for http and https URLs: every
// connection through the guard's dialer, proxies from the environment
// ignored (a proxy would connect on our behalf, past the guard), at most
// maxRedirects redirects, and only to http or https.
func newHTTPClient(g *Guard, maxRedirects int, beforeDial func(netip.AddrPort) error) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = newDialer(g, beforeDial).DialContext
	t.MaxResponseHeaderBytes = maxHeaderBytes
	t.ResponseHeaderTimeout = 0 // the caller's watchdog bounds the wait
	t.IdleConnTimeout = 30 * time.Second
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if s := req.URL.Scheme; s != "http" && s != "https" {
				return &redirectError{reason: fmt.Sprintf("redirect to a %s: URL (only http and https are fetched)", s)}
			}
			if len(via) > maxRedirects {
				return &redirectError{reason: fmt.Sprintf("more than %d redirects (a redirect loop?)", maxRedirects)}
			}
			return nil
		},
	}
}

// redirectError is a redirect not followed. Permanent (ErrBadURL).
type redirectError struct{ reason string }

func (e *redirectError) Error() string { return e.reason + ": " + ErrBadURL.Error() }
func (e *redirectError) Unwrap() error { return ErrBadURL }

// errNotTLS is returned by a TLS connection's first read when the server's
// first bytes are not a TLS record.
var errNotTLS = errors.New("the server does not speak TLS")

// wrapConn checks the first bytes the server sends: after a TLS
// ClientHello a TLS record (handshake or alert), else an HTTP status line
// ("HTTP/"). Anything else fails the read with errNotTLS or errNotHTTP, so a
// request to an SSH, Redis or NATS port, or https to a plain HTTP server,
// fails at once as permanent instead of as a retried "malformed response"
// (whose text would quote the server).
func wrapConn(c net.Conn) net.Conn {
	if c == nil {
		return nil
	}
	return &sniffConn{Conn: c}
}

type sniffConn struct {
	net.Conn
	// tls: the client's first byte opened a TLS handshake record. Written
	// by the writer, read by the reader (the http transport's two loops).
	tls   atomic.Bool
	wrote atomic.Bool
	seen  int // bytes of the reply checked so far (reader only)
	bad   error
}

func (c *sniffConn) Write(p []byte) (int, error) {
	if len(p) > 0 && !c.wrote.Load() {
		c.tls.Store(p[0] == 0x16)
		c.wrote.Store(true)
	}
	return c.Conn.Write(p)
}

func (c *sniffConn) Read(p []byte) (int, error) {
	if c.bad != nil {
		return 0, c.bad
	}
	n, err := c.Conn.Read(p)
	tls := c.tls.Load()
	const status = "HTTP/"
	for i := 0; i < n && c.seen < len(status); i++ {
		b := p[i]
		switch {
		case tls && (b == 0x16 || b == 0x15): // handshake or alert: TLS judges the rest
			c.seen = len(status)
		case tls:
			c.bad = errNotTLS
		case b == status[c.seen]:
			c.seen++
		default:
			c.bad = errNotHTTP
		}
		if c.bad != nil {
			return 0, c.bad
		}
	}
	return n, err
}
