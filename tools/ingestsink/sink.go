// Package ingestsink is a reference implementation of cognicore.IngestService:
// a stand-in for the product's Go backend that enforces the backend's
// constraints, records what it receives and can break streams on demand.
//
// It mirrors what the backend does with an IngestDocument stream (read from
// its code: it updates the document row from the metadata, then inserts each
// chunk as it arrives, outside any transaction):
//
//   - The first message must be metadata. The backend crashes on a stream
//     without it; the sink answers codes.InvalidArgument instead.
//   - file_hash carries a UNIQUE index: metadata whose hash is already held
//     by another file_id fails the whole call the way the backend's database
//     error does (codes.Unknown, "duplicate key value violates unique
//     constraint"), before any chunk is read. The same file_id may repeat its
//     own hash (a re-sent document updates its own row).
//   - chunk_id is the chunks' primary key: a chunk_id stored before, by any
//     call, is not stored again and counts in chunks_failed, as does a vector
//     whose length is not the configured dimension (vector(384)) or that
//     holds NaN or infinite values.
//   - success is chunks_failed == 0. Chunks stored before a failure stay
//     stored, so a document sent twice answers success=false the second time.
//
// The sink is stricter than the backend where the backend's leniency would
// only hide a pipeline bug: file_id must be non-empty and file_hash must be 64
// lowercase hex characters (else codes.InvalidArgument), a second metadata
// message or an empty message fails the call, and a chunk with an empty
// chunk_id or a file_id other than the metadata's counts as failed.
//
// Every IngestDocument call is recorded (see Documents, WaitDocuments), and
// what it stored is written to a JSONL log (see Options.Output). SetFault
// breaks streams at chosen points. The sink keeps everything in memory: it is
// meant for tests and development, not for large volumes.
package ingestsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// DefaultDimension is the embedding length the backend stores (vector(384)).
const DefaultDimension = 384

// Positions passed to a fault hook (see SetFault) besides chunk indexes.
const (
	// FaultAtMetadata is passed once the metadata message has been read and
	// validated, before it is stored.
	FaultAtMetadata = -1
	// FaultAtEnd is passed after the client closed its side of the stream
	// and everything was stored, before the response is sent: the window in
	// which the backend has the whole document but the client never learns it.
	FaultAtEnd = -2
)

// maxReasons bounds how many chunk failures a response message lists.
const maxReasons = 3

// Options configures a Sink. The zero value is usable.
type Options struct {
	// Dimension is the required length of every embedding_vector;
	// 0 means DefaultDimension.
	Dimension int
	// Output receives the JSONL log of what is stored; nil discards it. Each
	// IngestDocument call that leaves something stored appends one metadata
	// line and one line per stored chunk, together (in writes of about
	// 1 MiB), followed by Flush when Output has a `Flush() error` method
	// (e.g. *bufio.Writer).
	// Writes are serialized, so Output need not be safe for concurrent use.
	Output io.Writer
	// Logger receives one record per call; nil discards logs.
	Logger *slog.Logger
	// RollbackBrokenStreams makes a stream that breaks on the client's side
	// (cancelled, disconnected) before it half-closes forget everything it
	// stored. By default, as in the backend, what was stored stays stored.
	RollbackBrokenStreams bool
	// ForgetChunks keeps only the metadata and response of each ended
	// call in Documents, not its chunks, so a long-running sink's memory
	// does not grow with everything it received (the JSONL has it all).
	ForgetChunks bool
	// SingleChunkUnimplemented makes IngestSingleChunk answer
	// codes.Unimplemented, as the current backend does.
	SingleChunkUnimplemented bool
}

// FaultFunc decides whether to break an IngestDocument stream; see SetFault.
type FaultFunc func(fileID string, chunkIndex int) error

// ReceivedChunk is one chunk received by an IngestDocument call.
type ReceivedChunk struct {
	// Chunk is the message as received.
	Chunk *cognicore.TextChunk
	// Stored reports whether the chunk was stored and still is (false after
	// a rollback).
	Stored bool
	// Reason says why the chunk is not stored; empty when Stored.
	Reason string
}

