package ingester

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
)

// vectorIter yields a task's vectors in chunk-index order.
type vectorIter interface {
	// Next returns the next vector. A vector that cannot be decoded is a
	// stage.Permanent error; anything else may be worth a retry.
	Next(ctx context.Context) (pipeline.Vector, error)
	// Close stops reading ahead; it must be called.
	Close()
}

// Reading vectors in batches. A document's vectors sit in vector batches
// (pdf.vec.<task>.<first>.<count>: the vectors of one embed message's
// chunks and the stream sequence of that message, which holds their text)
// or, stored by embedders older than batches, one per chunk with its text
// (pdf.vec.<task>.<index>). The subject names alone say which chunks are
// there (pipeline.CoverVectors), so the reader first lists the task's
// vector subjects and picks the spans that hold chunks 0…n-1 in order.
// Then it reads windows of consecutive spans, each in one direct-get
// request (DIRECT.GET with multi_last listing the window's subjects,
// nats-server ≥ 2.11): the server answers with every message of the window
// back to back, then an end-of-batch status. The answers come in stream
// order, not index order, so each lands in its slot of the window;
// subjects the answer lacks (the server stops at max_bytes, a
// slow-consumer drop) are asked for again, and a window that makes no
// progress is an error. The texts of a window's batches are read from the
// embed messages in one more direct get on the stage stream (by sequence,
// filtered on the task's embed subjects: the parser publishes them one
// after another, so one request usually returns exactly those needed). A
// goroutine reads and decodes the next window while the current one is
// sent, so at most three windows (about 3×256 chunks, a few MiB) are held,
// whatever the document's size.
//
// An ordered consumer over pdf.vec.<task>.> was the alternative: it
// delivers in stream order, which is the order the embedders finished, so
// putting chunks back in index order needs a buffer as large as the
// embedders' disorder, unbounded in the worst case (chunk 0 embedded last).
// Windows by index bound memory by construction.

const (
	// vectorWindow is how many consecutive chunks one request asks for
	// at least (whole spans; the server answers at most 1024 subjects per
	// multi_last request).
	vectorWindow = 256
	// maxWindowSubjects is the server's limit of subjects per multi_last
	// request.
	maxWindowSubjects = 1024
	// vectorWindowBytes bounds the bytes of one answer; subjects left out
	// are asked for again.
	vectorWindowBytes = 8 << 20
	// vectorReadTimeout bounds the wait for the next message of an answer.
	vectorReadTimeout = 30 * time.Second
)

// readVectors returns the reader send uses for a task's n vectors.
func (s *Service) readVectors(ctx context.Context, taskID string, n int) vectorIter {
	if s.newVectorIter != nil {
		return s.newVectorIter(ctx, taskID, n)
	}
	return newBatchReader(ctx, s.res.JS, taskID, n, vectorWindow, vectorWindowBytes)
}

type vectorWindowResult struct {
	vecs []pipeline.Vector
	err  error
}

// batchReader reads n vectors in windows of window chunks, one window ahead.
type batchReader struct {
	windows <-chan vectorWindowResult
	cancel  context.CancelFunc
	done    chan struct{}
	cur     []pipeline.Vector
	err     error
}

// newBatchReader starts reading n vectors of taskID, window chunks at a
// time (whole spans), each answer at most maxBytes long (beyond that the
// server stops early and the rest is asked for again).
func newBatchReader(ctx context.Context, js jetstream.JetStream, taskID string, n, window, maxBytes int) *batchReader {
	ctx, cancel := context.WithCancel(ctx)
	windows := make(chan vectorWindowResult, 1)
	r := &batchReader{windows: windows, cancel: cancel, done: make(chan struct{})}
	f := &windowFetcher{js: js, taskID: taskID, maxBytes: maxBytes}
	go func() {
		defer close(r.done)
		defer close(windows)
		spans, err := listSpans(ctx, js, taskID, n)
		if err != nil {
			select {
			case windows <- vectorWindowResult{err: err}:
			case <-ctx.Done():
			}
			return
		}
		for from := 0; from < len(spans); {
			to, chunks := from, 0
			for to < len(spans) && chunks < window && to-from < maxWindowSubjects {
				chunks += spans[to].Count
				to++
			}
			vecs, err := f.fetch(ctx, spans[from:to], chunks)
			select {
			case windows <- vectorWindowResult{vecs: vecs, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			from = to
		}
	}()
	return r
}

// listSpans returns the spans that hold chunks 0…n-1 of the task, in
// order, or an error (wrapping jetstream.ErrMsgNotFound: worth a retry)
// when some chunk has no vector.
func listSpans(ctx context.Context, js jetstream.JetStream, taskID string, n int) ([]pipeline.VectorSpan, error) {
	stream, err := js.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		return nil, fmt.Errorf("vector stream: %w", err)
	}
	spans, have, err := coverVectors(ctx, stream, taskID, n)
	if err != nil {
		return nil, err
	}
	if have < n {
		return nil, fmt.Errorf("vectors of %s: %d of %d chunks are stored: %w", taskID, have, n, jetstream.ErrMsgNotFound)
	}
	return spans, nil
}

// coverVectors lists the task's vector subjects and returns the spans
// that hold its chunks 0…n-1 in order and how many of them have a vector
// (pipeline.CoverVectors): n once every one has.
func coverVectors(ctx context.Context, stream jetstream.Stream, taskID string, n int) ([]pipeline.VectorSpan, int, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(pipeline.VectorFilter(taskID)))
	if err != nil {
		return nil, 0, fmt.Errorf("list vectors of %s: %w", taskID, err)
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	for s := range info.State.Subjects {
		subjects = append(subjects, s)
	}
	spans, have := pipeline.CoverVectors(taskID, subjects, n)
	return spans, have, nil
}

// Next returns the next vector in index order.
func (r *batchReader) Next(ctx context.Context) (pipeline.Vector, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return pipeline.Vector{}, r.err
		}
		select {
		case <-ctx.Done():
			return pipeline.Vector{}, ctx.Err()
		case w, ok := <-r.windows:
			switch {
			case !ok:
				r.err = errors.New("no more vectors")
			case w.err != nil:
				r.err = w.err
			default:
				r.cur = w.vecs
			}
		}
	}
	v := r.cur[0]
	r.cur[0] = pipeline.Vector{} // let the window go as it is consumed
	r.cur = r.cur[1:]
	return v, nil
}

