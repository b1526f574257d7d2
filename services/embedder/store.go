package embedder

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
)

// storeVectors publishes the vectors of an embed message's chunks with
// the job's Publisher: the stream stores them all before the message is
// acked (stage.Typed waits for them). They go out as vector batches
// (format 2): one message for the embed message's consecutive chunks, split only past
// pipeline.MaxVectorBatchBytes, pointing at the embed message's stream
// sequence for the text instead of storing it again. An embed message
// whose stream position is unknown (not delivered from the stream) has its
// chunks stored one vector each with their text, as before batches.
func (s *Service) storeVectors(ctx context.Context, out *stage.Publisher, msg jetstream.Msg, taskID, model string, chunks []pipeline.Chunk, vecs [][]float32) error {
	var source uint64
	if meta, err := msg.Metadata(); err == nil && meta.Stream == pipeline.Stream {
		source = meta.Sequence.Stream
	}
	var msgs []*nats.Msg
	if source == 0 {
		for i, c := range chunks {
			msgs = append(msgs, pipeline.NewVectorMsg(pipeline.VectorSubject(taskID, c.Index),
				pipeline.Vector{TaskID: taskID, Model: model, Chunk: c, Vector: vecs[i]}))
		}
	} else {
		per := max(1, pipeline.MaxVectorBatchBytes/(4*max(s.cfg.Dimension, 1)))
		for from := 0; from < len(chunks); {
			// A batch holds consecutive indexes (the parser's messages
			// always do) and at most per vectors.
			to := from + 1
			for to < len(chunks) && to-from < per && chunks[to].Index == chunks[to-1].Index+1 {
				to++
			}
			m, err := pipeline.NewVectorBatchMsg(pipeline.VectorBatch{TaskID: taskID, Model: model, Source: source,
				First: chunks[from].Index, Vectors: vecs[from:to]})
			if err != nil {
				return fmt.Errorf("store vectors of %s: %w", taskID, err)
			}
			msgs = append(msgs, m)
			from = to
		}
	}
	for _, m := range msgs {
		if err := out.PublishMsgAsync(ctx, m); err != nil {
			return fmt.Errorf("store vectors of %s: %w", taskID, err)
		}
	}
	return nil
}
