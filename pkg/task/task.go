// Package task is the contract for the upload tasks the Go backend enqueues on
// the Redis list queue:upload_tasks.
//
// Three JSON shapes exist in the wild and Parse accepts all of them, ignoring
// fields it does not know (the original worker added retry_count, last_error
// and last_attempt_time when it re-queued a task):
//
//	the backend today (LPUSH, Go struct without json tags):
//	  {"DocID":"<uuid>","FileName":"a.pdf","UserID":"u1","CreatedAt":"<RFC3339Nano>",
//	   "URL":"<presigned http(s) GET URL>","RagMode":"true"|"false"|""}
//	the original README (RPUSH):
//	  {"DocID":"…","UserID":"…","FileName":"…","URL":"…","FileSize":1024000,"task_id":"…"}
//	the oldest:
//	  {"task_id":"…","s3_url":"s3://bucket/key"}
//
// Field names are matched exactly (case-sensitive), as the producers write them.
package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// MaxIDLen is the longest task_id or DocID Parse accepts, in bytes.
const MaxIDLen = 256

// Task is one parsed upload task.
type Task struct {
	// ID identifies the task everywhere in the pipeline: task_id when present
	// and non-empty, else DocID.
	ID string
	// DocID is the backend's document id (the IngestService file_id). It is
	// empty for the oldest shape; see DocumentID.
	DocID    string
	UserID   string
	FileName string
	// URL is where the PDF is: an http(s) URL (the backend sends a presigned
	// GET URL that expires after 15 minutes) or s3://bucket/key. Taken from
	// "URL", or from the legacy "s3_url" when URL is absent or empty.
	URL string
	// FileSize is the size the producer announced, 0 when absent. It arrives
	// as a JSON number or a string of digits.
	FileSize int64
	// CreatedAt is kept as the producer wrote it (the backend sends RFC3339Nano).
	CreatedAt string
	// RagMode is "true", "false" or "" as the backend sends it (a JSON boolean
	// is turned into "true" or "false"). See SkipEmbedding.
	RagMode string
	// Raw is the entry exactly as received, for the dead-letter list.
	Raw json.RawMessage
}

// SkipEmbedding reports whether the backend said it will not search this
// document (RagMode "false", any case): the pipeline then sends zero vectors
// instead of calling an embedding provider.
func (t Task) SkipEmbedding() bool {
	return strings.EqualFold(strings.TrimSpace(t.RagMode), "false")
}

// DocumentID is the id to send to the backend as file_id: DocID, or ID for
// the oldest shape, which has no DocID.
func (t Task) DocumentID() string {
	if t.DocID != "" {
		return t.DocID
	}
	return t.ID
}

// S3Location splits an s3://bucket/key URL. ok is false for http(s) URLs.
// The key is unescaped (s3://b/a%20b.pdf has key "a b.pdf").
func (t Task) S3Location() (bucket, key string, ok bool) {
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "s3" {
		return "", "", false
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), true
}

// Parse decodes and validates one queue entry. Every error wraps one of the
// sentinels in errors.go and says which field is wrong and why.
func Parse(raw []byte) (Task, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Task{}, fmt.Errorf("%w: empty entry", ErrMalformed)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return Task{}, fmt.Errorf("%w: not JSON: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Task{}, fmt.Errorf("%w: not JSON: data after the first value", ErrMalformed)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Task{}, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformed, jsonKind(v))
	}

	var t Task
	var err error
	str := func(key string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = stringField(m, key)
		return s
	}
	taskID := str("task_id")
	t.DocID = str("DocID")
	t.UserID = str("UserID")
	t.FileName = str("FileName")
	t.CreatedAt = str("CreatedAt")
	u := str("URL")
	s3u := str("s3_url")
	if err != nil {
		return Task{}, err
	}
	if t.RagMode, err = ragModeField(m); err != nil {
		return Task{}, err
	}
	if t.FileSize, err = fileSizeField(m); err != nil {
		return Task{}, err
	}

	if err := checkID("task_id", taskID); err != nil {
		return Task{}, err
	}
	if err := checkID("DocID", t.DocID); err != nil {
		return Task{}, err
	}
	t.ID = taskID
	if t.ID == "" {
		t.ID = t.DocID
	}
	if t.ID == "" {
		return Task{}, ErrMissingID
	}

	t.URL = strings.TrimSpace(u)
	field := "URL"
	if t.URL == "" {
		t.URL, field = strings.TrimSpace(s3u), "s3_url"
	}
	if t.URL == "" {
		return Task{}, fmt.Errorf("%w (task %q)", ErrMissingURL, t.ID)
	}
	if err := checkURL(field, t.URL); err != nil {
		return Task{}, err
	}

	t.Raw = append(json.RawMessage(nil), raw...)
	return t, nil
}

