// Package pipeline is the JetStream topology every pdfpipe service shares:
// the stream and its per-stage subjects, the durable consumer of each stage,
// the key-value buckets for API keys and task status, the object store for
// PDF bytes, and the JSON messages that travel between stages.
//
// Setup is idempotent, so any service may start first. Subjects carry the
// task id as one token (see Token), so a stage can be replayed for one task
// by re-publishing its message.
package pipeline
