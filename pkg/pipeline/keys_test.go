package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

const secret = "sk-test-SECRET-0123456789"

func TestGetAPIKeyPresent(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for _, id := range []string{"t1", "with.dots and spaces", "=abc", ""} {
		t.Run(id, func(t *testing.T) {
			want := pipeline.APIKey{Provider: "openai", Key: secret + id}
			if err := pipeline.PutAPIKey(ctx, r.Keys, id, want, time.Hour); err != nil {
				t.Fatalf("PutAPIKey: %v", err)
			}
			for _, wait := range []time.Duration{0, time.Second} {
				got, err := pipeline.GetAPIKey(ctx, r.Keys, id, wait)
				if err != nil {
					t.Fatalf("GetAPIKey(wait %v): %v", wait, err)
				}
				if got != want {
					t.Errorf("GetAPIKey(wait %v): got %+v, want %+v", wait, got, want)
				}
			}
		})
	}
}

func TestGetAPIKeyMissingNoWait(t *testing.T) {
	r := setup(t, pipeline.Config{})
	_, err := pipeline.GetAPIKey(testCtx(t), r.Keys, "nobody", 0)
	if !errors.Is(err, pipeline.ErrNoKey) {
		t.Errorf("got %v, want ErrNoKey", err)
	}
}

func TestGetAPIKeyWaitsForLateKey(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	keysStream, err := r.JS.Stream(ctx, "KV_"+pipeline.KeysBucket)
	if err != nil {
		t.Fatalf("keys stream: %v", err)
	}
	want := pipeline.APIKey{Provider: "gemini", Key: secret}
	type result struct {
		k   pipeline.APIKey
		err error
	}
	res := make(chan result, 1)
	start := time.Now()
	go func() {
		k, err := pipeline.GetAPIKey(ctx, r.Keys, "late task", 10*time.Second)
		res <- result{k, err}
	}()
	// Put only once GetAPIKey is watching (its watcher is a consumer on
	// the bucket's stream), so the key really arrives while it waits.
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		info, err := keysStream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Consumers == 0 {
			return errors.New("no watcher on the keys bucket yet")
		}
		return nil
	})
	// And let it wait a while, as in production.
	putErr := make(chan error, 1)
	time.AfterFunc(200*time.Millisecond, func() {
		putErr <- pipeline.PutAPIKey(ctx, r.Keys, "late task", want, time.Hour)
	})
	// The watcher may see the key before the publisher sees its ack.
	defer func() {
		if err := <-putErr; err != nil {
			t.Errorf("PutAPIKey: %v", err)
		}
	}()
	select {
	case got := <-res:
		if got.err != nil {
			t.Fatalf("GetAPIKey: %v", got.err)
		}
		if got.k != want {
			t.Errorf("GetAPIKey: got %+v, want %+v", got.k, want)
		}
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("GetAPIKey returned after %v, before the key was put", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetAPIKey did not return after the key was put")
	}
	// The watcher is gone once GetAPIKey returned.
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		info, err := keysStream.Info(ctx)
		if err != nil {
			return err
		}
		if n := info.State.Consumers; n != 0 {
			return fmt.Errorf("watchers left on the keys bucket: got %d, want 0", n)
		}
		return nil
	})
}

func TestGetAPIKeyNeverArrives(t *testing.T) {
	r := setup(t, pipeline.Config{})
	const wait = 300 * time.Millisecond
	start := time.Now()
	_, err := pipeline.GetAPIKey(testCtx(t), r.Keys, "never", wait)
	el := time.Since(start)
	if !errors.Is(err, pipeline.ErrNoKey) {
		t.Fatalf("got %v, want ErrNoKey", err)
	}
	if el < wait {
		t.Errorf("returned after %v, want at least the wait %v", el, wait)
	}
	if el > wait+5*time.Second {
		t.Errorf("returned after %v, want about the wait %v", el, wait)
	}
}

