package pipeline_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

func sampleEmbedJob() pipeline.EmbedJob {
	return pipeline.EmbedJob{TaskID: "a b", SkipEmbedding: true, Replay: 3, Chunks: []pipeline.Chunk{
		{ID: "c1", Index: 16, Text: "héllo\x00wörld", Chapter: "2 Data", ChapterNum: "2.1", PageStart: 7, PageEnd: 9},
		{ID: "c2", Index: 17, Text: "", PageStart: 9, PageEnd: 9},
	}}
}

func TestEmbedJobRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		job  pipeline.EmbedJob
		want pipeline.EmbedJob
	}{
		{name: "chunks", job: sampleEmbedJob(), want: sampleEmbedJob()},
		{name: "one chunk in Chunk, as before batches", job: pipeline.EmbedJob{TaskID: "t", Chunk: pipeline.Chunk{ID: "x", Index: 4, Text: "four"}},
			want: pipeline.EmbedJob{TaskID: "t", Chunks: []pipeline.Chunk{{ID: "x", Index: 4, Text: "four"}}}},
		{name: "negative numbers", job: pipeline.EmbedJob{Chunks: []pipeline.Chunk{{Index: -1, PageStart: -5}}},
			want: pipeline.EmbedJob{Chunks: []pipeline.Chunk{{Index: -1, PageStart: -5}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pipeline.EncodeEmbedJob(tc.job)
			if data[0] != pipeline.EmbedFormat1 {
				t.Fatalf("first byte %#x, want %#x", data[0], pipeline.EmbedFormat1)
			}
			got, err := pipeline.DecodeEmbedJob(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDecodeEmbedJobJSON reads the embed messages of earlier parsers, one
// chunk or several, into Chunks.
func TestDecodeEmbedJobJSON(t *testing.T) {
	batch := sampleEmbedJob()
	one := pipeline.EmbedJob{TaskID: "t", Chunk: pipeline.Chunk{ID: "x", Index: 4, Text: "four"}}
	for _, tc := range []struct {
		name string
		job  pipeline.EmbedJob
		want []pipeline.Chunk
	}{
		{name: "batch", job: batch, want: batch.Chunks},
		{name: "one chunk", job: one, want: []pipeline.Chunk{one.Chunk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.job)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pipeline.DecodeEmbedJob(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.TaskID != tc.job.TaskID || got.SkipEmbedding != tc.job.SkipEmbedding || got.Replay != tc.job.Replay ||
				!reflect.DeepEqual(got.Chunks, tc.want) || !reflect.DeepEqual(got.All(), tc.want) {
				t.Errorf("got %+v, want chunks %+v", got, tc.want)
			}
		})
	}
}

// TestOlderEmbedderRefusesBinaryEmbedJob: an embedder older than binary
// embed messages decodes them as JSON (pipeline.Decode) and fails the task
// with an error naming the message type, instead of embedding garbage:
// why embedders are upgraded before parsers.
// TestOlderEmbedderRefusesBinaryEmbedJob: an embedder older than binary
// embed messages decoded every body as JSON; a binary one must fail that
// decode (the task fails at once) rather than yield an empty job.
func TestOlderEmbedderRefusesBinaryEmbedJob(t *testing.T) {
	var old pipeline.EmbedJob
	if err := json.Unmarshal(pipeline.EncodeEmbedJob(sampleEmbedJob()), &old); err == nil {
		t.Errorf("JSON decode of a binary embed job: got %+v and no error", old)
	}
}

// TestDecodeReadsBothEmbedForms: the typed stage handler decodes with
// pipeline.Decode, which must read the parser's binary form and the JSON
// of older parsers into the same job.
func TestDecodeReadsBothEmbedForms(t *testing.T) {
	want := sampleEmbedJob()
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"binary": pipeline.EncodeEmbedJob(want), "json": js} {
		var got pipeline.EmbedJob
		if err := pipeline.Decode(data, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got.All(), want.All()) || got.TaskID != want.TaskID || got.Replay != want.Replay {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestDecodeEmbedJobMalformed(t *testing.T) {
	good := pipeline.EncodeEmbedJob(sampleEmbedJob())
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "empty", data: nil, want: "decode"},
		{name: "not JSON", data: []byte("garbage"), want: "EmbedJob"},
		{name: "only the format byte", data: good[:1], want: "bad length"},
		{name: "no flags", data: good[:5], want: "cut short"},
		{name: "cut in a chunk", data: good[:len(good)-2], want: "decode embed job"},
		{name: "bytes after the chunks", data: append(append([]byte{}, good...), 0), want: "after the chunks"},
		{name: "huge chunk count", data: append(good[:7:7], 0xff, 0xff, 0xff, 0xff, 0x0f), want: "chunks in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.DecodeEmbedJob(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeEmbedJob(f *testing.F) {
	f.Add(pipeline.EncodeEmbedJob(sampleEmbedJob()))
	j, _ := json.Marshal(sampleEmbedJob())
	f.Add(j)
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := pipeline.DecodeEmbedJob(data)
		if err != nil || len(data) == 0 || data[0] != pipeline.EmbedFormat1 {
			return
		}
		enc := pipeline.EncodeEmbedJob(job)
		job2, err := pipeline.DecodeEmbedJob(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded job: %v", err)
		}
		if !reflect.DeepEqual(job, job2) {
			t.Errorf("round trip changed the job")
		}
	})
}

func TestNewEmbedMsg(t *testing.T) {
	j := sampleEmbedJob()
	m := pipeline.NewEmbedMsg(pipeline.Embed.Subject(j.TaskID, strconv.Itoa(16)), j)
	if got := m.Header.Get(pipeline.HeaderTaskID); got != j.TaskID {
		t.Errorf("header: got %q", got)
	}
	if got, err := pipeline.DecodeEmbedJob(m.Data); err != nil || !reflect.DeepEqual(got, j) {
		t.Errorf("got %+v, %v", got, err)
	}
}