// Document records one IngestDocument call, in the order it ended.
type Document struct {
	// Metadata is the stream's metadata message; nil when it had none.
	Metadata *cognicore.DocumentMetadata
	// Chunks holds every chunk received, in arrival order.
	Chunks []ReceivedChunk
	// Response is the response the sink answered with; nil when it
	// answered with an error.
	Response *cognicore.IngestResponse
	// Err is the error the call ended with; nil on success. (Both are set
	// when sending Response failed.)
	Err error
	// RolledBack reports that everything the call stored was forgotten (a
	// fault without KeepStored, or a broken stream with
	// Options.RollbackBrokenStreams).
	RolledBack bool
}

// Sink implements cognicore.IngestServiceServer. Its methods are safe for
// concurrent use.
type Sink struct {
	cognicore.UnimplementedIngestServiceServer

	dim            int
	log            *slog.Logger
	rollbackBroken bool
	noSingle       bool
	forget         bool

	outMu sync.Mutex
	out   io.Writer

	mu       sync.Mutex
	hashes   map[string]string // file_hash → file_id holding it
	fileHash map[string]string // file_id → its file_hash
	chunks   map[string]string // chunk_id → file_id
	docs     []Document
	changed  chan struct{} // closed and replaced whenever docs grows
	fault    FaultFunc
}