func TestGetAPIKeyContextCancelled(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx, cancel := context.WithCancel(testCtx(t))
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := pipeline.GetAPIKey(ctx, r.Keys, "never", time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if errors.Is(err, pipeline.ErrNoKey) {
		t.Errorf("got %v, want not ErrNoKey for a cancelled caller", err)
	}
}

func TestPutAPIKeyReplaces(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for i, k := range []pipeline.APIKey{
		{Provider: "openai", Key: "first"},
		{Provider: "gemini", Key: "second"},
		{Provider: "openai", Key: "third"},
	} {
		if err := pipeline.PutAPIKey(ctx, r.Keys, "t1", k, time.Hour); err != nil {
			t.Fatalf("PutAPIKey %d: %v", i, err)
		}
		got, err := pipeline.GetAPIKey(ctx, r.Keys, "t1", 0)
		if err != nil {
			t.Fatalf("GetAPIKey %d: %v", i, err)
		}
		if got != k {
			t.Errorf("after put %d: got %+v, want %+v", i, got, k)
		}
	}
}

func TestDeleteAPIKey(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	if err := pipeline.DeleteAPIKey(ctx, r.Keys, "unknown"); err != nil {
		t.Errorf("DeleteAPIKey of an unknown task: got %v, want nil", err)
	}
	k := pipeline.APIKey{Provider: "openai", Key: secret}
	if err := pipeline.PutAPIKey(ctx, r.Keys, "t.1", k, time.Hour); err != nil {
		t.Fatalf("PutAPIKey: %v", err)
	}
	if err := pipeline.DeleteAPIKey(ctx, r.Keys, "t.1"); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if _, err := pipeline.GetAPIKey(ctx, r.Keys, "t.1", 0); !errors.Is(err, pipeline.ErrNoKey) {
		t.Errorf("GetAPIKey after delete: got %v, want ErrNoKey", err)
	}
	// A deleted key is really gone from the stream, not only marked.
	e, err := r.Keys.Get(ctx, pipeline.Token("t.1"))
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("raw Get after delete: got %v, %v; want ErrKeyNotFound", e, err)
	}
	if err := pipeline.DeleteAPIKey(ctx, r.Keys, "t.1"); err != nil {
		t.Errorf("second DeleteAPIKey: got %v, want nil", err)
	}
	// A task may store a key again after a delete.
	if err := pipeline.PutAPIKey(ctx, r.Keys, "t.1", k, time.Hour); err != nil {
		t.Fatalf("PutAPIKey after delete: %v", err)
	}
	if got, err := pipeline.GetAPIKey(ctx, r.Keys, "t.1", 0); err != nil || got != k {
		t.Errorf("GetAPIKey after re-put: got %+v, %v; want %+v", got, err, k)
	}
}

func TestAPIKeyTTL(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	k := pipeline.APIKey{Provider: "openai", Key: secret}
	start := time.Now()
	if err := pipeline.PutAPIKey(ctx, r.Keys, "short", k, time.Second); err != nil {
		t.Fatalf("PutAPIKey short: %v", err)
	}
	if err := pipeline.PutAPIKey(ctx, r.Keys, "long", k, time.Hour); err != nil {
		t.Fatalf("PutAPIKey long: %v", err)
	}
	// Replaced with a longer TTL: the new TTL applies, not the first one.
	if err := pipeline.PutAPIKey(ctx, r.Keys, "renewed", pipeline.APIKey{Provider: "openai", Key: "old"}, time.Second); err != nil {
		t.Fatalf("PutAPIKey renewed: %v", err)
	}
	renewed := pipeline.APIKey{Provider: "gemini", Key: "new"}
	if err := pipeline.PutAPIKey(ctx, r.Keys, "renewed", renewed, time.Hour); err != nil {
		t.Fatalf("PutAPIKey renewed again: %v", err)
	}
	if _, err := pipeline.GetAPIKey(ctx, r.Keys, "short", 0); err != nil {
		t.Fatalf("GetAPIKey short before expiry: %v", err)
	}
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := pipeline.GetAPIKey(ctx, r.Keys, "short", 0)
		if errors.Is(err, pipeline.ErrNoKey) {
			return nil
		}
		return fmt.Errorf("short-lived key still there after %v (err %v)", time.Since(start), err)
	})
	if el := time.Since(start); el < time.Second {
		t.Errorf("key expired after %v, before its TTL of 1s", el)
	}
	if got, err := pipeline.GetAPIKey(ctx, r.Keys, "long", 0); err != nil || got != k {
		t.Errorf("long-lived key: got %+v, %v; want %+v", got, err, k)
	}
	if got, err := pipeline.GetAPIKey(ctx, r.Keys, "renewed", 0); err != nil || got != renewed {
		t.Errorf("renewed key: got %+v, %v; want %+v", got, err, renewed)
	}
}

