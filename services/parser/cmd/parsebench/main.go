// Command parsebench measures pdftext.Extract (parse and chunk, no
// publishing) on one PDF with MuPDF (or PDFium, -engine pdfium) and prints
// one line:
//
//	pages=<n> chunks=<n> chapters=<n> empty=<n> seconds=<s> pages_per_s=<r> rss_kib=<peak> store_mib=<MuPDF store limit>
//
// rss_kib is the process's peak resident set (VmHWM), so run one file per
// process. bench/parser.sh drives it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pdfpipe/pdfpipe/services/parser"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdfium"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "parsebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("parsebench", flag.ContinueOnError)
	workers := fs.Int("workers", 1, "page-range workers (documents opened in parallel)")
	repeat := fs.Int("repeat", 1, "runs; the fastest is reported")
	store := fs.Int("store", 0, "MuPDF store size in MiB per open document (0: engine default)")
	dump := fs.Bool("dump", false, "print the chunks instead of the summary")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	arenas := fs.Int("arenas", 2, "glibc malloc arenas (0: leave the C library's default), as cmd/parser sets them")
	gogc := fs.Int("gogc", parser.GCPercent, "the Go collector's GOGC, as cmd/parser sets it (0: the runtime's; GOGC in the environment wins)")
	engine := fs.String("engine", "mupdf", "PDF engine: mupdf or pdfium (PDFium's module is compiled before timing starts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: parsebench [flags] file.pdf")
	}
	if *arenas > 0 {
		mupdf.LimitMallocArenas(*arenas)
	}
	if *gogc > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gogc)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var eng pdftext.Engine
	switch *engine {
	case "mupdf":
		eng = &mupdf.Engine{MaxStore: *store << 20}
	case "pdfium":
		pe := pdfium.New(pdfium.Config{MaxInstances: max(4, *workers)})
		defer pe.Close()
		if err := pe.Init(); err != nil {
			return err
		}
		eng = pe
	default:
		return fmt.Errorf("-engine %q: want mupdf or pdfium", *engine)
	}
	opts := pdftext.Options{Workers: *workers}
	var (
		best time.Duration
		info pdftext.Info
	)
	for r := range max(*repeat, 1) {
		start := time.Now()
		var err error
		info, err = pdftext.Extract(ctx, eng, fs.Arg(0), opts, func(c pdftext.Chunk) error {
			if *dump && r == 0 {
				fmt.Fprintf(stdout, "--- #%d p%d-%d [%s] %s\n%s\n", c.Index, c.PageStart, c.PageEnd, c.ChapterNum, c.Chapter, c.Text)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if d := time.Since(start); r == 0 || d < best {
			best = d
		}
	}
	if *dump {
		return nil
	}
	storeMiB := *store
	if storeMiB <= 0 {
		storeMiB = mupdf.DefaultMaxStore >> 20
	}
	fmt.Fprintf(stdout, "pages=%d chunks=%d chapters=%d empty=%d skipped=%d seconds=%.3f pages_per_s=%.0f rss_kib=%d store_mib=%d\n",
		info.Pages, info.Chunks, info.Chapters, info.EmptyPages, info.SkippedPages, best.Seconds(),
		float64(info.Pages)/best.Seconds(), peakRSS(), storeMiB)
	return nil
}

// peakRSS returns VmHWM from /proc/self/status in KiB, 0 when unknown.
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kib)
			return kib
		}
	}
	return 0
}
