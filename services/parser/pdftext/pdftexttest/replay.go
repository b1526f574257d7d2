package pdftexttest

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// The recorded engines.
const (
	MuPDF  = "mupdf"
	PDFium = "pdfium"
)

//go:embed recordings
var recordings embed.FS

// RecordCommand writes the recordings anew (run from the repository's
// root); the conformance tests fail when they are out of date.
const RecordCommand = "cd services/parser && go test ./pdftext/conformance -run TestRecordings -record"

// RecordingFile is the name of the recording of fixture by engine, in
// the recordings directory.
func RecordingFile(fixture, engine string) string { return fixture + "." + engine + ".ndjson" }

// SourceDir is the recordings directory in the source tree, where the
// recorder writes (the tests read the copy built into the package).
func SourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("pdftexttest: no source path")
	}
	return filepath.Join(filepath.Dir(file), "recordings"), nil
}

// RecordingFiles lists the recordings built into the package, by file
// name.
func RecordingFiles() ([]string, error) {
	entries, err := recordings.ReadDir("recordings")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

var loaded sync.Map // file name → *Recording, read-only once stored

// Load returns the recording of fixture by engine.
func Load(fixture, engine string) (*Recording, error) {
	name := RecordingFile(fixture, engine)
	if r, ok := loaded.Load(name); ok {
		return r.(*Recording), nil
	}
	b, err := recordings.ReadFile(path.Join("recordings", name))
	if err != nil {
		return nil, fmt.Errorf("no recording of %s by %s (record it: %s): %w", fixture, engine, RecordCommand, err)
	}
	r, err := Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if r.Fixture != fixture || r.Engine != engine {
		return nil, fmt.Errorf("%s holds the recording of %s by %s", name, r.Fixture, r.Engine)
	}
	v, _ := loaded.LoadOrStore(name, r)
	return v.(*Recording), nil
}

// Replay is a pdftext.Engine that reads recordings instead of PDFs: the
// path given to Open (and to pdftext.Extract) names a fixture, and the
// document replays what Engine read from it. Documents are structured
// (pdftext.StructuredDocument, pdftext.PageBoxer) as both real engines'
// are; PageText gives the lines of the page's blocks, a blank line
// between blocks.
type Replay struct {
	// Engine names the recording: MuPDF (also when empty) or PDFium.
	Engine string
	// Slow lists pages (0-based) whose PageBlocks does not return until
	// its context ends, as a page too slow for its time limit. (PageText,
	// which has no context, never returns for them.)
	Slow map[int]bool
}

// Open implements pdftext.Engine. The password is not used: no fixture
// is encrypted.
func (e Replay) Open(fixture, password string) (pdftext.Document, error) {
	engine := e.Engine
	if engine == "" {
		engine = MuPDF
	}
	r, err := Load(fixture, engine)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", fixture, err)
		}
		return nil, fmt.Errorf("open %s: %w: %w", fixture, err, pdftext.ErrCorrupt)
	}
	return &replayDoc{rec: r, slow: e.Slow}, nil
}

// replayDoc is a Document replaying a recording. Like the engines'
// documents it is not for concurrent use; the mutex only keeps misuse
// from racing.
type replayDoc struct {
	rec  *Recording
	slow map[int]bool

	mu     sync.Mutex
	closed bool
	last   pdftext.LastPage
}

func (d *replayDoc) NumPages() int { return len(d.rec.Pages) }

func (d *replayDoc) Outline() ([]pdftext.OutlineEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("read outline: %w", pdftext.ErrClosed)
	}
	return append([]pdftext.OutlineEntry(nil), d.rec.Outline...), nil
}

func (d *replayDoc) PageBlocks(ctx context.Context, i int) ([]pdftext.Block, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := pdftext.CheckPage(d.closed, i, len(d.rec.Pages)); err != nil {
		return nil, err
	}
	if d.slow[i] {
		<-ctx.Done()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("page %d: %w", i+1, context.Cause(ctx))
	}
	p := d.rec.Pages[i]
	switch p.Err {
	case "":
	case errOutOfMemory:
		return nil, fmt.Errorf("page %d: replay: %w", i+1, pdftext.ErrOutOfMemory)
	default:
		return nil, fmt.Errorf("page %d: replay: %w", i+1, pdftext.ErrCorrupt)
	}
	// The caller gets blocks of its own: a recording is shared.
	blocks := make([]pdftext.Block, len(p.Blocks))
	for j, b := range p.Blocks {
		blocks[j] = pdftext.Block{BBox: b.BBox, Lines: append([]pdftext.Line(nil), b.Lines...)}
	}
	if p.Boxed {
		d.last.Set(i, p.Box)
	} else {
		d.last = pdftext.LastPage{}
	}
	return blocks, nil
}

func (d *replayDoc) PageBox(i int) (pdftext.Rect, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last.Box(i)
}

func (d *replayDoc) PageText(i int) (string, error) {
	blocks, err := d.PageBlocks(context.Background(), i)
	if err != nil {
		return "", err
	}
	return pdftext.BlocksText(blocks), nil
}

func (d *replayDoc) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}
