package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// DocumentEvent is the backend's progress message on Redis pub/sub
// (document:events); its web socket forwards it to the user.
type DocumentEvent struct {
	Type      string   `json:"type"` // processing | completed | failed
	DocID     string   `json:"doc_id"`
	UserID    string   `json:"user_id"`
	Status    string   `json:"status"`
	Message   string   `json:"message"`
	Progress  Progress `json:"progress"`
	Timestamp string   `json:"timestamp"`
}

// Progress is the backend's progress block.
type Progress struct {
	ChunksReceived int     `json:"chunks_received"`
	ChunksStored   int     `json:"chunks_stored"`
	ChunksFailed   int     `json:"chunks_failed"`
	TotalChunks    int     `json:"total_chunks"`
	Percentage     float64 `json:"percentage"`
}

// eventsConsumer is the durable consumer, shared by all gateway replicas,
// over the status bucket's stream: each status change is handled once.
const eventsConsumer = "gateway-events"

// eventsConsumerFor creates (or finds) the durable consumer. It only
// delivers changes made after it first exists, so Run creates it before
// the intake starts any task.
func (s *Service) eventsConsumerFor(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := s.res.JS.CreateOrUpdateConsumer(ctx, "KV_"+pipeline.StatusBucket, jetstream.ConsumerConfig{
		Durable:       eventsConsumer,
		Description:   "gateway: task status → Redis document events",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    20,
	})
	if err != nil {
		return nil, fmt.Errorf("events consumer: %w", err)
	}
	return cons, nil
}

// publishEvents turns status changes into DocumentEvents, dead-letters
// failed tasks in Redis as the original service did, and removes the API
// key of every task that ended.
func (s *Service) publishEvents(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("events consumer: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		if len(msg.Data()) == 0 { // delete or purge marker
			_ = msg.Ack()
			continue
		}
		st, err := status.Decode(msg.Data())
		if err != nil {
			_ = msg.Term()
			continue
		}
		if err := s.onStatus(ctx, st); err != nil {
			s.log.Warn("publishing document event; will retry", "task_id", st.TaskID, "err", err)
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		_ = msg.Ack()
	}
}

func (s *Service) onStatus(ctx context.Context, st status.Status) error {
	ev := DocumentEvent{
		DocID: st.DocID, UserID: st.UserID, Status: string(st.State),
		Timestamp: st.UpdatedAt.UTC().Format(time.RFC3339Nano),
		Progress:  Progress{TotalChunks: st.Chunks},
	}
	if ev.DocID == "" {
		ev.DocID = st.TaskID
	}
	switch st.State {
	case status.Done:
		// The backend publishes "completed" itself once it has stored the
		// chunks. A dead-letter entry of an earlier failure is resolved;
		// the key is no longer needed.
		if removed, err := s.queue.Resolve(ctx, st.TaskID); err != nil {
			return err
		} else if removed {
			s.log.Info("task done after all; its dead-letter entry is removed", "task_id", st.TaskID)
		}
		return pipeline.DeleteAPIKey(ctx, s.res.Keys, st.TaskID)
	case status.Failed:
		// Event first: if a later step fails and the change is handled
		// again, the user sees a repeated event; the dead-letter entry
		// is recorded once per failure either way.
		ev.Type = "failed"
		ev.Message = fmt.Sprintf("%s failed: %s", st.Stage, st.Error)
		ev.Progress.Percentage = s.shownProgress(ctx, ev.DocID)
		if err := s.publish(ctx, ev); err != nil {
			return err
		}
		if err := s.deadLetter(ctx, st); err != nil {
			return err
		}
		return pipeline.DeleteAPIKey(ctx, s.res.Keys, st.TaskID)
	case status.Cancelled:
		// The backend knows processing, completed and failed; failed is
		// the type that ends a document for its users, and the status
		// says "cancelled". A cancel is no failure: no dead-letter entry
		// (and an earlier failure's entry stays until the task is done).
		ev.Type = "failed"
		ev.Message = fmt.Sprintf("cancelled during %s: %s", st.Stage, st.Error)
		ev.Progress.Percentage = s.shownProgress(ctx, ev.DocID)
		if err := s.publish(ctx, ev); err != nil {
			return err
		}
		return pipeline.DeleteAPIKey(ctx, s.res.Keys, st.TaskID)
	}
	ev.Type = "processing"
	ev.Message = describe(st)
	ev.Progress.Percentage = percentage(st.State)
	mode, run := stepEvent, 0
	if st.State == status.Queued && st.Run > 1 {
		mode, run = runEvent, st.Run
	}
	_, err := s.publishProgress(ctx, ev, mode, run)
	return err
}

func (s *Service) publish(ctx context.Context, ev DocumentEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return s.rdb.Publish(ctx, s.cfg.Events, data).Err()
}

// deadLetter records a failed task in queue:dlq with its reason, as the
// original service did, so operators find every failure in one place:
// once per failure (the record's UpdatedAt names it), replacing the entry
// of an earlier failure of the same task.
func (s *Service) deadLetter(ctx context.Context, st status.Status) error {
	raw := string(st.Task)
	if raw == "" {
		raw = fmt.Sprintf(`{"task_id":%q}`, st.TaskID)
	}
	failure := strconv.FormatInt(st.UpdatedAt.UnixNano(), 10)
	_, err := s.queue.RecordTaskFailure(ctx, st.TaskID, failure, raw, fmt.Sprintf("%s: %s", st.Stage, st.Error))
	return err
}

func describe(st status.Status) string {
	switch st.State {
	case status.Queued:
		if st.Run > 1 {
			return fmt.Sprintf("sent again after it had failed or was cancelled: starting over (run %d)", st.Run)
		}
		return "queued for processing"
	case status.Fetching:
		return "downloading the PDF"
	case status.Parsing:
		return "extracting text"
	case status.Embedding:
		msg := fmt.Sprintf("embedding %d chunks from %d pages", st.Chunks, st.Pages)
		if st.EmptyPages > 0 {
			msg += fmt.Sprintf(" (%d of %d pages have no text layer)", st.EmptyPages, st.Pages)
		}
		if st.UnreadablePages > 0 {
			msg += fmt.Sprintf(" (%d of %d pages have unreadable text: mostly undecodable characters, which are not embedded)", st.UnreadablePages, st.Pages)
		}
		return msg
	case status.Ingesting:
		return "sending chunks to storage"
	}
	return strings.ToLower(string(st.State))
}

func percentage(s status.State) float64 {
	switch s {
	case status.Queued:
		return 0
	case status.Fetching:
		return 5
	case status.Parsing:
		return 15
	case status.Embedding:
		return 40
	case status.Ingesting:
		return 80
	}
	return 0
}
