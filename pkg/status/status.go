// Package status keeps each task's state in the status KV bucket: one JSON
// record per task id, changed only by compare-and-set so concurrent stages
// and replicas never overwrite each other, and never moved out of a
// terminal state (done, failed or cancelled) except by a replay (Reopen)
// or a re-push (Retry).
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// State is where a task is.
type State string

// States in pipeline order; Done, Failed and Cancelled are terminal.
const (
	Queued    State = "queued"
	Fetching  State = "fetching"
	Parsing   State = "parsing"
	Embedding State = "embedding"
	Ingesting State = "ingesting"
	Done      State = "done"
	Failed    State = "failed"
	// Cancelled: stopped on an operator's request (Cancel) before the
	// backend held the document. Like Failed, a re-push or a replay may
	// start it again.
	Cancelled State = "cancelled"
)

// Terminal reports whether no stage will change the task any more.
func (s State) Terminal() bool { return s == Done || s == Failed || s == Cancelled }

// StageOf is the stage that works on a task in state s ("fetch" for a
// queued task, whose fetch job waits), "" for an ended task.
func StageOf(s State) string {
	switch s {
	case Queued, Fetching:
		return "fetch"
	case Parsing:
		return "parse"
	case Embedding:
		return "embed"
	case Ingesting:
		return "ingest"
	}
	return ""
}

