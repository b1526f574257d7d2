// Package ingester is the last stage: once every chunk of a document has
// its vector, it streams the document to the backend's IngestService in
// one IngestDocument call — metadata first, then every chunk in index
// order, read from the vector stream in windows of consecutive chunks so
// memory does not grow with the document — and marks the task done only
// when the backend answers success.
package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// Settings are the ingester's own environment variables (besides
// servicemain.Settings): the one description its ConfigFromEnv reads, its
// -h lists and the README's table is generated from.
var Settings = envconf.Settings{
	envconf.String("GO_GRPC_INGEST_ADDR", "localhost:50051",
		"the backend's IngestService, a gRPC target (`host:port`, `dns:///host:port`); `pdfpipe run` sends to its own sink instead"),
	envconf.Int("INGEST_WORKERS", 4, "documents streamed at once"),
	envconf.Duration("INGEST_TIMEOUT", 10*time.Minute, "one IngestDocument call"),
	envconf.Duration("INGEST_RECONNECT_MAX", time.Second,
		"cap of the gRPC reconnect backoff while the backend is unreachable: documents wait (spending no delivery) and are "+
			"sent within about this long of its return"),
	envconf.Duration("VECTOR_WAIT", 30*time.Minute, "longest wait for a document's last vector"),
}

// Config of the ingester (Settings).
type Config struct {
	Addr    string        // GO_GRPC_INGEST_ADDR
	Workers int           // INGEST_WORKERS: documents streamed at once
	Timeout time.Duration // INGEST_TIMEOUT for one IngestDocument call
	// VectorWait is how long a document may wait for its last vector
	// (VECTOR_WAIT); the embedders fail the task themselves when a
	// provider refuses, so this only catches lost work.
	VectorWait time.Duration
	// RetryDelay is the first redelivery backoff after a transient
	// failure (it doubles per delivery); 0 means the runner's default, 1s.
	RetryDelay time.Duration
	// ReconnectMax caps the gRPC channel's reconnect backoff while the
	// backend is unreachable (INGEST_RECONNECT_MAX; 0: 1s): a waiting
	// document is sent within about this long of the backend's return.
	ReconnectMax time.Duration
	// BoundStep is how many chunks beyond the recorded bound an attempt
	// may send before raising it in the task's status again (default 256).
	BoundStep int

	env envconf.Values
}

// ConfigFromEnv reads the ingester's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv, Settings)
	c := Config{
		Addr:         r.String("GO_GRPC_INGEST_ADDR"),
		Workers:      r.Int("INGEST_WORKERS"),
		Timeout:      r.Duration("INGEST_TIMEOUT"),
		VectorWait:   r.Duration("VECTOR_WAIT"),
		ReconnectMax: r.Duration("INGEST_RECONNECT_MAX"),
	}
	c.env = r.Values()
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("GO_GRPC_INGEST_ADDR is required")
	}
	if c.Workers < 1 {
		return errors.New("INGEST_WORKERS must be at least 1")
	}
	if c.ReconnectMax < 0 {
		return errors.New("INGEST_RECONNECT_MAX must not be negative")
	}
	return nil
}

// LogValue lists the settings ConfigFromEnv read, credentials in the
// backend's address masked.
func (c Config) LogValue() slog.Value { return c.env.LogValue() }

// Service is a running ingester.
type Service struct {
	cfg    Config
	res    *pipeline.Resources
	nc     *nats.Conn
	status *status.Store
	client pb.IngestServiceClient
	conn   *grpc.ClientConn
	log    *slog.Logger
	// addr is GO_GRPC_INGEST_ADDR as logs, errors and notes show it:
	// credentials masked.
	addr string
	// notify is how often the wait for vectors re-checks without news;
	// settle, the waits between the counts that follow a notification
	// (see waitVectors).
	recheck time.Duration
	settle  []time.Duration
	// stopping is closed when Run's context ends: waits for the backend
	// give up at once instead of holding the shutdown grace.
	stopping <-chan struct{}
	busy     taskLocks
	// newVectorIter, when set, replaces the batched vector reader (tests).
	newVectorIter func(ctx context.Context, taskID string, n int) vectorIter
}

// taskLocks lets one handler at a time work on a task.
type taskLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{} // closed when the task's handler ends
}

