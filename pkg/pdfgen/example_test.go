package pdfgen_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/pdfpipe/pdfpipe/pkg/pdfgen"
)

func ExampleWrite() {
	doc := pdfgen.Doc{
		Title: "Hello",
		Pages: []pdfgen.Page{{Blocks: []pdfgen.Block{
			{Text: "1 Introduction", Size: 18, Bold: true},
			{Text: "Latin text in Helvetica.\n\n中文文本使用 Type0 字体。"},
			{Text: "Right column", X: 310, Y: 200, Width: 230},
		}}},
		Outline: []pdfgen.OutlineItem{{Title: "1 Introduction", Page: 0, Y: pdfgen.Margin}},
	}
	var buf bytes.Buffer
	if err := pdfgen.Write(&buf, doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(bytes.HasPrefix(buf.Bytes(), []byte("%PDF-1.7")), bytes.HasSuffix(buf.Bytes(), []byte("%%EOF\n")))
	// Output: true true
}

func ExampleSample() {
	doc := pdfgen.Sample(4)
	fmt.Println(len(doc.Pages), doc.Outline[0].Title, doc.Outline[0].Children[0].Title)
	// Output: 4 1 Introduction 1.1 Limitations
}
