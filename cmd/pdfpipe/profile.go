package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// startProfile writes a CPU profile of the whole command to the file
// named by PDFPIPE_CPUPROFILE, when set (for `go tool pprof`); the
// returned function ends it.
func startProfile(getenv func(string) string) (stop func(), err error) {
	path := envconf.New(getenv, catalog.ProfileSettings).String("PDFPIPE_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
