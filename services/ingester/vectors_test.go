package ingester

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/testkit/stagetest"
)

// TestBatchReader stores a task's vectors in reverse index order (so the
// stream's order is not the index order), in both formats, and reads them
// back in windows.
func TestBatchReader(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		window   int
		maxBytes int
		absent   int // index never stored, -1 for none
		corrupt  int // index stored as garbage, -1 for none
		wantRead int // vectors read before the error (n when none)
		wantPerm bool
	}{
		{name: "one window", n: 5, window: 256, maxBytes: 8 << 20, absent: -1, corrupt: -1, wantRead: 5},
		{name: "several windows, last one short", n: 11, window: 4, maxBytes: 8 << 20, absent: -1, corrupt: -1, wantRead: 11},
		{name: "answers cut by max_bytes are asked again", n: 9, window: 4, maxBytes: 1, absent: -1, corrupt: -1, wantRead: 9},
		{name: "a missing vector is an error before any is read", n: 9, window: 4, maxBytes: 8 << 20, absent: 6, corrupt: -1, wantRead: 0},
		{name: "a garbage vector is permanent", n: 9, window: 4, maxBytes: 8 << 20, absent: -1, corrupt: 1, wantRead: 0, wantPerm: true},
	}
	e := stagetest.New(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
			defer cancel()
			id := "task-" + strconv.Itoa(len(tc.name)) + "-" + strconv.Itoa(tc.n) + "-" + strconv.Itoa(tc.absent+2*tc.corrupt)
			for i := tc.n - 1; i >= 0; i-- {
				subj := pipeline.VectorSubject(id, i)
				switch i {
				case tc.absent:
					continue
				case tc.corrupt:
					if _, err := e.JS.Publish(ctx, subj, []byte("not a vector")); err != nil {
						t.Fatal(err)
					}
					continue
				}
				// Odd indexes as the JSON of earlier versions, even ones binary.
				v := pipeline.Vector{TaskID: id, Chunk: pipeline.Chunk{Index: i, Text: "text " + strconv.Itoa(i)}, Vector: []float32{float32(i)}}
				if i%2 == 1 {
					if _, err := pipeline.Publish(ctx, e.JS, subj, id, "", v); err != nil {
						t.Fatal(err)
					}
				} else if _, err := e.JS.PublishMsg(ctx, pipeline.NewVectorMsg(subj, v)); err != nil {
					t.Fatal(err)
				}
			}
			r := newBatchReader(ctx, e.JS, id, tc.n, tc.window, tc.maxBytes)
			defer r.Close()
			read := 0
			var err error
			for read < tc.n {
				var v pipeline.Vector
				v, err = r.Next(ctx)
				if err != nil {
					break
				}
				if v.Chunk.Index != read || len(v.Vector) != 1 || v.Vector[0] != float32(read) {
					t.Fatalf("vector %d: got index %d vector %v", read, v.Chunk.Index, v.Vector)
				}
				read++
			}
			if read != tc.wantRead {
				t.Errorf("read %d vectors (then %v), want %d", read, err, tc.wantRead)
			}
			if tc.wantRead < tc.n {
				if err == nil || stage.IsPermanent(err) != tc.wantPerm {
					t.Errorf("got error %v (permanent %t), want one (permanent %t)", err, stage.IsPermanent(err), tc.wantPerm)
				}
				if tc.absent >= 0 && !errors.Is(err, jetstream.ErrMsgNotFound) {
					t.Errorf("got %v, want ErrMsgNotFound", err)
				}
			}
		})
	}
}

// TestBatchReaderCloseEarly checks that Close returns while the read-ahead
// is blocked on a full window channel.
func TestBatchReaderCloseEarly(t *testing.T) {
	e := stagetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), stagetest.WaitLimit)
	defer cancel()
	const n = 12
	for i := range n {
		v := pipeline.Vector{TaskID: "t", Chunk: pipeline.Chunk{Index: i}, Vector: []float32{1}}
		if _, err := pipeline.Publish(ctx, e.JS, pipeline.VectorSubject("t", i), "t", "", v); err != nil {
			t.Fatal(err)
		}
	}
	r := newBatchReader(ctx, e.JS, "t", n, 2, 8<<20)
	if _, err := r.Next(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close() // must not hang with windows left unread
	if ctx.Err() != nil {
		t.Fatal("Close outlived the test's deadline")
	}
}

// BenchmarkVectorReader reads 2,000 stored vectors (binary, ~2.5 KB each)
// with the batched reader and with one GetLastMsgForSubject per vector;
// ns/op is per vector.
func BenchmarkVectorReader(b *testing.B) {
	e := stagetest.New(b)
	ctx := context.Background()
	const n = 2000
	text := strings.Repeat("lorem ipsum dolor sit amet ", 40)
	for i := range n {
		v := pipeline.Vector{TaskID: "b", Chunk: pipeline.Chunk{Index: i, Text: text}, Vector: make([]float32, 384)}
		if _, err := e.JS.PublishMsg(ctx, pipeline.NewVectorMsg(pipeline.VectorSubject("b", i), v)); err != nil {
			b.Fatal(err)
		}
	}
	s := &Service{res: e.Res}
	readers := map[string]func() vectorIter{
		"batched": func() vectorIter {
			return newBatchReader(ctx, e.JS, "b", n, vectorWindow, vectorWindowBytes)
		},
		"per-chunk": func() vectorIter { return &perChunkReader{js: s.res.JS, taskID: "b", n: n} },
	}
	for _, name := range []string{"per-chunk", "batched"} {
		b.Run(name, func(b *testing.B) {
			var r vectorIter
			for i := 0; i < b.N; i++ {
				if i%n == 0 {
					if r != nil {
						r.Close()
					}
					r = readers[name]()
				}
				if _, err := r.Next(ctx); err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
		})
	}
}
