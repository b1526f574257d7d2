// Command e2ebench drives one end-to-end run of a pdfpipe deployment (see
// bench/e2e.sh): it serves the reference IngestService (tools/ingestsink)
// on -sink, serves the given PDFs over loopback HTTP, pushes one task per
// PDF onto the Redis queue as the backend does (LPUSH, today's task
// shape), and waits until every document is stored at the sink or failed
// (a `failed` DocumentEvent on Redis). It prints the figures as
// key=value pairs on one line: documents, failed, pages, chunks, seconds,
// p50/p99 task latency (push → last chunk stored), the time from the
// first push to the first chunk at the sink, and the median per task.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

type taskTimes struct {
	file   string
	pushed time.Time
	first  time.Time // first chunk at the sink
	stored time.Time // every chunk stored
	failed string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("e2ebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", "", "Redis URL (required)")
	queue := fs.String("queue", "queue:upload_tasks", "task list")
	events := fs.String("events", "document:events", "DocumentEvent channel")
	sinkAddr := fs.String("sink", "127.0.0.1:50051", "where to serve the IngestService")
	out := fs.String("out", "", "JSONL log of what the sink stores (default none)")
	timeout := fs.Duration("timeout", 60*time.Minute, "give up after")
	timeline := fs.Bool("timeline", false, "print each stored document's pages, chunks, first and last chunk at the sink (seconds after the first push) to stderr, in the order they were stored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if *redisURL == "" || len(files) == 0 {
		return errors.New("usage: e2ebench -redis URL [-sink ADDR] FILE.pdf...")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	opts := ingestsink.Options{ForgetChunks: true}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.Output = f
	}
	sink := ingestsink.New(opts)
	var mu sync.Mutex
	tasks := map[string]*taskTimes{} // by DocID
	var firstChunk time.Time
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	sink.SetFault(func(fileID string, pos int) error {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		t := tasks[fileID]
		if t == nil {
			return nil
		}
		switch {
		case pos == 0 && t.first.IsZero():
			t.first = now
			if firstChunk.IsZero() {
				firstChunk = now
			}
		case pos == ingestsink.FaultAtEnd:
			t.stored = now
			poke()
		}
		return nil
	})
	lis, err := net.Listen("tcp", *sinkAddr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	sink.Register(gs)
	go gs.Serve(lis)
	defer gs.Stop()

	// The PDFs, over loopback HTTP.
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/f/{i}/{name}", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= len(files) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, files[i])
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(hl)
	defer hs.Close()

	rdbOpts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(rdbOpts)
	defer rdb.Close()
	sub := rdb.Subscribe(ctx, *events)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return fmt.Errorf("subscribe %s: %w", *events, err)
	}
	go func() {
		for m := range sub.Channel() {
			var ev struct {
				Type    string `json:"type"`
				DocID   string `json:"doc_id"`
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(m.Payload), &ev) != nil || ev.Type != "failed" {
				continue
			}
			mu.Lock()
			if t := tasks[ev.DocID]; t != nil && t.failed == "" {
				t.failed = ev.Message
				if t.failed == "" {
					t.failed = "failed"
				}
			}
			mu.Unlock()
			poke()
		}
	}()

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	for i, f := range files {
		id := fmt.Sprintf("e2e-%s-%d", run, i)
		body, err := json.Marshal(map[string]string{
			"DocID": id, "FileName": filepath.Base(f), "UserID": "bench", "CreatedAt": time.Now().UTC().Format(time.RFC3339Nano),
			"URL": fmt.Sprintf("http://%s/f/%d/%s", hl.Addr(), i, filepath.Base(f)), "RagMode": "true",
		})
		if err != nil {
			return err
		}
		mu.Lock()
		tasks[id] = &taskTimes{file: f, pushed: time.Now()}
		mu.Unlock()
		if err := rdb.LPush(ctx, *queue, body).Err(); err != nil {
			return fmt.Errorf("push %s: %w", f, err)
		}
	}
	ended := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, t := range tasks {
			if !t.stored.IsZero() || t.failed != "" {
				n++
			}
		}
		return n
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ended() < len(files) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks ended before %v", ended(), len(files), ctx.Err())
		case <-changed:
		case <-tick.C:
		}
	}
	end := time.Now()

	// Pages and chunks of the stored documents, from the sink's records
	// (a call's record gets its response just after the end hook ran).
	mu.Lock()
	want := 0
	for _, t := range tasks {
		if !t.stored.IsZero() {
			want++
		}
	}
	mu.Unlock()
	var pages, chunks int
	var stored map[string]bool
	for range 100 {
		pages, chunks, stored = 0, 0, map[string]bool{}
		for _, d := range sink.Documents() {
			r := d.Response
			if d.Metadata == nil || r == nil || !r.GetSuccess() || stored[d.Metadata.GetFileId()] {
				continue
			}
			stored[d.Metadata.GetFileId()] = true
			pages += int(d.Metadata.GetTotalPages())
			chunks += int(r.GetChunksStored())
		}
		if len(stored) >= want {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the sink's records, not synchronising
	}
	mu.Lock()
	defer mu.Unlock()
	var lat, ttfc []float64
	failed := 0
	for id, t := range tasks {
		if t.failed != "" || !stored[id] {
			failed++
			fmt.Fprintf(stderr, "failed: %s: %s\n", filepath.Base(t.file), t.failed)
			continue
		}
		lat = append(lat, t.stored.Sub(t.pushed).Seconds())
		ttfc = append(ttfc, t.first.Sub(t.pushed).Seconds())
	}
	if *timeline {
		printTimeline(stderr, tasks, sink.Documents(), start)
	}
	secs := end.Sub(start).Seconds()
	first := 0.0
	if !firstChunk.IsZero() {
		first = firstChunk.Sub(start).Seconds()
	}
	fmt.Fprintf(stdout, "documents=%d failed=%d pages=%d chunks=%d seconds=%.2f p50=%.2f p99=%.2f first_chunk=%.2f ttfc_p50=%.2f\n",
		len(files), failed, pages, chunks, secs, quantile(lat, 0.5), quantile(lat, 0.99), first, quantile(ttfc, 0.5))
	return nil
}

// printTimeline prints the stored documents in the order they were
// stored: when their first and last chunks reached the sink, and their
// size, so a tail held up by one large document shows.
func printTimeline(w io.Writer, tasks map[string]*taskTimes, docs []ingestsink.Document, start time.Time) {
	size := map[string][2]int{}
	for _, d := range docs {
		if d.Metadata != nil && d.Response != nil && d.Response.GetSuccess() {
			size[d.Metadata.GetFileId()] = [2]int{int(d.Metadata.GetTotalPages()), int(d.Response.GetChunksStored())}
		}
	}
	ids := make([]string, 0, len(tasks))
	for id, t := range tasks {
		if !t.stored.IsZero() {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return tasks[a].stored.Compare(tasks[b].stored) })
	fmt.Fprintf(w, "%-8s %-8s %6s %7s  %s\n", "first_s", "stored_s", "pages", "chunks", "file")
	for _, id := range ids {
		t := tasks[id]
		fmt.Fprintf(w, "%8.2f %8.2f %6d %7d  %s\n", t.first.Sub(start).Seconds(), t.stored.Sub(start).Seconds(),
			size[id][0], size[id][1], filepath.Base(t.file))
	}
}

// quantile is the q-quantile of xs (nearest rank), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}
