package pipeline_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func newSealer(t *testing.T) *pipeline.Sealer {
	t.Helper()
	key, err := pipeline.ParseSecretKey(pipeline.NewSecretKey())
	if err != nil {
		t.Fatal(err)
	}
	s, err := pipeline.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseSecretKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex", strings.Repeat("ab", 32), true},
		{"hex with newline", strings.Repeat("ab", 32) + "\n", true},
		{"base64", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", true},
		{"base64 raw url", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s", true},
		{"short hex", strings.Repeat("ab", 16), false},
		{"passphrase", "correct horse battery staple", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pipeline.ParseSecretKey(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseSecretKey: got err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !bytes.Equal(got, raw) {
				t.Errorf("got %x, want %x", got, raw)
			}
			if err != nil && tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q repeats the value", err)
			}
		})
	}
}

// Sealed records hold neither key nor password in the clear, open only for
// the task they were sealed for and only with the key they were sealed
// with; a process without the key (or with one but reading plain records)
// refuses them with a clear error.
func TestSealedKeys(t *testing.T) {
	sealer := newSealer(t)
	r := setup(t, pipeline.Config{Sealer: sealer})
	ctx := testCtx(t)
	key := pipeline.APIKey{Provider: "openai", Key: secret}
	const password = "pdf-password-7f3c9a"
	if err := pipeline.PutAPIKey(ctx, r.Keys, "victim", key, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.PutPDFPassword(ctx, r.Keys, "victim", password, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := pipeline.GetAPIKey(ctx, r.Keys, "victim", 0); err != nil || got != key {
		t.Fatalf("GetAPIKey: got %+v, %v; want %+v", got, err, key)
	}
	if got, err := pipeline.GetPDFPassword(ctx, r.Keys, "victim", 0); err != nil || got != password {
		t.Fatalf("GetPDFPassword: got %q, %v", got, err)
	}
	// The raw records, as any NATS client reads them.
	for _, k := range []string{pipeline.Token("victim"), pipeline.Token("victim") + ".pdf"} {
		e, err := r.Keys.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !pipeline.IsSealed(e.Value()) {
			t.Errorf("record %s is not sealed", k)
		}
		for _, s := range []string{secret, password, "openai", "api_key"} {
			if bytes.Contains(e.Value(), []byte(s)) {
				t.Errorf("record %s contains %q in the clear", k, s)
			}
		}
	}
	// A sealed value copied to another task's key does not open there.
	e, _ := r.Keys.Get(ctx, pipeline.Token("victim"))
	if _, err := r.Keys.Put(ctx, pipeline.Token("thief"), e.Value()); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.GetAPIKey(ctx, r.Keys, "thief", 0); !errors.Is(err, pipeline.ErrUnseal) {
		t.Errorf("moved record: got %v, want ErrUnseal", err)
	}
	// Nor does the API key open as the same task's password.
	if _, err := r.Keys.Put(ctx, pipeline.Token("thief")+".pdf", e.Value()); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.GetPDFPassword(ctx, r.Keys, "thief", 0); !errors.Is(err, pipeline.ErrUnseal) {
		t.Errorf("key read as password: got %v, want ErrUnseal", err)
	}
	// Another key, no key, a plain record.
	plain := r.Keys.(*pipeline.KeysKV).KeyValue
	tests := []struct {
		name string
		kv   jetstream.KeyValue
		task string
		want error
	}{
		{"other key", &pipeline.KeysKV{KeyValue: plain, Sealer: newSealer(t)}, "victim", pipeline.ErrUnseal},
		{"no key", plain, "victim", pipeline.ErrSealed},
		{"no key in KeysKV", &pipeline.KeysKV{KeyValue: plain}, "victim", pipeline.ErrSealed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.GetAPIKey(ctx, tc.kv, tc.task, 0)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := pipeline.PutAPIKey(ctx, plain, "plain", key, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.GetAPIKey(ctx, r.Keys, "plain", time.Second); !errors.Is(err, pipeline.ErrNotSealed) {
		t.Errorf("plain record read by a sealing process: got %v, want ErrNotSealed", err)
	}
}

// The first key of a task wins: CreateAPIKey accepts the same key again
// but never replaces it with another; likewise for PDF passwords.
func TestCreateAPIKeyFirstWins(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprintf("sealed=%v", sealed), func(t *testing.T) {
			cfg := pipeline.Config{}
			if sealed {
				cfg.Sealer = newSealer(t)
			}
			r := setup(t, cfg)
			ctx := testCtx(t)
			first := pipeline.APIKey{Provider: "openai", Key: "sk-first"}
			if err := pipeline.CreateAPIKey(ctx, r.Keys, "t", first, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := pipeline.CreateAPIKey(ctx, r.Keys, "t", first, time.Hour); err != nil {
				t.Errorf("same key again: got %v, want nil", err)
			}
			for _, k := range []pipeline.APIKey{{Provider: "openai", Key: "sk-attacker"}, {Provider: "gemini", Key: "sk-first"}} {
				if err := pipeline.CreateAPIKey(ctx, r.Keys, "t", k, time.Hour); !errors.Is(err, pipeline.ErrKeyTaken) {
					t.Errorf("swap to %s: got %v, want ErrKeyTaken", k.Provider, err)
				}
			}
			if got, err := pipeline.GetAPIKey(ctx, r.Keys, "t", 0); err != nil || got != first {
				t.Errorf("after swap attempts: got %+v, %v; want %+v", got, err, first)
			}
			if err := pipeline.CreatePDFPassword(ctx, r.Keys, "t", "one", time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := pipeline.CreatePDFPassword(ctx, r.Keys, "t", "two", time.Hour); !errors.Is(err, pipeline.ErrKeyTaken) {
				t.Errorf("password swap: got %v, want ErrKeyTaken", err)
			}
			if got, _ := pipeline.GetPDFPassword(ctx, r.Keys, "t", 0); got != "one" {
				t.Errorf("password after swap attempt: got %q, want one", got)
			}
			// After the task ended, a new key may be created.
			if err := pipeline.DeleteAPIKey(ctx, r.Keys, "t"); err != nil {
				t.Fatal(err)
			}
			second := pipeline.APIKey{Provider: "gemini", Key: "sk-second"}
			if err := pipeline.CreateAPIKey(ctx, r.Keys, "t", second, time.Hour); err != nil {
				t.Errorf("create after delete: %v", err)
			}
		})
	}
}

// Ended tasks leave nothing in the keys bucket once the marker TTL has
// passed: no marker for keys that never existed, and the markers of
// deleted ones expire.
func TestDeletedKeysLeaveNothing(t *testing.T) {
	r := setup(t, pipeline.Config{KeyMarkerTTL: time.Second, Sealer: newSealer(t)})
	ctx := testCtx(t)
	for i := range 20 {
		id := fmt.Sprintf("task-%d", i)
		switch i % 3 {
		case 0: // key and password
			if err := pipeline.PutPDFPassword(ctx, r.Keys, id, "pw", time.Hour); err != nil {
				t.Fatal(err)
			}
			fallthrough
		case 1: // key only
			if err := pipeline.PutAPIKey(ctx, r.Keys, id, pipeline.APIKey{Provider: "openai", Key: "k"}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		// case 2: the task never had a key.
	}
	for i := range 20 {
		if err := pipeline.DeleteAPIKey(ctx, r.Keys, fmt.Sprintf("task-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := r.JS.Stream(ctx, "KV_"+pipeline.KeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 7 tasks had a key and a password, 7 a key only: one marker each.
	if want := uint64(7*2 + 7); info.State.Msgs != want {
		t.Errorf("right after the deletes: %d messages in the bucket, want %d markers", info.State.Msgs, want)
	}
	testenv.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 || info.State.NumSubjects != 0 {
			return fmt.Errorf("keys bucket still holds %d messages on %d subjects", info.State.Msgs, info.State.NumSubjects)
		}
		return nil
	})
}