// stringField returns m[key] as a string; absent and null are "".
func stringField(m map[string]any, key string) (string, error) {
	switch x := m[key].(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	default:
		return "", fmt.Errorf("%w: field %s: want a string, got %s", ErrMalformed, key, jsonKind(x))
	}
}

func ragModeField(m map[string]any) (string, error) {
	switch x := m["RagMode"].(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return "", fmt.Errorf("%w: field RagMode: want \"true\", \"false\" or \"\", got %s", ErrMalformed, jsonKind(x))
	}
}

// fileSizeField accepts a JSON number or a string holding one; it must be a
// whole number of bytes, not negative.
func fileSizeField(m map[string]any) (int64, error) {
	var s string
	switch x := m["FileSize"].(type) {
	case nil:
		return 0, nil
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
	default:
		return 0, fmt.Errorf("%w: field FileSize: want a number, got %s", ErrMalformed, jsonKind(x))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// 1024000.0 or 1.024e6 from a float-minded producer.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || f < 0 || f >= math.MaxInt64 {
			return 0, fmt.Errorf("%w: field FileSize: %q is not a whole number of bytes", ErrMalformed, s)
		}
		n = int64(f)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: field FileSize: %d is negative", ErrMalformed, n)
	}
	return n, nil
}

func checkID(field, id string) error {
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s is %d bytes, longer than %d", ErrBadID, field, len(id), MaxIDLen)
	}
	if i := strings.IndexFunc(id, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%w: %s contains control character %U at byte %d", ErrBadID, field, []rune(id[i:])[0], i)
	}
	return nil
}

// checkURL accepts http(s)://host/... and s3://bucket/key. Messages do not
// echo the URL: a presigned URL carries a signature.
func checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL itself
		}
		if scheme, _, ok := strings.Cut(raw, "://"); ok && strings.EqualFold(scheme, "s3") {
			return fmt.Errorf("%w: field %s: %w", ErrBadS3URL, field, err)
		}
		return fmt.Errorf("%w: field %s: %w", ErrBadURL, field, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%w: field %s: %s URL has no host", ErrBadURL, field, u.Scheme)
		}
		return nil
	case "s3":
		switch {
		case u.Opaque != "":
			return fmt.Errorf("%w: field %s: want s3://bucket/key", ErrBadS3URL, field)
		case u.Host == "":
			return fmt.Errorf("%w: field %s: no bucket, want s3://bucket/key", ErrBadS3URL, field)
		case u.User != nil || u.Port() != "":
			return fmt.Errorf("%w: field %s: bucket %q has user info or a port, want s3://bucket/key", ErrBadS3URL, field, u.Host)
		case strings.TrimPrefix(u.Path, "/") == "":
			return fmt.Errorf("%w: field %s: no object key in bucket %q, want s3://bucket/key", ErrBadS3URL, field, u.Host)
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
			return fmt.Errorf("%w: field %s: query or fragment in an s3 URL (percent-encode ? and # in keys)", ErrBadS3URL, field)
		}
		return nil
	case "":
		return fmt.Errorf("%w: field %s: no scheme, want http, https or s3", ErrUnsupportedScheme, field)
	default:
		return fmt.Errorf("%w: field %s: %q, want http, https or s3", ErrUnsupportedScheme, field, u.Scheme)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
