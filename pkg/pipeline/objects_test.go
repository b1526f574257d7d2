package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// putObject stores data as name with chunks of chunkSize bytes.
func putObject(t *testing.T, r *pipeline.Resources, name string, data []byte, chunkSize uint32) *jetstream.ObjectInfo {
	t.Helper()
	info, err := r.Objects.Put(testCtx(t), jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}}, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
	return info
}

// pattern returns n bytes that differ between offsets and between seeds.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251 + seed)
	}
	return b
}

func TestCopyObject(t *testing.T) {
	r := setup(t, pipeline.Config{})
	// Another object's chunks come first in the stream: each chunk is
	// found by its own subject, not by position.
	putObject(t, r, "before", pattern(5000, 9), 1000)
	tests := []struct {
		name      string
		size      int
		chunkSize uint32
	}{
		{"empty", 0, 1000},
		{"one byte", 1, 1000},
		{"exactly one chunk", 1000, 1000},
		{"chunks and a partial one", 10_500, 1000},
		{"default chunk size", 300_000, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(tc.size, i)
			putObject(t, r, tc.name, data, tc.chunkSize)
			var out bytes.Buffer
			n, err := r.CopyObject(testCtx(t), tc.name, &out)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(tc.size) || !bytes.Equal(out.Bytes(), data) {
				t.Errorf("copied %d bytes (%d in the writer), want the %d stored, byte for byte", n, out.Len(), tc.size)
			}
		})
	}

	t.Run("replaced object", func(t *testing.T) {
		putObject(t, r, "doc", pattern(4000, 1), 1000)
		putObject(t, r, "other", pattern(3000, 2), 1000)
		want := pattern(2500, 3)
		putObject(t, r, "doc", want, 1000)
		var out bytes.Buffer
		if _, err := r.CopyObject(testCtx(t), "doc", &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("copied %d bytes, not the %d of the object's latest version", out.Len(), len(want))
		}
	})

	t.Run("no consumer", func(t *testing.T) {
		// Reading creates nothing on the server that could outlive it.
		putObject(t, r, "plain", pattern(5000, 4), 1000)
		if _, err := r.CopyObject(testCtx(t), "plain", discard{}); err != nil {
			t.Fatal(err)
		}
		st, err := r.JS.Stream(testCtx(t), "OBJ_"+pipeline.ObjectsBucket)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Consumers; n != 0 {
			t.Errorf("%d consumers on the object stream after a copy, want 0", n)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// failingWriter takes ok bytes, then fails.
type failingWriter struct{ ok int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.ok {
		n := w.ok
		w.ok = 0
		return n, errDiskFull
	}
	w.ok -= len(p)
	return len(p), nil
}

func TestCopyObjectErrors(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	chunkSubject := func(info *jetstream.ObjectInfo) string {
		return fmt.Sprintf("$O.%s.C.%s", pipeline.ObjectsBucket, info.NUID)
	}
	stream, err := r.JS.Stream(ctx, "OBJ_"+pipeline.ObjectsBucket)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("missing object", func(t *testing.T) {
		_, err := r.CopyObject(ctx, "nope", discard{})
		if !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("err %v, want ErrObjectNotFound", err)
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		putObject(t, r, "w", pattern(5000, 1), 1000)
		n, err := r.CopyObject(ctx, "w", &failingWriter{ok: 2500})
		if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "object w") {
			t.Errorf("err %v, want the writer's error naming the object", err)
		}
		if n != 2500 {
			t.Errorf("reported %d bytes written, want 2500", n)
		}
	})
	t.Run("chunk missing", func(t *testing.T) {
		info := putObject(t, r, "gone", pattern(5000, 2), 1000)
		last, err := stream.GetLastMsgForSubject(ctx, chunkSubject(info))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(ctx, last.Sequence); err != nil {
			t.Fatal(err)
		}
		_, err = r.CopyObject(ctx, "gone", discard{})
		if err == nil || !strings.Contains(err.Error(), "chunk 5 of 5 is missing") {
			t.Errorf("err %v, want chunk 5 of 5 missing", err)
		}
	})
	// replaceChunks swaps the object's chunks for these.
	replaceChunks := func(t *testing.T, info *jetstream.ObjectInfo, chunks ...[]byte) {
		t.Helper()
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(info))); err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if _, err := r.JS.Publish(ctx, chunkSubject(info), c); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("bytes changed", func(t *testing.T) {
		info := putObject(t, r, "changed", pattern(3000, 3), 1000)
		bad := pattern(3000, 4)
		replaceChunks(t, info, bad[:1000], bad[1000:2000], bad[2000:])
		_, err := r.CopyObject(ctx, "changed", discard{})
		if err == nil || !strings.Contains(err.Error(), "does not match the recorded digest") {
			t.Errorf("err %v, want a digest mismatch", err)
		}
	})
	t.Run("more bytes than recorded", func(t *testing.T) {
		info := putObject(t, r, "longer", pattern(2000, 5), 1000)
		replaceChunks(t, info, pattern(1500, 6), pattern(1500, 6))
		_, err := r.CopyObject(ctx, "longer", discard{})
		if err == nil || !strings.Contains(err.Error(), "past its recorded size of 2000 bytes") {
			t.Errorf("err %v, want chunks past the recorded size", err)
		}
	})
}

// natsChildEnv makes the test binary a NATS server for
// BenchmarkCopyObject, whose client must not share a heap with it: it
// listens on a free port, prints its URL and serves until stdin closes.
const natsChildEnv = "PIPELINE_TEST_NATS_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(natsChildEnv); dir != "" {
		srv, err := natsembed.Start(natsembed.Options{StoreDir: dir, Listen: true, Port: -1})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(srv.ClientURL())
		_, _ = io.Copy(io.Discard, os.Stdin)
		srv.Stop()
		return
	}
	os.Exit(m.Run())
}

// childServer starts a NATS server in a process of its own and connects.
func childServer(b *testing.B) *nats.Conn {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("nats server process: %v", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(url))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// BenchmarkCopyObject copies a 64 MiB object into a file with CopyObject
// and, for reference, with the object store's Get, and reports MB/s and
// how far the Go heap in use rose above where it was before the copies
// (sampled every millisecond; the NATS server runs in a process of its
// own): CopyObject holds one 128 KiB chunk at a time, Get what its push
// consumer has queued.
func BenchmarkCopyObject(b *testing.B) {
	js, err := jetstream.New(childServer(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r, err := pipeline.Setup(ctx, js, pipeline.Config{})
	if err != nil {
		b.Fatal(err)
	}
	const size = 64 << 20
	if _, err := r.Objects.Put(ctx, jetstream.ObjectMeta{Name: "big"}, bytes.NewReader(pattern(size, 1))); err != nil {
		b.Fatal(err)
	}
	copiers := []struct {
		name string
		copy func(w io.Writer) error
	}{
		{"CopyObject", func(w io.Writer) error { _, err := r.CopyObject(ctx, "big", w); return err }},
		{"ObjectStore.Get", func(w io.Writer) error {
			obj, err := r.Objects.Get(ctx, "big")
			if err != nil {
				return err
			}
			defer obj.Close()
			_, err = io.Copy(w, obj)
			return err
		}},
	}
	for _, c := range copiers {
		b.Run(c.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "copy"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				t := time.NewTicker(time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > peak.Load() {
							peak.Store(ms.HeapInuse)
						}
					}
				}
			}()
			b.SetBytes(size)
			for b.Loop() {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				if err := c.copy(f); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			<-sampled
			b.ReportMetric((float64(peak.Load())-float64(base.HeapInuse))/(1<<20), "heap-rise-MiB")
		})
	}
}
