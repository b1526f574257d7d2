package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/natsembed"
	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

// TestRunHonoursPipelineSettings: `pdfpipe run` sets its pipeline up with
// the pipeline settings its -h lists (it used none of them): the kept
// store's stream and consumers carry PDFPIPE_RETENTION, ACK_WAIT and
// MAX_DELIVER.
func TestRunHonoursPipelineSettings(t *testing.T) {
	dir := t.TempDir()
	pdf := filepath.Join(dir, "sample.pdf")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sample", "-pages", "2", pdf}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("sample: %v\n%s", err, errOut.String())
	}
	store := filepath.Join(dir, "store")
	err := run(context.Background(), []string{"run", "-store", store, "-out", filepath.Join(dir, "c.jsonl"), pdf},
		env(map[string]string{"TEMP_DIR": dir, "PDFPIPE_RETENTION": "5h", "ACK_WAIT": "7s", "MAX_DELIVER": "3"}), &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}

	srv, err := natsembed.Start(natsembed.Options{StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, pipeline.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 5*time.Hour {
		t.Errorf("stream %s: max age %s, want PDFPIPE_RETENTION's 5h", pipeline.Stream, got)
	}
	c, err := s.Consumer(ctx, pipeline.Parse.Durable())
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.CachedInfo().Config; cfg.AckWait != 7*time.Second || cfg.MaxDeliver != 3 {
		t.Errorf("consumer %s: ack wait %s, max deliver %d; want ACK_WAIT's 7s and MAX_DELIVER's 3", pipeline.Parse.Durable(), cfg.AckWait, cfg.MaxDeliver)
	}
}
