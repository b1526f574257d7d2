package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Vector batches. Up to format 1 the embedder stored one message per
// chunk holding the chunk again, text and all, next to its vector: every
// chunk's text was written to JetStream twice (the embed message and the
// vector), and each chunk cost a message, a PubAck and a direct-get answer
// of its own. Since format 2 the embedder stores one message per embed
// message it handled (split only when it would pass
// MaxVectorBatchBytes), at VectorBatchSubject(task, first, count): the
// vectors of those chunks and the stream sequence of the embed message
// (Source) where their text, ids, chapters and pages already are. The
// ingester reads the text there (pdf.embed messages stay in Stream for the
// same retention as the vectors).
//
// A format 2 message starts with the byte VectorFormat2, followed by:
//
//	uvarint-length-prefixed strings: task id, model
//	uvarint source sequence; varint first chunk index
//	uvarint count, uvarint dimension, then count×dimension float32s,
//	  little-endian, chunk by chunk
//
// Subjects say which chunks they hold: pdf.vec.<task>.<first>.<count> for a
// batch, pdf.vec.<task>.<index> for a vector of format 1 or JSON (one
// chunk). So whether a task's chunks are all embedded is read from the
// subject names alone (CoverVectors), whatever mix of versions stored
// them, and a purge of pdf.vec.<task>.> removes both kinds.
//
// Upgrade order: ingesters first (they read both kinds), then embedders
// (they write batches), then parsers (binary embed messages, which older
// embedders refuse). An older ingester never finds N subjects for N chunks
// of batched vectors and fails the task after its VECTOR_WAIT saying how
// few it found.
const VectorFormat2 byte = 0x02

// MaxVectorBatchBytes bounds the floats of one vector batch message; the
// embedder splits a larger batch (a big dimension, or CHUNKS_PER_MESSAGE
// raised) into several, each at its own subject.
const MaxVectorBatchBytes = 256 << 10

// VectorBatch is the vectors of consecutive chunks First, First+1, … of a
// task, embedded from the embed message at sequence Source of Stream.
type VectorBatch struct {
	TaskID string
	Model  string
	// Source is the Stream sequence of the embed message whose chunks
	// these are: their text and the rest are read there.
	Source uint64
	First  int
	// Vectors holds one vector per chunk, all of one dimension.
	Vectors [][]float32
}

// Subject is where the batch is stored.
func (b VectorBatch) Subject() string {
	return VectorBatchSubject(b.TaskID, b.First, len(b.Vectors))
}

// VectorBatchSubject is the subject of the vector batch of count chunks
// of a task from index first.
func VectorBatchSubject(taskID string, first, count int) string {
	return fmt.Sprintf("pdf.vec.%s.%d.%d", Token(taskID), first, count)
}

