package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

var stages = []pipeline.Stage{pipeline.Fetch, pipeline.Parse, pipeline.Embed, pipeline.Ingest}

func TestStageNames(t *testing.T) {
	tests := []struct {
		stage                    pipeline.Stage
		durable, filter, subject string
	}{
		{pipeline.Fetch, "fetcher", "pdf.fetch.>", "pdf.fetch.t1"},
		{pipeline.Parse, "parser", "pdf.parse.>", "pdf.parse.t1"},
		{pipeline.Embed, "embedder", "pdf.embed.>", "pdf.embed.t1"},
		{pipeline.Ingest, "ingester", "pdf.ingest.>", "pdf.ingest.t1"},
	}
	for _, tt := range tests {
		t.Run(string(tt.stage), func(t *testing.T) {
			if got := tt.stage.Durable(); got != tt.durable {
				t.Errorf("Durable: got %q, want %q", got, tt.durable)
			}
			if got := tt.stage.Filter(); got != tt.filter {
				t.Errorf("Filter: got %q, want %q", got, tt.filter)
			}
			if got := tt.stage.Subject("t1"); got != tt.subject {
				t.Errorf("Subject: got %q, want %q", got, tt.subject)
			}
		})
	}
	if got, want := pipeline.Embed.Subject("a.b", "7"), "pdf.embed."+pipeline.Token("a.b")+".7"; got != want {
		t.Errorf("Subject with part: got %q, want %q", got, want)
	}
	if got, want := pipeline.VectorSubject("t1", 12), "pdf.vec.t1.12"; got != want {
		t.Errorf("VectorSubject: got %q, want %q", got, want)
	}
	if got, want := pipeline.VectorFilter("a b"), "pdf.vec."+pipeline.Token("a b")+".>"; got != want {
		t.Errorf("VectorFilter: got %q, want %q", got, want)
	}
}

