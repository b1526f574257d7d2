package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay republishes a task's retained message(s) of stage with replay
// number n (for embed: every chunk job, then the ingest job). Stages
// carry n into the message ids of what they publish. Before a replay that
// makes vectors anew (fetch, parse, embed), the task's vectors are purged,
// so the ingester waits for the new ones. It returns how many messages
// were republished. The caller reopens the task's status.
func Replay(ctx context.Context, res *Resources, st Stage, taskID string, n int) (int, error) {
	stream, err := res.JS.Stream(ctx, Stream)
	if err != nil {
		return 0, err
	}
	last := func(subj string, v any) error {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("replay %s of %s: no retained message on %s (expired, or the task never reached it)", st, taskID, subj)
		}
		if err != nil {
			return err
		}
		return json.Unmarshal(m.Data, v)
	}
	if st != Ingest {
		vs, err := res.JS.Stream(ctx, VectorStream)
		if err != nil {
			return 0, err
		}
		if err := vs.Purge(ctx, jetstream.WithPurgeSubject(VectorFilter(taskID))); err != nil {
			return 0, fmt.Errorf("replay %s of %s: purge vectors: %w", st, taskID, err)
		}
	}
	pub := func(subj, kind string, v any) error {
		_, err := Publish(ctx, res.JS, subj, taskID, MsgID(taskID, n, kind, "replay"), v)
		return err
	}
	switch st {
	case Fetch:
		var j FetchJob
		if err := last(Fetch.Subject(taskID), &j); err != nil {
			return 0, err
		}
		j.Replay = n
		return 1, pub(Fetch.Subject(taskID), "fetch", j)
	case Parse:
		var j ParseJob
		if err := last(Parse.Subject(taskID), &j); err != nil {
			return 0, err
		}
		j.Replay = n
		return 1, pub(Parse.Subject(taskID), "parse", j)
	case Ingest:
		var j IngestJob
		if err := last(Ingest.Subject(taskID), &j); err != nil {
			return 0, err
		}
		j.Replay = n
		return 1, pub(Ingest.Subject(taskID), "ingest", j)
	case Embed:
		var j IngestJob
		if err := last(Ingest.Subject(taskID), &j); err != nil {
			return 0, err
		}
		// Embed jobs sit at the subject of their first chunk's index.
		msgs := 0
		for i := 0; i < j.Chunks; {
			subj := Embed.Subject(taskID, strconv.Itoa(i))
			m, err := stream.GetLastMsgForSubject(ctx, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return msgs, fmt.Errorf("replay %s of %s: no retained message on %s (expired, or the task never reached it)", st, taskID, subj)
			}
			if err != nil {
				return msgs, err
			}
			e, err := DecodeEmbedJob(m.Data)
			if err != nil {
				return msgs, fmt.Errorf("replay %s of %s: %s: %w", st, taskID, subj, err)
			}
			if len(e.Chunks) == 0 {
				return msgs, fmt.Errorf("replay %s of %s: %s holds no chunk", st, taskID, subj)
			}
			e.Replay = n
			if _, err := res.JS.PublishMsg(ctx, NewEmbedMsg(subj, e), jetstream.WithMsgID(MsgID(taskID, n, "embed", strconv.Itoa(i), "replay"))); err != nil {
				return msgs, fmt.Errorf("publish %s: %w", subj, err)
			}
			msgs++
			i += len(e.All())
		}
		j.Replay = n
		return msgs + 1, pub(Ingest.Subject(taskID), "ingest", j)
	}
	return 0, fmt.Errorf("replay: unknown stage %q (want fetch, parse, embed or ingest)", st)
}
