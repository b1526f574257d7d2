// Package parser is the parse stage: it reads a fetched PDF from the object
// store into a temporary file, extracts text page by page with the PDF
// engine (MuPDF by default), and publishes each chunk to the embed subject
// as soon as it is cut, then the document's summary to the ingest subject.
package parser

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
	"github.com/pdfpipe/pdfpipe/pkg/metrics"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdfium"
)

// Settings are the parser's own environment variables (besides
// servicemain.Settings and GCSettings): the one description its
// ConfigFromEnv reads, its -h lists and the README's table is generated
// from.
var Settings = envconf.Settings{
	envconf.String("TEMP_DIR", "", "one temporary file per document being parsed (MuPDF needs a seekable file), removed after").
		Computed("OS temp dir"),
	envconf.Int("PARSE_WORKERS", 2, "documents parsed at once"),
	envconf.String("CHUNK_UNIT", string(pdftext.UnitRunes),
		"`runes`, or `tokens` (estimated: 1 per 3 ASCII bytes + 1 per other character, as the embedder counts)"),
	envconf.Int("CHUNK_SIZE", 0, "the longest chunk, in `CHUNK_UNIT`").
		Computed(fmt.Sprintf("`%d` runes, `%d` tokens", pdftext.DefaultTargetRunes, pdftext.DefaultTargetTokens)),
	envconf.Int("CHUNK_OVERLAP", 0, "how much of a chunk's end the next one repeats, in `CHUNK_UNIT`").
		Computed(fmt.Sprintf("`%d` runes, `%d` tokens", pdftext.DefaultOverlapRunes, pdftext.DefaultOverlapTokens)),
	envconf.String("CHUNK_ID_SCHEME", ChunkIDDocID,
		"`docid`: md5(\"<DocID>_<index>\"), as the backend and the original service expect; `content`: from the PDF's SHA-256, "+
			"a digest of the chunking settings and the index — the same file under two DocIDs then gets the same ids, which a "+
			"backend keyed on chunk_id refuses"),
	envconf.Int("MAX_PAGES", pdftext.DefaultMaxPages, "larger documents fail with that reason"),
	envconf.String("PDF_ENGINE", mupdf.DefaultEngine,
		"`mupdf` (go-fitz, AGPL) or `pdfium` (go-pdfium in WebAssembly, MIT; about a quarter of MuPDF's speed; the default "+
			"of a parser built with `-tags nomupdf`)"),
	envconf.Int("PARSE_PAGE_WORKERS", 0, "page-range workers for one large document (64 pages or more); `0`: one per CPU, at most 4. "+
		"The extra ones start only while a CPU has no other document to read (at most one open copy per CPU across documents)"),
	envconf.Duration("PARSE_PAGE_TIMEOUT", pdftext.DefaultPageTimeout, "a page slower than this is skipped and counted"),
	envconf.Duration("PARSE_DOC_TIMEOUT", pdftext.DefaultDocTimeout, "a document slower than this fails"),
	envconf.Int("MUPDF_STORE_MIB", defaultMuPDFStoreMiB,
		"MuPDF's resource cache per open document (each page worker of each document in flight has one); fonts stay "+
			"loaded whatever its size. 64 made LilyPond's notation manual hold 211 MiB and cost 30 % more CPU; 0: the engine's default (64)"),
	envconf.Int("CHUNKS_PER_MESSAGE", defaultChunksPerMessage,
		"consecutive chunks sent to the embedders in one message (fewer past 256 KiB)"),
	envconf.Duration("PDF_PASSWORD_WAIT", 10*time.Second,
		"how long a PDF that needs a password (one an empty user password does not open) waits for its task's password "+
			"from `ProvideAPIKey` with provider `pdf` before the task fails; `0s` reads what is there without waiting"),
}