// EncodeVectorBatch returns b in binary format 2. Its vectors must all
// have one dimension.
func EncodeVectorBatch(b VectorBatch) ([]byte, error) {
	dim := 0
	if len(b.Vectors) > 0 {
		dim = len(b.Vectors[0])
	}
	size := 1 + 6*binary.MaxVarintLen64 + len(b.TaskID) + len(b.Model) + 4*dim*len(b.Vectors)
	out := make([]byte, 1, size)
	out[0] = VectorFormat2
	out = appendString(out, b.TaskID)
	out = appendString(out, b.Model)
	out = binary.AppendUvarint(out, b.Source)
	out = binary.AppendVarint(out, int64(b.First))
	out = binary.AppendUvarint(out, uint64(len(b.Vectors)))
	out = binary.AppendUvarint(out, uint64(dim))
	for i, v := range b.Vectors {
		if len(v) != dim || dim == 0 {
			return nil, fmt.Errorf("vector batch of %s from %d: vector %d has %d dimensions, the first %d", b.TaskID, b.First, i, len(v), dim)
		}
		for _, f := range v {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	}
	return out, nil
}

// ErrNotVectorBatch is returned by DecodeVectorBatch for a message of
// another format (a single vector: DecodeVector reads it).
var ErrNotVectorBatch = errors.New("not a vector batch")

// DecodeVectorBatch reads a format 2 message. The vectors share one
// backing array.
func DecodeVectorBatch(data []byte) (VectorBatch, error) {
	if len(data) == 0 || data[0] != VectorFormat2 {
		return VectorBatch{}, ErrNotVectorBatch
	}
	var b VectorBatch
	d := vecDecoder{b: data[1:]}
	b.TaskID, b.Model = d.string(), d.string()
	b.Source = d.uvarint()
	b.First = d.int()
	n, dim := d.uvarint(), d.uvarint()
	rest := uint64(len(d.b))
	switch {
	case d.err != nil:
	case n > rest || dim > rest || 4*n*dim > rest || n > 0 && dim == 0:
		d.err = fmt.Errorf("%w: %d vectors of %d floats in %d bytes", errVectorFormat, n, dim, rest)
	case 4*n*dim != rest:
		d.err = fmt.Errorf("%w: %d bytes after the floats", errVectorFormat, rest-4*n*dim)
	}
	if d.err != nil {
		return VectorBatch{}, fmt.Errorf("decode vector batch: %w", d.err)
	}
	if n > 0 {
		all := make([]float32, n*dim)
		for i := range all {
			all[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
		}
		b.Vectors = make([][]float32, n)
		for i := range b.Vectors {
			b.Vectors[i] = all[uint64(i)*dim : uint64(i+1)*dim : uint64(i+1)*dim]
		}
	}
	return b, nil
}

// NewVectorBatchMsg builds the message that stores b at its subject, in
// binary format 2, with the task id header.
func NewVectorBatchMsg(b VectorBatch) (*nats.Msg, error) {
	data, err := EncodeVectorBatch(b)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(b.Subject())
	m.Data = data
	m.Header.Set(HeaderTaskID, b.TaskID)
	return m, nil
}

// VectorSpan is a vector subject and the chunks it holds.
type VectorSpan struct {
	Subject      string
	First, Count int
}

// ParseVectorSubject reads which chunks of the task a vector subject
// holds: pdf.vec.<task>.<index> one, pdf.vec.<task>.<first>.<count> a batch.
func ParseVectorSubject(taskID, subj string) (VectorSpan, bool) {
	rest, ok := strings.CutPrefix(subj, "pdf.vec."+Token(taskID)+".")
	if !ok {
		return VectorSpan{}, false
	}
	first, count, batch := strings.Cut(rest, ".")
	f, err := strconv.Atoi(first)
	if err != nil || f < 0 || strconv.Itoa(f) != first {
		return VectorSpan{}, false
	}
	c := 1
	if batch {
		if c, err = strconv.Atoi(count); err != nil || c < 1 || strconv.Itoa(c) != count {
			return VectorSpan{}, false
		}
	}
	return VectorSpan{Subject: subj, First: f, Count: c}, true
}

// CoverVectors picks, among the vector subjects a task has, spans that
// hold chunks 0…n-1 each once, in order, preferring the largest spans
// (spans of an earlier cut of the document, or beyond n, are passed
// over). It returns them and n, or no spans and how many of the n chunks
// some subject holds.
func CoverVectors(taskID string, subjects []string, n int) ([]VectorSpan, int) {
	byFirst := map[int][]VectorSpan{}
	for _, s := range subjects {
		sp, ok := ParseVectorSubject(taskID, s)
		if !ok || sp.First+sp.Count > n {
			continue
		}
		byFirst[sp.First] = append(byFirst[sp.First], sp)
	}
	starts := make([]int, 0, len(byFirst))
	for f, spans := range byFirst {
		starts = append(starts, f)
		// Largest first; a batch before a single vector of one chunk.
		slices.SortFunc(spans, func(a, b VectorSpan) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Count(b.Subject, ".") - strings.Count(a.Subject, ".")
		})
	}
	slices.Sort(starts)
	// next[f] is the span from f whose end leads on to n; filled from the
	// end, so every span's end is decided before its start.
	next := make(map[int]VectorSpan, len(starts))
	reaches := func(p int) bool {
		_, ok := next[p]
		return p == n || ok
	}
	for i := len(starts) - 1; i >= 0; i-- {
		for _, sp := range byFirst[starts[i]] {
			if reaches(sp.First + sp.Count) {
				next[sp.First] = sp
				break
			}
		}
	}
	if !reaches(0) {
		// How many chunks some span holds, for a message.
		held, end := 0, 0
		for _, f := range starts {
			for _, sp := range byFirst[f] {
				if e := sp.First + sp.Count; e > end {
					held += e - max(sp.First, end)
					end = e
				}
			}
		}
		return nil, held
	}
	var spans []VectorSpan
	for p := 0; p < n; {
		sp := next[p]
		spans = append(spans, sp)
		p += sp.Count
	}
	return spans, n
}