// Close stops the read-ahead and waits for it.
func (r *batchReader) Close() {
	r.cancel()
	<-r.done
}

// windowFetcher reads windows of one task's vectors.
type windowFetcher struct {
	js       jetstream.JetStream
	taskID   string
	maxBytes int
}

// stored is a span's message: a vector batch or a single vector.
type stored struct {
	batch  pipeline.VectorBatch
	single pipeline.Vector
	ok     bool
}

// fetch returns the vectors of spans (chunks of them in all), in order,
// each with its chunk.
func (f *windowFetcher) fetch(ctx context.Context, spans []pipeline.VectorSpan, chunks int) ([]pipeline.Vector, error) {
	msgs := make([]stored, len(spans))
	slot := make(map[string]int, len(spans))
	for i, sp := range spans {
		slot[sp.Subject] = i
	}
	missing := make([]string, 0, len(spans))
	for _, sp := range spans {
		missing = append(missing, sp.Subject)
	}
	for len(missing) > 0 {
		got, err := f.request(ctx, missing, spans, slot, msgs)
		if err != nil {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("vectors %s of task %s are not in stream: %w", missing[0], f.taskID, jetstream.ErrMsgNotFound)
		}
		missing = missing[:0]
		for i, m := range msgs {
			if !m.ok {
				missing = append(missing, spans[i].Subject)
			}
		}
	}
	var sources []uint64
	for _, m := range msgs {
		if m.batch.Source != 0 && !slices.Contains(sources, m.batch.Source) {
			sources = append(sources, m.batch.Source)
		}
	}
	texts, err := f.texts(ctx, sources)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Vector, 0, chunks)
	for i, sp := range spans {
		m := msgs[i]
		if m.batch.Source == 0 {
			out = append(out, m.single)
			continue
		}
		job := texts[m.batch.Source]
		for k, vec := range m.batch.Vectors {
			c, ok := chunkAt(job.Chunks, sp.First+k)
			if !ok {
				return nil, stage.Permanent(fmt.Errorf("vectors %s of task %s: the embed message they came from (stream %s seq %d) holds no chunk %d",
					sp.Subject, f.taskID, pipeline.Stream, m.batch.Source, sp.First+k))
			}
			out = append(out, pipeline.Vector{TaskID: m.batch.TaskID, Model: m.batch.Model, Chunk: c, Vector: vec})
		}
	}
	return out, nil
}

// chunkAt finds the chunk of index i in chunks (consecutive indexes,
// as the parser cuts them, looked up directly).
func chunkAt(chunks []pipeline.Chunk, i int) (pipeline.Chunk, bool) {
	if len(chunks) > 0 {
		if k := i - chunks[0].Index; k >= 0 && k < len(chunks) && chunks[k].Index == i {
			return chunks[k], true
		}
	}
	for _, c := range chunks {
		if c.Index == i {
			return c, true
		}
	}
	return pipeline.Chunk{}, false
}

