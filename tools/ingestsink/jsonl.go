package ingestsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

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
// the call, in one Write.
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
	for _, c := range a.doc.Chunks {
		if !c.Stored {
			continue
		}
		if err := encodeChunk(&buf, c.Chunk); err != nil {
			return err
		}
	}
	return s.write(buf.Bytes())
}

func encodeChunk(w io.Writer, c *cognicore.TextChunk) error {
	vec := c.GetEmbeddingVector()
	if vec == nil {
		vec = []float32{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err := enc.Encode(ChunkRecord{
		Type:            "chunk",
		ChunkID:         c.GetChunkId(),
		FileID:          c.GetFileId(),
		ChunkIndex:      c.GetChunkIndex(),
		Chapter:         c.GetChapter(),
		ChapterNum:      c.GetChapterNum(),
		ChunkText:       c.GetChunkText(),
		PageStart:       c.GetPageStart(),
		PageEnd:         c.GetPageEnd(),
		EmbeddingVector: vec,
	})
	if err != nil {
		return fmt.Errorf("encode chunk %s: %w", c.GetChunkId(), err)
	}
	return nil
}

// write appends b to the output and flushes it when it can.
func (s *Sink) write(b []byte) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
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
