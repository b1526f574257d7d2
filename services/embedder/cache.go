package embedder

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// vecCache keeps vectors in the pipeline's EmbedCacheBucket under
// sha256(namespace, text), the namespace naming everything that changes a
// vector: provider, model, base URL, dimension, kind and prefixes. No key
// material goes into it, so tasks with different keys for the same model
// share entries. Values are the vector as little-endian float32s.
type vecCache struct {
	kv jetstream.KeyValue
	ns string
}

// cacheNamespace returns the part of the cache key fixed by a provider
// config (after WithDefaults) and a kind.
func cacheNamespace(pc provider.Config, dim int, kind provider.Kind) string {
	return strings.Join([]string{"v1", pc.Provider, pc.Model, pc.BaseURL, fmt.Sprint(dim), kind.String(),
		pc.DocumentPrefix, pc.QueryPrefix}, "\x00")
}

func (c *vecCache) key(text string) string {
	h := sha256.New()
	h.Write([]byte(c.ns))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))
}

// get returns the cached vector of text, or nil.
func (c *vecCache) get(ctx context.Context, text string, dim int) ([]float32, error) {
	e, err := c.kv.Get(ctx, c.key(text))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read embedding cache: %w", err)
	}
	b := e.Value()
	if len(b) != 4*dim {
		return nil, nil // another dimension or a damaged entry: a miss
	}
	v := make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func (c *vecCache) put(ctx context.Context, text string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	if _, err := c.kv.Put(ctx, c.key(text), b); err != nil {
		return fmt.Errorf("write embedding cache: %w", err)
	}
	return nil
}