// New returns a Sink configured by opts.
func New(opts Options) *Sink {
	dim := opts.Dimension
	if dim <= 0 {
		dim = DefaultDimension
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	return &Sink{
		dim:            dim,
		log:            logger,
		rollbackBroken: opts.RollbackBrokenStreams,
		noSingle:       opts.SingleChunkUnimplemented,
		forget:         opts.ForgetChunks,
		out:            out,
		hashes:         make(map[string]string),
		fileHash:       make(map[string]string),
		chunks:         make(map[string]string),
		changed:        make(chan struct{}),
	}
}

// Register registers the sink as the IngestService of srv.
func (s *Sink) Register(srv grpc.ServiceRegistrar) {
	cognicore.RegisterIngestServiceServer(srv, s)
}

// SetFault installs a fault hook; nil removes it. During IngestDocument the
// hook is called with the stream's file_id and a position: FaultAtMetadata,
// then each chunk's chunk_index before the chunk is stored, then FaultAtEnd.
// During IngestSingleChunk it is called with the chunk's file_id and
// chunk_index before the chunk is stored.
//
// When the hook returns a non-nil error, the call ends at once with that error
// (a status error keeps its code; any other error reaches the client as
// codes.Unknown) and the chunk at hand is not stored. Everything else the
// call stored is forgotten — metadata, hash and chunk ids, as if the backend
// had run the call in a transaction — unless the error is wrapped with
// KeepStored: then it stays stored, as in the real backend, and a re-sent
// document meets duplicate keys. The hook runs without the sink's locks held
// and may block, e.g. to hold a stream open.
func (s *Sink) SetFault(f FaultFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// KeepStored marks a fault hook's error so that what the call stored before
// the fault stays stored (see SetFault). KeepStored(nil) is nil.
func KeepStored(err error) error {
	if err == nil {
		return nil
	}
	return &keepStoredError{err: err}
}

type keepStoredError struct{ err error }

func (e *keepStoredError) Error() string { return e.err.Error() }
func (e *keepStoredError) Unwrap() error { return e.err }

// Documents returns every IngestDocument call that has ended, in the order
// they ended.
func (s *Sink) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

// WaitDocuments waits until at least n IngestDocument calls have ended and
// returns them as Documents does. When ctx ends first it returns the calls
// ended so far and an error wrapping ctx.Err().
func (s *Sink) WaitDocuments(ctx context.Context, n int) ([]Document, error) {
	for {
		s.mu.Lock()
		if len(s.docs) >= n {
			docs := s.snapshot()
			s.mu.Unlock()
			return docs, nil
		}
		changed := s.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			docs := s.Documents()
			return docs, fmt.Errorf("wait for %d documents, have %d: %w", n, len(docs), ctx.Err())
		}
	}
}

// HasChunk reports whether a chunk with chunkID is stored.
func (s *Sink) HasChunk(chunkID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.chunks[chunkID]
	return ok
}

// snapshot copies s.docs; s.mu must be held.
func (s *Sink) snapshot() []Document {
	docs := make([]Document, len(s.docs))
	for i, d := range s.docs {
		d.Chunks = slices.Clone(d.Chunks)
		docs[i] = d
	}
	return docs
}

// attempt is the state of one IngestDocument call.
type attempt struct {
	start time.Time
	doc   Document

	// What the call changed in the sink's tables, to undo on rollback.
	claimedHash  bool   // the call added hashes[file_hash]
	prevHash     string // fileHash[file_id] before the call
	hadPrevHash  bool
	storedMeta   bool
	storedChunks []string
	written      bool // writeDocument was called
}

// IngestDocument implements cognicore.IngestServiceServer.
func (s *Sink) IngestDocument(stream cognicore.IngestService_IngestDocumentServer) error {
	a := &attempt{start: time.Now()}
	err := s.ingest(stream, a)
	a.doc.Err = err
	s.finish(a)
	return err
}

func (s *Sink) ingest(stream cognicore.IngestService_IngestDocumentServer, a *attempt) error {
	req, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "empty stream: the first message must be metadata")
	}
	if err != nil {
		return err
	}
	meta := req.GetMetadata()
	if meta == nil {
		return status.Errorf(codes.InvalidArgument, "first message must be metadata, got %s", kind(req))
	}
	a.doc.Metadata = meta
	if err := validateMetadata(meta); err != nil {
		return err
	}
	if err := s.callFault(meta.GetFileId(), FaultAtMetadata, a); err != nil {
		return err
	}
	if err := s.storeMetadata(meta, a); err != nil {
		return err
	}

	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if s.rollbackBroken {
				s.rollback(a, "stream broken")
			}
			return err
		}
		chunk := req.GetChunk()
		if chunk == nil {
			return status.Errorf(codes.InvalidArgument, "message %d after metadata: want a chunk, got %s",
				len(a.doc.Chunks)+1, kind(req))
		}
		a.doc.Chunks = append(a.doc.Chunks, ReceivedChunk{Chunk: chunk})
		rc := &a.doc.Chunks[len(a.doc.Chunks)-1]
		if err := s.callFault(meta.GetFileId(), int(chunk.GetChunkIndex()), a); err != nil {
			rc.Reason = "fault: " + err.Error()
			return err
		}
		if reason := s.storeChunk(chunk, meta.GetFileId()); reason != "" {
			rc.Reason = reason
			continue
		}
		rc.Stored = true
		a.storedChunks = append(a.storedChunks, chunk.GetChunkId())
	}

	if err := s.callFault(meta.GetFileId(), FaultAtEnd, a); err != nil {
		return err
	}
	a.doc.Response = s.response(a)
	if err := s.writeDocument(a); err != nil {
		a.doc.Response = nil
		return status.Errorf(codes.Internal, "write output: %v", err)
	}
	if err := stream.SendAndClose(a.doc.Response); err != nil {
		return err
	}
	return nil
}

// finish logs and records an ended call and wakes WaitDocuments.
func (s *Sink) finish(a *attempt) {
	d := a.doc
	if !a.written && a.storedMeta && !d.RolledBack {
		// The call failed but left data stored: log it like any stored document.
		if err := s.writeDocument(a); err != nil {
			s.log.Error("write output", "error", err)
		}
	}
	attrs := []any{
		"file_id", d.Metadata.GetFileId(),
		"chunks", len(d.Chunks),
		"duration", time.Since(a.start),
	}
	switch {
	case d.Err != nil:
		s.log.Warn("ingest document failed", append(attrs, "rolled_back", d.RolledBack, "error", d.Err)...)
	default:
		s.log.Info("ingest document", append(attrs,
			"success", d.Response.GetSuccess(),
			"chunks_stored", d.Response.GetChunksStored(),
			"chunks_failed", d.Response.GetChunksFailed())...)
	}

	if s.forget {
		d.Chunks = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, d)
	close(s.changed)
	s.changed = make(chan struct{})
}

