// Package syncbuf is a bytes.Buffer that goroutines may write while a test
// reads it: the sink's output and the command's logs. (The rest of the
// project uses testkit/testenv.LogBuffer; this module depends on proto only.)
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from many goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
