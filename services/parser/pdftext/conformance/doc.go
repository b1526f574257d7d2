// Package conformance holds only tests: they run every pdftext engine
// (mupdf, pdfium) on the project's fixtures and check what each reads
// against what pdfgen drew, so the engines agree with the source and with
// each other.
//
// TestRecordings also checks that each engine still reads the fixtures
// of package pdftexttest as recorded, the recordings the tests of the
// pdftext core replay instead of running an engine; with -record it
// writes them anew:
//
//	cd services/parser && go test ./pdftext/conformance -run TestRecordings -record
package conformance
