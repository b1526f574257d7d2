package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nats-io/nats.go"
)

// Embed messages are binary since format 1: their JSON (escaped text, field
// names per chunk) was written by the parser and read back by the
// embedder and, since vectors no longer carry the text, by the ingester. A
// binary embed message starts with the byte EmbedFormat1 (no JSON text
// starts with it), followed by:
//
//	uvarint-length-prefixed string: task id
//	one byte of flags: 1 = skip embedding (RagMode false)
//	uvarint replay number
//	uvarint n, then n chunks, each:
//	  strings id, text, chapter, chapter number; varints index, first
//	  page, last page
//
// DecodeEmbedJob reads both this and the JSON of earlier parsers. An
// embedder older than this format cannot read it and fails the task
// saying it cannot decode the message: upgrade embedders before parsers.
const EmbedFormat1 byte = 0x01

const embedSkipEmbedding = 1

// EncodeEmbedJob returns j in binary format 1. A job with only Chunk set
// is written as a job of one chunk.
func EncodeEmbedJob(j EmbedJob) []byte {
	chunks := j.All()
	size := 2 + 3*binary.MaxVarintLen64 + len(j.TaskID)
	for _, c := range chunks {
		size += 7*binary.MaxVarintLen32 + len(c.ID) + len(c.Text) + len(c.Chapter) + len(c.ChapterNum)
	}
	b := make([]byte, 1, size)
	b[0] = EmbedFormat1
	b = appendString(b, j.TaskID)
	var flags byte
	if j.SkipEmbedding {
		flags |= embedSkipEmbedding
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(max(j.Replay, 0)))
	b = binary.AppendUvarint(b, uint64(len(chunks)))
	for _, c := range chunks {
		b = appendString(b, c.ID)
		b = appendString(b, c.Text)
		b = appendString(b, c.Chapter)
		b = appendString(b, c.ChapterNum)
		b = binary.AppendVarint(b, int64(c.Index))
		b = binary.AppendVarint(b, int64(c.PageStart))
		b = binary.AppendVarint(b, int64(c.PageEnd))
	}
	return b
}

// DecodeEmbedJob reads an embed message: binary format 1 or JSON. The job
// it returns has its chunks in Chunks either way.
func DecodeEmbedJob(data []byte) (EmbedJob, error) {
	var j EmbedJob
	if len(data) == 0 || data[0] != EmbedFormat1 {
		if err := Decode(data, &j); err != nil {
			return EmbedJob{}, err
		}
		if len(j.Chunks) == 0 {
			j.Chunks, j.Chunk = []Chunk{j.Chunk}, Chunk{}
		}
		return j, nil
	}
	d := vecDecoder{b: data[1:]}
	j.TaskID = d.string()
	flags := d.byte()
	j.SkipEmbedding = flags&embedSkipEmbedding != 0
	if r := d.uvarint(); r > math.MaxInt32 {
		d.err = fmt.Errorf("%w: replay %d", errVectorFormat, r)
	} else {
		j.Replay = int(r)
	}
	n := d.uvarint()
	// Each chunk takes at least 7 bytes: an upper bound that a corrupt
	// count cannot turn into a huge allocation.
	if d.err == nil && n > uint64(len(d.b))/7 {
		d.err = fmt.Errorf("%w: %d chunks in %d bytes", errVectorFormat, n, len(d.b))
	}
	if d.err == nil {
		j.Chunks = make([]Chunk, n)
	}
	for i := range j.Chunks {
		c := &j.Chunks[i]
		c.ID, c.Text, c.Chapter, c.ChapterNum = d.string(), d.string(), d.string(), d.string()
		c.Index, c.PageStart, c.PageEnd = d.int(), d.int(), d.int()
		if d.err != nil {
			break
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the chunks", errVectorFormat, len(d.b))
	}
	if d.err != nil {
		return EmbedJob{}, fmt.Errorf("decode embed job: %w", d.err)
	}
	return j, nil
}

// NewEmbedMsg builds the message that carries j to subj, in binary
// format 1, with the task id header.
func NewEmbedMsg(subj string, j EmbedJob) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = EncodeEmbedJob(j)
	m.Header.Set(HeaderTaskID, j.TaskID)
	return m
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
