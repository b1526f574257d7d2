package pdftext

// WithDefaults exposes the effective options to the external tests.
func (o Options) WithDefaults() Options { return o.withDefaults() }

// Garbled exposes garbled to the external tests.
var Garbled = garbled