// Config of the parser (Settings).
type Config struct {
	Workers int    // PARSE_WORKERS: documents parsed at once
	TempDir string // TEMP_DIR: one file per document in flight
	// Chunks: CHUNK_UNIT, CHUNK_SIZE and CHUNK_OVERLAP (in that unit),
	// MAX_PAGES, PARSE_PAGE_WORKERS, PARSE_PAGE_TIMEOUT and
	// PARSE_DOC_TIMEOUT.
	Chunks pdftext.Options
	// RetryDelay is the first redelivery backoff after a transient
	// failure (it doubles per delivery); 0 means the runner's default, 1s.
	RetryDelay time.Duration
	// Engine is the PDF engine, PDF_ENGINE: "mupdf" or "pdfium"; empty is
	// mupdf.DefaultEngine.
	Engine string
	// ChunkIDScheme is CHUNK_ID_SCHEME: "docid" (also when empty;
	// ChunkID, what the backend has always stored) or "content"
	// (ContentChunkID: from the document's bytes and the chunking
	// settings, the same on every re-run of the same file and settings).
	ChunkIDScheme string
	// ChunksPerMessage is CHUNKS_PER_MESSAGE: chunks sent to the embedders
	// in one message (fewer when they pass 256 KiB). One message per chunk
	// cost the parser more than parsing the chunk's text; 0 means 16.
	ChunksPerMessage int
	// MuPDFStore is MUPDF_STORE_MIB in bytes: the most MuPDF's resource
	// cache may hold per open document, and every page worker of every
	// document in flight opens one (0: mupdf.DefaultMaxStore).
	MuPDFStore int
	// PasswordWait is PDF_PASSWORD_WAIT: how long an encrypted PDF that no
	// empty password opens waits for its task's password
	// (APIKeyService.ProvideAPIKey with provider "pdf") before the task
	// fails; 0 reads what is there without waiting.
	PasswordWait time.Duration

	env envconf.Values
}

// Embed messages.
const (
	defaultChunksPerMessage = 16
	// maxMessageBytes keeps an embed message well under NATS's default
	// 1 MiB payload limit.
	maxMessageBytes = 256 << 10
)

// defaultMuPDFStoreMiB is MUPDF_STORE_MIB's default. pdftext's 64 MiB
// per open document, times the page workers of two documents in flight,
// let MuPDF keep up to 256 MiB: LilyPond's 930-page notation manual alone
// made a parse hold 211 MiB with it, 50 MiB with 4 MiB, and take 30 %
// more CPU than with the smaller store; over the 60 Debian manuals of
// bench/e2e.sh, 4 MiB cost the least CPU (docs/PERFORMANCE.md). Fonts do
// not depend on it: a document's fonts stay loaded while it is open (a
// 200-page PDF with a fully embedded 4 MiB CJK font parses at the same
// speed with 4 and 64 MiB).
const defaultMuPDFStoreMiB = 4

// Chunk id schemes.
const (
	ChunkIDDocID   = "docid"
	ChunkIDContent = "content"
)

