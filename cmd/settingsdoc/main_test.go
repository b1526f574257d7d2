package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
)

// TestWriteThenCheck: -check refuses a stale table and leaves the file
// alone; without it the table is written, after which -check passes and
// the text around the table is kept.
func TestWriteThenCheck(t *testing.T) {
	readme := filepath.Join(t.TempDir(), "README.md")
	stale := "# Title\n\nbefore\n" + catalog.BeginTable + "\n| variable | default | used by | meaning |\n|---|---|---|---|\n| `OLD` | `1` | gateway | gone |\n" +
		catalog.EndTable + "\nafter\n"
	if err := os.WriteFile(readme, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run([]string{"-check", "-readme", readme}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("-check on a stale table: got %v, want an error saying it differs", err)
	}
	if b, _ := os.ReadFile(readme); string(b) != stale {
		t.Fatal("-check changed the file")
	}
	if err := run([]string{"-readme", readme}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	got := string(b)
	for _, want := range []string{"# Title\n\nbefore\n" + catalog.BeginTable + "\n| variable |", "| `NATS_URL` |", catalog.EndTable + "\nafter\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("written README lacks %q", want)
		}
	}
	if strings.Contains(got, "`OLD`") {
		t.Error("the stale row survived")
	}
	if err := run([]string{"-check", "-readme", readme}, &out, &errOut); err != nil {
		t.Errorf("-check after writing: %v", err)
	}
}
