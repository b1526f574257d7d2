package catalog_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"

	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

// TestREADMETableIsGenerated: the README's configuration table is exactly
// what the declarations make. A row added by hand, a default changed in
// the code or in the README, a setting declared but not documented: all
// fail here until `go run ./cmd/settingsdoc` is run.
func TestREADMETableIsGenerated(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkREADME(t, readme)
}

func checkREADME(t *testing.T, readme []byte) {
	t.Helper()
	table, err := catalog.Table()
	if err != nil {
		t.Fatalf("Table: %v", err)
	}
	want, err := catalog.Splice(readme, table)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readme, want) {
		t.Errorf("README.md's settings table differs from the declarations; run `go run ./cmd/settingsdoc`.\n%s",
			lineDiff(string(readme), string(want)))
	}
}

// lineDiff lists the lines only one of a and b has.
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "README only:       "+l)
		case n < 0:
			out = append(out, "declarations only: "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestDriftIsCaught is the drift test's own check: a README with a row
// added by hand, or with a default that is not the code's, is refused;
// so is a declaration whose default changed.
func TestDriftIsCaught(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := catalog.Table()
	if err != nil {
		t.Fatal(err)
	}
	mutants := map[string][]byte{
		"row added": bytes.Replace(readme, []byte("| `MAX_DELIVER` |"),
			[]byte("| `NOT_A_SETTING` | `1` | stages | nothing |\n| `MAX_DELIVER` |"), 1),
		"default changed": bytes.Replace(readme, []byte("| `MAX_DELIVER` | `10` |"), []byte("| `MAX_DELIVER` | `5` |"), 1),
		"row removed":     regexp.MustCompile("(?m)^\\| `VECTOR_WAIT` .*\n").ReplaceAll(readme, nil),
	}
	for name, m := range mutants {
		if bytes.Equal(m, readme) {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		want, err := catalog.Splice(m, table)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(m, want) {
			t.Errorf("%s: the README check passes", name)
		}
	}
	// A default changed in the code makes another table.
	bins := catalog.Binaries()
	bins[0].Settings = bins[0].Settings.WithDefault("MAX_DELIVER", "5")
	changed, err := envconf.Table(bins, catalog.Aliases()...)
	if err != nil {
		t.Fatal(err)
	}
	if changed == table {
		t.Error("a changed default leaves the table as it was")
	}
}

// TestDeclarations: every binary's settings are well formed, and a
// variable two binaries read is declared alike (Table refuses it
// otherwise).
func TestDeclarations(t *testing.T) {
	names := map[string]bool{}
	for _, b := range catalog.Binaries() {
		if names[b.Name] {
			t.Errorf("binary %s listed twice", b.Name)
		}
		names[b.Name] = true
		if err := b.Settings.Check(); err != nil {
			t.Errorf("%s: %v", b.Name, err)
		}
	}
	if _, err := catalog.Table(); err != nil {
		t.Error(err)
	}
}

// envCall matches what reads a variable: getenv("X"), os.Getenv("X"),
// os.LookupEnv("X"), a Reader's r.Int("X")…, and the declarations'
// envconf.Int("X", …) themselves.
var readers = map[string]bool{
	"getenv": true, "Getenv": true, "LookupEnv": true,
	"String": true, "StringOr": true, "Int": true, "IntOr": true, "Bytes": true, "Duration": true,
	"Bool": true, "List": true, "Secret": true, "IsSet": true, "WithFile": true,
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*[A-Z0-9]$`)

// TestEveryVariableReadIsDeclared: every environment variable the
// production code reads by name (getenv, os.Getenv, a Reader) is declared
// for some binary, so its -h and the README list it. (A variable read
// through a Reader without a declaration also fails at run time.)
func TestEveryVariableReadIsDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, b := range catalog.Binaries() {
		for _, n := range b.Settings.Names() {
			declared[n] = true
		}
	}
	root := testenv.RepoRoot(t)
	read := map[string][]string{} // name → where
	for _, dir := range []string{"cmd", "pkg", "services", "tools"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				// Test helpers and testdata read the test machine's
				// environment (REDIS_SERVER_BIN, CI), not a binary's.
				if rel == filepath.Join("pkg", "testenv") || rel == filepath.Join("pkg", "stagetest") || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			for _, n := range envReads(t, path) {
				read[n] = append(read[n], rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(read) < 50 {
		t.Fatalf("found only %d variables read; is the scan still finding the reads?", len(read))
	}
	var missing []string
	for n, where := range read {
		if !declared[n] {
			slices.Sort(where)
			missing = append(missing, n+" (read in "+strings.Join(slices.Compact(where), ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is read but no binary declares it: add it to the Settings of the package that reads it", m)
	}
}

// envReads returns the upper-case string literals passed first to a
// function or method that reads the environment.
func envReads(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var name string
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			name = fn.Name
		case *ast.SelectorExpr:
			name = fn.Sel.Name
		}
		if !readers[name] {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
				out = append(out, s)
			}
		}
		return true
	})
	return out
}

// TestScanFindsAnUndeclaredRead: the scan above sees a plain
// os.Getenv of a name nothing declares.
func TestScanFindsAnUndeclaredRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.go")
	src := "package x\nimport \"os\"\nfunc f(getenv func(string) string) { _ = os.Getenv(\"SNEAKY_VAR\"); _ = getenv(\"OTHER_VAR\"); _ = r.Duration(\"THIRD_VAR\") }\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := envReads(t, path); !slices.Equal(got, []string{"SNEAKY_VAR", "OTHER_VAR", "THIRD_VAR"}) {
		t.Errorf("got %v, want SNEAKY_VAR, OTHER_VAR, THIRD_VAR", got)
	}
}
