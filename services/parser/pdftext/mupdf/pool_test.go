//go:build !nomupdf

package mupdf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoolAllocator compiles the self-test of the pool allocator
// (testdata/pool_check.c, which includes pt_pool.c; no build of the
// package holds it) with the C compiler cgo uses, plainly and with
// AddressSanitizer and UndefinedBehaviorSanitizer, and runs it: every
// size class, blocks from malloc, reallocation between them, reuse of
// freed blocks, spans given back and a range that fills up.
func TestPoolAllocator(t *testing.T) {
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"gcc"}
	}
	if _, err := exec.LookPath(cc[0]); err != nil {
		t.Skipf("no C compiler %q: %v", cc[0], err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"plain", []string{"-O2"}},
		{"sanitized", []string{"-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "pool_check")
			args := append(append(append([]string{}, cc[1:]...), tc.flags...), "-Wall", "-Wextra", "-Werror", "-o", bin, filepath.Join("testdata", "pool_check.c"))
			if out, err := exec.Command(cc[0], args...).CombinedOutput(); err != nil {
				if tc.name == "sanitized" && strings.Contains(string(out), "asan") {
					t.Skipf("no sanitizer runtime: %s", out)
				}
				t.Fatalf("%s %s: %v\n%s", cc[0], strings.Join(args, " "), err, out)
			}
			if out, err := exec.Command(bin).CombinedOutput(); err != nil {
				t.Fatalf("pool self-test: %v\n%s", err, out)
			}
		})
	}
}

// TestMemoryStaysFlat reads a 4,000-page document and checks that MuPDF's
// memory is counted and never grows by much more than the trim budget:
// parsed objects are trimmed (and, with the pool allocator, freed blocks
// are reused, so the pool stops growing after the first pages).
func TestMemoryStaysFlat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree.pdf")
	if err := os.WriteFile(path, treePDF(4000, 10, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	doc, err := New().Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	md := doc.(*document)
	live, pooled := md.memory()
	opened := live
	if live == 0 || (Allocator() == "pool") != (pooled > 0) {
		t.Fatalf("open document (%s allocator): %d bytes live, %d pooled: memory not counted", Allocator(), live, pooled)
	}
	var maxLive, pooled100 uint64
	for i := range doc.NumPages() {
		if _, err := md.PageBlocks(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		live, pooled := md.memory()
		maxLive = max(maxLive, live)
		if i == 99 {
			pooled100 = pooled
		}
	}
	live, pooled = md.memory()
	t.Logf("%s allocator: after %d pages: %d KiB live (at most %d KiB), %d KiB pooled (%d KiB after 100 pages)",
		Allocator(), doc.NumPages(), live>>10, maxLive>>10, pooled>>10, pooled100>>10)
	if limit := opened + pageTrimBudget + 256<<10; maxLive > limit {
		t.Errorf("MuPDF held up to %d KiB, want at most %d KiB (%d KiB after opening and a trim budget)", maxLive>>10, limit>>10, opened>>10)
	}
	if pooled > pooled100+pageTrimBudget+(1<<20) {
		t.Errorf("pool grew from %d KiB after 100 pages to %d KiB after %d", pooled100>>10, pooled>>10, doc.NumPages())
	}
}
