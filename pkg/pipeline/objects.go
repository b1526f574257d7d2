package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// CopyObject writes object name of the objects bucket to w and returns
// the bytes written. It reads the object one chunk at a time (a direct
// get of the next message on the object's chunk subject) and asks for
// the next chunk only once w has taken the last, so at most one chunk
// (128 KiB unless the writer chose otherwise) is held in memory whatever
// the object's size or w's speed. The object store's own Get reads
// through a push consumer whose messages queue in the client while w is
// slow: the parser held 3 MB of a 6.5 MB PDF at once that way, and the
// queue grows with the file. The size and SHA-256 digest recorded with
// the object are checked. An object that is not there fails with
// jetstream.ErrObjectNotFound.
func (r *Resources) CopyObject(ctx context.Context, name string, w io.Writer) (int64, error) {
	info, err := r.Objects.GetInfo(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", name, err)
	}
	if info.Opts != nil && info.Opts.Link != nil {
		return 0, fmt.Errorf("object %s is a link to %s/%s: links are not followed", name, info.Opts.Link.Bucket, info.Opts.Link.Name)
	}
	want, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return 0, fmt.Errorf("object %s: digest %q: %w", name, info.Digest, err)
	}
	stream, err := r.JS.Stream(ctx, objectStream)
	if err != nil {
		return 0, fmt.Errorf("object %s: stream %s: %w", name, objectStream, err)
	}
	subject := objectChunkPrefix + info.NUID
	h := sha256.New()
	var n uint64
	seq := uint64(1)
	for chunk := uint32(1); chunk <= info.Chunks; chunk++ {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return int64(n), fmt.Errorf("object %s: chunk %d of %d is missing (deleted or expired while read?)", name, chunk, info.Chunks)
		}
		if err != nil {
			return int64(n), fmt.Errorf("object %s: chunk %d of %d: %w", name, chunk, info.Chunks, err)
		}
		if n+uint64(len(m.Data)) > info.Size {
			return int64(n), fmt.Errorf("object %s: chunks run past its recorded size of %d bytes", name, info.Size)
		}
		k, err := w.Write(m.Data)
		n += uint64(k)
		if err != nil {
			return int64(n), fmt.Errorf("object %s: %w", name, err)
		}
		h.Write(m.Data)
		seq = m.Sequence + 1
	}
	if n != info.Size {
		return int64(n), fmt.Errorf("object %s: %d bytes in %d chunks, recorded size %d", name, n, info.Chunks, info.Size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return int64(n), fmt.Errorf("object %s: SHA-256 of the bytes read does not match the recorded digest", name)
	}
	return int64(n), nil
}

// The object store's layout (nats.go jetstream/object.go, ADR-20): the
// bucket's stream and the subject prefix of an object's chunks, followed
// by the object's NUID.
const (
	objectStream      = "OBJ_" + ObjectsBucket
	objectChunkPrefix = "$O." + ObjectsBucket + ".C."
)