// request asks for the listed subjects in one direct get and stores what
// the answer holds in msgs[slot[subject]]; it returns how many new ones
// arrived.
func (f *windowFetcher) request(ctx context.Context, subjects []string, spans []pipeline.VectorSpan, slot map[string]int, msgs []stored) (int, error) {
	got := 0
	req := pipeline.DirectGetRequest{MultiLast: subjects, Batch: len(subjects), MaxBytes: f.maxBytes}
	err := pipeline.DirectGet(ctx, f.js, pipeline.VectorStream, req, vectorReadTimeout, func(m *nats.Msg) error {
		subj := m.Header.Get(jetstream.SubjectHeader)
		i, ok := slot[subj]
		if !ok || msgs[i].ok {
			return nil // not one we asked for
		}
		sp := spans[i]
		st, err := decodeSpan(f.taskID, sp, m.Data)
		if err != nil {
			return stage.Permanent(fmt.Errorf("vectors %s: %w", subj, err))
		}
		msgs[i] = st
		got++
		return nil
	})
	if err != nil {
		return got, fmt.Errorf("read vectors %s.. of %s: %w", subjects[0], f.taskID, err)
	}
	return got, nil
}

// decodeSpan reads the message stored at sp: a vector batch holding
// exactly sp's chunks, or a single vector of chunk sp.First.
func decodeSpan(taskID string, sp pipeline.VectorSpan, data []byte) (stored, error) {
	if len(data) > 0 && data[0] == pipeline.VectorFormat2 {
		b, err := pipeline.DecodeVectorBatch(data)
		if err != nil {
			return stored{}, err
		}
		if b.First != sp.First || len(b.Vectors) != sp.Count || b.Source == 0 {
			return stored{}, fmt.Errorf("holds %d vectors from %d (source %d), its subject says %d from %d", len(b.Vectors), b.First, b.Source, sp.Count, sp.First)
		}
		return stored{batch: b, ok: true}, nil
	}
	v, err := pipeline.DecodeVector(data)
	if err != nil {
		return stored{}, err
	}
	if sp.Count != 1 || v.Chunk.Index != sp.First {
		return stored{}, fmt.Errorf("holds chunk %d, its subject says %d from %d", v.Chunk.Index, sp.Count, sp.First)
	}
	return stored{single: v, ok: true}, nil
}

// texts reads the embed messages at the given stage stream sequences: one
// batched direct get from the lowest, filtered on the task's embed
// subjects, then again from the lowest still missing. A sequence that is
// not there (expired with the stage stream's retention, or purged) is an
// error wrapping jetstream.ErrMsgNotFound.
func (f *windowFetcher) texts(ctx context.Context, seqs []uint64) (map[uint64]pipeline.EmbedJob, error) {
	out := make(map[uint64]pipeline.EmbedJob, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	slices.Sort(seqs)
	want := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		want[s] = true
	}
	filter := pipeline.Embed.Subject(f.taskID) + ".>"
	for len(want) > 0 {
		first := seqs[0]
		for _, s := range seqs {
			if want[s] {
				first = s
				break
			}
		}
		take := func(seq uint64, data []byte) error {
			if !want[seq] {
				return nil
			}
			job, err := pipeline.DecodeEmbedJob(data)
			if err != nil {
				return stage.Permanent(fmt.Errorf("chunk texts of %s (stream %s seq %d): %w", f.taskID, pipeline.Stream, seq, err))
			}
			if job.TaskID != f.taskID {
				return stage.Permanent(fmt.Errorf("chunk texts of %s: stream %s seq %d is an embed message of task %q", f.taskID, pipeline.Stream, seq, job.TaskID))
			}
			out[seq] = job
			delete(want, seq)
			return nil
		}
		req := pipeline.DirectGetRequest{Seq: first, NextBy: filter, Batch: len(want), MaxBytes: f.maxBytes}
		err := pipeline.DirectGet(ctx, f.js, pipeline.Stream, req, vectorReadTimeout, func(m *nats.Msg) error {
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return nil
			}
			return take(seq, m.Data)
		})
		if errors.Is(err, pipeline.ErrNoDirectGet) {
			// Direct gets switched off on the stage stream (a service of an
			// earlier version ran Setup): ask the stream leader instead.
			err = f.getBySeq(ctx, first, take)
		}
		if err != nil {
			return nil, fmt.Errorf("read chunk texts of %s: %w", f.taskID, err)
		}
		if want[first] {
			return nil, fmt.Errorf("chunk texts of %s: stream %s seq %d is gone (past its retention, or purged): %w", f.taskID, pipeline.Stream, first, jetstream.ErrMsgNotFound)
		}
	}
	return out, nil
}

// getBySeq reads one message of the stage stream through the JetStream
// API, for a stream that does not allow direct gets.
func (f *windowFetcher) getBySeq(ctx context.Context, seq uint64, take func(uint64, []byte) error) error {
	stream, err := f.js.Stream(ctx, pipeline.Stream)
	if err != nil {
		return err
	}
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !strings.HasPrefix(m.Subject, pipeline.Embed.Subject(f.taskID)+".") {
		return nil
	}
	return take(seq, m.Data)
}
