package pdftext

// WithDefaults exposes the effective options to the external tests.
func (o Options) WithDefaults() Options { return o.withDefaults() }

// Garbled exposes garbled to the external tests.
var Garbled = garbled

// InUse is how many places of the budget are taken.
func (b *ReaderBudget) InUse() int { return len(b.places) }
