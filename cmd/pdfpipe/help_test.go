package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// TestHelpExitsZero: asking for help is no failure, and the usage names
// every flag a newcomer needs.
func TestHelpExitsZero(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stdout+stderr
	}{
		{args: []string{"-h"}, want: []string{"-out", "-password-file", "-store", "pdfpipe sample"}},
		{args: []string{"help"}, want: []string{"-password-file", "-store"}},
		{args: []string{"run", "-h"}, want: []string{"usage: pdfpipe run", "FILE.pdf", "-out", "-password-file", "-store"}},
		{args: []string{"run", "-help"}, want: []string{"-password-file", "-store"}},
		{args: []string{"up", "-h"}},
		{args: []string{"sample", "-h"}, want: []string{"-pages"}},
		{args: []string{"tasks", "-h"}, want: []string{"-failed", "-running", "-done", "-cancelled", "-limit", "-json"}},
		{args: []string{"cancel", "-h"}, want: []string{"-reason", "-timeout", "-no-wait"}},
		{args: []string{"inspect", "-h"}, want: []string{"-all"}},
		{args: []string{"status", "-h"}, want: []string{"-watch"}},
		{args: []string{"-h"}, want: []string{"pdfpipe tasks", "pdfpipe inspect", "status [--watch]", "pdfpipe cancel", "--cancelled"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), tc.args, env(nil), &out, &errOut); err != nil {
				t.Fatalf("pdfpipe %v: got error %v, want none (exit 0)", tc.args, err)
			}
			got := out.String() + errOut.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("pdfpipe %v: usage lacks %q:\n%s", tc.args, w, got)
				}
			}
		})
	}
	// A wrong flag is still an error.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"run", "-nope"}, env(nil), &out, &errOut); err == nil {
		t.Error("pdfpipe run -nope: no error")
	}
}

// TestRunFailureLeavesNoOutputFile: a run in which every document failed
// has stored nothing and leaves no empty -out file behind.
func TestRunFailureLeavesNoOutputFile(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.pdf")
	if err := os.WriteFile(broken, []byte("<html>not a pdf</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonl := filepath.Join(dir, "chunks.jsonl")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"run", "-out", jsonl, broken},
		env(map[string]string{"TEMP_DIR": dir, "MAX_DELIVER": "2"}), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 documents failed") {
		t.Fatalf("run: got %v, want 1 of 1 documents failed\n%s\n%s", err, out.String(), errOut.String())
	}
	if _, err := os.Stat(jsonl); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output file after a failed run: stat says %v, want it absent", err)
	}
}

// TestHelpListsSettings: each command's -h lists every environment
// variable it reads (package catalog) with its default, even when the
// environment is bad, and prints no value from the environment.
func TestHelpListsSettings(t *testing.T) {
	environ := env(map[string]string{
		"NATS_URL": "nats://svc:natspw@n1:4222", "NATS_PASSWORD": "natspw", "PDFPIPE_SECRET_KEY": "keykeykey",
		"EMBEDDING_API_KEY": "sk-hush", "REDIS_URL": "redis://:redispw@r:6379/0", "MAX_DELIVER": "many",
	})
	for cmd, bin := range map[string]envconf.Binary{
		"run": catalog.Run, "up": catalog.Up, "status": catalog.CLI, "tasks": catalog.CLI, "inspect": catalog.CLI, "replay": catalog.CLI,
	} {
		t.Run(cmd, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), []string{cmd, "-h"}, environ, &out, &errOut); err != nil {
				t.Fatalf("pdfpipe %s -h: %v", cmd, err)
			}
			got := out.String() + errOut.String()
			for _, s := range bin.Settings {
				if !strings.Contains(got, envconf.HelpLine(s)+"\n") {
					t.Errorf("pdfpipe %s -h lacks %q", cmd, envconf.HelpLine(s))
				}
			}
			for _, secret := range []string{"natspw", "keykeykey", "sk-hush", "redispw", "many"} {
				if strings.Contains(got, secret) {
					t.Errorf("pdfpipe %s -h prints %q from the environment", cmd, secret)
				}
			}
		})
	}
}