// ConfigFromEnv reads the parser's settings.
func ConfigFromEnv(getenv envconf.Getenv) (Config, error) {
	r := envconf.New(getenv, Settings)
	unit := pdftext.Unit(r.String("CHUNK_UNIT"))
	size, overlap := pdftext.DefaultTargetRunes, pdftext.DefaultOverlapRunes
	if unit == pdftext.UnitTokens {
		size, overlap = pdftext.DefaultTargetTokens, pdftext.DefaultOverlapTokens
	}
	c := Config{
		Workers: r.Int("PARSE_WORKERS"),
		TempDir: r.StringOr("TEMP_DIR", os.TempDir()),
		Chunks: pdftext.Options{
			Unit:         unit,
			ChunkSize:    r.IntOr("CHUNK_SIZE", size),
			ChunkOverlap: r.IntOr("CHUNK_OVERLAP", overlap),
			MaxPages:     r.Int("MAX_PAGES"),
			Workers:      r.Int("PARSE_PAGE_WORKERS"),
			PageTimeout:  r.Duration("PARSE_PAGE_TIMEOUT"),
			DocTimeout:   r.Duration("PARSE_DOC_TIMEOUT"),
		},
		Engine:           r.String("PDF_ENGINE"),
		ChunkIDScheme:    r.String("CHUNK_ID_SCHEME"),
		PasswordWait:     r.Duration("PDF_PASSWORD_WAIT"),
		ChunksPerMessage: r.Int("CHUNKS_PER_MESSAGE"),
		MuPDFStore:       r.Int("MUPDF_STORE_MIB") << 20,
	}
	c.env = r.Values()
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return errors.New("PARSE_WORKERS must be at least 1")
	}
	if c.Chunks.Unit != "" && c.Chunks.Unit != pdftext.UnitRunes && c.Chunks.Unit != pdftext.UnitTokens {
		return fmt.Errorf("CHUNK_UNIT %q: want runes or tokens", c.Chunks.Unit)
	}
	if c.Chunks.ChunkSize < 100 {
		return errors.New("CHUNK_SIZE must be at least 100 (runes or tokens)")
	}
	if c.Chunks.Workers < 0 {
		return errors.New("PARSE_PAGE_WORKERS must not be negative (0: one per CPU, at most 4)")
	}
	if c.Chunks.PageTimeout < 0 || c.Chunks.DocTimeout < 0 {
		return errors.New("PARSE_PAGE_TIMEOUT and PARSE_DOC_TIMEOUT must not be negative")
	}
	if st, err := os.Stat(c.TempDir); err != nil || !st.IsDir() {
		return fmt.Errorf("TEMP_DIR %q is not a directory", c.TempDir)
	}
	if c.Engine != "" && c.Engine != "mupdf" && c.Engine != "pdfium" {
		return fmt.Errorf("PDF_ENGINE %q: want mupdf or pdfium", c.Engine)
	}
	if c.Engine == "mupdf" && mupdf.DefaultEngine != "mupdf" {
		return errors.New("PDF_ENGINE=mupdf: this binary was built without MuPDF (-tags nomupdf); use pdfium")
	}
	if c.ChunksPerMessage < 0 || c.ChunksPerMessage > 1000 {
		return errors.New("CHUNKS_PER_MESSAGE must be between 1 and 1000 (0: 16)")
	}
	if c.MuPDFStore < 0 {
		return errors.New("MUPDF_STORE_MIB must not be negative (0: the engine's default)")
	}
	if c.PasswordWait < 0 {
		return errors.New("PDF_PASSWORD_WAIT must not be negative")
	}
	if c.ChunkIDScheme != "" && c.ChunkIDScheme != ChunkIDDocID && c.ChunkIDScheme != ChunkIDContent {
		return fmt.Errorf("CHUNK_ID_SCHEME %q: want %s or %s", c.ChunkIDScheme, ChunkIDDocID, ChunkIDContent)
	}
	return nil
}

// LogValue lists the settings ConfigFromEnv read.
func (c Config) LogValue() slog.Value { return c.env.LogValue() }

// Service is a running parser.
type Service struct {
	cfg    Config
	res    *pipeline.Resources
	status *status.Store
	engine pdftext.Engine
	log    *slog.Logger
}

// New returns a parser using the engine cfg.Engine names.
func New(cfg Config, res *pipeline.Resources, log *slog.Logger) *Service {
	if cfg.ChunksPerMessage <= 0 {
		cfg.ChunksPerMessage = defaultChunksPerMessage
	}
	// The documents in flight share the CPUs: a large one's extra page
	// readers start only while a CPU has no other document to read.
	if cfg.Chunks.Readers == nil {
		cfg.Chunks.Readers = pdftext.NewReaderBudget(runtime.GOMAXPROCS(0))
	}
	return &Service{cfg: cfg, res: res, status: status.New(res.Status), engine: newEngine(cfg), log: log}
}