func TestGetAPIKeyBadRecord(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	if _, err := r.Keys.Put(ctx, pipeline.Token("bad"), []byte("not json "+secret)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	_, err := pipeline.GetAPIKey(ctx, r.Keys, "bad", time.Second)
	if err == nil {
		t.Fatal("got nil error, want one for a bad record")
	}
	if errors.Is(err, pipeline.ErrNoKey) {
		t.Errorf("got ErrNoKey, want a decode error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q reveals the stored value", err)
	}
}

func TestAPIKeyLogValueMasksKey(t *testing.T) {
	k := pipeline.APIKey{Provider: "openai", Key: secret}
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want []string
	}{
		{"value", func(l *slog.Logger) { l.Info("m", "key", k) }, []string{`"provider":"openai"`, `"key_set":true`}},
		{"pointer", func(l *slog.Logger) { l.Info("m", "key", &k) }, []string{`"provider":"openai"`, `"key_set":true`}},
		{"slog.Any", func(l *slog.Logger) { l.Info("m", slog.Any("key", k)) }, []string{`"key_set":true`}},
		{"in a group", func(l *slog.Logger) { l.Info("m", slog.Group("task", "id", "t1", "key", k)) }, []string{`"key_set":true`}},
		{"With", func(l *slog.Logger) { l.With("key", k).Info("m") }, []string{`"key_set":true`}},
		{"empty key", func(l *slog.Logger) { l.Info("m", "key", pipeline.APIKey{Provider: "gemini"}) }, []string{`"key_set":false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(slog.NewJSONHandler(&buf, nil)))
			out := buf.String()
			if strings.Contains(out, secret) || strings.Contains(out, "SECRET") {
				t.Errorf("log output reveals the key: %s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("log output: got %s, want it to contain %s", out, w)
				}
			}
		})
	}
	// The text handler too.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "key", k)
	if strings.Contains(buf.String(), secret) {
		t.Errorf("text log output reveals the key: %s", buf.String())
	}
}

// A task's PDF password lives beside its API key: each is read back on
// its own, a late password is waited for, and DeleteAPIKey removes both.
func TestPDFPassword(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for _, id := range []string{"t1", "with.dots and spaces"} {
		t.Run(id, func(t *testing.T) {
			if _, err := pipeline.GetPDFPassword(ctx, r.Keys, id, 0); !errors.Is(err, pipeline.ErrNoKey) {
				t.Fatalf("password before any: got %v, want ErrNoKey", err)
			}
			key := pipeline.APIKey{Provider: "openai", Key: secret}
			if err := pipeline.PutAPIKey(ctx, r.Keys, id, key, time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.GetPDFPassword(ctx, r.Keys, id, 0); !errors.Is(err, pipeline.ErrNoKey) {
				t.Fatalf("an API key is not a password: got %v, want ErrNoKey", err)
			}
			go func() {
				time.Sleep(200 * time.Millisecond)
				if err := pipeline.PutPDFPassword(context.Background(), r.Keys, id, "pdf-pass "+id, time.Hour); err != nil {
					t.Error(err)
				}
			}()
			got, err := pipeline.GetPDFPassword(ctx, r.Keys, id, 5*time.Second)
			if err != nil || got != "pdf-pass "+id {
				t.Fatalf("late password: got %q, %v", got, err)
			}
			if k, err := pipeline.GetAPIKey(ctx, r.Keys, id, 0); err != nil || k != key {
				t.Errorf("API key after the password: got %+v, %v; want %+v", k, err, key)
			}
			if err := pipeline.DeleteAPIKey(ctx, r.Keys, id); err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.GetPDFPassword(ctx, r.Keys, id, 0); !errors.Is(err, pipeline.ErrNoKey) {
				t.Errorf("password after DeleteAPIKey: got %v, want ErrNoKey", err)
			}
			if _, err := pipeline.GetAPIKey(ctx, r.Keys, id, 0); !errors.Is(err, pipeline.ErrNoKey) {
				t.Errorf("key after DeleteAPIKey: got %v, want ErrNoKey", err)
			}
		})
	}
}