// lock waits until no other handler works on id, and claims it.
func (l *taskLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		if l.m == nil {
			l.m = make(map[string]chan struct{})
		}
		held, ok := l.m[id]
		if !ok {
			ch := make(chan struct{})
			l.m[id] = ch
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.m, id)
				l.mu.Unlock()
				close(ch)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// New returns an ingester; the gRPC connection is made lazily.
func New(cfg Config, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = time.Second
	}
	if cfg.BoundStep <= 0 {
		cfg.BoundStep = 256
	}
	bo := backoff.DefaultConfig
	bo.BaseDelay = min(bo.BaseDelay, cfg.ReconnectMax)
	bo.MaxDelay = cfg.ReconnectMax
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second})}
	if tp := res.Config.Tracer; tp != nil {
		// The IngestDocument call is a span of the task's trace, and its
		// traceparent goes to the backend in the call's metadata.
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(tracing.Propagator), otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()))))
	}
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("ingest client %s: %w", envconf.Redact(cfg.Addr), envconf.RedactError(err))
	}
	return &Service{cfg: cfg, res: res, nc: nc, status: status.New(res.Status), conn: conn,
		client: pb.NewIngestServiceClient(conn), log: log, addr: envconf.Redact(cfg.Addr), recheck: 2 * time.Second,
		settle: []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 400 * time.Millisecond}}, nil
}

// Run ingests until ctx ends, then closes the gRPC connection.
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	s.stopping = ctx.Done()
	h := stage.NewTyped(s.res, pipeline.Ingest, s.log, s.Handle)
	r, err := stage.ForStage(ctx, s.res, pipeline.Ingest, h, s.log, s.cfg.Workers, s.cfg.RetryDelay)
	if err != nil {
		return err
	}
	r.Classify = errorClass
	return r.Run(ctx)
}

// Handle sends one document to the backend. While the backend cannot be
// reached it waits for it (the runner keeps the message in progress), so
// an outage of any length spends no delivery.
func (s *Service) Handle(ctx context.Context, j *stage.Job[pipeline.IngestJob]) error {
	job, msg, log := j.Body, j.Msg, j.Log
	id := job.Task.ID
	// Two deliveries of one task's job can reach this process at once
	// (one expired in the client's buffer while the other was handled):
	// the second waits for the first, then finds the task ended. (The
	// handler's own check ran before the wait.)
	unlock, err := s.busy.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.status.Get(ctx, id)
	if err != nil && !errors.Is(err, status.ErrNotFound) {
		return err
	}
	if st.State.Terminal() {
		// Done: the backend has it and cannot take it twice. Failed: nothing to send.
		log.Info("task already ended; not sending", "state", st.State)
		return nil
	}
	// Until the task ends (cancelled, or failed elsewhere): then ctx
	// ends, a wait for vectors or the backend stops, an IngestDocument
	// stream under way is aborted (never closed, so the backend does not
	// take it for the whole document), and the job is acked. pdfpipe
	// cancel hears from work while it lasts, with the chunks sent.
	work, err := stage.Working(ctx, s.res.JS.Conn(), pipeline.Ingest, msg, s.res.Status, "chunks")
	if err != nil {
		return err
	}
	defer work.Stop()
	ctx = work.Context()
	ready, err := s.waitVectors(ctx, id, job.Chunks)
	if stage.TaskEnded(ctx) {
		return nil
	}
	if err != nil || !ready {
		return err
	}
	err = s.ingest(ctx, job, log, work)
	if err != nil && stage.TaskEnded(ctx) { // (a done task ends ctx too, after err is nil)
		log.Info("task ended while ingesting; stopped", "cause", context.Cause(ctx))
		return nil
	}
	if errors.Is(err, errStopping) && s.lastDelivery(msg) {
		// Shutting down while the backend is away, on the job's last
		// delivery: a nak would fail the task for an outage. Publish the
		// job again (a fresh delivery budget) and let this copy go.
		meta, _ := msg.Metadata()
		n := int(meta.Sequence.Stream)
		if _, perr := pipeline.Publish(ctx, s.res.JS, msg.Subject(), id, pipeline.MsgID(id, n, "ingest", "requeue"), job); perr != nil {
			return fmt.Errorf("%w; requeue: %w", err, perr)
		}
		log.Warn("backend unavailable at shutdown on the last delivery; job requeued")
		return nil
	}
	return err
}

// errStopping marks a wait for the backend cut short by the shutdown.
var errStopping = errors.New("stopping while waiting for the backend")

