// Package pdftexttest holds what the tests of pdftext and of its engines
// share: the project's fixtures (documents drawn by pkg/pdfgen), the
// recordings of what each engine reads from them, an Engine that replays
// those recordings (so the tests of the pdftext core need no engine and
// no cgo), and helpers that write PDFs.
//
// The recordings are refreshed by the conformance tests, which also fail
// when an engine no longer reads what was recorded:
//
//	cd services/parser && go test ./pdftext/conformance -run TestRecordings -record
package pdftexttest