// callFault runs the fault hook; on a fault it rolls the call back unless the
// error was wrapped with KeepStored, and returns the error for the client.
func (s *Sink) callFault(fileID string, pos int, a *attempt) error {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f(fileID, pos)
	if err == nil {
		return nil
	}
	if k, ok := errors.AsType[*keepStoredError](err); ok {
		return k.err
	}
	if a != nil {
		s.rollback(a, "fault")
	}
	return err
}

func validateMetadata(meta *cognicore.DocumentMetadata) error {
	if meta.GetFileId() == "" {
		return status.Error(codes.InvalidArgument, "metadata: file_id is empty")
	}
	if !isSHA256Hex(meta.GetFileHash()) {
		return status.Errorf(codes.InvalidArgument,
			"metadata: file_hash %q is not a lowercase hex SHA-256 (64 characters)", meta.GetFileHash())
	}
	return nil
}

func isSHA256Hex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// storeMetadata updates the document's row, enforcing the UNIQUE file_hash.
func (s *Sink) storeMetadata(meta *cognicore.DocumentMetadata, a *attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, hash := meta.GetFileId(), meta.GetFileHash()
	if owner, ok := s.hashes[hash]; ok && owner != id {
		// The backend returns its database error as is: codes.Unknown.
		return status.Errorf(codes.Unknown,
			`ERROR: duplicate key value violates unique constraint "idx_file_hash" (SQLSTATE 23505): `+
				"file_hash %s is held by file_id %q", hash, owner)
	}
	a.prevHash, a.hadPrevHash = s.fileHash[id]
	if a.hadPrevHash && a.prevHash != hash {
		delete(s.hashes, a.prevHash)
	}
	if _, ok := s.hashes[hash]; !ok {
		a.claimedHash = true
	}
	s.hashes[hash] = id
	s.fileHash[id] = hash
	a.storedMeta = true
	return nil
}