// ingest sends the document, waiting for the backend while it is away.
func (s *Service) ingest(ctx context.Context, job pipeline.IngestJob, log *slog.Logger, work *stage.Work) error {
	id := job.Task.ID
	pause := s.cfg.ReconnectMax / 8
	for {
		if err := s.waitBackend(ctx, id, log); errors.Is(err, status.ErrTerminal) {
			return nil
		} else if err != nil {
			return err
		}
		err := s.attempt(ctx, job, log, work)
		if !errors.Is(err, errUnavailable) {
			return err
		}
		// The backend went away (or said it is unavailable): wait for it
		// again without spending a delivery. The pause only matters when
		// the channel stays ready while calls fail.
		log.Warn("backend unavailable; waiting for it", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-s.stopping:
			return fmt.Errorf("%w: %w", errStopping, err)
		case <-time.After(pause):
		}
		pause = min(2*pause, s.cfg.ReconnectMax)
	}
}

// lastDelivery reports whether msg will not be delivered again after a nak.
func (s *Service) lastDelivery(msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	md := s.res.Config.MaxDeliver
	return err == nil && md > 0 && meta.NumDelivered >= uint64(md)
}

// errUnavailable marks an attempt that failed because the backend could
// not be reached; Handle waits and tries again.
var errUnavailable = errors.New("backend unavailable")

// attempt sends the document once and records the outcome.
func (s *Service) attempt(ctx context.Context, job pipeline.IngestJob, log *slog.Logger, work *stage.Work) error {
	id := job.Task.ID
	st, err := s.status.Update(ctx, id, func(st *status.Status) {
		st.State = status.Ingesting
		st.Attempts++
		st.Note = ""
	})
	if errors.Is(err, status.ErrTerminal) {
		return nil
	}
	if err != nil {
		return err
	}
	earlier := history{sentMax: st.SentMax, sentWhole: st.SentWhole, doneBefore: st.DoneBefore}
	resp, sent, err := s.send(ctx, job, st.Attempts, st.SentMax, work)
	if err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			if earlier.doneBefore {
				return s.done(ctx, id, job.Chunks, fmt.Sprintf("the replay's resend was refused (%s); the backend still holds the document it stored before", ref))
			}
			return stage.Permanent(fmt.Errorf("ingest %s: %w", id, ref))
		}
		if stage.TaskEnded(ctx) {
			return fmt.Errorf("ingest %s: stream aborted: %w", id, context.Cause(ctx))
		}
		if ctx.Err() == nil {
			// We survive the broken attempt: narrow the bound to what it sent.
			if rerr := s.recordSent(ctx, id, max(earlier.sentMax, sent)); rerr != nil {
				log.Warn("recording chunks sent", "err", rerr)
			}
		}
		if s.unavailable(err) {
			return fmt.Errorf("ingest %s attempt %d: %w: %w", id, st.Attempts, errUnavailable, err)
		}
		// The stream broke before the backend answered: send it again whole.
		log.Warn("ingest stream failed", "attempt", st.Attempts, "err", err)
		return fmt.Errorf("ingest %s: %w", id, err)
	}
	v := judge(resp, job.Chunks, earlier)
	if v.err != nil {
		return stage.Permanent(fmt.Errorf("ingest %s: %w", id, v.err))
	}
	if v.note != "" {
		log.Warn("done without a clean answer", "note", v.note, "message", resp.GetMessage())
	} else {
		log.Info("ingested", "chunks", resp.GetChunksStored(), "backend_ms", resp.GetProcessingTimeMs())
	}
	stage.Report(ctx, metrics.Work{Documents: 1, Pages: job.Pages, Chunks: job.Chunks})
	return s.done(ctx, id, job.Chunks, v.note)
}

func (s *Service) done(ctx context.Context, id string, stored int, note string) error {
	_, err := s.status.Update(ctx, id, func(st *status.Status) {
		st.State = status.Done
		st.Ingested = stored
		st.SentMax = max(st.SentMax, stored)
		st.Note = note
	})
	if err != nil && !errors.Is(err, status.ErrTerminal) {
		return err
	}
	return nil
}

func (s *Service) recordSent(ctx context.Context, id string, n int) error {
	_, err := s.status.Update(ctx, id, func(st *status.Status) { st.SentMax = n })
	return err
}

// history is what earlier attempts may have left in the backend.
type history struct {
	sentMax    int  // at most this many chunks (a prefix) were delivered before
	sentWhole  int  // the attempt that sent every chunk and lost its answer; 0 none
	doneBefore bool // the task was done before a replay: the backend holds it whole
}

