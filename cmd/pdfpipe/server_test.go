package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerAnnounced: every operator command says on stderr which NATS
// server it uses and where that came from, without the password, and
// says plainly when it falls back to the default.
func TestServerAnnounced(t *testing.T) {
	url, _, _ := startPipeline(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, natsURLFile), []byte(url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"tasks"}, {"inspect", "x"}, {"status", "x"}, {"replay", "fetch", "x"}} {
		for _, tc := range []struct {
			name string
			env  map[string]string
			want string
		}{
			{name: "NATS_URL", env: map[string]string{"NATS_URL": url}, want: "pdfpipe: NATS server " + url + " (from NATS_URL)"},
			{name: "nats.url", env: map[string]string{"NATS_STORE_DIR": dir}, want: "pdfpipe: NATS server " + url + " (from " + filepath.Join(dir, natsURLFile) + ")"},
		} {
			t.Run(cmd[0]+" "+tc.name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				err := run(context.Background(), cmd, env(tc.env), &out, &errOut)
				if cmd[0] == "tasks" && err != nil {
					t.Fatalf("tasks: %v\n%s", err, errOut.String())
				}
				if !strings.Contains(errOut.String(), tc.want) {
					t.Errorf("%v: stderr lacks %q:\n%s", cmd, tc.want, errOut.String())
				}
			})
		}
	}

	// Where it came from, without connecting anywhere.
	empty := t.TempDir()
	tests := []struct {
		name     string
		env      map[string]string
		wantURL  string
		want     []string
		wantNone []string
	}{
		{name: "NATS_URL wins", env: map[string]string{"NATS_URL": "nats://u:s3cret@10.0.0.1:4222", "NATS_STORE_DIR": dir},
			wantURL: "nats://u:s3cret@10.0.0.1:4222", want: []string{"(from NATS_URL)", "10.0.0.1:4222"}, wantNone: []string{"s3cret", "DEFAULT"}},
		{name: "file", env: map[string]string{"NATS_STORE_DIR": dir}, wantURL: url, want: []string{filepath.Join(dir, natsURLFile)}},
		{name: "default", env: map[string]string{"NATS_STORE_DIR": empty}, wantURL: defaultNATSURL,
			want: []string{"DEFAULT nats://127.0.0.1:4222", "may be another pipeline's server", "set NATS_URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, from := natsURLSource(env(tc.env))
			if u != tc.wantURL {
				t.Errorf("url: got %q, want %q", u, tc.wantURL)
			}
			var errOut bytes.Buffer
			announceServer(&errOut, u, from)
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("announcement lacks %q: %s", w, errOut.String())
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(errOut.String(), w) {
					t.Errorf("announcement has %q: %s", w, errOut.String())
				}
			}
		})
	}
}
