package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/task"
	"github.com/pdfpipe/pdfpipe/pkg/tracing"
)

// HeaderTaskID carries the task id on every stage message, so failures can
// be attributed without decoding the body.
const HeaderTaskID = "Pdfpipe-Task-Id"

// FetchJob asks the fetcher to copy the task's PDF into the object store.
type FetchJob struct {
	Task   task.Task `json:"task"`
	Replay int       `json:"replay,omitempty"`
}

// Document describes a fetched PDF: where its bytes are and what they are.
type Document struct {
	Object string `json:"object"` // name in the ObjectsBucket
	SHA256 string `json:"sha256"` // lowercase hex of the bytes
	Size   int64  `json:"size"`
}

// ParseJob asks the parser to turn a fetched PDF into chunks.
type ParseJob struct {
	Task     task.Task `json:"task"`
	Document Document  `json:"document"`
	Replay   int       `json:"replay,omitempty"`
}

// Chunk is a piece of a document's text with where it came from.
type Chunk struct {
	ID         string `json:"id"`
	Index      int    `json:"index"`
	Text       string `json:"text"`
	Chapter    string `json:"chapter,omitempty"`
	ChapterNum string `json:"chapter_num,omitempty"`
	PageStart  int    `json:"page_start"`
	PageEnd    int    `json:"page_end"`
}

// EmbedJob asks an embedder to embed consecutive chunks of a task: the
// parser sends Chunks (a few at a time, published at the subject of the
// first one's index), one message per chunk costing more than the
// parsing of its text; a job with only Chunk set is one chunk (as every
// job was before batches).
type EmbedJob struct {
	TaskID        string  `json:"task_id"`
	SkipEmbedding bool    `json:"skip_embedding,omitempty"`
	Chunk         Chunk   `json:"chunk,omitzero"`
	Chunks        []Chunk `json:"chunks,omitempty"`
	Replay        int     `json:"replay,omitempty"`
}

// All returns the job's chunks in order.
func (j EmbedJob) All() []Chunk {
	if len(j.Chunks) > 0 {
		return j.Chunks
	}
	return []Chunk{j.Chunk}
}

// Vector is an embedded chunk, stored at VectorSubject(task, index).
type Vector struct {
	TaskID string    `json:"task_id"`
	Model  string    `json:"model"`
	Chunk  Chunk     `json:"chunk"`
	Vector []float32 `json:"vector"`
}

// IngestJob tells the ingester that a document is fully parsed: Chunks
// vectors will appear on the vector stream for it.
type IngestJob struct {
	Task       task.Task `json:"task"`
	Document   Document  `json:"document"`
	Pages      int       `json:"pages"`
	EmptyPages int       `json:"empty_pages,omitempty"`
	Chunks     int       `json:"chunks"`
	Chapters   int       `json:"chapters"`
	Replay     int       `json:"replay,omitempty"`
}

// ReplayNumber returns the run of its task the job belongs to: 0 for the
// first, the replay (or retry) number after.
func (j FetchJob) ReplayNumber() int { return j.Replay }

// ReplayNumber returns the run of its task the job belongs to.
func (j ParseJob) ReplayNumber() int { return j.Replay }

// ReplayNumber returns the run of its task the job belongs to.
func (j EmbedJob) ReplayNumber() int { return j.Replay }

// ReplayNumber returns the run of its task the job belongs to.
func (j IngestJob) ReplayNumber() int { return j.Replay }

// MsgID is the Nats-Msg-Id of a stage message: the task, the message's
// kind and index, and the replay number when a stage is replayed, so a
// replay is not dropped as a duplicate of the first run.
func MsgID(taskID string, replay int, parts ...string) string {
	id := taskID + ":" + strings.Join(parts, ":")
	if replay > 0 {
		id += "#" + strconv.Itoa(replay)
	}
	return id
}

// Publish sends v as JSON to subj with the task id header and a
// Nats-Msg-Id, so a retried publish within the duplicate window is stored
// once, and the trace context of ctx's span (tracing.Inject), so the stage
// that handles it continues the task's trace. It returns after the stream
// has stored the message.
func Publish(ctx context.Context, js jetstream.JetStream, subj, taskID, msgID string, v any) (*jetstream.PubAck, error) {
	m, err := NewMsg(subj, taskID, v)
	if err != nil {
		return nil, err
	}
	tracing.Inject(ctx, m.Header)
	opts := []jetstream.PublishOpt{}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", subj, err)
	}
	return ack, nil
}

// NewMsg builds the message Publish sends.
func NewMsg(subj, taskID string, v any) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", subj, err)
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(HeaderTaskID, taskID)
	return m, nil
}

// Decode reads a message body into v: JSON, or for an *EmbedJob also the
// binary form the parser publishes (EncodeEmbedJob).
func Decode(data []byte, v any) error {
	if j, ok := v.(*EmbedJob); ok && len(data) > 0 && data[0] == EmbedFormat1 {
		d, err := DecodeEmbedJob(data) // the parser's binary form
		if err != nil {
			return err
		}
		*j = d
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// EmbedQuery is the request on QuerySubject (GetEmbedding). Provider and
// APIKey are optional: without them the embedder's default provider answers.
// It travels as a core NATS request and is never stored.
type EmbedQuery struct {
	Text     string `json:"text"`
	Provider string `json:"provider,omitempty"`
	APIKey   string `json:"api_key,omitempty"`
	// SealedKey replaces APIKey when the gateway has a Sealer
	// (PDFPIPE_SECRET_KEY): any NATS client can subscribe to the query
	// subject, so the key crosses NATS sealed (SealQueryKey, OpenQueryKey).
	SealedKey []byte `json:"sealed_key,omitempty"`
}

// queryAAD binds a sealed query key to the query subject.
const queryAAD = "pdfpipe query key/" + QuerySubject

// SealQueryKey moves q's APIKey into SealedKey when s is not nil.
func (q *EmbedQuery) SealQueryKey(s *Sealer) {
	if s == nil || q.APIKey == "" {
		return
	}
	q.SealedKey, q.APIKey = s.Seal([]byte(q.APIKey), queryAAD), ""
}

// OpenQueryKey restores APIKey from SealedKey; without a Sealer a sealed
// key is ErrSealed.
func (q *EmbedQuery) OpenQueryKey(s *Sealer) error {
	if len(q.SealedKey) == 0 {
		return nil
	}
	if s == nil {
		return ErrSealed
	}
	plain, err := s.Open(q.SealedKey, queryAAD)
	if err != nil {
		return err
	}
	q.APIKey, q.SealedKey = string(plain), nil
	return nil
}

// SealerOf returns the Sealer of a keys bucket from Setup (nil when
// secrets are not sealed).
func SealerOf(kv jetstream.KeyValue) *Sealer { return sealerOf(kv) }

// EmbedReply answers an EmbedQuery.
type EmbedReply struct {
	Vector []float32 `json:"vector,omitempty"`
	Model  string    `json:"model,omitempty"`
	Error  string    `json:"error,omitempty"`
	// InvalidKey and BadInput say what kind of error it was, so the
	// gateway can answer with the right gRPC code.
	InvalidKey bool `json:"invalid_key,omitempty"`
	BadInput   bool `json:"bad_input,omitempty"`
}
