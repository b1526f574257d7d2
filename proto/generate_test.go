package proto_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// versionLine matches the header lines that name the local protoc version,
// e.g. "// \tprotoc        v3.21.12" and "// - protoc             v3.21.12".
// They are ignored: distributions ship different protoc patch releases.
var versionLine = regexp.MustCompile(`(?m)^//.*\sprotoc\s+v[0-9].*$`)

// TestGeneratedCodeIsCurrent regenerates the Go code into a temporary
// directory and fails when it differs from the committed files. Without
// protoc it is skipped, unless CI=true: then generate.sh must install protoc
// and the test fails if it cannot.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skip("protoc not installed (set CI=true to install it and fail instead)")
		}
		t.Logf("protoc not installed; generate.sh will install it: %v", err)
	}

	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "./generate.sh", out)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, output)
	}

	committed := pbFiles(t, ".")
	generated := pbFiles(t, out)
	if len(generated) == 0 {
		t.Fatal("generate.sh produced no .pb.go files")
	}
	if !slices.Equal(committed, generated) {
		t.Fatalf("got committed files %v, want the generated set %v: run make generate", committed, generated)
	}

	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatalf("abs: %v", err)
	}
	for _, name := range generated {
		t.Run(name, func(t *testing.T) {
			want := readFile(t, filepath.Join(out, name))
			got := readFile(t, name)
			for _, dir := range []string{here, out} {
				if bytes.Contains(want, []byte(dir)) {
					t.Errorf("generated %s contains the machine-specific path %q", name, dir)
				}
			}
			if !bytes.Equal(normalize(got), normalize(want)) {
				t.Errorf("committed %s differs from a fresh generation: run make generate\n%s",
					name, firstDifference(normalize(got), normalize(want)))
			}
		})
	}
}

// pbFiles lists the generated files under root, relative to it and sorted.
func pbFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".tools" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".pb.go") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	slices.Sort(files)
	return files
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func normalize(b []byte) []byte {
	return versionLine.ReplaceAll(b, []byte("// protoc <version>"))
}

// firstDifference describes the first line at which got and want differ.
func firstDifference(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  got  %s\n  want %s", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}
