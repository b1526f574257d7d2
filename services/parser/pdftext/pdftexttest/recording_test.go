package pdftexttest

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// TestRecordingRoundTrip checks that a recording reads back exactly as it
// was written: float32 and float64 positions to the bit, an outline entry
// without a target, an empty line, a page without bounds, failed pages.
func TestRecordingRoundTrip(t *testing.T) {
	rect := pdftext.Rect{X0: 56, Y0: float64(float32(55.175)), X1: 210.69294738769531, Y1: 0.1 + 0.2}
	want := &Recording{
		Fixture: "f", Engine: PDFium, SHA256: strings.Repeat("ab", 32),
		Outline: []pdftext.OutlineEntry{
			{Level: 1, Title: "1 «Intro» & <more>", Page: 0, Y: 302.79998779296875},
			{Level: 2, Title: "Lost", Page: -1},
		},
		Pages: []Page{
			{Box: pdftext.Rect{X1: 595, Y1: 842}, Boxed: true, Blocks: []pdftext.Block{
				{BBox: rect, Lines: []pdftext.Line{
					{BBox: rect, Text: "Héading ✓", Size: 12, Bold: true},
					{BBox: pdftext.Rect{X0: math.SmallestNonzeroFloat64}, Text: "", Size: 10},
				}},
				{BBox: rect, Lines: []pdftext.Line{{BBox: rect, Text: "\uFFFD\uE012 \x01", Size: 1e-7}}},
			}},
			{}, // no text, no bounds
			{Err: errOutOfMemory},
			{Err: errCorrupt},
		},
	}
	var b bytes.Buffer
	if err := want.Encode(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if d := got.Diff(want); d != "" {
		t.Errorf("Diff: %s", d)
	}
	changed := *got
	changed.Pages = append([]Page(nil), got.Pages...)
	changed.Pages[3] = Page{}
	if d := changed.Diff(want); !strings.HasPrefix(d, "page 4:") {
		t.Errorf("Diff after changing page 4: %q", d)
	}
}

func TestDecodeRefusesDisorder(t *testing.T) {
	for name, in := range map[string]string{
		"empty":             "",
		"no header":         `{"page":0}` + "\n",
		"page skipped":      `{"pages":2}` + "\n" + `{"page":1}` + "\n",
		"line outside":      `{"pages":1}` + "\n" + `{"page":0}` + "\n" + `{"line":[0,0,1,1],"text":"x"}` + "\n",
		"too few pages":     `{"pages":2}` + "\n" + `{"page":0}` + "\n",
		"outline too late":  `{"pages":1}` + "\n" + `{"page":0}` + "\n" + `{"outline":{"level":1,"title":"t","page":0,"y":0}}` + "\n",
		"unknown field":     `{"pages":0,"colour":"red"}` + "\n",
		"block before page": `{"pages":1}` + "\n" + `{"block":[0,0,1,1]}` + "\n",
	} {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestReplay checks that a replayed document answers as the engines'
// documents do: pages, outline, blocks, the bounds of the page read last
// only, failed pages with their error class, closed documents and pages
// out of range refused, and slow pages stopped by their context.
func TestReplay(t *testing.T) {
	rec, err := Load("some-empty", MuPDF)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Replay{Slow: map[int]bool{3: true}}.Open("some-empty", "")
	if err != nil {
		t.Fatal(err)
	}
	sd := doc.(pdftext.StructuredDocument)
	pb := doc.(pdftext.PageBoxer)
	if doc.NumPages() != 4 {
		t.Fatalf("got %d pages, want 4", doc.NumPages())
	}
	blocks, err := sd.PageBlocks(context.Background(), 1)
	if err != nil || !reflect.DeepEqual(blocks, rec.Pages[1].Blocks) {
		t.Errorf("page 2: got %+v, %v; want the recorded blocks %+v", blocks, err, rec.Pages[1].Blocks)
	}
	blocks[0].Lines[0].Text = "changed by the caller"
	if again, _ := sd.PageBlocks(context.Background(), 1); again[0].Lines[0].Text == "changed by the caller" {
		t.Error("a caller's change reached the recording")
	}
	if box, ok := pb.PageBox(1); !ok || box != rec.Pages[1].Box {
		t.Errorf("PageBox(1) after reading page 2: %v, %v; want %v", box, ok, rec.Pages[1].Box)
	}
	if _, ok := pb.PageBox(0); ok {
		t.Error("PageBox(0) known, but page 1 was not read last")
	}
	if text, err := doc.PageText(1); err != nil || text != "Text on page two." {
		t.Errorf("PageText(1) = %q, %v", text, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sd.PageBlocks(ctx, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("slow page with an ended context: got %v, want context.Canceled", err)
	}
	if _, err := sd.PageBlocks(context.Background(), 4); err == nil {
		t.Error("page 5 of 4: no error")
	}
	doc.Close()
	if _, err := sd.PageBlocks(context.Background(), 1); !errors.Is(err, pdftext.ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}

	failing := &Recording{Fixture: "x", Engine: MuPDF, Pages: []Page{{Err: errOutOfMemory}, {Err: errCorrupt}}}
	fd := &replayDoc{rec: failing}
	if _, err := fd.PageBlocks(context.Background(), 0); !errors.Is(err, pdftext.ErrOutOfMemory) {
		t.Errorf("out-of-memory page: got %v", err)
	}
	if _, err := fd.PageBlocks(context.Background(), 1); !errors.Is(err, pdftext.ErrCorrupt) {
		t.Errorf("corrupt page: got %v", err)
	}
	if _, err := (Replay{}).Open("no such fixture", ""); err == nil {
		t.Error("Open of an unknown fixture: no error")
	}
}
