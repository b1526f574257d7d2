// Package mupdf is the pdftext engine built on MuPDF (AGPL-3.0; the
// static libraries that go-fitz bundles), through a small C shim
// (mupdf_shim.c) that runs every MuPDF call inside fz_try: the parser's
// default engine.
//
// It is the parser's only package with cgo. A binary built with -tags
// nomupdf (and CGO_ENABLED=0) holds no MuPDF: there, Engine's Open fails
// with ErrNoMuPDF and DefaultEngine is PDFium.
package mupdf
