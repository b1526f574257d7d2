package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

func TestStartRedis(t *testing.T) {
	url := StartRedis(t)
	addr, ok := strings.CutPrefix(url, "redis://")
	if !ok {
		t.Fatalf("got URL %q, want redis://host:port", url)
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("got address %q (%v), want 127.0.0.1:port", addr, err)
	}

	// A real server: SET then GET over RESP.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for range 3 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
	if got, want := strings.Join(lines, " "), "+OK $5 hello"; got != want {
		t.Errorf("SET/GET: got %q, want %q", got, want)
	}
}

func TestStartRedisTwiceGivesTwoServers(t *testing.T) {
	a, b := StartRedis(t), StartRedis(t)
	if a == b {
		t.Errorf("got the same URL %q twice, want two servers", a)
	}
}

func TestStartRedisStopsAtCleanup(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		addr = strings.TrimPrefix(StartRedis(t), "redis://")
		if err := ping(addr); err != nil {
			t.Fatalf("ping while running: %v", err)
		}
	})
	if err := ping(addr); err == nil {
		t.Errorf("ping after the subtest's cleanup: got PONG, want the server gone")
	}
}

func TestCheckFor(t *testing.T) {
	calls := 0
	CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("got %d calls, want 3", calls)
	}
}

func TestCheckForTimesOut(t *testing.T) {
	ft := &fatalTB{TB: t}
	start := time.Now()
	CheckFor(ft, 50*time.Millisecond, 5*time.Millisecond, func() error { return errors.New("never") })
	if !ft.failed || !strings.Contains(ft.msg, "never") {
		t.Errorf("got failed=%v msg=%q, want a failure carrying the last error", ft.failed, ft.msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("CheckFor took %v, want about 50ms", d)
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

func TestEncryptPDF(t *testing.T) {
	src := filepath.Join(t.TempDir(), "plain.pdf")
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, pdfgen.Sample(2)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(EncryptPDF(t, src, "aes-256", "u", "o"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("%PDF-")) || !bytes.Contains(out, []byte("/Encrypt")) {
		t.Errorf("output is not an encrypted PDF (%d bytes)", len(out))
	}
}
