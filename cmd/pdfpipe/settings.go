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

// parseInterspersed parses args with fs, letting flags follow the
// positional arguments (`pdfpipe status d1 --watch`), which flag.Parse
// alone stops at; it returns the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
