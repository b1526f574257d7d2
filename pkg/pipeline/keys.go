package pipeline

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// APIKey is a task's provider credential as kept in the KeysBucket. It is
// never part of a stage message and never logged (LogValue masks it).
type APIKey struct {
	Provider string `json:"provider"` // lower case: "openai" or "gemini"
	Key      string `json:"api_key"`
}

// LogValue masks the key.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", k.Provider), slog.Bool("key_set", k.Key != ""))
}

// ErrNoKey means no key was stored for the task (in time).
var ErrNoKey = errors.New("no API key for task")

// PutAPIKey stores a task's key for at most ttl (the bucket's per-key TTL).
// A key sent again replaces the earlier one. When kv is a KeysKV with a
// Sealer the record is sealed first (see Sealer).
func PutAPIKey(ctx context.Context, kv jetstream.KeyValue, taskID string, k APIKey, ttl time.Duration) error {
	return putKey(ctx, kv, Token(taskID), taskID, k, ttl, true)
}

// ErrKeyTaken: the task already has a different key (or password), which
// CreateAPIKey and CreatePDFPassword do not replace.
var ErrKeyTaken = errors.New("task already has a different key; not replaced")

// CreateAPIKey stores a task's key unless it already has one: the first
// key wins. The same key again is accepted (a retried call); a different
// one is refused with ErrKeyTaken, so that nobody can swap another task's
// key.
func CreateAPIKey(ctx context.Context, kv jetstream.KeyValue, taskID string, k APIKey, ttl time.Duration) error {
	return putKey(ctx, kv, Token(taskID), taskID, k, ttl, false)
}

// KeysKV is the keys bucket together with the Sealer its records are
// sealed with (nil: stored as plain JSON) and its marker TTL. Setup
// returns Resources.Keys as a *KeysKV; PutAPIKey, GetAPIKey and the PDF
// password functions seal and open through it.
type KeysKV struct {
	jetstream.KeyValue
	Sealer    *Sealer
	markerTTL time.Duration
}

func sealerOf(kv jetstream.KeyValue) *Sealer {
	if s, ok := kv.(*KeysKV); ok {
		return s.Sealer
	}
	return nil
}

// aad binds a sealed record to its place: bucket and key (task and kind).
func aad(key string) string { return KeysBucket + "/" + key }

func encodeKey(kv jetstream.KeyValue, key string, k APIKey) ([]byte, error) {
	data, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	if s := sealerOf(kv); s != nil {
		return s.Seal(data, aad(key)), nil
	}
	return data, nil
}

func putKey(ctx context.Context, kv jetstream.KeyValue, key, taskID string, k APIKey, ttl time.Duration, replace bool) error {
	data, err := encodeKey(kv, key, k)
	if err != nil {
		return err
	}
	for range 3 {
		_, err = kv.Create(ctx, key, data, jetstream.KeyTTL(ttl))
		if !errors.Is(err, jetstream.ErrKeyExists) {
			break
		}
		if !replace {
			old, rerr := readKey(ctx, kv, key)
			if errors.Is(rerr, ErrNoKey) {
				continue // deleted meanwhile: create again
			}
			if rerr == nil && old.Provider == k.Provider &&
				subtle.ConstantTimeCompare([]byte(old.Key), []byte(k.Key)) == 1 {
				return nil
			}
			return fmt.Errorf("store key of task %s: %w", taskID, ErrKeyTaken)
		}
		// Replace: per-key TTLs are set at creation, so delete and create.
		if derr := kv.Purge(ctx, key, jetstream.PurgeTTL(markerTTL(kv))); derr != nil {
			return fmt.Errorf("replace key of task %s: %w", taskID, derr)
		}
	}
	if err != nil {
		return fmt.Errorf("store key of task %s: %w", taskID, err)
	}
	return nil
}

// GetAPIKey returns the task's key, waiting up to wait for one that has
// not arrived yet. It watches the key (no polling) and returns ErrNoKey
// when none came in time.
func GetAPIKey(ctx context.Context, kv jetstream.KeyValue, taskID string, wait time.Duration) (APIKey, error) {
	return getKey(ctx, kv, Token(taskID), taskID, wait)
}

