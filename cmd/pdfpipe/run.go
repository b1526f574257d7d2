package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/pdfpipe/pdfpipe/cmd/allinone"
	"github.com/pdfpipe/pdfpipe/cmd/catalog"
	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/logging"
	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/servicemain"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	"github.com/pdfpipe/pdfpipe/tools/ingestsink"
)

// runFiles processes local PDFs through every stage on an embedded NATS
// server: the files are served to the fetcher over loopback HTTP, chunks
// are embedded with the configured provider (local by default) and
// ingested by the reference IngestService, which writes them as JSONL.
// runPullWait is pdfpipe run's pipeline.Config.PullWait.
const runPullWait = 100 * time.Millisecond

func runFiles(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	// The services' logger and the progress lines both write to stderr,
	// from different goroutines.
	stderr = &lockedWriter{w: stderr}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withSettings(fs, "pdfpipe run [-out FILE.jsonl] [-password-file FILE] [-store DIR] FILE.pdf...", catalog.Run)
	out := fs.String("out", "pdfpipe-chunks.jsonl", "where to write the chunks with their vectors (JSONL)")
	storeDir := fs.String("store", "", "JetStream directory (default: a temporary one, removed at exit)")
	passFile := fs.String("password-file", "", "file whose first line is the password of encrypted PDFs (given to each task as ProvideAPIKey with provider \"pdf\" would)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	password := ""
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		password, _, _ = strings.Cut(string(b), "\n")
		password = strings.TrimSuffix(password, "\r")
	}
	files := fs.Args()
	if len(files) == 0 {
		return errors.New("run: no PDF given (try: pdfpipe sample sample.pdf && pdfpipe run sample.pdf)")
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil {
			return fmt.Errorf("run: %w", err)
		} else if st.IsDir() {
			return fmt.Errorf("run: %s is a directory", f)
		}
	}
	r := envconf.New(getenv, catalog.Run.Settings)
	pcfg := servicemain.PipelineFromEnv(r)
	sealer := servicemain.SealerFrom(r)
	dim := r.Int("EMBEDDING_DIMENSION")
	logLevel, logFormat := r.String("LOG_LEVEL"), r.String("LOG_FORMAT")
	tcfg, terr := tracing.FromReader(r)
	if err := errors.Join(r.Err(), terr); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log, err := logging.New(stderr, logLevel, logFormat)
	if err != nil {
		return err
	}
	log.Info("pdfpipe run", "settings", r.Values())
	tp, err := tracing.Start(ctx, tcfg, "pdfpipe")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer servicemain.ShutdownTracing(ctx, tp, log)

	keptStore := *storeDir != ""
	if !keptStore {
		dir, err := os.MkdirTemp("", "pdfpipe-run-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*storeDir = dir
	}
	// Passwords given with -password-file are sealed in KV like every
	// secret: with PDFPIPE_SECRET_KEY when set, else with a key of this
	// run's own that is never written down (nothing sealed outlives it).
	// The store is encrypted with the same key, except a -store kept
	// between runs without PDFPIPE_SECRET_KEY: a key of one run's own
	// would leave the next run unable to open it.
	ownKey := sealer == nil
	if ownKey {
		key := make([]byte, pipeline.SecretKeySize)
		_, _ = rand.Read(key) // never fails (crypto/rand)
		if sealer, err = pipeline.NewSealer(key); err != nil {
			return err
		}
	}
	storeKey := sealer.StoreKey()
	if ownKey && keptStore {
		storeKey = ""
	}
	srv, err := natsembed.Start(natsembed.Options{StoreDir: *storeDir, JetStreamKey: storeKey})
	if err != nil {
		return err
	}
	defer srv.Stop()
	nc, err := srv.Connect("pdfpipe-run")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pcfg.Sealer, pcfg.Tracer = sealer, tp
	// Idle stages ask for work every 100 ms, not every second: when the
	// last file is done they stop within that (with 1s, stopping took
	// 0.8 s of a 2.4 s run of a 2,415-page manual).
	pcfg.PullWait = runPullWait
	res, err := pipeline.Setup(ctx, js, pcfg)
	if err != nil {
		return err
	}

	outFile, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer outFile.Close()
	// A failed run that stored nothing leaves no empty output file behind.
	defer func() {
		if st, serr := os.Stat(*out); err != nil && serr == nil && st.Size() == 0 {
			os.Remove(*out)
		}
	}()
	outBuf := bufio.NewWriterSize(outFile, 1<<20)
	sink := ingestsink.New(ingestsink.Options{Output: outBuf, Dimension: dim, ForgetChunks: true})
	sinkLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sinkSrv := grpc.NewServer()
	sink.Register(sinkSrv)

	served, err := serveFiles(files)
	if err != nil {
		return err
	}
	defer served.Close()

	stagesCtx, cancelStages := context.WithCancel(ctx)
	defer cancelStages()
	g, gctx := errgroup.WithContext(stagesCtx)
	g.Go(func() error { return sinkSrv.Serve(sinkLis) })
	// The fetcher's guard refuses loopback: allow exactly the file server.
	if err := allinone.StagesWith(gctx, g, getenv, res, nc, log, allinone.Options{
		IngestAddr: sinkLis.Addr().String(), FetchAllowHosts: []string{served.Addr()},
	}); err != nil {
		sinkSrv.Stop()
		return err
	}

	store := status.New(res.Status)
	start := time.Now()
	ids := make([]string, len(files))
	for i, f := range files {
		ids[i] = newID()
		raw, _ := json.Marshal(map[string]any{
			"DocID": ids[i], "FileName": filepath.Base(f), "UserID": "pdfpipe-run",
			"URL": served.URL(i), "CreatedAt": time.Now().UTC().Format(time.RFC3339Nano), "RagMode": "true",
		})
		t, err := task.Parse(raw)
		if err != nil {
			return err
		}
		if _, err := store.Create(ctx, status.Status{TaskID: t.ID, DocID: t.DocID, UserID: t.UserID, FileName: t.FileName, Task: t.Raw}); err != nil {
			return err
		}
		if password != "" {
			if err := pipeline.PutPDFPassword(ctx, res.Keys, t.ID, password, time.Hour); err != nil {
				return err
			}
		}
		// A file's trace starts as it is submitted, as a task's does when
		// the gateway takes it from Redis.
		sctx, span := tracing.Tracer(tp).Start(ctx, "pdfpipe run", trace.WithAttributes(
			attribute.String(stage.AttrTaskID, t.ID), attribute.String("pdfpipe.file", filepath.Base(f))))
		_, err = pipeline.Publish(sctx, js, pipeline.Fetch.Subject(t.ID), t.ID, pipeline.MsgID(t.ID, 0, "fetch"), pipeline.FetchJob{Task: t})
		span.End()
		if err != nil {
			return err
		}
	}
	final, werr := watch(gctx, store, ids, files, stderr)

	cancelStages()
	sinkSrv.GracefulStop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stopping stages", "err", err)
	}
	if err := outBuf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if werr != nil {
		return werr
	}
	return summary(stdout, files, ids, final, time.Since(start), *out)
}