// newEngine returns MuPDF unless cfg names PDFium.
func newEngine(cfg Config) pdftext.Engine {
	if cfg.Engine != "pdfium" {
		return &mupdf.Engine{MaxStore: cfg.MuPDFStore}
	}
	// Every open document holds a PDFium instance, and Extract opens a
	// document once per page range it reads at the same time (up to 4).
	return pdfium.New(pdfium.Config{MaxInstances: cfg.Workers * max(4, cfg.Chunks.Workers)})
}

// Run parses until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if c, ok := s.engine.(io.Closer); ok { // PDFium: its WebAssembly runtime
		defer func() {
			if err := c.Close(); err != nil {
				s.log.Warn("close pdf engine", "err", err)
			}
		}()
	}
	if e, ok := s.engine.(interface{ Init() error }); ok { // fail now, not on the first document
		if err := e.Init(); err != nil {
			return err
		}
	}
	h := stage.NewTyped(s.res, pipeline.Parse, s.log, s.Handle)
	r, err := stage.ForStage(ctx, s.res, pipeline.Parse, h, s.log, s.cfg.Workers, s.cfg.RetryDelay)
	if err != nil {
		return err
	}
	r.Classify = errorClass
	return r.Run(ctx)
}

// Handle parses one document. Chunks are published as they are made,
// without waiting for each PubAck (at most stage.DefaultWindow
// outstanding); every PubAck is checked before the ingest job is
// published and the parse job acknowledged. A redelivered job publishes
// them again under the same message ids, which the stream's duplicate
// window drops, and the vector stream keeps one vector per chunk whatever
// happens.
func (s *Service) Handle(ctx context.Context, j *stage.Job[pipeline.ParseJob]) error {
	job := j.Body
	t := job.Task
	// ErrTerminal (the task ended meanwhile) acks the message.
	if _, err := s.status.Update(ctx, t.ID, func(st *status.Status) {
		st.State = status.Parsing
		st.SHA256, st.Size = job.Document.SHA256, job.Document.Size
	}); err != nil {
		return err
	}
	// Until the task ends (cancelled, or failed by another stage): then
	// ctx ends, the engine stops at the page it reads and emit at the
	// next chunk, and the job is acked. pdfpipe cancel hears from work
	// while it lasts, with the pages parsed.
	work, err := stage.Working(ctx, s.res.JS.Conn(), pipeline.Parse, j.Msg, s.res.Status, "pages")
	if err != nil {
		return err
	}
	defer work.Stop()
	ctx = work.Context()
	path, err := s.download(ctx, job.Document.Object)
	if err != nil {
		if stage.TaskEnded(ctx) {
			return nil
		}
		return err
	}
	defer os.Remove(path)
	// The page count, for the progress pdfpipe status --watch shows: one
	// more open of the document (a few ms for 2,000 pages); a document
	// the engine cannot open fails in Extract with the reason.
	pages, _ := pdftext.Probe(ctx, s.engine, path, s.cfg.Chunks)

	chunkID := func(index int) string { return ChunkID(t.DocumentID(), index) }
	if s.cfg.ChunkIDScheme == ChunkIDContent {
		docSHA := job.Document.SHA256
		if docSHA == "" {
			if docSHA, err = fileSHA256(path); err != nil {
				return err
			}
		}
		digest := s.cfg.Chunks.Digest(engineName(s.cfg))
		chunkID = func(index int) string { return ContentChunkID(docSHA, digest, index) }
	}

	// Chunks go out asynchronously, up to stage.DefaultWindow awaiting
	// their PubAck; the ingest job (and so the parse job's ack) waits for
	// all of them.
	skip := t.SkipEmbedding()
	// Chunks travel a few to a message (at the subject of the first one's
	// index): cut the same way on every run, so a redelivered parse
	// publishes the same messages under the same ids.
	var (
		batch      []pipeline.Chunk
		batchBytes int
		parsed     int // the last page of the last chunk cut
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		idx := strconv.Itoa(batch[0].Index)
		// Binary embed messages (pipeline.EncodeEmbedJob): no JSON
		// escaping of the text, which the embedder and the ingester read.
		m := pipeline.NewEmbedMsg(pipeline.Embed.Subject(t.ID, idx),
			pipeline.EmbedJob{TaskID: t.ID, SkipEmbedding: skip, Replay: job.Replay, Chunks: batch})
		err := j.Out.PublishMsgAsync(ctx, m, jetstream.WithMsgID(pipeline.MsgID(t.ID, job.Replay, "embed", idx)))
		batch, batchBytes = nil, 0
		return err
	}
	emit := func(c pdftext.Chunk) error {
		if ctx.Err() != nil { // chunks of pages read before the end are not sent
			return context.Cause(ctx)
		}
		parsed = c.PageEnd
		work.SetProgress(parsed, pages)
		batch = append(batch, pipeline.Chunk{
			ID: chunkID(c.Index), Index: c.Index, Text: c.Text,
			Chapter: c.Chapter, ChapterNum: c.ChapterNum, PageStart: c.PageStart, PageEnd: c.PageEnd,
		})
		batchBytes += len(c.Text) + len(c.Chapter) + 128
		if len(batch) >= s.cfg.ChunksPerMessage || batchBytes >= maxMessageBytes {
			return flush()
		}
		return nil
	}
	info, err := pdftext.Extract(ctx, s.engine, path, s.cfg.Chunks, emit)
	if errors.Is(err, pdftext.ErrEncrypted) && s.cfg.Chunks.Password == "" {
		// Opening failed before any chunk was cut: try the task's password.
		var opts pdftext.Options
		if opts, err = s.withPassword(ctx, t.ID, err); err == nil {
			info, err = pdftext.Extract(ctx, s.engine, path, opts, emit)
		}
	}
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = j.Out.Wait(ctx)
	}
	if err != nil {
		if stage.TaskEnded(ctx) {
			s.log.Info("task ended while parsing; stopped", "task_id", t.ID, "cause", context.Cause(ctx),
				"pages_parsed", parsed, "pages", pages, "chunks_cut", info.Chunks)
			return nil
		}
		return classify(t.ID, err)
	}
	j.Log.Info("parsed", "pages", info.Pages, "chunks", info.Chunks, "chapters", info.Chapters,
		"empty_pages", info.EmptyPages, "unreadable_pages", info.UnreadablePages, "skipped_pages", info.SkippedPages)
	stage.Report(ctx, metrics.Work{Documents: 1, Pages: info.Pages, Chunks: info.Chunks, Bytes: job.Document.Size})
	if _, err := s.status.Update(ctx, t.ID, func(st *status.Status) {
		st.State = status.Embedding
		st.Pages, st.EmptyPages, st.Chunks, st.Chapters = info.Pages, info.EmptyPages, info.Chunks, info.Chapters
		st.UnreadablePages = info.UnreadablePages
	}); errors.Is(err, status.ErrTerminal) || stage.TaskEnded(ctx) {
		return nil // ended meanwhile: nothing to ingest
	} else if err != nil {
		return err
	}
	err = j.Out.Publish(ctx, pipeline.Ingest.Subject(t.ID), pipeline.IngestJob{
		Task: t, Document: job.Document, Pages: info.Pages, EmptyPages: info.EmptyPages,
		Chunks: info.Chunks, Chapters: info.Chapters, Replay: job.Replay,
	}, "ingest")
	if err != nil && stage.TaskEnded(ctx) {
		return nil
	}
	return err
}