// checkTopology asserts every asset Setup creates exists with the
// intended configuration.
func checkTopology(t *testing.T, js jetstream.JetStream, cfg pipeline.Config) {
	t.Helper()
	ctx := testCtx(t)

	s, err := js.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatalf("stream %s: %v", pipeline.Stream, err)
	}
	sc := s.CachedInfo().Config
	if got, want := sc.Retention, jetstream.LimitsPolicy; got != want {
		t.Errorf("%s retention: got %v, want %v", pipeline.Stream, got, want)
	}
	if got, want := sc.MaxAge, cfg.Retention; got != want {
		t.Errorf("%s MaxAge: got %v, want %v", pipeline.Stream, got, want)
	}
	if sc.Duplicates <= 0 || sc.Duplicates > cfg.Retention {
		t.Errorf("%s Duplicates: got %v, want in (0, %v]", pipeline.Stream, sc.Duplicates, cfg.Retention)
	}
	wantSubjects := []string{"pdf.fetch.>", "pdf.parse.>", "pdf.embed.>", "pdf.ingest.>"}
	if got := sc.Subjects; !slices.Equal(got, wantSubjects) {
		t.Errorf("%s subjects: got %v, want %v", pipeline.Stream, got, wantSubjects)
	}
	if got, want := sc.Storage, jetstream.FileStorage; got != want {
		t.Errorf("%s storage: got %v, want %v", pipeline.Stream, got, want)
	}
	if !sc.AllowDirect {
		t.Errorf("%s AllowDirect: got false, want true (the ingester reads chunk texts by direct get)", pipeline.Stream)
	}

	v, err := js.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		t.Fatalf("stream %s: %v", pipeline.VectorStream, err)
	}
	vc := v.CachedInfo().Config
	if got, want := vc.MaxMsgsPerSubject, int64(1); got != want {
		t.Errorf("%s MaxMsgsPerSubject: got %d, want %d", pipeline.VectorStream, got, want)
	}
	if got, want := vc.Subjects, []string{"pdf.vec.>"}; !slices.Equal(got, want) {
		t.Errorf("%s subjects: got %v, want %v", pipeline.VectorStream, got, want)
	}
	if got, want := vc.Retention, jetstream.LimitsPolicy; got != want {
		t.Errorf("%s retention: got %v, want %v", pipeline.VectorStream, got, want)
	}
	if got, want := vc.MaxAge, cfg.Retention; got != want {
		t.Errorf("%s MaxAge: got %v, want %v", pipeline.VectorStream, got, want)
	}
	if !vc.AllowDirect {
		t.Errorf("%s AllowDirect: got false, want true", pipeline.VectorStream)
	}

	keys, err := js.Stream(ctx, "KV_"+pipeline.KeysBucket)
	if err != nil {
		t.Fatalf("keys bucket: %v", err)
	}
	kc := keys.CachedInfo().Config
	if kc.SubjectDeleteMarkerTTL != cfg.KeyMarkerTTL || !kc.AllowMsgTTL {
		t.Errorf("keys bucket: got LimitMarkerTTL %v AllowMsgTTL %v, want %v and per-key TTLs enabled", kc.SubjectDeleteMarkerTTL, kc.AllowMsgTTL, cfg.KeyMarkerTTL)
	}
	if got, want := kc.MaxAge, cfg.KeyTTL; got != want {
		t.Errorf("keys bucket TTL: got %v, want %v", got, want)
	}
	if got, want := kc.MaxMsgsPerSubject, int64(1); got != want {
		t.Errorf("keys bucket history: got %d, want %d", got, want)
	}

	st, err := js.KeyValue(ctx, pipeline.StatusBucket)
	if err != nil {
		t.Fatalf("status bucket: %v", err)
	}
	stStatus, err := st.Status(ctx)
	if err != nil {
		t.Fatalf("status bucket status: %v", err)
	}
	if got, want := stStatus.TTL(), cfg.Retention; got != want {
		t.Errorf("status bucket TTL: got %v, want %v", got, want)
	}
	if got, want := stStatus.History(), int64(5); got != want {
		t.Errorf("status bucket history: got %d, want %d", got, want)
	}

	obj, err := js.ObjectStore(ctx, pipeline.ObjectsBucket)
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	objStatus, err := obj.Status(ctx)
	if err != nil {
		t.Fatalf("object store status: %v", err)
	}
	if got, want := objStatus.TTL(), cfg.Retention; got != want {
		t.Errorf("object store TTL: got %v, want %v", got, want)
	}

	for _, stg := range stages {
		c, err := js.Consumer(ctx, pipeline.Stream, stg.Durable())
		if err != nil {
			t.Errorf("consumer %s: %v", stg.Durable(), err)
			continue
		}
		cc := c.CachedInfo().Config
		if got, want := cc.Durable, stg.Durable(); got != want {
			t.Errorf("consumer durable: got %q, want %q", got, want)
		}
		if got, want := cc.FilterSubject, stg.Filter(); got != want {
			t.Errorf("consumer %s filter: got %q, want %q", stg.Durable(), got, want)
		}
		if got, want := cc.AckPolicy, jetstream.AckExplicitPolicy; got != want {
			t.Errorf("consumer %s ack policy: got %v, want %v", stg.Durable(), got, want)
		}
		if got, want := cc.AckWait, cfg.AckWait; got != want {
			t.Errorf("consumer %s AckWait: got %v, want %v", stg.Durable(), got, want)
		}
		if got, want := cc.MaxDeliver, cfg.MaxDeliver; got != want {
			t.Errorf("consumer %s MaxDeliver: got %d, want %d", stg.Durable(), got, want)
		}
		if got, want := cc.DeliverPolicy, jetstream.DeliverAllPolicy; got != want {
			t.Errorf("consumer %s deliver policy: got %v, want %v", stg.Durable(), got, want)
		}
		if cc.MaxAckPending <= 0 {
			t.Errorf("consumer %s MaxAckPending: got %d, want > 0", stg.Durable(), cc.MaxAckPending)
		}
	}
}

