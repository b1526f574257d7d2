package gateway_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/gateway"
)

// HTTP/2 frame types and flags used below (RFC 9113, section 6).
const (
	frameSettings = 0x4
	framePing     = 0x6
	frameGoAway   = 0x7
	flagAck       = 0x1
)

type frame struct {
	typ, flags byte
	payload    []byte
}

// h2conn is a bare HTTP/2 client connection: it sends exactly the PING
// frames a test asks for, at the moments it chooses, which a gRPC client
// (whose keepalive interval cannot go below 10 s) cannot do.
type h2conn struct {
	t      *testing.T
	conn   net.Conn
	frames chan frame
}

func dialH2(t *testing.T, addr string) *h2conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &h2conn{t: t, conn: conn, frames: make(chan frame, 64)}
	go c.read()
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.write(frameSettings, 0, nil)
	// The server's SETTINGS come first; acknowledge them.
	c.expect(func(f frame) bool { return f.typ == frameSettings && f.flags&flagAck == 0 })
	c.write(frameSettings, flagAck, nil)
	return c
}

func (c *h2conn) read() {
	defer close(c.frames)
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(c.conn, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		p := make([]byte, n)
		if _, err := io.ReadFull(c.conn, p); err != nil {
			return
		}
		c.frames <- frame{typ: hdr[3], flags: hdr[4], payload: p}
	}
}

func (c *h2conn) write(typ, flags byte, payload []byte) {
	c.t.Helper()
	hdr := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	if _, err := c.conn.Write(append(hdr, payload...)); err != nil {
		c.t.Fatalf("write frame type %d: %v", typ, err)
	}
}

// errGoAway is returned by expect when the server sent GOAWAY.
var errGoAway = errors.New("server sent GOAWAY")

// expect reads frames until match accepts one. A GOAWAY, a closed
// connection or 5 s of silence is an error.
func (c *h2conn) expect(match func(frame) bool) error {
	c.t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return errors.New("connection closed")
			}
			if f.typ == frameGoAway {
				debug := ""
				if len(f.payload) > 8 {
					debug = string(f.payload[8:])
				}
				return fmt.Errorf("%w (%q)", errGoAway, debug)
			}
			if match(f) {
				return nil
			}
		case <-timeout.C:
			return errors.New("no answer within 5s")
		}
	}
}

// ping sends PING n and waits for its ACK.
func (c *h2conn) ping(n uint64) error {
	c.t.Helper()
	data := binary.BigEndian.AppendUint64(nil, n)
	c.write(framePing, 0, data)
	return c.expect(func(f frame) bool {
		return f.typ == framePing && f.flags&flagAck != 0 && string(f.payload) == string(data)
	})
}

// sync sends SETTINGS and waits for the ACK: the server handles frames in
// order and queues its answers in order, so a GOAWAY provoked by an
// earlier frame arrives before this ACK.
func (c *h2conn) sync() error {
	c.t.Helper()
	c.write(frameSettings, 0, nil)
	return c.expect(func(f frame) bool { return f.typ == frameSettings && f.flags&flagAck != 0 })
}

func serveRealPorts(t *testing.T) (keyAddr, embAddr string) {
	t.Helper()
	h := newHarness(t, nil)
	keyLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	embLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, h.gw.KeyServer(), h.gw.EmbeddingServer(), keyLis, embLis) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return keyLis.Addr().String(), embLis.Addr().String()
}

// The backend pings every 10 s, also with no call open. gRPC's default
// server policy (pings no closer than 5 min, none without a stream) gives a
// strike for each such ping and closes the connection with GOAWAY
// "too_many_pings" at the third. Here the client spends two strikes at
// once with fast pings, then sends one ping 10 s later with no stream
// open: a server that does not permit it answers GOAWAY.
func TestKeepalivePingEvery10sWithoutStream(t *testing.T) {
	t.Parallel()
	keyAddr, embAddr := serveRealPorts(t)
	ports := []struct {
		name string
		c    *h2conn
	}{{"embedding port", dialH2(t, embAddr)}, {"api key port", dialH2(t, keyAddr)}}
	for _, p := range ports {
		for n := uint64(1); n <= 3; n++ { // the first is free, then two strikes
			if err := p.c.ping(n); err != nil {
				t.Fatalf("%s: ping %d: %v", p.name, n, err)
			}
		}
	}
	// The backend's keepalive interval is the point of this test: there is
	// nothing to poll for, time itself must pass. Both ports share the wait.
	time.Sleep(10*time.Second + 200*time.Millisecond)
	for _, p := range ports {
		if err := p.c.ping(4); err != nil {
			t.Errorf("%s: ping 10 s after the last: %v; want it permitted", p.name, err)
			continue
		}
		if err := p.c.sync(); err != nil {
			t.Errorf("%s: after the 10 s ping: %v; want the connection kept", p.name, err)
		}
	}
}

// Pings are still limited: a client that floods them is sent away. This
// also shows the test above can see a GOAWAY.
func TestKeepalivePingFloodRefused(t *testing.T) {
	t.Parallel()
	_, embAddr := serveRealPorts(t)
	c := dialH2(t, embAddr)
	var err error
	for n := uint64(1); n <= 10 && err == nil; n++ {
		if err = c.ping(n); err == nil {
			err = c.sync()
		}
	}
	if !errors.Is(err, errGoAway) {
		t.Fatalf("10 pings at once: got %v, want GOAWAY", err)
	}
}
