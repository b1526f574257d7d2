package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

// startProfile writes a CPU profile of the whole command to the file
// named by PDFPIPE_CPUPROFILE, when set (for `go tool pprof`), and, with
// PDFPIPE_MEMPROFILE, a heap profile taken when the process's resident
// memory peaked, with a line on stderr at the end splitting that peak into
// the Go heap, Go stacks and the rest (MuPDF's C heap, the binary). The
// returned function ends both.
func startProfile(getenv func(string) string, stderr io.Writer) (stop func(), err error) {
	r := envconf.New(getenv, catalog.ProfileSettings)
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if path := r.String("PDFPIPE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stops = append(stops, func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
	if path := r.String("PDFPIPE_MEMPROFILE"); path != "" {
		p := &peakProfiler{path: path, stderr: stderr, done: make(chan struct{})}
		p.wg.Add(1)
		go p.run()
		stops = append(stops, p.stop)
	}
	return stopAll, nil
}

// peakProfiler samples the resident set every 100 ms and writes a heap
// profile each time it passes its last peak by 2 MiB.
type peakProfiler struct {
	path   string
	stderr io.Writer
	done   chan struct{}
	wg     sync.WaitGroup
	peak   memSample
	at     time.Duration
	err    error
}

// memSample is the process's memory at one moment, in bytes.
type memSample struct {
	rss, rssFile, heapObjects, heapFree, heapReleased, stacks, goTotal uint64
}

func (p *peakProfiler) run() {
	defer p.wg.Done()
	start := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s := readMem()
		if s.rss > p.peak.rss+2<<20 || p.peak.rss == 0 {
			p.peak, p.at = s, time.Since(start)
			var b bytes.Buffer
			if err := pprof.Lookup("heap").WriteTo(&b, 0); err == nil {
				p.err = os.WriteFile(p.path, b.Bytes(), 0o644)
			}
		} else if s.rss > p.peak.rss {
			p.peak, p.at = s, time.Since(start)
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

func (p *peakProfiler) stop() {
	close(p.done)
	p.wg.Wait()
	const mib = 1 << 20
	s := p.peak
	goMapped := s.goTotal - s.heapReleased
	other := int64(s.rss) - int64(goMapped)
	fmt.Fprintf(p.stderr, "memory peak %.1f MiB RSS after %.1fs: Go heap objects %.1f, Go heap free or unused %.1f, Go stacks %.1f, other Go runtime %.1f, not Go %.1f (of which file-backed, the binary's pages: %.1f) MiB; heap profile in %s\n",
		float64(s.rss)/mib, p.at.Seconds(), float64(s.heapObjects)/mib, float64(s.heapFree)/mib, float64(s.stacks)/mib,
		float64(goMapped-s.heapObjects-s.heapFree-s.stacks)/mib, float64(other)/mib, float64(s.rssFile)/mib, p.path)
	if p.err != nil {
		fmt.Fprintf(p.stderr, "heap profile: %v\n", p.err)
	}
}

// readMem reads the resident set from /proc and the Go runtime's memory
// classes.
func readMem() memSample {
	var s memSample
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) > 2 {
			pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
			shared, _ := strconv.ParseUint(string(f[2]), 10, 64)
			s.rss, s.rssFile = pages*uint64(os.Getpagesize()), shared*uint64(os.Getpagesize())
		}
	}
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/os-stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			return samples[i].Value.Uint64()
		}
		return 0
	}
	s.heapObjects, s.heapFree, s.heapReleased = v(0), v(1)+v(2), v(3)
	s.stacks, s.goTotal = v(4)+v(5), v(6)
	return s
}