// verdict is what an answer of the backend means for the task.
type verdict struct {
	note string // done, decided from more than success=true
	err  error  // the backend does not hold the whole document
}

// judge decides from the backend's answer whether it holds all n chunks.
//
// success=true: it stored every one. success=false counts the chunks the
// backend could not insert; the real backend does not say why (its message
// is "finish N chunks"), the reference sink names up to three reasons.
// Chunks that earlier attempts delivered are refused as duplicate keys,
// and they are a prefix of at most h.sentMax chunks (the backend stores in
// arrival order and keeps what a broken stream stored). So when the
// backend read the whole stream (received = stored+failed = n), named no
// reason other than a duplicate key and failed at most h.sentMax chunks,
// the refused chunks are the ones it already held: it holds the whole
// document. A named duplicate makes that certain; with counts only it is
// the one explanation consistent with the answer, and the note says it
// was inferred. Anything else is a real failure with the backend's words.
func judge(resp *pb.IngestResponse, n int, h history) verdict {
	if resp.GetSuccess() {
		return verdict{}
	}
	received, stored, failed := int(resp.GetChunksReceived()), int(resp.GetChunksStored()), int(resp.GetChunksFailed())
	msg := resp.GetMessage()
	whole := received == n && stored+failed == n
	if h.doneBefore {
		return verdict{note: fmt.Sprintf("replayed; the backend refused %d of %d chunks of the resend (%s) and still holds the document it stored before", failed, n, msg)}
	}
	dup, other := reasons(msg)
	refusedMsg := fmt.Sprintf("backend refused the document: %s (received %d, stored %d of %d, failed %d", msg, received, stored, n, failed)
	switch {
	case !whole:
		return verdict{err: fmt.Errorf("%s; it did not process the whole stream)", refusedMsg)}
	case other:
		return verdict{err: fmt.Errorf("%s)", refusedMsg)}
	case failed > h.sentMax:
		return verdict{err: fmt.Errorf("%s; earlier attempts delivered at most %d)", refusedMsg, h.sentMax)}
	case h.sentWhole > 0 && stored == 0 && failed == n:
		return verdict{note: fmt.Sprintf("stored by attempt %d, whose answer was lost (every chunk of the resend was already held)", h.sentWhole)}
	case dup:
		return verdict{note: fmt.Sprintf("the backend already held %d chunks from an earlier, interrupted attempt (refused as duplicate keys) and stored the other %d", failed, stored)}
	default:
		return verdict{note: fmt.Sprintf("inferred: the backend refused %d of %d chunks without a reason; earlier, interrupted attempts delivered up to %d, so these are taken as already held (stored %d now)", failed, n, h.sentMax, stored)}
	}
}

