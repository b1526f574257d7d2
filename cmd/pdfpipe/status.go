package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/status"
)

// showStatus prints a task's status record as JSON.
func showStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("status: want one task id")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, res, err := openPipeline(ctx, "status", getenv, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := status.New(res.Status).Get(ctx, args[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}
