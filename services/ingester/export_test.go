package ingester

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
)

// UsePerChunkReader makes s read vectors as the ingester did before
// batches: one GetLastMsgForSubject round trip per chunk. Benchmarks use
// it as the reference.
func UsePerChunkReader(s *Service) {
	s.newVectorIter = func(ctx context.Context, taskID string, n int) vectorIter {
		return &perChunkReader{js: s.res.JS, taskID: taskID, n: n}
	}
}

// SetVectorWindow makes s read window vectors per request, each answer
// at most maxBytes long.
func SetVectorWindow(s *Service, window, maxBytes int) {
	s.newVectorIter = func(ctx context.Context, taskID string, n int) vectorIter {
		return newBatchReader(ctx, s.res.JS, taskID, n, window, maxBytes)
	}
}

type perChunkReader struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	taskID string
	n, i   int
}

func (r *perChunkReader) Next(ctx context.Context) (pipeline.Vector, error) {
	if r.stream == nil {
		s, err := r.js.Stream(ctx, pipeline.VectorStream)
		if err != nil {
			return pipeline.Vector{}, fmt.Errorf("vector stream: %w", err)
		}
		r.stream = s
	}
	m, err := r.stream.GetLastMsgForSubject(ctx, pipeline.VectorSubject(r.taskID, r.i))
	if err != nil {
		return pipeline.Vector{}, err
	}
	v, err := pipeline.DecodeVector(m.Data)
	if err != nil {
		return v, stage.Permanent(fmt.Errorf("vector %d: %w", r.i, err))
	}
	r.i++
	return v, nil
}

func (r *perChunkReader) Close() {}

// SetVectorRecheck sets how often s's wait for vectors counts them again
// without news.
func SetVectorRecheck(s *Service, d time.Duration) { s.recheck = d }
