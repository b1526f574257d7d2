package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// fakeGo stands in for the go command in a demo.sh run: `go list` names
// three packages, `go build -v` names them as compiled and writes a fake
// pdfpipe that logs its arguments, checks its files exist and writes a
// chunks file.
const fakeGo = `#!/bin/sh
case "$1" in
list) printf 'example.com/a\nexample.com/b\nexample.com/c\n' ;;
build)
  out=""
  while [ $# -gt 0 ]; do
    [ "$1" = "-o" ] && out="$2"
    shift
  done
  printf 'example.com/a\nexample.com/b\nexample.com/c\n' >&2
  cat > "$out" <<'EOF'
#!/bin/sh
echo "$@" >> "$FAKE_LOG"
if [ "$1" = sample ]; then echo "%PDF-fake" > "$4"; exit 0; fi
shift; shift; out="$1"; shift
for f in "$@"; do
  [ -f "$f" ] || { echo "pdfpipe: $f: no such file" >&2; exit 1; }
done
printf '{"type":"metadata"}\n{"type":"chunk","chunk_index":0,"embedding_vector":[1,2,3,4,5]}\n' > "$out"
EOF
  chmod +x "$out"
  ;;
*) echo "fake go: $*" >&2; exit 2 ;;
esac
`

// demoRepo lays out a copy of scripts/demo.sh in a scratch "repository"
// with the fake go command first on PATH.
func demoRepo(t *testing.T) (repo string, environ []string, logFile string) {
	t.Helper()
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	if err := os.MkdirAll(filepath.Join(repo, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "scripts", "demo.sh"), readFile(t, "scripts/demo.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeBin := filepath.Join(dir, "fakebin")
	if err := os.MkdirAll(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile = filepath.Join(dir, "pdfpipe.log")
	environ = append(os.Environ(), "PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_LOG="+logFile)
	return repo, environ, logFile
}

// TestDemoRelativePathFromOutside: `bash path/to/scripts/demo.sh REL.pdf`
// from outside the repository processes the file the caller named, and
// says how long the first build takes while showing its progress.
func TestDemoRelativePathFromOutside(t *testing.T) {
	repo, environ, logFile := demoRepo(t)
	caller := filepath.Join(filepath.Dir(repo), "elsewhere")
	if err := os.MkdirAll(filepath.Join(caller, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	pdf := filepath.Join(caller, "docs", "a.pdf")
	if err := os.WriteFile(pdf, []byte("%PDF-1.4"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "../repo/scripts/demo.sh", "docs/a.pdf")
	cmd.Dir = caller
	cmd.Env = environ
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo.sh docs/a.pdf from %s: %v\n%s", caller, err, out.String())
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "run -out " + filepath.Join(repo, "bin", "chunks.jsonl") + " " + pdf; strings.TrimSpace(string(log)) != want {
		t.Errorf("pdfpipe got %q, want %q", strings.TrimSpace(string(log)), want)
	}
	for _, want := range []string{"first build on a new machine: 5-12 minutes", "built in", "3 packages compiled", `"chunk_index": 0`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDemoMissingFile: a file that does not exist is named before anything
// is built.
func TestDemoMissingFile(t *testing.T) {
	repo, environ, logFile := demoRepo(t)
	cmd := exec.Command("bash", filepath.Join(repo, "scripts", "demo.sh"), "nope.pdf")
	cmd.Dir = t.TempDir()
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nope.pdf: no such file") {
		t.Errorf("demo.sh nope.pdf: got %v, output:\n%s", err, out)
	}
	if strings.Contains(string(out), "building") {
		t.Errorf("demo.sh built before checking its arguments:\n%s", out)
	}
	if _, err := os.Stat(logFile); err == nil {
		t.Error("pdfpipe ran")
	}
}

// TestComposeSmokeWithoutDocker: where no Docker engine answers, the smoke
// script says so and passes without touching anything; a docker without
// its compose plugin is an error that names the plugin.
func TestComposeSmokeWithoutDocker(t *testing.T) {
	tests := []struct {
		name     string
		docker   string // fake docker script; "" for none on PATH
		wantErr  bool
		wantText string
	}{
		{name: "no docker", wantText: "compose-smoke: no Docker engine: skipped"},
		{name: "engine down", docker: "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n", wantText: "compose-smoke: no Docker engine: skipped"},
		{name: "no compose plugin", docker: "#!/bin/sh\n[ \"$1\" = info ] && exit 0\nexit 1\n", wantErr: true, wantText: "compose plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			// only what the script needs before it looks for docker
			for _, tool := range []string{"bash", "dirname"} {
				p, err := exec.LookPath(tool)
				if err != nil {
					t.Skipf("%s: %v", tool, err)
				}
				if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.docker != "" {
				if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(tc.docker), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(filepath.Join(bin, "bash"), filepath.Join(testenv.RepoRoot(t), "scripts", "compose-smoke.sh"))
			cmd.Env = []string{"PATH=" + bin}
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantErr {
				t.Errorf("got error %v, want error %v\n%s", err, tc.wantErr, out)
			}
			if !strings.Contains(string(out), tc.wantText) {
				t.Errorf("output %q lacks %q", out, tc.wantText)
			}
		})
	}
}
