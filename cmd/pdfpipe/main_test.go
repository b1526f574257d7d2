package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestRunFiles runs the main job as a newcomer does: a generated PDF and a
// broken one through every stage; the good one's chunks and vectors land in
// the JSONL file, the broken one fails with a reason, and the command says so.
func TestRunFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "sample.pdf")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sample", "-pages", "6", good}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("sample: %v\n%s", err, errOut.String())
	}
	broken := filepath.Join(dir, "broken.pdf")
	if err := os.WriteFile(broken, []byte("<html>not a pdf</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonl := filepath.Join(dir, "chunks.jsonl")
	out.Reset()
	errOut.Reset()
	err := run(context.Background(), []string{"run", "-out", jsonl, good, broken},
		env(map[string]string{"TEMP_DIR": dir, "MAX_DELIVER": "2"}), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 documents failed") {
		t.Fatalf("run: got error %v, want 1 of 2 documents failed\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	summary := out.String()
	for _, want := range []string{"sample.pdf  done", "broken.pdf  failed", "fetch:", "PDF"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	f, err := os.Open(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var meta struct {
		Type       string `json:"type"`
		TotalPages int    `json:"total_pages"`
		Estimated  int    `json:"estimated_chunks"`
	}
	var chunks int
	for n := 0; sc.Scan(); n++ {
		if n == 0 {
			if err := json.Unmarshal(sc.Bytes(), &meta); err != nil || meta.Type != "metadata" {
				t.Fatalf("first line is not the metadata: %v %s", err, sc.Text()[:min(200, len(sc.Text()))])
			}
			continue
		}
		var c struct {
			Type   string    `json:"type"`
			Index  int       `json:"chunk_index"`
			Text   string    `json:"chunk_text"`
			Vector []float32 `json:"embedding_vector"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Type != "chunk" || c.Index != chunks || len(c.Vector) != 384 || c.Text == "" {
			t.Fatalf("line %d: type %s index %d (want %d), %d floats, text %q", n, c.Type, c.Index, chunks, len(c.Vector), c.Text)
		}
		chunks++
	}
	if meta.TotalPages != 6 || chunks == 0 || chunks != meta.Estimated {
		t.Errorf("metadata says %d pages, %d chunks; file has %d chunks", meta.TotalPages, meta.Estimated, chunks)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"run"}, {"run", "/does/not/exist.pdf"}, {"status"}, {"sample"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, env(nil), &out, &errOut); err == nil {
			t.Errorf("pdfpipe %v: no error", args)
		}
	}
}

// TestRunPasswordFile: an encrypted PDF fails without -password-file and
// is processed with it.
func TestRunPasswordFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.pdf")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sample", "-pages", "3", plain}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("sample: %v\n%s", err, errOut.String())
	}
	enc := filepath.Join(dir, "secret.pdf")
	if err := os.Rename(testenv.EncryptPDF(t, plain, "aes-256", "Run-Pass-9", "owner"), enc); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "pass.txt")
	if err := os.WriteFile(passFile, []byte("Run-Pass-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := env(map[string]string{"TEMP_DIR": dir, "MAX_DELIVER": "2", "PDF_PASSWORD_WAIT": "0s"})

	out.Reset()
	errOut.Reset()
	err := run(context.Background(), []string{"run", "-out", filepath.Join(dir, "a.jsonl"), enc}, environ, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "password required") {
		t.Fatalf("without a password: got %v, want the task failed for its password\n%s", err, out.String())
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"run", "-password-file", passFile, "-out", filepath.Join(dir, "b.jsonl"), enc}, environ, &out, &errOut); err != nil {
		t.Fatalf("with the password: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "secret.pdf  done") {
		t.Errorf("summary:\n%s", out.String())
	}
	if strings.Contains(out.String()+errOut.String(), "Run-Pass-9") {
		t.Error("the password appears in the output")
	}
}

// A -store kept between runs opens again: without PDFPIPE_SECRET_KEY the
// run's own key seals secrets but does not encrypt a store that outlives it.
func TestRunKeptStoreOpensAgain(t *testing.T) {
	dir := t.TempDir()
	pdf := filepath.Join(dir, "sample.pdf")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sample", "-pages", "3", pdf}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("sample: %v\n%s", err, errOut.String())
	}
	store := filepath.Join(dir, "store")
	for i := range 2 {
		out.Reset()
		errOut.Reset()
		err := run(context.Background(), []string{"run", "-store", store, "-out", filepath.Join(dir, fmt.Sprintf("c%d.jsonl", i)), pdf},
			env(map[string]string{"TEMP_DIR": dir}), &out, &errOut)
		if err != nil {
			t.Fatalf("run %d with the kept store: %v\nstderr:\n%s", i+1, err, errOut.String())
		}
	}
}
