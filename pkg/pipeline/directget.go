package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DirectGetRequest is the body of a batched DIRECT.GET request
// (JSApiMsgGetRequest in nats-server ≥ 2.11): the last message of each
// subject in MultiLast, or Batch messages from sequence Seq on that match
// NextBy. The server answers with the messages back to back, each with its
// subject and sequence in headers, then an end-of-batch status, stopping
// early past MaxBytes.
type DirectGetRequest struct {
	MultiLast []string `json:"multi_last,omitempty"`
	Seq       uint64   `json:"seq,omitempty"`
	NextBy    string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
}

// ErrNoDirectGet is returned by DirectGet when nothing answers direct gets
// for the stream: it does not allow them (AllowDirect false).
var ErrNoDirectGet = errors.New("the stream answers no direct gets")

// DirectGetSubject is the DIRECT.GET API subject of stream, under the
// JetStream context's domain or API prefix.
func DirectGetSubject(o jetstream.JetStreamOptions, stream string) string {
	prefix := jetstream.DefaultAPIPrefix
	switch {
	case o.Domain != "":
		prefix = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		prefix = strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return prefix + "DIRECT.GET." + stream
}

// DirectGet sends req to stream's DIRECT.GET subject and hands each
// message of the answer to each, in the order they arrive, until the
// end-of-batch status (or a 404: nothing found). It waits at most wait for
// each message. The answer is read through a callback subscription of its
// own inbox: a synchronous one allocates a channel of 64 Ki messages per
// request.
func DirectGet(ctx context.Context, js jetstream.JetStream, stream string, req DirectGetRequest, wait time.Duration, each func(*nats.Msg) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	nc := js.Conn()
	var (
		mu    sync.Mutex
		queue []*nats.Msg
		ready = make(chan struct{}, 1)
	)
	inbox := nc.NewRespInbox()
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		mu.Lock()
		queue = append(queue, m)
		mu.Unlock()
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(DirectGetSubject(js.Options(), stream), inbox, body); err != nil {
		return err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		mu.Lock()
		msgs := queue
		queue = nil
		mu.Unlock()
		for _, m := range msgs {
			if code := m.Header.Get("Status"); code != "" && len(m.Data) == 0 {
				switch code {
				case "204", "404": // end of batch; nothing (more) found
					return nil
				case "503":
					return ErrNoDirectGet
				}
				return fmt.Errorf("direct get from %s: status %s %s", stream, code, m.Header.Get("Description"))
			}
			if err := each(m); err != nil {
				return err
			}
		}
		if len(msgs) > 0 {
			timer.Reset(wait) // no stale tick to drain since Go 1.23
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("direct get from %s: no answer within %s: %w", stream, wait, nats.ErrTimeout)
		case <-ready:
		}
	}
}