// watch prints each task's progress until every task has ended.
func watch(ctx context.Context, store *status.Store, ids, files []string, stderr io.Writer) (map[string]status.Status, error) {
	last := map[string]string{}
	final := map[string]status.Status{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(final) < len(ids) {
		select {
		case <-ctx.Done():
			return final, fmt.Errorf("run: interrupted: %w", ctx.Err())
		case <-tick.C:
		}
		for i, id := range ids {
			if _, ok := final[id]; ok {
				continue
			}
			st, err := store.Get(ctx, id)
			if err != nil {
				continue
			}
			line := string(st.State)
			if st.Pages > 0 {
				line += fmt.Sprintf(", %d pages, %d chunks", st.Pages, st.Chunks)
			}
			if line != last[id] {
				fmt.Fprintf(stderr, "%s: %s\n", filepath.Base(files[i]), line)
				last[id] = line
			}
			if st.State.Terminal() {
				final[id] = st
			}
		}
	}
	return final, nil
}

func summary(w io.Writer, files, ids []string, final map[string]status.Status, took time.Duration, out string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSTATE\tPAGES\tCHUNKS\tCHAPTERS\tSECONDS\tERROR")
	var failed, pages, chunks int
	for i, f := range files {
		st := final[ids[i]]
		if st.State == status.Failed || st.State == status.Cancelled {
			failed++
		}
		pages += st.Pages
		chunks += st.Chunks
		errText := ""
		if st.Error != "" {
			errText = st.Stage + ": " + st.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f\t%s\n", filepath.Base(f), st.State, st.Pages, st.Chunks, st.Chapters,
			st.UpdatedAt.Sub(st.CreatedAt).Seconds(), errText)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d documents, %d pages, %d chunks in %.2fs (%.0f pages/s); chunks with vectors in %s\n",
		len(files), pages, chunks, took.Seconds(), float64(pages)/took.Seconds(), out)
	if failed > 0 {
		return fmt.Errorf("%d of %d documents failed (or were cancelled)", failed, len(files))
	}
	return nil
}

// newID returns a random UUID-shaped id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// fileServer serves local files to the fetcher over loopback HTTP, so
// `pdfpipe run` goes through the same fetch stage as production.
type fileServer struct {
	srv   *http.Server
	base  string
	files []string
}

func serveFiles(files []string) (*fileServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fsrv := &fileServer{base: "http://" + lis.Addr().String(), files: files}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n >= len(files) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, files[n])
	})
	fsrv.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go fsrv.srv.Serve(lis)
	return fsrv, nil
}

func (f *fileServer) URL(i int) string { return f.base + "/files/" + strconv.Itoa(i) }

// Addr is the server's host:port.
func (f *fileServer) Addr() string { return strings.TrimPrefix(f.base, "http://") }

func (f *fileServer) Close() error { return f.srv.Close() }

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
