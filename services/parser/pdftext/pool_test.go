//go:build !nomupdf

package pdftext

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPoolAllocator runs the shim's own check of the allocator MuPDF's
// contexts use: every size class, blocks from malloc, reallocation between
// them, reuse of freed blocks and a range that fills up.
func TestPoolAllocator(t *testing.T) {
	for _, size := range []int{64 << 10, 1 << 20, 4 << 20, 512 << 20} {
		if err := poolCheck(size); err != nil {
			t.Errorf("pool of %d KiB: %v", size>>10, err)
		}
	}
}

// TestPoolStaysFlat reads a 2,000-page document and checks that MuPDF's
// memory is counted and that its pool of small blocks stops growing once
// the first pages are read: freed blocks are reused and parsed objects
// are trimmed.
func TestPoolStaysFlat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree.pdf")
	if err := os.WriteFile(path, treePDF(2000, 10, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	doc, err := NewFitzEngine().Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	md := doc.(*mupdfDoc)
	if live, pooled := md.memory(); live == 0 || pooled == 0 {
		t.Fatalf("open document: %d bytes live, %d pooled: the pool does not count", live, pooled)
	}
	var after100 uint64
	for i := range doc.NumPages() {
		if _, err := md.PageBlocks(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		if i == 99 {
			_, after100 = md.memory()
		}
	}
	live, pooled := md.memory()
	t.Logf("after 100 pages: %d KiB pooled; after %d: %d KiB pooled, %d KiB live", after100>>10, doc.NumPages(), pooled>>10, live>>10)
	if pooled > after100+pageTrimBudget+(1<<20) {
		t.Errorf("pool grew from %d KiB after 100 pages to %d KiB after %d", after100>>10, pooled>>10, doc.NumPages())
	}
}