func TestSetupDefaults(t *testing.T) {
	r := setup(t, pipeline.Config{})
	want := pipeline.Config{Retention: 72 * time.Hour, Replicas: 1, KeyTTL: 24 * time.Hour, AckWait: 30 * time.Second, MaxDeliver: 10,
		KeyMarkerTTL: pipeline.DefaultKeyMarkerTTL}
	if r.Config != want {
		t.Errorf("Config: got %+v, want %+v", r.Config, want)
	}
	if r.JS == nil || r.Keys == nil || r.Status == nil || r.Objects == nil {
		t.Fatalf("Resources: got %+v, want every handle set", r)
	}
	checkTopology(t, r.JS, want)
}

func TestSetupCustomConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  pipeline.Config
	}{
		{"long", pipeline.Config{Retention: 240 * time.Hour, Replicas: 1, KeyTTL: time.Hour, AckWait: 5 * time.Second, MaxDeliver: 3, KeyMarkerTTL: time.Minute}},
		// Shorter than the stream's duplicate window.
		{"short retention", pipeline.Config{Retention: time.Minute, Replicas: 1, KeyTTL: 30 * time.Second, AckWait: time.Second, MaxDeliver: 2, KeyMarkerTTL: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := setup(t, tt.cfg)
			if r.Config != tt.cfg {
				t.Errorf("Config: got %+v, want %+v", r.Config, tt.cfg)
			}
			checkTopology(t, r.JS, tt.cfg)
		})
	}
}

