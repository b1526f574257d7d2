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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// Config of the ingester.
type Config struct {
	Addr    string        // GO_GRPC_INGEST_ADDR, default localhost:50051
	Workers int           // INGEST_WORKERS, documents streamed at once, default 4
	Timeout time.Duration // INGEST_TIMEOUT for one IngestDocument call, default 10m
	// VectorWait is how long a document may wait for its last vector
	// (VECTOR_WAIT, default 30m); the embedders fail the task themselves
	// when a provider refuses, so this only catches lost work.
	VectorWait time.Duration
	// RetryDelay is the first redelivery backoff after a transient
	// failure (it doubles per delivery); 0 means the runner's default, 1s.
	RetryDelay time.Duration
}

// ConfigFromEnv reads the ingester's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Addr:       r.String("GO_GRPC_INGEST_ADDR", "localhost:50051"),
		Workers:    r.Int("INGEST_WORKERS", 4),
		Timeout:    r.Duration("INGEST_TIMEOUT", 10*time.Minute),
		VectorWait: r.Duration("VECTOR_WAIT", 30*time.Minute),
	}
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
	return nil
}

// LogValue lists the settings.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.Int("workers", c.Workers),
		slog.Duration("timeout", c.Timeout), slog.Duration("vector_wait", c.VectorWait))
}

// Service is a running ingester.
type Service struct {
	cfg    Config
	res    *pipeline.Resources
	nc     *nats.Conn
	status *status.Store
	client pb.IngestServiceClient
	conn   *grpc.ClientConn
	log    *slog.Logger
	// notify is how often the wait for vectors re-checks without news.
	recheck time.Duration
	// newVectorIter, when set, replaces the batched vector reader (tests).
	newVectorIter func(ctx context.Context, taskID string, n int) vectorIter
}

// New returns an ingester; the gRPC connection is made lazily.
func New(cfg Config, res *pipeline.Resources, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	conn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("ingest client %s: %w", cfg.Addr, err)
	}
	return &Service{cfg: cfg, res: res, nc: nc, status: status.New(res.Status), conn: conn,
		client: pb.NewIngestServiceClient(conn), log: log, recheck: 2 * time.Second}, nil
}

// Run ingests until ctx ends, then closes the gRPC connection.
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	r, err := stage.ForStage(ctx, s.res, pipeline.Ingest, s, s.log, s.cfg.Workers, s.cfg.RetryDelay)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// Handle sends one document to the backend.
func (s *Service) Handle(ctx context.Context, msg jetstream.Msg) error {
	var job pipeline.IngestJob
	if err := pipeline.Decode(msg.Data(), &job); err != nil {
		return stage.Permanent(err)
	}
	id := job.Task.ID
	log := s.log.With("task_id", id)
	st, err := s.status.Get(ctx, id)
	if err != nil && !errors.Is(err, status.ErrNotFound) {
		return err
	}
	if st.State.Terminal() {
		// Done: the backend has it and cannot take it twice. Failed: nothing to send.
		log.Info("task already ended; not sending", "state", st.State)
		return nil
	}
	ready, err := s.waitVectors(ctx, id, job.Chunks)
	if err != nil || !ready {
		return err
	}
	st, err = s.status.Update(ctx, id, func(st *status.Status) {
		st.State = status.Ingesting
		st.Attempts++
	})
	if errors.Is(err, status.ErrTerminal) {
		return nil
	}
	if err != nil {
		return err
	}
	earlierWhole := st.SentWhole // an attempt before this one that sent everything
	resp, err := s.send(ctx, job, st.Attempts)
	if err == nil && alreadyWhole(resp, job.Chunks) && earlierWhole > 0 {
		// Attempt earlierWhole sent every chunk and its answer was lost
		// (the process died, or the connection broke after the backend
		// committed); the backend now refuses every chunk of the copy as
		// already stored: it holds the whole document once.
		log.Warn("backend already holds every chunk from an earlier attempt", "attempt", earlierWhole)
		return s.done(ctx, id, job.Chunks, fmt.Sprintf("stored by attempt %d, whose answer was lost", earlierWhole))
	}
	if err != nil {
		if refused(err) {
			// The backend answered with an error of its own (a duplicate
			// file_hash from an earlier partial attempt, a rejected
			// message): sending again cannot help.
			return stage.Permanent(fmt.Errorf("ingest %s: backend refused the document: %w", id, err))
		}
		// The stream broke before the backend answered: send it again whole.
		log.Warn("ingest stream failed", "attempt", st.Attempts, "err", err)
		return fmt.Errorf("ingest %s: %w", id, err)
	}
	if !resp.GetSuccess() {
		return stage.Permanent(fmt.Errorf("ingest %s: backend refused the document: %s (stored %d of %d, failed %d)",
			id, resp.GetMessage(), resp.GetChunksStored(), job.Chunks, resp.GetChunksFailed()))
	}
	log.Info("ingested", "chunks", resp.GetChunksStored(), "backend_ms", resp.GetProcessingTimeMs())
	return s.done(ctx, id, int(resp.GetChunksStored()), "")
}

