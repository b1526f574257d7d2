//go:build !nomupdf

package mupdf_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
)

// Extract with MuPDF: a generated two-page document with an outline
// becomes two chunks, each labelled with its chapter.
func Example() {
	dir, err := os.MkdirTemp("", "pdftext-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "doc.pdf")
	f, err := os.Create(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = pdfgen.Write(f, pdfgen.Doc{
		Pages: []pdfgen.Page{
			{Blocks: []pdfgen.Block{{Text: "1 Introduction\n\nPDFs become chunks."}}},
			{Blocks: []pdfgen.Block{{Text: "1.1 背景\n\n中文文本也可以。"}}},
		},
		Outline: []pdfgen.OutlineItem{{Title: "1 Introduction", Page: 0, Children: []pdfgen.OutlineItem{{Title: "1.1 背景", Page: 1}}}},
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	info, err := pdftext.Extract(context.Background(), mupdf.New(), path, pdftext.Options{},
		func(c pdftext.Chunk) error {
			fmt.Printf("#%d %s [%s] pages %d-%d: %q\n", c.Index, c.ChapterNum, c.Chapter, c.PageStart, c.PageEnd, c.Text)
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", info)
	// Output:
	// #0 1 [1 Introduction] pages 1-1: "1 Introduction\n\nPDFs become chunks."
	// #1 1.1 [1 Introduction › 1.1 背景] pages 2-2: "1.1 背景\n\n中文文本也可以。"
	// {Pages:2 Chunks:2 Chapters:2 EmptyPages:0 SkippedPages:0 UnreadablePages:0}
}