func TestSetupTwiceKeepsData(t *testing.T) {
	srv := startServer(t)
	js := newJS(t, srv)
	ctx := testCtx(t)
	cfg := pipeline.Config{AckWait: 5 * time.Second}
	r1, err := pipeline.Setup(ctx, js, cfg)
	if err != nil {
		t.Fatalf("first Setup: %v", err)
	}
	if _, err := pipeline.Publish(ctx, js, pipeline.Fetch.Subject("t1"), "t1", "m1", pipeline.FetchJob{}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if _, err := r1.Status.Put(ctx, "t1", []byte("{}")); err != nil {
		t.Fatalf("status put: %v", err)
	}

	// Second run, with a changed AckWait: updates, keeps data.
	cfg2 := pipeline.Config{AckWait: 7 * time.Second}
	r2, err := pipeline.Setup(ctx, js, cfg2)
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	checkTopology(t, js, r2.Config)
	if got, want := r2.Config.AckWait, 7*time.Second; got != want {
		t.Errorf("second Setup AckWait: got %v, want %v", got, want)
	}
	s, err := js.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got, want := s.CachedInfo().State.Msgs, uint64(1); got != want {
		t.Errorf("messages after second Setup: got %d, want %d", got, want)
	}
	c, err := js.Consumer(ctx, pipeline.Stream, pipeline.Fetch.Durable())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	if got, want := c.CachedInfo().NumPending, uint64(1); got != want {
		t.Errorf("fetch consumer pending after second Setup: got %d, want %d (consumer must not be recreated)", got, want)
	}
	if _, err := r2.Status.Get(ctx, "t1"); err != nil {
		t.Errorf("status entry after second Setup: %v", err)
	}
}

func TestSetupConcurrent(t *testing.T) {
	// Several rounds on fresh servers to give the race a chance.
	for round := range 3 {
		srv := startServer(t)
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		jss := make([]jetstream.JetStream, n)
		for i := range n {
			jss[i] = newJS(t, srv)
		}
		for i := range n {
			wg.Go(func() {
				_, errs[i] = pipeline.Setup(testCtx(t), jss[i], pipeline.Config{})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: Setup %d: got %v, want nil", round, i, err)
			}
		}
		checkTopology(t, jss[0], pipeline.Config{Retention: 72 * time.Hour, Replicas: 1, KeyTTL: 24 * time.Hour, AckWait: 30 * time.Second, MaxDeliver: 10, KeyMarkerTTL: time.Minute})
	}
}

func TestSetupCancelled(t *testing.T) {
	js := newJS(t, startServer(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pipeline.Setup(ctx, js, pipeline.Config{}); err == nil {
		t.Fatal("Setup with a cancelled context: got nil error, want one")
	}
}

func TestConsumerRecreatesMissing(t *testing.T) {
	r := setup(t, pipeline.Config{MaxDeliver: 4})
	ctx := testCtx(t)
	if err := r.JS.DeleteConsumer(ctx, pipeline.Stream, pipeline.Parse.Durable()); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	c, err := r.Consumer(ctx, pipeline.Parse)
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if got, want := info.Config.Durable, pipeline.Parse.Durable(); got != want {
		t.Errorf("durable: got %q, want %q", got, want)
	}
	if got, want := info.Config.FilterSubject, pipeline.Parse.Filter(); got != want {
		t.Errorf("filter: got %q, want %q", got, want)
	}
	if got, want := info.Config.MaxDeliver, 4; got != want {
		t.Errorf("MaxDeliver: got %d, want %d", got, want)
	}

	// An existing one is returned as is.
	c2, err := r.Consumer(ctx, pipeline.Embed)
	if err != nil {
		t.Fatalf("Consumer embed: %v", err)
	}
	if got, want := c2.CachedInfo().Name, pipeline.Embed.Durable(); got != want {
		t.Errorf("name: got %q, want %q", got, want)
	}
}

func TestConsumerFiltersOnlyItsStage(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for i, st := range stages {
		for range i + 1 {
			if _, err := pipeline.Publish(ctx, r.JS, st.Subject("task.with.dots"), "task.with.dots", "", struct{}{}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
	}
	for i, st := range stages {
		c, err := r.Consumer(ctx, st)
		if err != nil {
			t.Fatalf("Consumer: %v", err)
		}
		// A new consumer counts what is pending in the background.
		testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if got, want := info.NumPending, uint64(i+1); got != want {
				return fmt.Errorf("%s pending: got %d, want %d", st, got, want)
			}
			return nil
		})
	}
}

func TestVectorStreamKeepsLastPerSubject(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for _, model := range []string{"first", "second"} {
		if _, err := pipeline.Publish(ctx, r.JS, pipeline.VectorSubject("t 1", 0), "t 1", "", pipeline.Vector{TaskID: "t 1", Model: model}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if _, err := pipeline.Publish(ctx, r.JS, pipeline.VectorSubject("t 1", 1), "t 1", "", pipeline.Vector{TaskID: "t 1", Model: "other"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	s, err := r.JS.Stream(ctx, pipeline.VectorStream)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if got, want := info.State.Msgs, uint64(2); got != want {
		t.Errorf("messages: got %d, want %d", got, want)
	}
	m, err := s.GetLastMsgForSubject(ctx, pipeline.VectorSubject("t 1", 0))
	if err != nil {
		t.Fatalf("GetLastMsgForSubject: %v", err)
	}
	var v pipeline.Vector
	if err := pipeline.Decode(m.Data, &v); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got, want := v.Model, "second"; got != want {
		t.Errorf("kept vector: got model %q, want %q", got, want)
	}
}

func TestDirectGetSubject(t *testing.T) {
	tests := []struct {
		name string
		opts jetstream.JetStreamOptions
		want string
	}{
		{name: "default", want: "$JS.API.DIRECT.GET.S"},
		{name: "domain", opts: jetstream.JetStreamOptions{Domain: "hub"}, want: "$JS.hub.API.DIRECT.GET.S"},
		{name: "prefix without dot", opts: jetstream.JetStreamOptions{APIPrefix: "$JS.x.API"}, want: "$JS.x.API.DIRECT.GET.S"},
		{name: "prefix with dot", opts: jetstream.JetStreamOptions{APIPrefix: "$JS.x.API."}, want: "$JS.x.API.DIRECT.GET.S"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pipeline.DirectGetSubject(tc.opts, "S"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
