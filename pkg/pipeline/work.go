package pipeline

// WorkSubject is the core NATS subject on which every process at work on a
// task answers while it works (see stage.Working): `pdfpipe cancel` asks
// it until no one answers (no responders: every stage has stopped),
// `pdfpipe inspect` and `status --watch` for the delivery count and the
// progress of the message at work. Nothing on it is stored.
func WorkSubject(taskID string) string { return "pdfpipe.work." + Token(taskID) }
