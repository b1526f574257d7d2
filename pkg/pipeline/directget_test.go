package pipeline_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// TestDirectGet through a real server: the last message of listed
// subjects, a batch from a sequence filtered on a subject, nothing found,
// and a stream that allows no direct gets.
func TestDirectGet(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	var seqs []uint64
	for i := range 6 {
		// Two tasks' messages interleaved.
		for _, task := range []string{"a", "b"} {
			ack, err := r.JS.Publish(ctx, pipeline.Embed.Subject(task, strconv.Itoa(i)), []byte(task+strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			if task == "a" {
				seqs = append(seqs, ack.Sequence)
			}
		}
	}
	collect := func(req pipeline.DirectGetRequest) ([]string, error) {
		var got []string
		err := pipeline.DirectGet(ctx, r.JS, pipeline.Stream, req, 5*time.Second, func(m *nats.Msg) error {
			got = append(got, string(m.Data)+"@"+m.Header.Get(jetstream.SequenceHeader))
			return nil
		})
		return got, err
	}
	s := func(i int) string { return "a" + strconv.Itoa(i) + "@" + strconv.FormatUint(seqs[i], 10) }
	tests := []struct {
		name string
		req  pipeline.DirectGetRequest
		want []string
	}{
		{name: "multi last", req: pipeline.DirectGetRequest{MultiLast: []string{pipeline.Embed.Subject("a", "4"), pipeline.Embed.Subject("a", "1")}, Batch: 2},
			want: []string{s(1), s(4)}},
		{name: "batch by sequence, filtered", req: pipeline.DirectGetRequest{Seq: seqs[2], NextBy: pipeline.Embed.Subject("a") + ".>", Batch: 3},
			want: []string{s(2), s(3), s(4)}},
		{name: "nothing there", req: pipeline.DirectGetRequest{MultiLast: []string{pipeline.Embed.Subject("c", "0")}, Batch: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(tc.req)
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d: got %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
	st, err := r.JS.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := r.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := collect(pipeline.DirectGetRequest{Seq: seqs[0], Batch: 1}); !errors.Is(err, pipeline.ErrNoDirectGet) {
		t.Errorf("without direct gets: got %v, want ErrNoDirectGet", err)
	}
}
