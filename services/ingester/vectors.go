package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Reading vectors in batches. A document's vectors sit one per subject
// (pdf.vec.<task>.<index>, MaxMsgsPerSubject 1). Reading them with one
// GetLastMsgForSubject round trip each made the ingester wait on the NATS
// server once per chunk, and any load on the machine multiplied that wait.
// The batched reader asks for a window of consecutive indexes in one
// direct-get request (DIRECT.GET with multi_last listing the window's
// subjects, nats-server ≥ 2.11): the server answers with every message of
// the window back to back, then an end-of-batch status. The answers come in
// stream order, not index order, so each lands in its slot of the window;
// indexes the answer lacks (the server stops at max_bytes, a slow-consumer
// drop) are asked for again, and a window that makes no progress is an
// error. A goroutine reads and decodes the next window while the current
// one is sent, so at most three windows (about 3×256 chunks, a few MiB)
// are held, whatever the document's size.
//
// An ordered consumer over pdf.vec.<task>.> was the alternative: it
// delivers in stream order, which is the order the embedders finished, so
// putting chunks back in index order needs a buffer as large as the
// embedders' disorder, unbounded in the worst case (chunk 0 embedded last).
// Windows by index bound memory by construction.

const (
	// vectorWindow is how many consecutive vectors one request asks for
	// (the server answers at most 1024 subjects per multi_last request).
	vectorWindow = 256
	// vectorWindowBytes bounds the bytes of one answer; indexes left out
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
	return newBatchReader(ctx, s.res.JS, pipeline.VectorStream, taskID, n, vectorWindow, vectorWindowBytes)
}

// directGetRequest is the body of a DIRECT.GET request for the last
// message of each listed subject (JSApiMsgGetRequest in nats-server).
type directGetRequest struct {
	MultiLast []string `json:"multi_last"`
	Batch     int      `json:"batch,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
}

type vectorWindowResult struct {
	vecs []pipeline.Vector
	err  error
}

// batchReader reads n vectors in windows of window, one window ahead.
type batchReader struct {
	windows <-chan vectorWindowResult
	cancel  context.CancelFunc
	done    chan struct{}
	cur     []pipeline.Vector
	err     error
}

// newBatchReader starts reading n vectors of taskID from stream, window
// at a time, each answer at most maxBytes long (beyond that the server
// stops early and the rest is asked for again).
func newBatchReader(ctx context.Context, js jetstream.JetStream, stream, taskID string, n, window, maxBytes int) *batchReader {
	ctx, cancel := context.WithCancel(ctx)
	windows := make(chan vectorWindowResult, 1)
	r := &batchReader{windows: windows, cancel: cancel, done: make(chan struct{})}
	f := &windowFetcher{nc: js.Conn(), subject: directGetSubject(js.Options(), stream), taskID: taskID, maxBytes: maxBytes}
	go func() {
		defer close(r.done)
		defer close(windows)
		for base := 0; base < n; base += window {
			vecs, err := f.fetch(ctx, base, min(window, n-base))
			select {
			case windows <- vectorWindowResult{vecs: vecs, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return r
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

// directGetSubject is the DIRECT.GET API subject of stream, under the
// JetStream context's domain or API prefix.
func directGetSubject(o jetstream.JetStreamOptions, stream string) string {
	prefix := jetstream.DefaultAPIPrefix
	switch {
	case o.Domain != "":
		prefix = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		prefix = strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return prefix + "DIRECT.GET." + stream
}

// windowFetcher reads windows of one task's vectors.
type windowFetcher struct {
	nc       *nats.Conn
	subject  string
	taskID   string
	maxBytes int
}

// fetch returns the vectors base..base+count-1, in order.
func (f *windowFetcher) fetch(ctx context.Context, base, count int) ([]pipeline.Vector, error) {
	vecs := make([]pipeline.Vector, count)
	have := make([]bool, count)
	missing := make([]int, count)
	for i := range missing {
		missing[i] = base + i
	}
	for len(missing) > 0 {
		got, err := f.request(ctx, base, missing, vecs, have)
		if err != nil {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("vector %d of task %s is not in stream: %w", missing[0], f.taskID, jetstream.ErrMsgNotFound)
		}
		missing = missing[:0]
		for i, ok := range have {
			if !ok {
				missing = append(missing, base+i)
			}
		}
	}
	return vecs, nil
}

// request asks for the listed indexes in one direct get and stores what
// the answer holds in vecs[index-base]; it returns how many new vectors
// arrived.
func (f *windowFetcher) request(ctx context.Context, base int, indexes []int, vecs []pipeline.Vector, have []bool) (int, error) {
	subjects := make([]string, len(indexes))
	for i, idx := range indexes {
		subjects[i] = pipeline.VectorSubject(f.taskID, idx)
	}
	body, err := json.Marshal(directGetRequest{MultiLast: subjects, Batch: len(subjects), MaxBytes: f.maxBytes})
	if err != nil {
		return 0, fmt.Errorf("vectors of %s: %w", f.taskID, err)
	}
	inbox := f.nc.NewRespInbox()
	sub, err := f.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("vectors of %s: %w", f.taskID, err)
	}
	defer sub.Unsubscribe()
	if err := f.nc.PublishRequest(f.subject, inbox, body); err != nil {
		return 0, fmt.Errorf("request vectors of %s: %w", f.taskID, err)
	}
	got := 0
	for {
		mctx, cancel := context.WithTimeout(ctx, vectorReadTimeout)
		m, err := sub.NextMsgWithContext(mctx)
		cancel()
		if err != nil {
			return got, fmt.Errorf("read vectors %d.. of %s: %w", indexes[0], f.taskID, err)
		}
		if code := m.Header.Get("Status"); code != "" && len(m.Data) == 0 {
			switch code {
			case "204", "404": // end of batch; nothing (more) found
				return got, nil
			}
			return got, fmt.Errorf("read vectors %d.. of %s: status %s %s", indexes[0], f.taskID, code, m.Header.Get("Description"))
		}
		subj := m.Header.Get(jetstream.SubjectHeader)
		idx, err := strconv.Atoi(subj[strings.LastIndexByte(subj, '.')+1:])
		if err != nil || idx < base || idx >= base+len(vecs) || have[idx-base] {
			continue // not one we asked for
		}
		v, err := decodeVector(m.Data)
		if err != nil {
			return got, stage.Permanent(fmt.Errorf("vector %d: %w", idx, err))
		}
		vecs[idx-base], have[idx-base] = v, true
		got++
	}
}

// decodeVector reads a stored vector message (binary or, from earlier
// versions, JSON).
func decodeVector(data []byte) (pipeline.Vector, error) { return pipeline.DecodeVector(data) }
