package task

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// knownFields are the fields Parse reads, in any of the three shapes.
var knownFields = []string{"task_id", "DocID", "UserID", "FileName", "CreatedAt", "URL", "s3_url", "FileSize", "RagMode"}

// Fingerprint identifies a queue entry by its exact bytes: the hex
// SHA-256 of raw, shortened to 32 characters.
func Fingerprint(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// Trimmed returns the task with Raw bounded to max bytes: the entry as
// received when it fits, else a JSON object of only the fields Parse
// reads (their values as received; unknown fields dropped). trimmed
// reports whether anything was dropped. The known fields alone may still
// be longer than max; callers that need a hard bound check the size of
// what they build.
func (t Task) Trimmed(max int) (out Task, trimmed bool, err error) {
	if len(t.Raw) <= max {
		return t, false, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(t.Raw, &all); err != nil {
		return t, false, fmt.Errorf("trim task %s: %w", t.ID, err)
	}
	keep := make(map[string]json.RawMessage, len(knownFields))
	for _, k := range knownFields {
		if v, ok := all[k]; ok {
			keep[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep & in presigned URLs as it was
	if err := enc.Encode(keep); err != nil {
		return t, false, fmt.Errorf("trim task %s: %w", t.ID, err)
	}
	t.Raw = json.RawMessage(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return t, true, nil
}
