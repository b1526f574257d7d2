package task

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestTrimmed(t *testing.T) {
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name        string
		raw         string
		max         int
		wantTrimmed bool
		wantKeys    []string // keys of the trimmed Raw, when trimmed
	}{
		{"fits: kept as received", `{"DocID":"d1","URL":"https://h/a.pdf","extra":"y"}`, 1000, false, nil},
		{"unknown fields dropped", `{"DocID":"d1","URL":"https://h/a.pdf?a=1&b=2","UserID":"u","extra":"` + big + `","retry_count":3}`, 1000, true, []string{"DocID", "URL", "UserID"}},
		{"oldest shape", `{"task_id":"t","s3_url":"s3://b/k","pad":"` + big + `"}`, 100, true, []string{"s3_url", "task_id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			out, trimmed, err := in.Trimmed(tc.max)
			if err != nil {
				t.Fatalf("Trimmed: %v", err)
			}
			if trimmed != tc.wantTrimmed {
				t.Fatalf("trimmed: got %v, want %v", trimmed, tc.wantTrimmed)
			}
			if !trimmed {
				if string(out.Raw) != tc.raw {
					t.Errorf("Raw: got %s, want the entry unchanged", out.Raw)
				}
				return
			}
			if strings.Contains(string(out.Raw), `\u0026`) {
				t.Errorf("Raw %s escapes &", out.Raw)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Raw, &got); err != nil {
				t.Fatalf("trimmed Raw %s: %v", out.Raw, err)
			}
			var keys []string
			var orig map[string]any
			_ = json.Unmarshal([]byte(tc.raw), &orig)
			for k, v := range got {
				keys = append(keys, k)
				if !reflect.DeepEqual(v, orig[k]) {
					t.Errorf("field %s: got %v, want %v as received", k, v, orig[k])
				}
			}
			if !sameSet(keys, tc.wantKeys) {
				t.Errorf("keys: got %v, want %v", keys, tc.wantKeys)
			}
			// The parsed fields are the same as before.
			again, err := Parse(out.Raw)
			if err != nil {
				t.Fatalf("trimmed entry does not parse: %v", err)
			}
			again.Raw, in.Raw = nil, nil
			if !reflect.DeepEqual(again, in) {
				t.Errorf("parsed trimmed entry: got %+v, want %+v", again, in)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint([]byte(`{"DocID":"d"}`)), Fingerprint([]byte(`{"DocID":"d" }`))
	if a == b || len(a) != 32 || a != Fingerprint([]byte(`{"DocID":"d"}`)) {
		t.Errorf("Fingerprint: got %q and %q, want 32 hex characters, equal only for equal bytes", a, b)
	}
}
