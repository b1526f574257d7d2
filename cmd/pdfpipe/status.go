package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// showStatus prints a task's status record as JSON.
func showStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("status: want one task id")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := natsURL(getenv)
	nc, err := pipeline.Connect(url, "pdfpipe-status", slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, pipeline.StatusBucket)
	if err != nil {
		return fmt.Errorf("status bucket on %s: %w (is pdfpipe running there?)", url, err)
	}
	st, err := status.New(kv).Get(ctx, args[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}
