package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/stage"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// TestInspect: every retained message of the task and none of another,
// with the stage consumer's position; vectors summed up unless --all.
func TestInspect(t *testing.T) {
	url, js, res := startPipeline(t)
	ctx := context.Background()
	pub := func(subj, id string) {
		t.Helper()
		if _, err := pipeline.Publish(ctx, js, subj, id, "", map[string]string{"task": id}); err != nil {
			t.Fatal(err)
		}
	}
	const id = "a b" // not a plain token
	next := func(st pipeline.Stage) jetstream.Msg {
		t.Helper()
		c, err := js.Consumer(ctx, pipeline.Stream, st.Durable())
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	pub(pipeline.Fetch.Subject(id), id)
	pub(pipeline.Parse.Subject(id), id)
	// The fetcher has acked its message; the parser works on its own, on
	// its second delivery; an embedder holds the first embed job without
	// working on it.
	if err := next(pipeline.Fetch).DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := next(pipeline.Parse).Nak(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	work, err := stage.Working(ctx, nc, pipeline.Parse, next(pipeline.Parse), nil, "pages")
	if err != nil {
		t.Fatal(err)
	}
	defer work.Stop()
	work.SetProgress(7, 40)
	pub(pipeline.Embed.Subject(id, "0"), id)
	next(pipeline.Embed)
	pub(pipeline.Embed.Subject(id, "1"), id)
	pub(pipeline.Ingest.Subject(id), id)
	for i := range 3 {
		pub(pipeline.VectorSubject(id, i), id)
	}
	pub("pdf.vec."+pipeline.Token(id)+".3.16", id) // a vector batch: chunks 3…18
	pub(pipeline.Fetch.Subject("other"), "other")
	pub(pipeline.VectorSubject("other", 0), "other")
	putStatus(t, res.Status, status.Status{TaskID: id, State: status.Failed, Stage: "parse", Error: "boom", UpdatedAt: time.Now()})
	tok := pipeline.Token(id)

	tests := []struct {
		args   []string
		want   []string
		unwant []string
	}{
		{args: []string{id}, want: []string{
			"task a b: failed at parse: boom",
			"pdf.fetch." + tok + " ", "acked",
			"pdf.parse." + tok + " ", "at work: parse since", "7 of 40 pages",
			"pdf.embed." + tok + ".0", "pdf.embed." + tok + ".1", "pdf.ingest." + tok, "waiting",
			"vectors: 4 messages, 19 chunks in PDFPIPE_VECTORS", "first pdf.vec." + tok + ".0", "last pdf.vec." + tok + ".3.16",
			"consumer parser (all tasks): 0 not yet delivered, 1 in flight", "consumer embedder (all tasks): 1 not yet delivered, 1 in flight",
		}, unwant: []string{"other", "consumer fetcher", "PDFPIPE_VECTORS  "}},
		{args: []string{"--all", id}, want: []string{"pdf.vec." + tok + ".0", "pdf.vec." + tok + ".1", "pdf.vec." + tok + ".2", "pdf.vec." + tok + ".3.16", "pdf.ingest." + tok},
			unwant: []string{"vectors: 4", "other"}},
		{args: []string{"nothing"}, want: []string{"task nothing: no status record", "no retained messages for task nothing"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(ctx, append([]string{"inspect"}, tc.args...), env(map[string]string{"NATS_URL": url}), &out, &errOut); err != nil {
				t.Fatalf("inspect %v: %v\n%s", tc.args, err, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("inspect %v: output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
			for _, w := range tc.unwant {
				if strings.Contains(out.String(), w) {
					t.Errorf("inspect %v: output has %q:\n%s", tc.args, w, out.String())
				}
			}
		})
	}
	// Each stage line says how often its message was delivered and where
	// its consumer is.
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"inspect", id}, env(map[string]string{"NATS_URL": url}), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for subj, want := range map[string]string{
		pipeline.Fetch.Subject(id):      "acked acked",
		pipeline.Parse.Subject(id):      "2 at work: parse since",
		pipeline.Embed.Subject(id, "0"): "≥1 in flight",
		pipeline.Embed.Subject(id, "1"): "0 waiting",
		pipeline.Ingest.Subject(id):     "0 waiting",
	} {
		found := false
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) >= 6 && f[3] == subj {
				found = true
				if got := strings.Join(f[5:], " "); !strings.HasPrefix(got, want) {
					t.Errorf("%s: deliveries and consumer position %q, want %q", subj, got, want)
				}
			}
		}
		if !found {
			t.Errorf("no line for %s:\n%s", subj, out.String())
		}
	}
	if t.Failed() {
		fmt.Println(out.String())
	}
}