func getKey(ctx context.Context, kv jetstream.KeyValue, key, taskID string, wait time.Duration) (APIKey, error) {
	if k, err := readKey(ctx, kv, key); err == nil || !errors.Is(err, ErrNoKey) || wait <= 0 {
		return k, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := kv.Watch(wctx, key, jetstream.IgnoreDeletes())
	if err != nil {
		return APIKey{}, fmt.Errorf("watch key of task %s: %w", taskID, err)
	}
	defer w.Stop()
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return APIKey{}, ctx.Err()
			}
			return APIKey{}, fmt.Errorf("%w %s after waiting %s", ErrNoKey, taskID, wait)
		case e, ok := <-w.Updates():
			if !ok {
				return APIKey{}, fmt.Errorf("%w %s: watch closed", ErrNoKey, taskID)
			}
			if e == nil { // end of initial values; keep waiting for updates
				continue
			}
			return decodeKey(kv, key, e.Value())
		}
	}
}

// DeleteAPIKey removes a task's key and PDF password (when the task
// ends). Only what exists is purged, and each purge leaves a marker that
// expires after the bucket's marker TTL (KeyMarkerTTL), so an ended task
// leaves nothing in the bucket for long.
func DeleteAPIKey(ctx context.Context, kv jetstream.KeyValue, taskID string) error {
	for _, key := range []string{Token(taskID), passwordKey(taskID)} {
		if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		err := kv.Purge(ctx, key, jetstream.PurgeTTL(markerTTL(kv)))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete key of task %s: %w", taskID, err)
		}
	}
	return nil
}

// markerTTL is how long a purge marker stays: the bucket's LimitMarkerTTL
// (Setup sets it from Config.KeyMarkerTTL), at least a second (JetStream's
// smallest message TTL).
func markerTTL(kv jetstream.KeyValue) time.Duration {
	if s, ok := kv.(*KeysKV); ok && s.markerTTL > 0 {
		return s.markerTTL
	}
	return DefaultKeyMarkerTTL
}

// DefaultKeyMarkerTTL is how long the keys bucket keeps the marker of a
// deleted or expired key.
const DefaultKeyMarkerTTL = time.Minute

// PDFPasswordProvider is the provider name under which APIKeyService's
// ProvideAPIKey takes a task's PDF password instead of an API key. The
// password is kept in the KeysBucket beside the task's API key, with the
// same TTL, never in a stage message and never logged, and deleted when
// the task ends.
const PDFPasswordProvider = "pdf"

func passwordKey(taskID string) string { return Token(taskID) + ".pdf" }

// PutPDFPassword stores the password that opens the task's PDF.
func PutPDFPassword(ctx context.Context, kv jetstream.KeyValue, taskID, password string, ttl time.Duration) error {
	return putKey(ctx, kv, passwordKey(taskID), taskID, APIKey{Provider: PDFPasswordProvider, Key: password}, ttl, true)
}

// CreatePDFPassword stores the task's PDF password unless it already has
// a different one (ErrKeyTaken); the same password again is accepted.
func CreatePDFPassword(ctx context.Context, kv jetstream.KeyValue, taskID, password string, ttl time.Duration) error {
	return putKey(ctx, kv, passwordKey(taskID), taskID, APIKey{Provider: PDFPasswordProvider, Key: password}, ttl, false)
}

// GetPDFPassword returns the task's PDF password, waiting up to wait for
// one that has not arrived yet; ErrNoKey when none came in time.
func GetPDFPassword(ctx context.Context, kv jetstream.KeyValue, taskID string, wait time.Duration) (string, error) {
	k, err := getKey(ctx, kv, passwordKey(taskID), taskID, wait)
	return k.Key, err
}

func readKey(ctx context.Context, kv jetstream.KeyValue, key string) (APIKey, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return APIKey{}, ErrNoKey
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("read key: %w", err)
	}
	return decodeKey(kv, key, e.Value())
}

func decodeKey(kv jetstream.KeyValue, key string, data []byte) (APIKey, error) {
	s := sealerOf(kv)
	switch {
	case IsSealed(data) && s == nil:
		return APIKey{}, ErrSealed
	case IsSealed(data):
		plain, err := s.Open(data, aad(key))
		if err != nil {
			return APIKey{}, err
		}
		data = plain
	case s != nil:
		return APIKey{}, ErrNotSealed
	}
	var k APIKey
	if err := json.Unmarshal(data, &k); err != nil {
		return APIKey{}, errors.New("stored API key record is not valid JSON")
	}
	return k, nil
}
