package conformance

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdftexttest"
)

var record = flag.Bool("record", false, "write the recordings of package pdftexttest anew (TestRecordings)")

// TestRecordings reads every fixture of package pdftexttest with each
// engine it is recorded for and checks that the engine reads what was
// recorded: the tests of the pdftext core replay those recordings instead
// of running an engine, so this is what makes them tests of what the
// engines really read. It also fails on a recording no fixture has. With
// -record it writes the recordings instead, and removes stale ones.
func TestRecordings(t *testing.T) {
	engines := make(map[string]pdftext.Engine)
	for _, ne := range conformanceEngines(t) {
		engines[ne.name] = ne.eng
	}
	dir, err := pdftexttest.SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	var want []string // the recordings there should be
	for _, f := range pdftexttest.Fixtures() {
		for _, e := range f.Engines {
			want = append(want, pdftexttest.RecordingFile(f.Name, e))
		}
	}
	if *record {
		old, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		for _, o := range old {
			if !slices.Contains(want, filepath.Base(o)) {
				if err := os.Remove(o); err != nil {
					t.Fatal(err)
				}
				t.Logf("removed %s: no fixture has it", o)
			}
		}
	} else {
		have, err := pdftexttest.RecordingFiles()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range have {
			if !slices.Contains(want, h) {
				t.Errorf("recording %s belongs to no fixture (%s removes it)", h, pdftexttest.RecordCommand)
			}
		}
	}
	for _, f := range pdftexttest.Fixtures() {
		pdf, sum, err := f.PDF()
		if err != nil {
			t.Fatal(err)
		}
		path := pdftexttest.WriteFile(t, f.Name+".pdf", pdf)
		for _, name := range f.Engines {
			t.Run(f.Name+"/"+name, func(t *testing.T) {
				eng, ok := engines[name]
				if !ok {
					t.Fatalf("no engine %q", name)
				}
				doc, err := eng.Open(path, "")
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				defer doc.Close()
				got, err := pdftexttest.Record(context.Background(), doc)
				if err != nil {
					t.Fatal(err)
				}
				got.Fixture, got.Engine, got.SHA256 = f.Name, name, sum
				if *record {
					var b bytes.Buffer
					if err := got.Encode(&b); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, pdftexttest.RecordingFile(f.Name, name)), b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				rec, err := pdftexttest.Load(f.Name, name)
				if err != nil {
					t.Fatal(err)
				}
				if diff := got.Diff(rec); diff != "" {
					t.Errorf("%s reads %s differently from its recording; if that is meant, record anew (%s) "+
						"and check what the pdftext tests make of it: %s", name, f.Name, pdftexttest.RecordCommand, diff)
				}
			})
		}
	}
}
