// Command healthcheck is the probe the container images carry for
// `docker compose` healthchecks: distroless images have no shell, curl or
// wget. It exits 0 when the target answers, 1 otherwise.
//
//	healthcheck                         GET http://127.0.0.1$HEALTH_ADDR/readyz (HEALTH_ADDR default :8080)
//	healthcheck http://HOST:PORT/PATH   GET that URL, healthy on 2xx
//	healthcheck tcp://HOST:PORT         healthy when a TCP connection opens
//
// It uses only the standard library and is built outside the Go workspace
// (see the Dockerfile); Kubernetes uses its own httpGet probes instead.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const timeout = 3 * time.Second

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	target, err := targetURL(args, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch target.Scheme {
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", target.Host)
		if err != nil {
			return fmt.Errorf("dial %s: %w", target.Host, err)
		}
		return conn.Close()
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
		if err != nil {
			return fmt.Errorf("request %s: %w", target, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("get %s: %w", target, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("get %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	default:
		return fmt.Errorf("target %q: want http://, https:// or tcp://", target)
	}
}

// targetURL is the one argument, or the readiness endpoint on HEALTH_ADDR.
func targetURL(args []string, getenv func(string) string) (*url.URL, error) {
	switch len(args) {
	case 0:
		addr := getenv("HEALTH_ADDR")
		if addr == "" {
			addr = ":8080"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("HEALTH_ADDR %q: %w", addr, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/readyz"}, nil
	case 1:
		u, err := url.Parse(args[0])
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", args[0], err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("target %q: no host", args[0])
		}
		return u, nil
	default:
		return nil, fmt.Errorf("want at most one target, got %d", len(args))
	}
}
