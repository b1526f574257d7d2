package main

import "github.com/pdfpipe/pdfpipe/services/parser/pdftext"

// tuneMemory sets what bounds the resident memory of a process that runs
// every stage (pdfpipe up and run) as cmd/parser does for the parser alone:
// glibc's malloc arenas limited to 2, or MuPDF's memory, allocated from
// the many OS threads cgo calls run on, ends up spread over up to 8 arenas
// per core that keep what they freed.
func tuneMemory() {
	pdftext.LimitMallocArenas(2)
}
