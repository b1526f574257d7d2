package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// versitygwModule is the pinned S3 gateway installed when no binary is found.
const versitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3 is a running S3-compatible server for tests.
type S3 struct {
	// Endpoint is host:port (plain http), as minio-go's New wants it.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
}

// StartS3 starts a real S3 gateway (versitygw in posix mode over
// t.TempDir()) on a free loopback port and waits until the port accepts
// connections. The server has no buckets: create them with the client
// (MakeBucket). t.Cleanup stops it.
//
// The binary is looked up on PATH, then in $(go env GOPATH)/bin; if it is in
// neither, StartS3 runs `go install` for the pinned version (minutes, needs
// the module proxy) and fails the test if that fails.
func StartS3(t testing.TB) S3 {
	t.Helper()
	bin := versitygwBinary(t)
	dir := t.TempDir()
	s := S3{AccessKey: "test" + s3RandomHex(t, 8), SecretKey: s3RandomHex(t, 20)}

	// The free port can be taken between probing and binding: retry.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := s3FreeAddr()
		if err != nil {
			t.Fatalf("testenv: S3: find a free port: %v", err)
		}
		if err := startVersitygw(t, bin, addr, dir, s); err != nil {
			lastErr = err
			continue
		}
		s.Endpoint = addr
		return s
	}
	t.Fatalf("testenv: S3: %v", lastErr)
	return S3{}
}

// startVersitygw runs the gateway and waits for its port. On success the
// process is stopped by t.Cleanup; on error it has already exited.
func startVersitygw(t testing.TB, bin, addr, dir string, s S3) error {
	out := &s3LogTail{max: 64 << 10}
	cmd := exec.Command(bin, "--quiet", "--port", addr, "posix", dir)
	cmd.Env = append(s3CleanEnv(),
		"ROOT_ACCESS_KEY="+s.AccessKey,
		"ROOT_SECRET_KEY="+s.SecretKey,
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	// Ready when the port answers HTTP as versitygw (another process could
	// have taken the port in the meantime).
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := probe.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if strings.Contains(resp.Header.Get("Server"), "VERSITYGW") {
				break
			}
			stop()
			return fmt.Errorf("%s answers, but not as versitygw (Server %q)", addr, resp.Header.Get("Server"))
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw on %s did not answer within 30s: %v; output:\n%s", addr, err, out)
		}
		select {
		case err := <-exited:
			exited <- err // stop() reads it again
			return fmt.Errorf("versitygw on %s exited (%v); output:\n%s", addr, err, out)
		case <-time.After(20 * time.Millisecond): // poll interval, bounded by deadline
		}
	}
	probe.CloseIdleConnections()
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("testenv: versitygw output:\n%s", out)
		}
	})
	return nil
}

// versitygwBinary finds the gateway or installs the pinned version.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("testenv: S3: versitygw not on PATH and `go env GOPATH` failed: %v", err)
	}
	var candidates []string
	for _, p := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
		candidates = append(candidates, filepath.Join(p, "bin", "versitygw"))
	}
	gobin, _ := exec.Command("go", "env", "GOBIN").Output()
	if b := strings.TrimSpace(string(gobin)); b != "" {
		candidates = append([]string{filepath.Join(b, "versitygw")}, candidates...)
	}
	find := func() string {
		for _, c := range candidates {
			if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return c
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	t.Logf("testenv: versitygw not found; running go install %s (takes a few minutes)", versitygwModule)
	cmd := exec.Command("go", "install", versitygwModule)
	cmd.Dir = t.TempDir() // outside any module or workspace
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: S3: versitygw is not on PATH or in GOPATH/bin, and `go install %s` failed: %v\n%s\n"+
			"install it by hand and put it on PATH", versitygwModule, err, out)
	}
	if p := find(); p != "" {
		return p
	}
	t.Fatalf("testenv: S3: `go install %s` succeeded but no binary in %v", versitygwModule, candidates)
	return ""
}

// s3CleanEnv is the environment without settings that would reconfigure the
// gateway (VGW_*, ROOT_*).
func s3CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// s3FreeAddr returns a loopback address with a port that was just free.
func s3FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func s3RandomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// s3LogTail keeps the last max bytes written to it.
type s3LogTail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (l *s3LogTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - l.max; over > 0 {
		l.buf = append(l.buf[:0:0], l.buf[over:]...)
	}
	return len(p), nil
}

func (l *s3LogTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.TrimSpace(l.buf))
}
