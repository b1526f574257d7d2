// Command settingsdoc writes the README's configuration table from the
// settings every binary declares (package catalog):
//
//	go run ./cmd/settingsdoc          rewrite the table in README.md
//	go run ./cmd/settingsdoc -check   exit 1 if README.md's table differs
//
// It finds README.md beside go.work, above the working directory, unless
// -readme names it.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "settingsdoc:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("settingsdoc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "only check that the README's table is up to date")
	readme := fs.String("readme", "", "the README to update (default: README.md beside go.work)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *readme == "" {
		root, err := workRoot()
		if err != nil {
			return err
		}
		*readme = filepath.Join(root, "README.md")
	}
	old, err := os.ReadFile(*readme)
	if err != nil {
		return err
	}
	table, err := catalog.Table()
	if err != nil {
		return err
	}
	updated, err := catalog.Splice(old, table)
	if err != nil {
		return err
	}
	switch {
	case bytes.Equal(old, updated):
		fmt.Fprintf(stdout, "%s: the settings table is up to date\n", *readme)
		return nil
	case *check:
		return fmt.Errorf("%s: the settings table differs from the declarations: run go run ./cmd/settingsdoc", *readme)
	}
	if err := os.WriteFile(*readme, updated, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: settings table written\n", *readme)
	return nil
}

// workRoot is the directory holding go.work, above the working directory.
func workRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: give -readme")
		}
		dir = parent
	}
}