// reasons reads the failure reasons a backend's message names: the real
// backend's "finish N chunks" names none; the reference sink's
// "finish N chunks, F failed: chunk i (id): reason; …" names up to three.
// dup reports a duplicate key among them, other any other reason.
func reasons(msg string) (dup, other bool) {
	rest := strings.TrimSpace(msg)
	if after, ok := strings.CutPrefix(rest, "finish "); ok {
		if i := strings.Index(after, " chunks"); i >= 0 && isDigits(after[:i]) {
			rest = strings.TrimSpace(strings.TrimPrefix(after[i+len(" chunks"):], ","))
		}
	}
	for part := range strings.SplitSeq(rest, ";") {
		part = strings.TrimSpace(part)
		switch {
		case part == "" || part == "…" || part == "...":
		case isDuplicate(part):
			dup = true
		default:
			other = true
		}
	}
	return dup, other
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// isDuplicate reports a unique-key violation (PostgreSQL's SQLSTATE 23505).
func isDuplicate(s string) bool {
	return strings.Contains(s, "23505") || strings.Contains(s, "duplicate key")
}

// waitVectors returns true once the vector stream holds all n vectors of
// the task, false (and no error) if the task ended meanwhile. It wakes on
// each new vector instead of polling, re-checking every few seconds in
// case a notification was missed. A notification can arrive before the
// stream has stored the message it announces (the server hands a publish
// to subscribers and queues it for the stream apart), so after one the
// count is taken again a few times within half a second even without
// more news: with only the recheck, 34 of bench/e2e.sh's 59 documents
// waited about 2 s after their last vector.
func (s *Service) waitVectors(ctx context.Context, taskID string, n int) (bool, error) {
	news := make(chan struct{}, 1)
	sub, err := s.nc.Subscribe(pipeline.VectorFilter(taskID), func(*nats.Msg) {
		select {
		case news <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return false, fmt.Errorf("watch vectors of %s: %w", taskID, err)
	}
	defer sub.Unsubscribe()
	// The subscription must be in place on the server before the first
	// count, or vectors stored in between would wake no one.
	// FlushWithContext needs a deadline; the handler's ctx has none.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = s.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return false, fmt.Errorf("watch vectors of %s: %w", taskID, err)
	}
	deadline := time.NewTimer(s.cfg.VectorWait)
	defer deadline.Stop()
	stream, err := s.res.JS.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		return false, fmt.Errorf("vector stream: %w", err)
	}
	settle := len(s.settle) // past the last quick re-count
	for {
		_, have, err := coverVectors(ctx, stream, taskID, n)
		if err != nil {
			return false, err
		}
		if have >= n {
			return true, nil
		}
		st, err := s.status.Get(ctx, taskID)
		if err == nil && st.State.Terminal() {
			return false, nil
		}
		wait := s.recheck
		if settle < len(s.settle) {
			wait = s.settle[settle]
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, stage.Permanent(fmt.Errorf("ingest %s: only %d of %d chunks were embedded after %s", taskID, have, n, s.cfg.VectorWait))
		case <-news:
			settle = 0
		case <-time.After(wait):
			settle++
		}
	}
}

// send streams the document: metadata, then each chunk in index order.
// It returns the backend's answer, or how many chunks it handed to the
// stream before the call failed. Before sending beyond the status's
// SentMax it raises it, by boundStep chunks at a time, so that a process
// killed mid-stream leaves a bound of what the backend may hold. Each
// chunk sent is reported to work.
func (s *Service) send(ctx context.Context, job pipeline.IngestJob, attempt, sentMax int, work *stage.Work) (*pb.IngestResponse, int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	t := job.Task
	fileID := t.DocumentID()
	call, err := s.client.IngestDocument(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("open stream to %s: %w", s.addr, err)
	}
	createdAt := t.CreatedAt
	if createdAt == "" {
		createdAt = time.Now().UTC().Format(time.RFC3339Nano)
	}
	if err := call.Send(&pb.IngestRequest{RequestType: &pb.IngestRequest_Metadata{Metadata: &pb.DocumentMetadata{
		FileId: fileID, UserId: t.UserID, Filename: t.FileName, TotalPages: int32(job.Pages),
		EstimatedChunks: int32(job.Chunks), FileHash: job.Document.SHA256, FileSize: job.Document.Size,
		CreatedAt: createdAt,
	}}}); err != nil {
		return nil, 0, s.sendErr(call, job, 0, err)
	}
	vecs := s.readVectors(ctx, t.ID, job.Chunks)
	defer vecs.Close()
	bound := sentMax
	for i := 0; i < job.Chunks; i++ {
		if i >= bound {
			bound = min(job.Chunks, i+s.cfg.BoundStep)
			if err := s.recordSent(ctx, t.ID, bound); err != nil {
				return nil, i, fmt.Errorf("record chunks sent: %w", err)
			}
		}
		v, err := vecs.Next(ctx)
		if err != nil {
			return nil, i, fmt.Errorf("read vector %d: %w", i, err)
		}
		c := v.Chunk
		if err := call.Send(&pb.IngestRequest{RequestType: &pb.IngestRequest_Chunk{Chunk: &pb.TextChunk{
			ChunkId: c.ID, FileId: fileID, Chapter: c.Chapter, ChapterNum: c.ChapterNum, ChunkText: c.Text,
			EmbeddingVector: v.Vector, ChunkIndex: int32(c.Index), PageStart: int32(c.PageStart), PageEnd: int32(c.PageEnd),
		}}}); err != nil {
			return nil, i, s.sendErr(call, job, i, err)
		}
		work.SetProgress(i+1, job.Chunks)
	}
	// Every chunk is on its way: note it before asking for the answer, so
	// a restart after a lost answer knows this attempt was whole.
	if _, err := s.status.Update(ctx, t.ID, func(st *status.Status) { st.SentWhole = attempt }); err != nil {
		return nil, job.Chunks, fmt.Errorf("record attempt %d: %w", attempt, err)
	}
	resp, err := call.CloseAndRecv()
	if err != nil {
		if refused(err) {
			return nil, job.Chunks, refusalOf(job, err)
		}
		return nil, job.Chunks, fmt.Errorf("close stream: %w", err)
	}
	return resp, job.Chunks, nil
}

// sendErr turns a failed Send into the stream's real status: Send
// returns io.EOF when the server ended the call, and the reason is in
// Recv. A reason the backend gave is a refusal; sent is how many chunks
// had gone into the stream.
func (s *Service) sendErr(call grpc.ClientStreamingClient[pb.IngestRequest, pb.IngestResponse], job pipeline.IngestJob, sent int, err error) error {
	if _, rerr := call.CloseAndRecv(); rerr != nil {
		if refused(rerr) {
			return refusalOf(job, rerr)
		}
		return fmt.Errorf("send (after %d of %d chunks): %w", sent, job.Chunks, rerr)
	}
	return fmt.Errorf("send (after %d of %d chunks): %w", sent, job.Chunks, err)
}

// refusal is an error status the backend answered a stream with. The
// backend only ends a stream with an error at the metadata step (its
// UPDATE of the document row: a file_hash held by another file_id is a
// unique violation); a chunk it cannot insert is only counted. So the
// step named is the metadata when the reason is a duplicate key or names
// the metadata, whichever chunk our Send had reached when it surfaced.
type refusal struct {
	step string
	err  error
}

func (r *refusal) Error() string {
	return fmt.Sprintf("backend refused the %s: %v", r.step, r.err)
}

func (r *refusal) Unwrap() error { return r.err }

func refusalOf(job pipeline.IngestJob, err error) *refusal {
	msg := grpcstatus.Convert(err).Message()
	step := "document stream"
	if isDuplicate(msg) || strings.Contains(msg, "file_hash") || strings.Contains(msg, "metadata") {
		step = fmt.Sprintf("metadata (file_id %s, file_hash %s)", job.Task.DocumentID(), job.Document.SHA256)
	}
	return &refusal{step: step, err: err}
}

// refused reports whether a call failed because the backend answered with
// an error, as opposed to the connection or the deadline failing. The
// backend returns its database errors (a UNIQUE violation on file_hash)
// as codes.Unknown.
func refused(err error) bool {
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unknown, codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented, codes.OutOfRange:
		return true
	}
	return false
}

