//go:build nomupdf

package pdftext

import (
	"errors"
	"fmt"
)

// DefaultEngine is the engine a parser uses unless configured otherwise:
// this binary was built with -tags nomupdf, without MuPDF (AGPL-3.0), so
// it is PDFium.
const DefaultEngine = "pdfium"

// ErrNoMuPDF is returned by FitzEngine in a build without MuPDF.
var ErrNoMuPDF = errors.New("this binary was built without MuPDF (-tags nomupdf); use PDF_ENGINE=pdfium")

// FitzEngine stands in for the MuPDF engine in builds without MuPDF.
type FitzEngine struct{ MaxStore int }

// NewFitzEngine returns an engine whose Open fails with ErrNoMuPDF.
func NewFitzEngine() *FitzEngine { return &FitzEngine{} }

// Open fails: MuPDF is not in this binary.
func (e *FitzEngine) Open(path, password string) (Document, error) {
	return nil, fmt.Errorf("open %s: %w", path, ErrNoMuPDF)
}

// LimitMallocArenas does nothing without MuPDF's C allocator to tame.
func LimitMallocArenas(n int) bool { return false }

// Allocator is "" without MuPDF.
func Allocator() string { return "" }
