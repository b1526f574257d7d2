package main

import (
	"runtime/debug"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
)

// defaultMemoryLimit is the Go runtime's soft memory limit in pdfpipe up
// unless GOMEMLIMIT is set. Most of the Go heap there is the
// embedded NATS server's block caches (a block of 4 or 8 MiB read or
// written in the last 10 s, per stream), which the collector frees once
// they are idle; with the default GOGC alone it ran only when the heap had
// doubled, so pdfpipe up peaked at 420–460 MiB over bench/e2e.sh's corpus.
// At 160 MiB it peaked at 263 MiB for at most 5 % more CPU per page
// (docs/PERFORMANCE.md); the live heap itself stays near 70–120 MiB.
const defaultMemoryLimit = 160 << 20

// tuneMemory sets what bounds the resident memory of a process that runs
// every stage (command up or run): glibc's malloc arenas limited to 2, as
// cmd/parser does, or MuPDF's memory, allocated from the many OS threads
// cgo calls run on, ends up spread over up to 8 arenas per core that keep
// what they freed; and, for the long-running up, the Go heap's soft limit
// (defaultMemoryLimit) unless GOMEMLIMIT is set. pdfpipe run of one
// 2,415-page manual peaks near 160 MiB anyway, where the limit only cost
// CPU (2.93 against 2.81 CPU-s).
func tuneMemory(command string, getenv func(string) string) {
	mupdf.LimitMallocArenas(2)
	if command == "up" && !envconf.New(getenv, catalog.MemorySettings).IsSet("GOMEMLIMIT") {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
