package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/nats-io/nats.go"
)

// Vector messages are binary since format 1: the JSON of 384 floats cost
// more CPU to write and read than the rest of a chunk's trip, and took
// three times the room. A binary message starts with the byte
// VectorFormat1 (no JSON text starts with it), followed by:
//
//	uvarint-length-prefixed strings: task id, model, chunk id, text,
//	  chapter, chapter number
//	varints: chunk index, first page, last page
//	uvarint n, then n float32s, little-endian
//
// DecodeVector reads both this and the JSON of earlier versions, which
// may still be retained in the vector stream.
const VectorFormat1 byte = 0x01

// EncodeVector returns v in binary format 1.
func EncodeVector(v Vector) []byte {
	c := v.Chunk
	size := 1 + 6*binary.MaxVarintLen64 + len(v.TaskID) + len(v.Model) + len(c.ID) + len(c.Text) +
		len(c.Chapter) + len(c.ChapterNum) + 4*binary.MaxVarintLen64 + 4*len(v.Vector)
	b := make([]byte, 1, size)
	b[0] = VectorFormat1
	for _, s := range []string{v.TaskID, v.Model, c.ID, c.Text, c.Chapter, c.ChapterNum} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, n := range []int{c.Index, c.PageStart, c.PageEnd} {
		b = binary.AppendVarint(b, int64(n))
	}
	b = binary.AppendUvarint(b, uint64(len(v.Vector)))
	for _, f := range v.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// errVectorFormat is wrapped by every error of a malformed binary message
// (vector, vector batch or embed job).
var errVectorFormat = errors.New("malformed binary message")

// DecodeVector reads a vector message: binary format 1 or JSON.
func DecodeVector(data []byte) (Vector, error) {
	var v Vector
	if len(data) == 0 || data[0] != VectorFormat1 {
		err := Decode(data, &v)
		return v, err
	}
	d := vecDecoder{b: data[1:]}
	c := &v.Chunk
	for _, s := range []*string{&v.TaskID, &v.Model, &c.ID, &c.Text, &c.Chapter, &c.ChapterNum} {
		*s = d.string()
	}
	for _, n := range []*int{&c.Index, &c.PageStart, &c.PageEnd} {
		*n = d.int()
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/4 {
		d.err = fmt.Errorf("%w: %d floats in %d bytes", errVectorFormat, n, len(d.b))
	}
	if d.err != nil {
		return Vector{}, fmt.Errorf("decode vector: %w", d.err)
	}
	if n > 0 {
		v.Vector = make([]float32, n)
		for i := range v.Vector {
			v.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
		}
	}
	if rest := len(d.b) - 4*int(n); rest != 0 {
		return Vector{}, fmt.Errorf("decode vector: %w: %d bytes after the floats", errVectorFormat, rest)
	}
	return v, nil
}

type vecDecoder struct {
	b   []byte
	err error
}

func (d *vecDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length", errVectorFormat)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *vecDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = fmt.Errorf("%w: cut short", errVectorFormat)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *vecDecoder) int() int {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 || x < math.MinInt32 || x > math.MaxInt32 {
		d.err = fmt.Errorf("%w: bad number", errVectorFormat)
		return 0
	}
	d.b = d.b[n:]
	return int(x)
}

func (d *vecDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: a string of %d bytes in %d", errVectorFormat, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// NewVectorMsg builds the message that stores v at subj, in binary
// format 1, with the task id header.
func NewVectorMsg(subj string, v Vector) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = EncodeVector(v)
	m.Header.Set(HeaderTaskID, v.TaskID)
	return m
}
