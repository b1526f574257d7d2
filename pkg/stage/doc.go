// Package stage runs one pipeline stage: it pulls messages from the
// stage's durable consumer, calls a plain handler for each, and maps the
// handler's result to the message's disposition, in one place:
//
//   - nil: Ack (the handler has made its effect durable first).
//   - a Permanent error, or a transient one on the last allowed delivery:
//     the task is failed through OnFail, then the message is terminated.
//   - any other error: NakWithDelay with exponential backoff.
//
// While a handler works, InProgress is sent so long work is not redelivered.
//
// Every stage's handler is a Typed one: it decodes the message into the
// stage's job type (bad input fails the task, naming it), skips tasks
// that have ended, and gives the stage's work function the job with a
// logger carrying the task's fields and a Publisher for the next stage.
package stage
