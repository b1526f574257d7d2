package embedder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

// TestBatcherSendsFullBatchesConcurrently: with an OpenAI-compatible
// server (32 inputs per request) the batcher's batches are exactly the
// requests, and EMBED_REQUESTS of them are in flight at once.
func TestBatcherSendsFullBatchesConcurrently(t *testing.T) {
	const latency, requests, texts = 200 * time.Millisecond, 4, 8 * provider.CompatibleMaxBatch
	fake := providertest.NewOpenAI(t)
	fake.SetLatency(latency)
	s := &Service{cfg: Config{Dimension: 384, Timeout: 10 * time.Second, Requests: requests},
		res: &pipeline.Resources{}, inflight: make(chan struct{}, requests), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pc := provider.Config{Provider: "openai", BaseURL: fake.URL, APIKey: providertest.OpenAIKey}
	emb, err := s.provider(pc)
	if err != nil {
		t.Fatal(err)
	}
	b := s.newBatcher(pc, emb, provider.Document, time.Minute, true) // only full batches leave
	if b.maxBatch != provider.CompatibleMaxBatch {
		t.Fatalf("batch size %d, want the compatible server's %d", b.maxBatch, provider.CompatibleMaxBatch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, texts)
	for i := range texts {
		wg.Go(func() {
			text := fmt.Sprintf("text %d", i)
			v, err := b.embed(ctx, text)
			if err == nil && !slices.Equal(v, providertest.Vector(text, 384)) {
				err = fmt.Errorf("text %d: wrong vector", i)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	log := fake.Log()
	if len(log) != texts/provider.CompatibleMaxBatch {
		t.Errorf("%d texts took %d requests, want %d", texts, len(log), texts/provider.CompatibleMaxBatch)
	}
	for i, r := range log {
		if len(r.Inputs) != provider.CompatibleMaxBatch {
			t.Errorf("request %d: %d inputs, want %d", i, len(r.Inputs), provider.CompatibleMaxBatch)
		}
	}
	// Requests in flight at once: how many started before another ended.
	most := 0
	for _, r := range log {
		n := 0
		for _, o := range log {
			if !o.Time.After(r.Time) && o.Time.Add(latency).After(r.Time) {
				n++
			}
		}
		most = max(most, n)
	}
	if most < 2 || most > requests {
		t.Errorf("at most %d requests were in flight at once, want 2..%d", most, requests)
	}
}
