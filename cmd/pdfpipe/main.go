// Command pdfpipe runs the whole pipeline in one process on an embedded
// NATS server.
//
//	pdfpipe run [-out chunks.jsonl] [-password-file F] [-store DIR] FILE.pdf...   process PDFs, write chunks with vectors as JSONL
//	pdfpipe up                                  every service against REDIS_URL and the real gRPC ports
//	pdfpipe status [--watch] TASK_ID            print a task's status, or follow it until it ends (NATS_URL)
//	pdfpipe tasks [--failed|--running|--done|--cancelled]   list tasks, newest first
//	pdfpipe inspect [--all] TASK_ID             every retained message of a task
//	pdfpipe replay [--force] [--no-wait] STAGE TASK_ID  run a stage again for a task, wait for the outcome (NATS_URL)
//	pdfpipe cancel [--reason TEXT] TASK_ID      stop a task: it ends cancelled, the backend is told; waits for the stages
//	pdfpipe sample [-pages N] OUT.pdf           write a generated multi-chapter PDF (Latin and Chinese)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Process-wide settings for the commands that run every stage, here
	// rather than in up and run, which the tests call in their own process.
	if len(os.Args) > 1 && (os.Args[1] == "up" || os.Args[1] == "run") {
		tuneMemory(os.Args[1], os.Getenv)
	}
	// Ctrl-C or SIGTERM ends ctx: up drains its stages and returns, run,
	// status --watch and cancel stop waiting. A second signal kills at
	// once (the default behaviour is back after the first).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "pdfpipe: interrupted:", err)
			os.Exit(130) // as a shell reports a command ended by SIGINT
		}
		fmt.Fprintln(os.Stderr, "pdfpipe:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  pdfpipe run [-out FILE.jsonl] [-password-file FILE] [-store DIR] FILE.pdf...
                                              process PDFs on an embedded NATS, write chunks and vectors as JSONL
  pdfpipe up                                  run every service against REDIS_URL and the gRPC ports (see README)
  pdfpipe status [--watch] TASK_ID            print a task's status from NATS_URL; --watch: a progress line until it ends
  pdfpipe tasks [--failed|--running|--done|--cancelled] [--limit N] [--json]
                                              list tasks from NATS_URL, newest first
  pdfpipe inspect [--all] TASK_ID             every retained message of a task: time, subject, size, deliveries, consumer position
  pdfpipe replay [--force] [--no-wait] [--timeout D] STAGE TASK_ID
                                              run STAGE (fetch, parse, embed, ingest) again for a task from the retained stream;
                                              waits for the outcome; a done or running task needs --force
  pdfpipe cancel [--reason TEXT] [--timeout D] [--no-wait] TASK_ID
                                              stop a running task: it ends cancelled (stages stop between pages and
                                              batches, the backend gets a DocumentEvent); waits until no stage works on it
  pdfpipe sample [-pages N] OUT.pdf           write a generated PDF with chapters, outline, Latin and Chinese text
  pdfpipe COMMAND -h                          the command's flags and the environment variables it reads`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	// A command's -h has printed its flags: asking for help is no failure.
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("no command given")
	}
	stopProfile, err := startProfile(getenv, stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	switch args[0] {
	case "run":
		return runFiles(ctx, args[1:], getenv, stdout, stderr)
	case "up":
		return up(ctx, args[1:], getenv, stderr)
	case "status":
		return showStatus(ctx, args[1:], getenv, stdout, stderr)
	case "tasks":
		return tasks(ctx, args[1:], getenv, stdout, stderr)
	case "inspect":
		return inspect(ctx, args[1:], getenv, stdout, stderr)
	case "replay":
		return replay(ctx, args[1:], getenv, stdout, stderr)
	case "cancel":
		return cancelTask(ctx, args[1:], getenv, stdout, stderr)
	case "sample":
		return sample(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