// withPassword returns the chunking options with the task's PDF password,
// for a PDF that needs one (encErr says so: an empty user password did
// not open it). The password comes from the keys bucket (the gateway puts
// it there), waiting up to PasswordWait for it; it never enters a log line
// or a message.
func (s *Service) withPassword(ctx context.Context, taskID string, encErr error) (pdftext.Options, error) {
	opts := s.cfg.Chunks
	pass, err := pipeline.GetPDFPassword(ctx, s.res.Keys, taskID, s.cfg.PasswordWait)
	switch {
	case errors.Is(err, pipeline.ErrNoKey):
		return opts, fmt.Errorf("%w (no password for the task arrived within %s; send it with ProvideAPIKey, provider %q)",
			encErr, s.cfg.PasswordWait, pipeline.PDFPasswordProvider)
	case pipeline.IsSealError(err):
		return opts, stage.Permanent(fmt.Errorf("reading the PDF password of %s: %w", taskID, err))
	case err != nil:
		return opts, err // transient: the keys bucket is unavailable
	}
	opts.Password = pass
	return opts, nil
}

// download copies the PDF into a temporary file: MuPDF wants a seekable
// file, and the bytes never need to be in memory whole (CopyObject holds
// one chunk at a time and checks the digest).
func (s *Service) download(ctx context.Context, object string) (string, error) {
	f, err := os.CreateTemp(s.cfg.TempDir, "pdfpipe-*.pdf")
	if err != nil {
		return "", fmt.Errorf("temp file: %w", err)
	}
	_, err = s.res.CopyObject(ctx, object, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("temp file: %w", cerr)
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return "", stage.Permanent(fmt.Errorf("pdf %s is no longer in the object store (retention expired?)", object))
		}
		return "", fmt.Errorf("get pdf: %w", err)
	}
	return f.Name(), nil
}