// Status is the record of one task.
type Status struct {
	TaskID     string `json:"task_id"`
	DocID      string `json:"doc_id,omitempty"`
	UserID     string `json:"user_id,omitempty"`
	FileName   string `json:"file_name,omitempty"`
	State      State  `json:"state"`
	Stage      string `json:"stage,omitempty"` // stage that failed (or was at work when cancelled), with Error
	Error      string `json:"error,omitempty"` // why it failed, or was cancelled
	Pages      int    `json:"pages,omitempty"`
	EmptyPages int    `json:"empty_pages,omitempty"`
	Chunks     int    `json:"chunks,omitempty"`
	Chapters   int    `json:"chapters,omitempty"`
	Ingested   int    `json:"chunks_ingested,omitempty"`
	Attempts   int    `json:"ingest_attempts,omitempty"`
	// SentWhole is the ingest attempt whose stream carried every chunk
	// and was being closed when the ingester last knew of it: if the
	// process died waiting for the backend's answer, the backend may hold
	// the whole document already.
	SentWhole int `json:"ingest_sent_whole,omitempty"`
	// SentMax bounds from above how many chunks (a prefix, as the backend
	// stores them in arrival order) any ingest attempt may have delivered:
	// raised before an attempt sends beyond it, set to the exact count when
	// an attempt broke and the ingester survived, kept by Reopen.
	SentMax int `json:"ingest_sent_max,omitempty"`
	// DoneBefore reports that the task had ended done (the backend held
	// the whole document) before a replay reopened it: the task cannot end
	// failed any more (see Fail).
	DoneBefore bool `json:"done_before,omitempty"`
	// Note says how a non-obvious outcome was decided (e.g. done inferred
	// from the backend's counts) or what the task is waiting for.
	Note      string          `json:"note,omitempty"`
	SHA256    string          `json:"sha256,omitempty"`
	Size      int64           `json:"size,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Task      json.RawMessage `json:"task,omitempty"` // the task as received

	// Set by the gateway's intake.

	// TaskTrimmed: Task holds only the fields the pipeline reads; the
	// entry as received was larger than the gateway keeps.
	TaskTrimmed bool `json:"task_trimmed,omitempty"`
	// Entry is the fingerprint (task.Fingerprint) of the queue entry that
	// started the current run.
	Entry string `json:"entry,omitempty"`
	// Run counts the runs started from queue entries: 1 for the first, one
	// more for each re-push that retried the task after it failed.
	Run int `json:"run,omitempty"`

	// Set by the parser.

	// UnreadablePages are pages whose text is mostly undecodable (U+FFFD,
	// private-use or control characters): counted like pages without
	// text (EmptyPages), never embedded.
	UnreadablePages int `json:"unreadable_pages,omitempty"`
}

// ErrTerminal is returned by Update when the task has already ended.
var ErrTerminal = errors.New("task already ended")

// ErrNotFound is returned for an unknown task id.
var ErrNotFound = errors.New("task not found")

// ErrDone is returned by Cancel for a task that is done: the backend holds
// the whole document, and no cancel takes it back.
var ErrDone = errors.New("task is done: the backend holds the whole document")

// ErrSentWhole is returned by Cancel for a task whose ingester has sent
// the whole document (SentWhole): the backend may hold it already, so the
// task is left to end done or failed by the backend's answer.
var ErrSentWhole = errors.New("the whole document has been sent to the backend, which may hold it")

// Store reads and writes task status.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// New returns a Store over the status bucket.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv, now: time.Now} }

// Create records a new task. It returns false, and changes nothing, when
// the task id is already known: a task is started at most once.
func (s *Store) Create(ctx context.Context, st Status) (bool, error) {
	now := s.now().UTC()
	if st.State == "" {
		st.State = Queued
	}
	st.CreatedAt, st.UpdatedAt = now, now
	data, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	_, err = s.kv.Create(ctx, pipeline.Token(st.TaskID), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create status %s: %w", st.TaskID, err)
	}
	return true, nil
}

// Get returns the status of a task.
func (s *Store) Get(ctx context.Context, taskID string) (Status, error) {
	st, _, err := s.get(ctx, taskID)
	return st, err
}

func (s *Store) get(ctx context.Context, taskID string) (Status, uint64, error) {
	e, err := s.kv.Get(ctx, pipeline.Token(taskID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, 0, fmt.Errorf("status %s: %w", taskID, ErrNotFound)
	}
	if err != nil {
		return Status{}, 0, fmt.Errorf("status %s: %w", taskID, err)
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return Status{}, 0, fmt.Errorf("status %s: decode: %w", taskID, err)
	}
	return st, e.Revision(), nil
}

// Update applies fn to the task's record with compare-and-set, retrying on
// conflicts. A task that has ended is not changed: Update returns
// ErrTerminal. A task never created (replayed by hand, say) is created.
func (s *Store) Update(ctx context.Context, taskID string, fn func(*Status)) (Status, error) {
	for {
		st, rev, err := s.get(ctx, taskID)
		if errors.Is(err, ErrNotFound) {
			st = Status{TaskID: taskID, State: Queued, CreatedAt: s.now().UTC()}
		} else if err != nil {
			return Status{}, err
		}
		if st.State.Terminal() {
			return st, fmt.Errorf("status %s: %w (%s)", taskID, ErrTerminal, st.State)
		}
		fn(&st)
		st.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(st)
		if err != nil {
			return Status{}, err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, pipeline.Token(taskID), data)
		} else {
			_, err = s.kv.Update(ctx, pipeline.Token(taskID), data, rev)
		}
		if err == nil {
			return st, nil
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // someone else wrote in between: read again
		}
		return Status{}, fmt.Errorf("update status %s: %w", taskID, err)
	}
}

// Reopen puts a task back into state for a replay, even if it had ended:
// the failure reason, note and SentWhole are cleared; counts, SentMax (the
// backend keeps what earlier attempts stored) are kept, and a task that
// was done is marked DoneBefore.
func (s *Store) Reopen(ctx context.Context, taskID string, state State) (Status, error) {
	for {
		st, rev, err := s.get(ctx, taskID)
		if err != nil {
			return Status{}, err
		}
		if st.State == Done {
			st.DoneBefore = true
		}
		st.State, st.Stage, st.Error, st.SentWhole, st.Note = state, "", "", 0, ""
		st.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(st)
		if err != nil {
			return Status{}, err
		}
		_, err = s.kv.Update(ctx, pipeline.Token(taskID), data, rev)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Status{}, fmt.Errorf("reopen status %s: %w", taskID, err)
		}
	}
}

// Retry starts a new run of a failed or cancelled task, for a queue entry
// sent again: if the task is failed or cancelled it clears the failure or
// cancel (stage and reason), counts
// the run, lets fn set the new run's fields and writes it with
// compare-and-set. The ingest bookkeeping (Attempts, SentWhole) is kept:
// the backend may hold the chunks of an earlier attempt. If the task is
// not failed or cancelled (any more) nothing changes and ok is false: the
// returned record says where it is.
func (s *Store) Retry(ctx context.Context, taskID string, fn func(*Status)) (st Status, ok bool, err error) {
	for {
		st, rev, err := s.get(ctx, taskID)
		if err != nil {
			return Status{}, false, err
		}
		if st.State != Failed && st.State != Cancelled {
			return st, false, nil
		}
		st.State, st.Stage, st.Error = Queued, "", ""
		st.Run = max(st.Run, 1) + 1
		fn(&st)
		st.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(st)
		if err != nil {
			return Status{}, false, err
		}
		_, err = s.kv.Update(ctx, pipeline.Token(taskID), data, rev)
		if err == nil {
			return st, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Status{}, false, fmt.Errorf("retry status %s: %w", taskID, err)
		}
	}
}

// Cancel ends a running task as cancelled, with the stage at work (Stage)
// and reason (Error). Stages watching the record stop between pages and
// batches (see stage.Working), and none can move the task out of its end
// afterwards: Update refuses an ended task. It returns the record before
// and after. A task that has ended is not changed: a done one gives an
// error wrapping ErrDone, a failed or cancelled one ErrTerminal (nothing
// to do), an unknown one ErrNotFound; one being ingested after an attempt
// sent the whole document (SentWhole: the answer may be on its way, or
// was lost) ErrSentWhole. A replay of a task that
// was done before (DoneBefore) ends done again, the cancel in its note,
// as Fail does: the backend still holds the document it stored then.
func (s *Store) Cancel(ctx context.Context, taskID, reason string) (before, after Status, err error) {
	for {
		st, rev, err := s.get(ctx, taskID)
		if err != nil {
			return Status{}, Status{}, err
		}
		before = st
		switch {
		case st.State == Done:
			return before, st, fmt.Errorf("status %s: %w", taskID, ErrDone)
		case st.State.Terminal():
			return before, st, fmt.Errorf("status %s: %w (%s)", taskID, ErrTerminal, st.State)
		case st.State == Ingesting && st.SentWhole > 0 && !st.DoneBefore:
			return before, st, fmt.Errorf("status %s: %w (ingest attempt %d)", taskID, ErrSentWhole, st.SentWhole)
		}
		stage := StageOf(st.State)
		if st.DoneBefore {
			st.State = Done
			st.Note = fmt.Sprintf("replay cancelled at %s: %s; the backend still holds the document it stored before", stage, reason)
		} else {
			st.State, st.Stage, st.Error = Cancelled, stage, reason
		}
		st.UpdatedAt = s.now().UTC()
		data, err := json.Marshal(st)
		if err != nil {
			return Status{}, Status{}, err
		}
		_, err = s.kv.Update(ctx, pipeline.Token(taskID), data, rev)
		if err == nil {
			return before, st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Status{}, Status{}, fmt.Errorf("cancel status %s: %w", taskID, err)
		}
	}
}

// Advance moves a task to state unless it has ended.
func (s *Store) Advance(ctx context.Context, taskID string, state State) error {
	_, err := s.Update(ctx, taskID, func(st *Status) { st.State = state })
	return err
}

// Fail ends a task as failed at stage with the reason. Failing a task that
// has already ended changes nothing and is not an error. A replayed task
// that was done before (DoneBefore) ends done again instead, the failure
// in its Note: the backend still holds the document it stored then, and a
// replay never makes a task worse.
func (s *Store) Fail(ctx context.Context, taskID, stage string, reason error) error {
	_, err := s.Update(ctx, taskID, func(st *Status) {
		if st.DoneBefore {
			st.State = Done
			st.Note = fmt.Sprintf("replay failed at %s: %s; the backend still holds the document it stored before", stage, reason)
			return
		}
		st.State = Failed
		st.Stage = stage
		st.Error = reason.Error()
	})
	if errors.Is(err, ErrTerminal) {
		return nil
	}
	return err
}

// Decode reads a status record (for watchers of the bucket).
func Decode(data []byte) (Status, error) {
	var st Status
	err := json.Unmarshal(data, &st)
	return st, err
}