func (s *Service) done(ctx context.Context, id string, stored int, note string) error {
	_, err := s.status.Update(ctx, id, func(st *status.Status) {
		st.State = status.Done
		st.Ingested = stored
		st.Error = note
	})
	if err != nil && !errors.Is(err, status.ErrTerminal) {
		return err
	}
	return nil
}

// alreadyWhole reports whether the backend refused a document only
// because it already holds every one of its n chunks: nothing stored,
// every chunk failed, and the reason is a unique-key violation
// (PostgreSQL's SQLSTATE 23505, as the backend passes it through). A
// backend that refuses at the metadata (a duplicate file_hash as an
// error status) tells too little, and the task fails as before.
func alreadyWhole(resp *pb.IngestResponse, n int) bool {
	msg := resp.GetMessage()
	return !resp.GetSuccess() && resp.GetChunksStored() == 0 && int(resp.GetChunksFailed()) == n && n > 0 &&
		(strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key"))
}

// waitVectors returns true once the vector stream holds all n vectors of
// the task, false (and no error) if the task ended meanwhile. It wakes on
// each new vector instead of polling, re-checking every few seconds in
// case a notification was missed.
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
	for {
		have, err := countVectors(ctx, stream, taskID)
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
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, stage.Permanent(fmt.Errorf("ingest %s: only %d of %d chunks were embedded after %s", taskID, have, n, s.cfg.VectorWait))
		case <-news:
		case <-time.After(s.recheck):
		}
	}
}

func countVectors(ctx context.Context, stream jetstream.Stream, taskID string) (int, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(pipeline.VectorFilter(taskID)))
	if err != nil {
		return 0, fmt.Errorf("count vectors of %s: %w", taskID, err)
	}
	return len(info.State.Subjects), nil
}

// send streams the document: metadata, then each chunk in index order.
func (s *Service) send(ctx context.Context, job pipeline.IngestJob, attempt int) (*pb.IngestResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	t := job.Task
	fileID := t.DocumentID()
	call, err := s.client.IngestDocument(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", s.cfg.Addr, err)
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
		return nil, s.sendErr(call, "metadata", err)
	}
	vecs := s.readVectors(ctx, t.ID, job.Chunks)
	defer vecs.Close()
	for i := 0; i < job.Chunks; i++ {
		v, err := vecs.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("read vector %d: %w", i, err)
		}
		c := v.Chunk
		if err := call.Send(&pb.IngestRequest{RequestType: &pb.IngestRequest_Chunk{Chunk: &pb.TextChunk{
			ChunkId: c.ID, FileId: fileID, Chapter: c.Chapter, ChapterNum: c.ChapterNum, ChunkText: c.Text,
			EmbeddingVector: v.Vector, ChunkIndex: int32(c.Index), PageStart: int32(c.PageStart), PageEnd: int32(c.PageEnd),
		}}}); err != nil {
			return nil, s.sendErr(call, fmt.Sprintf("chunk %d", i), err)
		}
	}
	// Every chunk is on its way: note it before asking for the answer, so
	// a restart after a lost answer knows this attempt was whole.
	if _, err := s.status.Update(ctx, t.ID, func(st *status.Status) { st.SentWhole = attempt }); err != nil {
		return nil, fmt.Errorf("record attempt %d: %w", attempt, err)
	}
	resp, err := call.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("close stream: %w", err)
	}
	return resp, nil
}

// sendErr turns a failed Send into the stream's real status: Send
// returns io.EOF when the server ended the call, and the reason is in Recv.
func (s *Service) sendErr(call grpc.ClientStreamingClient[pb.IngestRequest, pb.IngestResponse], what string, err error) error {
	if _, rerr := call.CloseAndRecv(); rerr != nil {
		return fmt.Errorf("send %s: %w", what, rerr)
	}
	return fmt.Errorf("send %s: %w", what, err)
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
