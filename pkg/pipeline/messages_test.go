package pipeline_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/task"
)

func TestPublishDedupsByMsgID(t *testing.T) {
	tests := []struct {
		name      string
		msgIDs    []string
		wantMsgs  uint64
		wantDupes []bool
	}{
		{"same id stored once", []string{"a", "a", "a"}, 1, []bool{false, true, true}},
		{"different ids", []string{"a", "b"}, 2, []bool{false, false}},
		{"no id never deduped", []string{"", ""}, 2, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := setup(t, pipeline.Config{})
			ctx := testCtx(t)
			subj := pipeline.Parse.Subject("t1")
			for i, id := range tt.msgIDs {
				job := pipeline.ParseJob{Task: task.Task{ID: "t1"}, Document: pipeline.Document{Object: "t1", Size: int64(i)}}
				ack, err := pipeline.Publish(ctx, r.JS, subj, "t1", id, job)
				if err != nil {
					t.Fatalf("Publish %d: %v", i, err)
				}
				if got, want := ack.Duplicate, tt.wantDupes[i]; got != want {
					t.Errorf("Publish %d: Duplicate got %v, want %v", i, got, want)
				}
				if got, want := ack.Stream, pipeline.Stream; got != want {
					t.Errorf("Publish %d: stream got %q, want %q", i, got, want)
				}
			}
			s, err := r.JS.Stream(ctx, pipeline.Stream)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if got := info.State.Msgs; got != tt.wantMsgs {
				t.Errorf("stored messages: got %d, want %d", got, tt.wantMsgs)
			}
			// The first publish is the one kept, with header and body.
			m, err := s.GetMsg(ctx, 1)
			if err != nil {
				t.Fatalf("GetMsg: %v", err)
			}
			if got, want := m.Header.Get(pipeline.HeaderTaskID), "t1"; got != want {
				t.Errorf("task id header: got %q, want %q", got, want)
			}
			var job pipeline.ParseJob
			if err := pipeline.Decode(m.Data, &job); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got, want := job.Document.Size, int64(0); got != want {
				t.Errorf("stored job: got size %d, want %d (the first publish)", got, want)
			}
		})
	}
}

func TestPublishErrors(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	if _, err := pipeline.Publish(ctx, r.JS, "not.in.any.stream", "t1", "", struct{}{}); err == nil {
		t.Error("Publish to a subject without a stream: got nil error, want one")
	}
	_, err := pipeline.Publish(ctx, r.JS, pipeline.Fetch.Subject("t1"), "t1", "", make(chan int))
	if err == nil {
		t.Fatal("Publish of an unencodable value: got nil error, want one")
	}
	if !strings.Contains(err.Error(), "encode") {
		t.Errorf("error: got %q, want it to say encode", err)
	}
}

// An embed job carries one chunk (Chunk, as before batches) or several
// (Chunks); All gives them in order either way, and a batch's JSON has no
// empty single chunk in it.
func TestEmbedJobAll(t *testing.T) {
	one := pipeline.EmbedJob{TaskID: "t", Chunk: pipeline.Chunk{Index: 4, Text: "four"}}
	if got := one.All(); len(got) != 1 || got[0].Index != 4 {
		t.Errorf("single: All() = %+v", got)
	}
	batch := pipeline.EmbedJob{TaskID: "t", Chunks: []pipeline.Chunk{{Index: 5, Text: "five"}, {Index: 6, Text: "six"}}}
	if got := batch.All(); len(got) != 2 || got[0].Index != 5 || got[1].Index != 6 {
		t.Errorf("batch: All() = %+v", got)
	}
	m, err := pipeline.NewMsg(pipeline.Embed.Subject("t", "5"), "t", batch)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Data), `"chunk"`) {
		t.Errorf("batch JSON carries an empty single chunk: %s", m.Data)
	}
	var got pipeline.EmbedJob
	if err := pipeline.Decode(m.Data, &got); err != nil || !reflect.DeepEqual(got, batch) {
		t.Errorf("batch round trip: got %+v, %v", got, err)
	}
}

func TestNewMsgAndDecode(t *testing.T) {
	want := pipeline.EmbedJob{TaskID: "a b", SkipEmbedding: true, Chunk: pipeline.Chunk{ID: "c1", Index: 3, Text: "héllo", PageStart: 1, PageEnd: 2}}
	m, err := pipeline.NewMsg(pipeline.Embed.Subject("a b", "3"), "a b", want)
	if err != nil {
		t.Fatalf("NewMsg: %v", err)
	}
	if got, want := m.Subject, pipeline.Embed.Subject("a b", "3"); got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	if got, want := m.Header.Get(pipeline.HeaderTaskID), "a b"; got != want {
		t.Errorf("header: got %q, want %q", got, want)
	}
	var got pipeline.EmbedJob
	if err := pipeline.Decode(m.Data, &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded: got %+v, want %+v", got, want)
	}
	err = pipeline.Decode([]byte("{not json"), &got)
	if err == nil {
		t.Fatal("Decode of bad JSON: got nil error, want one")
	}
	if !strings.Contains(err.Error(), "EmbedJob") {
		t.Errorf("Decode error: got %q, want it to name the type", err)
	}
}
