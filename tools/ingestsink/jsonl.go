package ingestsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// MetadataRecord is the JSONL line written for a document, before its chunks.
type MetadataRecord struct {
	Type            string `json:"type"` // always "metadata"
	FileID          string `json:"file_id"`
	UserID          string `json:"user_id"`
	Filename        string `json:"filename"`
	TotalPages      int32  `json:"total_pages"`
	EstimatedChunks int32  `json:"estimated_chunks"`
	FileHash        string `json:"file_hash"`
	FileSize        int64  `json:"file_size"`
	CreatedAt       string `json:"created_at"`
	// Result is how the call ended.
	Result Result `json:"result"`
}

// Result is the outcome of an IngestDocument call in a MetadataRecord.
type Result struct {
	Success        bool   `json:"success"`
	Message        string `json:"message,omitempty"`
	Error          string `json:"error,omitempty"` // set when the call ended with an error
	ChunksReceived int32  `json:"chunks_received"`
	ChunksStored   int32  `json:"chunks_stored"`
	ChunksFailed   int32  `json:"chunks_failed"`
}

// ChunkRecord is the JSONL line written for each stored chunk.
type ChunkRecord struct {
	Type            string    `json:"type"` // always "chunk"
	ChunkID         string    `json:"chunk_id"`
	FileID          string    `json:"file_id"`
	ChunkIndex      int32     `json:"chunk_index"`
	Chapter         string    `json:"chapter"`
	ChapterNum      string    `json:"chapter_num"`
	ChunkText       string    `json:"chunk_text"`
	PageStart       int32     `json:"page_start"`
	PageEnd         int32     `json:"page_end"`
	EmbeddingVector []float32 `json:"embedding_vector"`
}

// writeDocument writes the metadata line and one line per stored chunk of
// the call, together (no other call's lines between them).
func (s *Sink) writeDocument(a *attempt) error {
	a.written = true
	if s.out == io.Discard {
		return nil // no log kept: encoding it would only cost CPU
	}
	m := a.doc.Metadata
	rec := MetadataRecord{
		Type:            "metadata",
		FileID:          m.GetFileId(),
		UserID:          m.GetUserId(),
		Filename:        m.GetFilename(),
		TotalPages:      m.GetTotalPages(),
		EstimatedChunks: m.GetEstimatedChunks(),
		FileHash:        m.GetFileHash(),
		FileSize:        m.GetFileSize(),
		CreatedAt:       m.GetCreatedAt(),
	}
	if r := a.doc.Response; r != nil {
		rec.Result = Result{
			Success:        r.GetSuccess(),
			Message:        r.GetMessage(),
			ChunksReceived: r.GetChunksReceived(),
			ChunksStored:   r.GetChunksStored(),
			ChunksFailed:   r.GetChunksFailed(),
		}
	} else {
		rec.Result.ChunksReceived = int32(len(a.doc.Chunks))
		for _, c := range a.doc.Chunks {
			if c.Stored {
				rec.Result.ChunksStored++
			} else {
				rec.Result.ChunksFailed++
			}
		}
		if a.doc.Err != nil {
			rec.Result.Error = a.doc.Err.Error()
		}
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	// A document's lines go out together, under the lock, in writes of
	// about writeChunk bytes: a large document never sits whole in memory
	// as JSON a second time.
	s.outMu.Lock()
	defer s.outMu.Unlock()
	for _, c := range a.doc.Chunks {
		if !c.Stored {
			continue
		}
		if err := encodeChunk(&buf, c.Chunk); err != nil {
			return err
		}
		if buf.Len() >= writeChunk {
			if _, err := s.out.Write(buf.Bytes()); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			buf.Reset()
		}
	}
	return s.writeLocked(buf.Bytes())
}

// writeChunk is about how many bytes writeDocument writes at once.
const writeChunk = 1 << 20

// chunkHead is a ChunkRecord without its vector, which encodeChunk
// appends itself: encoding/json's reflection over 384 floats cost more
// than everything else the sink does.
type chunkHead struct {
	Type       string `json:"type"`
	ChunkID    string `json:"chunk_id"`
	FileID     string `json:"file_id"`
	ChunkIndex int32  `json:"chunk_index"`
	Chapter    string `json:"chapter"`
	ChapterNum string `json:"chapter_num"`
	ChunkText  string `json:"chunk_text"`
	PageStart  int32  `json:"page_start"`
	PageEnd    int32  `json:"page_end"`
}

// encodeChunk appends c's line, as json.Encoder would write its
// ChunkRecord (without HTML escaping).
func encodeChunk(buf *bytes.Buffer, c *cognicore.TextChunk) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(chunkHead{
		Type:       "chunk",
		ChunkID:    c.GetChunkId(),
		FileID:     c.GetFileId(),
		ChunkIndex: c.GetChunkIndex(),
		Chapter:    c.GetChapter(),
		ChapterNum: c.GetChapterNum(),
		ChunkText:  c.GetChunkText(),
		PageStart:  c.GetPageStart(),
		PageEnd:    c.GetPageEnd(),
	})
	if err != nil {
		return fmt.Errorf("encode chunk %s: %w", c.GetChunkId(), err)
	}
	vec := c.GetEmbeddingVector()
	buf.Truncate(buf.Len() - 2) // "}\n"
	b := buf.AvailableBuffer()
	b = append(b, `,"embedding_vector":[`...)
	for i, f := range vec {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("encode chunk %s: unsupported value %v", c.GetChunkId(), f)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat32(b, f)
	}
	b = append(b, "]}\n"...)
	buf.Write(b)
	return nil
}

// appendFloat32 formats f as encoding/json does a float32.
func appendFloat32(b []byte, f float32) []byte {
	abs := math.Abs(float64(f))
	format := byte('f')
	if abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, float64(f), format, -1, 32)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// writeLocked appends b to the output and flushes it when it can; the
// caller holds outMu.
func (s *Sink) writeLocked(b []byte) error {
	if _, err := s.out.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if f, ok := s.out.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	return nil
}

// write appends b to the output and flushes it when it can.
func (s *Sink) write(b []byte) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.writeLocked(b)
}