// storeChunk inserts chunk unless a constraint forbids it, and returns why
// it was not stored ("" when stored).
func (s *Sink) storeChunk(chunk *cognicore.TextChunk, fileID string) string {
	if reason := s.checkChunk(chunk); reason != "" {
		return reason
	}
	if fileID != "" && chunk.GetFileId() != fileID {
		return fmt.Sprintf("file_id %q differs from the metadata's %q", chunk.GetFileId(), fileID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chunks[chunk.GetChunkId()]; ok {
		return `ERROR: duplicate key value violates unique constraint "chunks_pkey" (SQLSTATE 23505)`
	}
	s.chunks[chunk.GetChunkId()] = chunk.GetFileId()
	return ""
}

// checkChunk applies the checks that need no state.
func (s *Sink) checkChunk(chunk *cognicore.TextChunk) string {
	if chunk.GetChunkId() == "" {
		return "chunk_id is empty"
	}
	vec := chunk.GetEmbeddingVector()
	if len(vec) != s.dim {
		// pgvector's message for a vector(n) column.
		return fmt.Sprintf("expected %d dimensions, not %d", s.dim, len(vec))
	}
	for _, v := range vec {
		f := float64(v)
		if math.IsNaN(f) {
			return "NaN not allowed in vector"
		}
		if math.IsInf(f, 0) {
			return "infinite value not allowed in vector"
		}
	}
	return ""
}

// rollback forgets everything the call stored.
func (s *Sink) rollback(a *attempt, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range a.storedChunks {
		delete(s.chunks, id)
	}
	a.storedChunks = nil
	if a.storedMeta {
		id, hash := a.doc.Metadata.GetFileId(), a.doc.Metadata.GetFileHash()
		if a.claimedHash {
			delete(s.hashes, hash)
		}
		if a.hadPrevHash {
			s.hashes[a.prevHash] = id
			s.fileHash[id] = a.prevHash
		} else {
			delete(s.fileHash, id)
		}
		a.storedMeta = false
	}
	for i := range a.doc.Chunks {
		if a.doc.Chunks[i].Stored {
			a.doc.Chunks[i].Stored = false
			a.doc.Chunks[i].Reason = "rolled back: " + why
		}
	}
	a.doc.RolledBack = true
}

// response builds the backend's answer for a call that read its whole stream.
func (s *Sink) response(a *attempt) *cognicore.IngestResponse {
	var stored, failed int32
	var reasons []string
	for _, c := range a.doc.Chunks {
		if c.Stored {
			stored++
			continue
		}
		failed++
		if len(reasons) < maxReasons {
			reasons = append(reasons, fmt.Sprintf("chunk %d (%s): %s",
				c.Chunk.GetChunkIndex(), c.Chunk.GetChunkId(), c.Reason))
		}
	}
	received := int32(len(a.doc.Chunks))
	msg := fmt.Sprintf("finish %d chunks", received)
	if failed > 0 {
		msg = fmt.Sprintf("%s, %d failed: %s", msg, failed, strings.Join(reasons, "; "))
		if int(failed) > len(reasons) {
			msg += "; …"
		}
	}
	return &cognicore.IngestResponse{
		Success:          failed == 0,
		Message:          msg,
		ChunksReceived:   received,
		ChunksStored:     stored,
		ChunksFailed:     failed,
		ProcessingTimeMs: time.Since(a.start).Milliseconds(),
		FileId:           a.doc.Metadata.GetFileId(),
	}
}

// IngestSingleChunk implements cognicore.IngestServiceServer: it stores one
// chunk under the same checks as a streamed chunk (no metadata needed) and
// answers with counts of one. The fault hook applies; nothing is stored on a
// fault. With Options.SingleChunkUnimplemented it answers
// codes.Unimplemented, as the current backend does.
func (s *Sink) IngestSingleChunk(ctx context.Context, chunk *cognicore.TextChunk) (*cognicore.IngestResponse, error) {
	if s.noSingle {
		return s.UnimplementedIngestServiceServer.IngestSingleChunk(ctx, chunk)
	}
	start := time.Now()
	if err := s.callFault(chunk.GetFileId(), int(chunk.GetChunkIndex()), nil); err != nil {
		s.log.Warn("ingest single chunk failed", "chunk_id", chunk.GetChunkId(), "error", err)
		return nil, err
	}
	resp := &cognicore.IngestResponse{ChunksReceived: 1, FileId: chunk.GetFileId()}
	if reason := s.storeChunk(chunk, ""); reason != "" {
		resp.ChunksFailed = 1
		resp.Message = fmt.Sprintf("chunk %d (%s): %s", chunk.GetChunkIndex(), chunk.GetChunkId(), reason)
	} else {
		resp.Success = true
		resp.ChunksStored = 1
		resp.Message = "finish 1 chunks"
		var buf bytes.Buffer
		if err := encodeChunk(&buf, chunk); err != nil {
			return nil, status.Errorf(codes.Internal, "encode chunk: %v", err)
		}
		if err := s.write(buf.Bytes()); err != nil {
			return nil, status.Errorf(codes.Internal, "write output: %v", err)
		}
	}
	resp.ProcessingTimeMs = time.Since(start).Milliseconds()
	s.log.Info("ingest single chunk", "chunk_id", chunk.GetChunkId(), "file_id", chunk.GetFileId(),
		"success", resp.GetSuccess())
	return resp, nil
}

func kind(req *cognicore.IngestRequest) string {
	switch req.GetRequestType().(type) {
	case *cognicore.IngestRequest_Metadata:
		return "metadata"
	case *cognicore.IngestRequest_Chunk:
		return "chunk"
	default:
		return "an empty message"
	}
}
