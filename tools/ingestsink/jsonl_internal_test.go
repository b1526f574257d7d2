package ingestsink

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pdfpipe/pdfpipe/proto/cognicore"
)

// TestEncodeChunkMatchesEncodingJSON: the hand-written vector encoding
// writes the bytes json.Encoder writes for a ChunkRecord.
func TestEncodeChunkMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vec := []float32{0, 1, -1, 0.5, 1e-7, -3.4e-9, 1e21, 2.5e22, math.MaxFloat32, math.SmallestNonzeroFloat32, 123456.79}
	for range 500 {
		vec = append(vec, float32(rng.NormFloat64()*math.Pow(10, float64(rng.IntN(50)-25))))
	}
	tests := []struct {
		name string
		c    *cognicore.TextChunk
	}{
		{name: "full", c: &cognicore.TextChunk{ChunkId: "id", FileId: "f", ChunkIndex: 3, Chapter: "1 <Intro> & \"more\"",
			ChapterNum: "1", ChunkText: "text\n\twith \u2028 escapes \x01", PageStart: 2, PageEnd: 4, EmbeddingVector: vec}},
		{name: "no vector", c: &cognicore.TextChunk{ChunkId: "id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			got.WriteString("prefix\n")
			if err := encodeChunk(&got, tc.c); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			want.WriteString("prefix\n")
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			v := tc.c.GetEmbeddingVector()
			if v == nil {
				v = []float32{}
			}
			if err := enc.Encode(ChunkRecord{Type: "chunk", ChunkID: tc.c.GetChunkId(), FileID: tc.c.GetFileId(),
				ChunkIndex: tc.c.GetChunkIndex(), Chapter: tc.c.GetChapter(), ChapterNum: tc.c.GetChapterNum(),
				ChunkText: tc.c.GetChunkText(), PageStart: tc.c.GetPageStart(), PageEnd: tc.c.GetPageEnd(), EmbeddingVector: v}); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
		})
	}
}