// classify makes the PDF's own problems permanent: retrying cannot fix them.
func classify(taskID string, err error) error {
	for _, perm := range []error{pdftext.ErrEncrypted, pdftext.ErrNotPDF, pdftext.ErrCorrupt, pdftext.ErrTooManyPages, pdftext.ErrNoText, pdftext.ErrUnreadable, pdftext.ErrTimeout} {
		if errors.Is(err, perm) && !errors.Is(err, context.Canceled) { // shutting down: redelivered
			return stage.Permanent(fmt.Errorf("parse %s: %w", taskID, err))
		}
	}
	return fmt.Errorf("parse %s: %w", taskID, err)
}

// errorClass names the class of a parse error for metrics and spans.
func errorClass(err error) stage.Class {
	switch {
	case errors.Is(err, pdftext.ErrTooManyPages):
		return stage.ClassTooLarge
	case errors.Is(err, pdftext.ErrTimeout):
		return stage.ClassTimeout
	case errors.Is(err, pdftext.ErrEncrypted), errors.Is(err, pdftext.ErrNotPDF), errors.Is(err, pdftext.ErrCorrupt),
		errors.Is(err, pdftext.ErrNoText), errors.Is(err, pdftext.ErrUnreadable):
		return stage.ClassBadInput
	}
	return ""
}

// ContentChunkID is the chunk id of CHUNK_ID_SCHEME=content: the first
// 32 hex digits of the SHA-256 of the document's SHA-256 (hex), the
// chunking settings' digest (pdftext.Options.Digest) and the chunk's
// index, so the same file cut the same way gets the same ids whatever its
// task or DocID.
func ContentChunkID(docSHA256, configDigest string, index int) string {
	sum := sha256.Sum256([]byte(docSHA256 + "\x00" + configDigest + "\x00" + strconv.Itoa(index)))
	return hex.EncodeToString(sum[:16])
}

// engineName is the engine's name in the chunking digest.
func engineName(cfg Config) string {
	if cfg.Engine == "pdfium" {
		return "pdfium"
	}
	return "mupdf"
}

// fileSHA256 returns the lowercase hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash pdf: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash pdf: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ChunkID is the id the backend stores a chunk under: md5 hex of
// "<DocID>_<index>", as the original service computed it, so ids stay
// stable across re-runs and across the two implementations.
func ChunkID(docID string, index int) string {
	sum := md5.Sum([]byte(docID + "_" + strconv.Itoa(index)))
	return hex.EncodeToString(sum[:])
}
