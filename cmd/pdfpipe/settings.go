package main

import (
	"flag"
	"fmt"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// withSettings makes fs's -h print usage, the flags, then every
// environment variable bin reads (package catalog) with its default.
func withSettings(fs *flag.FlagSet, usage string, bin envconf.Binary) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: "+usage)
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output())
		envconf.WriteHelp(fs.Output(), bin.Settings)
	}
}