// errorClass names the class of an ingest error for metrics and spans:
// a refusal, or a backend that cannot be reached, is the backend's; a
// call past INGEST_TIMEOUT a timeout.
func errorClass(err error) stage.Class {
	var ref *refusal
	switch {
	case errors.As(err, &ref), errors.Is(err, errUnavailable), errors.Is(err, errStopping):
		return stage.ClassBackend
	case grpcstatus.Code(err) == codes.DeadlineExceeded, errors.Is(err, context.DeadlineExceeded):
		return stage.ClassTimeout
	}
	if _, ok := grpcstatus.FromError(err); ok {
		return stage.ClassBackend // the stream broke before the backend answered
	}
	return ""
}

// unavailable reports whether a call failed because the backend could not
// be reached: Unavailable (refused or broken connection, the server
// going away), or a deadline that ran out while the channel was not
// connected.
func (s *Service) unavailable(err error) bool {
	switch grpcstatus.Code(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return s.conn.GetState() != connectivity.Ready
	}
	return false
}

// waitBackend returns once the gRPC channel to the backend is ready. The
// channel reconnects with a backoff capped at ReconnectMax, so a document
// waiting here is sent soon after the backend comes back. The first time
// it has to wait it says so in the task's note (`pdfpipe status`).
func (s *Service) waitBackend(ctx context.Context, taskID string, log *slog.Logger) error {
	noted := false
	for {
		state := s.conn.GetState()
		if state == connectivity.Ready {
			return nil
		}
		if state == connectivity.Idle {
			s.conn.Connect()
		}
		if !noted && state != connectivity.Idle && state != connectivity.Connecting {
			noted = true
			log.Warn("waiting for the backend", "addr", s.addr, "state", state.String())
			_, err := s.status.Update(ctx, taskID, func(st *status.Status) {
				st.Note = fmt.Sprintf("waiting for the backend at %s (%s) since %s", s.addr, strings.ToLower(state.String()), time.Now().UTC().Format(time.RFC3339))
			})
			if errors.Is(err, status.ErrTerminal) {
				return err
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-s.stopping:
				cancel()
			case <-wctx.Done():
			}
		}()
		changed := s.conn.WaitForStateChange(wctx, state)
		cancel()
		if !changed {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("ingest %s: %w at %s", taskID, errStopping, s.addr)
		}
	}
}
