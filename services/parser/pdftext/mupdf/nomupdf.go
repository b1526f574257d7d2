//go:build nomupdf

package mupdf

import (
	"errors"
	"fmt"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

// DefaultEngine is the engine a parser uses unless configured otherwise:
// this binary was built with -tags nomupdf, without MuPDF (AGPL-3.0), so
// it is PDFium.
const DefaultEngine = "pdfium"

// ErrNoMuPDF is returned by Engine in a build without MuPDF.
var ErrNoMuPDF = errors.New("this binary was built without MuPDF (-tags nomupdf); use PDF_ENGINE=pdfium")

// Engine stands in for the MuPDF engine in builds without MuPDF.
type Engine struct{ MaxStore int }

// New returns an engine whose Open fails with ErrNoMuPDF.
func New() *Engine { return &Engine{} }

// Open fails: MuPDF is not in this binary.
func (e *Engine) Open(path, password string) (pdftext.Document, error) {
	return nil, fmt.Errorf("open %s: %w", path, ErrNoMuPDF)
}

// LimitMallocArenas does nothing without MuPDF's C allocator to tame.
func LimitMallocArenas(n int) bool { return false }

// Allocator is "" without MuPDF.
func Allocator() string { return "" }
