package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisStartTimeout bounds how long StartRedis waits for PONG.
const redisStartTimeout = 15 * time.Second

// StartRedis starts a real redis-server on a free loopback port, with no
// persistence (--save "" --appendonly no) and its directory in t.TempDir(),
// waits until it answers PING, and returns its URL, "redis://127.0.0.1:N".
// The server is killed when the test ends. The test fails if redis-server is
// not installed or does not come up.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("REDIS_SERVER_BIN")
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("testenv: %s not found: %v; install Redis (apt-get install redis-server) or set REDIS_SERVER_BIN", bin, err)
	}
	// The free port is found by binding and closing it, so another process
	// can take it before redis-server does: try a few ports.
	const attempts = 3
	var errs []error
	for range attempts {
		url, err := startRedis(t, path)
		if err == nil {
			return url
		}
		errs = append(errs, err)
	}
	t.Fatalf("testenv: start redis-server: %v", errors.Join(errs...))
	return ""
}

func startRedis(t testing.TB, path string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", t.TempDir(),
		"--daemonize", "no",
	)
	out := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	deadline := time.NewTimer(redisStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(addr)
		if err == nil {
			t.Cleanup(stop)
			return "redis://" + addr, nil
		}
		select {
		case werr := <-exited:
			exited <- werr // for stop, should anyone call it
			return "", fmt.Errorf("redis-server on port %d exited (%v) before answering PING; output:\n%s", port, werr, out.String())
		case <-deadline.C:
			stop()
			return "", fmt.Errorf("redis-server on port %d did not answer PING within %v (last: %w); output:\n%s", port, redisStartTimeout, err, out.String())
		case <-tick.C:
		}
	}
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimRight(line, "\r\n"); got != "+PONG" {
		// -LOADING while it starts, for instance.
		return fmt.Errorf("PING answered %q, want +PONG", got)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
