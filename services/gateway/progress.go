package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Progress shown to a user never goes backwards. Per document, a Redis
// hash "<REDIS_EVENTS_CHANNEL>:progress:<doc_id>" holds the highest
// percentage published on the events channel (by any gateway replica, or
// by the backend itself while it ingests) and the last run announced.
// The check and the PUBLISH are one Lua script, so replicas handling
// changes concurrently, late redeliveries and replays cannot publish a
// lower percentage after a higher one.

// progressMode says how an event relates to the progress already shown.
type progressMode string

const (
	// stepEvent is a pipeline step: published only if its percentage is
	// above every one shown, so a step is never shown twice (a retry, a
	// replay, a redelivered change) and never after a later one.
	stepEvent progressMode = "step"
	// runEvent announces a new run of a task (sent again after failing):
	// once per run, at no less than the percentage shown.
	runEvent progressMode = "run"
	// answerEvent answers an entry sent again: always published, at no
	// less than the percentage shown.
	answerEvent progressMode = "answer"
	// raiseMode only records a percentage seen on the channel.
	raiseMode progressMode = "raise"
)

// progressScript: KEYS[1] the document's progress hash; ARGV: channel,
// payload, percentage, mode, run, ttl in ms. Returns 1 published (or
// raised), 0 skipped, -1 the percentage is below the one shown (the
// caller raises it and tries again).
var progressScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'pct') or '-1')
local p = tonumber(ARGV[3])
local mode = ARGV[4]
if mode == 'step' or mode == 'raise' then
	if p <= cur then
		return 0
	end
elseif p < cur then
	return -1
end
if mode == 'run' then
	local r = tonumber(redis.call('HGET', KEYS[1], 'run') or '0')
	if tonumber(ARGV[5]) <= r then
		return 0
	end
	redis.call('HSET', KEYS[1], 'run', ARGV[5])
end
if p > cur then
	redis.call('HSET', KEYS[1], 'pct', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if mode ~= 'raise' then
	redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return 1
`)

func (s *Service) progressKey(docID string) string { return s.cfg.Events + ":progress:" + docID }

func (s *Service) progressTTL() time.Duration {
	if r := s.res.Config.Retention; r > 0 {
		return r
	}
	return 72 * time.Hour
}

// shownProgress returns the highest percentage shown for a document, 0
// when none (or Redis cannot tell).
func (s *Service) shownProgress(ctx context.Context, docID string) float64 {
	v, err := s.rdb.HGet(ctx, s.progressKey(docID), "pct").Float64()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// publishProgress publishes ev as mode allows; for run and answer events
// the percentage is raised to the one shown. It reports whether ev was
// published.
func (s *Service) publishProgress(ctx context.Context, ev DocumentEvent, mode progressMode, run int) (bool, error) {
	for range 10 {
		if mode == runEvent || mode == answerEvent {
			ev.Progress.Percentage = max(ev.Progress.Percentage, s.shownProgress(ctx, ev.DocID))
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return false, err
		}
		n, err := progressScript.Run(ctx, s.rdb, []string{s.progressKey(ev.DocID)}, s.cfg.Events, data,
			strconv.FormatFloat(ev.Progress.Percentage, 'f', -1, 64), string(mode), run, s.progressTTL().Milliseconds()).Int()
		if err != nil {
			return false, fmt.Errorf("event for %s: %w", ev.DocID, err)
		}
		if n >= 0 {
			return n == 1, nil
		}
	}
	return false, fmt.Errorf("event for %s: progress kept rising while publishing", ev.DocID)
}

// followBackendProgress records the percentages the backend publishes on
// the events channel while it ingests, so no pipeline event shown after
// them is lower (the backend's "completed" counts as 100). It returns
// when ctx ends; a lost subscription is re-established by the client.
func (s *Service) followBackendProgress(ctx context.Context) error {
	sub := s.rdb.Subscribe(ctx, s.cfg.Events)
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			var ev DocumentEvent
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil || ev.DocID == "" {
				continue
			}
			pct := ev.Progress.Percentage
			switch ev.Type {
			case "completed":
				pct = 100
			case "processing":
			default:
				continue
			}
			_, err := progressScript.Run(ctx, s.rdb, []string{s.progressKey(ev.DocID)}, s.cfg.Events, "",
				strconv.FormatFloat(pct, 'f', -1, 64), string(raiseMode), 0, s.progressTTL().Milliseconds()).Result()
			if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
				s.log.Warn("recording the backend's progress", "doc_id", ev.DocID, "err", err)
			}
		}
	}
}
