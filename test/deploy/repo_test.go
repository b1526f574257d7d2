package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readmeEnv returns the variables of the README's configuration table
// (every `NAME` in a row's first cell), mapped to the row's "used by" cell.
func readmeEnv(t testing.TB) map[string]string {
	t.Helper()
	return parseEnvTable(t, readFile(t, "README.md"))
}

var envName = regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")

func parseEnvTable(t testing.TB, readme []byte) map[string]string {
	t.Helper()
	vars := map[string]string{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "| variable |") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(vars) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		for _, m := range envName.FindAllStringSubmatch(cells[1], -1) {
			vars[m[1]] = strings.TrimSpace(cells[3])
		}
	}
	if len(vars) < 20 {
		t.Fatalf("found %d variables in the README's configuration table; is its header still `| variable |`?", len(vars))
	}
	return vars
}

// dockerTarget is one build stage of the Dockerfile.
type dockerTarget struct {
	Binary string   // the ENTRYPOINT's base name
	Expose []string // EXPOSE ports
	Env    map[string]string
}

// dockerfileTargets parses the Dockerfile's stages: FROM … AS name, ENV,
// EXPOSE and ENTRYPOINT, with ENV inherited from a parent stage.
func dockerfileTargets(t testing.TB) map[string]*dockerTarget {
	t.Helper()
	targets := map[string]*dockerTarget{}
	var cur *dockerTarget
	// join continuation lines
	text := strings.ReplaceAll(string(readFile(t, "Dockerfile")), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			cur = &dockerTarget{Env: map[string]string{}}
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				if parent, ok := targets[f[1]]; ok {
					for k, v := range parent.Env {
						cur.Env[k] = v
					}
					cur.Binary = parent.Binary
				}
				targets[f[3]] = cur
			}
		case "ENV":
			for _, kv := range f[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					cur.Env[k] = v
				}
			}
		case "EXPOSE":
			cur.Expose = append(cur.Expose, f[1:]...)
		case "ENTRYPOINT":
			var argv []string
			rest := strings.TrimSpace(strings.TrimPrefix(line, f[0]))
			if err := json.Unmarshal([]byte(rest), &argv); err != nil || len(argv) == 0 {
				t.Fatalf("Dockerfile: ENTRYPOINT %s: want an exec-form array", rest)
			}
			cur.Binary = filepath.Base(argv[0])
		}
	}
	return targets
}

// commandDir finds the main package of a binary: cmd/NAME, services/*/cmd/NAME
// or tools/*/cmd/NAME.
func commandDir(t testing.TB, binary string) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	for _, pattern := range []string{"cmd/" + binary, "services/*/cmd/" + binary, "tools/*/cmd/" + binary} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		if len(m) == 1 {
			rel, _ := filepath.Rel(root, m[0])
			return "./" + rel
		}
	}
	t.Fatalf("no main package for binary %q", binary)
	return ""
}

var (
	readsMu    sync.Mutex
	readsCache = map[string]map[string]bool{}
)

// envReadBy returns every upper-case string literal (a candidate
// environment variable name) in the non-test Go files of this project's
// packages that the binary at pkgDir is built from (go list -deps): what
// the binary can read from its environment.
func envReadBy(t testing.TB, pkgDir string) map[string]bool {
	t.Helper()
	readsMu.Lock()
	defer readsMu.Unlock()
	if r, ok := readsCache[pkgDir]; ok {
		return r
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .CgoFiles}} {{.}}{{end}}{{end}}{{end}}", pkgDir)
	cmd.Dir = testenv.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkgDir, err, stderr.String())
	}
	lit := regexp.MustCompile(`^[A-Z][A-Z0-9_]{2,}$`)
	reads := map[string]bool{}
	fset := token.NewFileSet()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, name := range f[1:] {
			file, err := parser.ParseFile(fset, filepath.Join(f[0], name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					if s, err := strconv.Unquote(bl.Value); err == nil && lit.MatchString(s) {
						reads[s] = true
					}
				}
				return true
			})
		}
	}
	if len(reads) == 0 {
		t.Fatalf("go list -deps %s: no string literals found", pkgDir)
	}
	readsCache[pkgDir] = reads
	return reads
}

// goRuntimeEnv is read by the Go runtime of every binary, not by our code.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true}
