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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

// vecCache keeps vectors in the pipeline's EmbedCacheBucket under
// sha256(namespace, text), the namespace naming everything that changes a
// vector: provider, model, base URL, dimension, kind and prefixes. No key
// material goes into it, so tasks with different keys for the same model
// share entries. Values are the vector as little-endian float32s.
type vecCache struct {
	kv jetstream.KeyValue
	// js, when set, reads and writes a whole request's texts at once
	// (getMany, putMany) instead of one KV round trip per text.
	js jetstream.JetStream
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
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// Batched cache access. Looking every text up with its own KV Get and
// storing each vector with its own Put cost two NATS round trips per chunk;
// a request's texts are now looked up in one direct get of their keys'
// last messages (DIRECT.GET multi_last on the bucket's stream) and stored
// with asynchronous publishes awaited together. KV keys are the subjects
// $KV.<bucket>.<key>; a bucket reached through a JetStream domain or API
// prefix is used key by key as before.

// batched says whether getMany and putMany can address the bucket's
// stream directly.
func (c *vecCache) batched() bool {
	if c.js == nil {
		return false
	}
	o := c.js.Options()
	return o.Domain == "" && o.APIPrefix == ""
}

func (c *vecCache) subject(key string) string { return "$KV." + c.kv.Bucket() + "." + key }

// getMany returns the cached vector of each text, nil where there is none.
func (c *vecCache) getMany(ctx context.Context, texts []string, dim int) ([][]float32, error) {
	out := make([][]float32, len(texts))
	if !c.batched() {
		for i, t := range texts {
			v, err := c.get(ctx, t, dim)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	slot := make(map[string][]int, len(texts))
	subjects := make([]string, 0, len(texts))
	for i, t := range texts {
		subj := c.subject(c.key(t))
		if _, ok := slot[subj]; !ok {
			subjects = append(subjects, subj)
		}
		slot[subj] = append(slot[subj], i)
	}
	req := pipeline.DirectGetRequest{MultiLast: subjects, Batch: len(subjects)}
	err := pipeline.DirectGet(ctx, c.js, "KV_"+c.kv.Bucket(), req, 10*time.Second, func(m *nats.Msg) error {
		v := decodeCached(m.Data, dim) // a deleted key has no data: a miss
		for _, i := range slot[m.Header.Get(jetstream.SubjectHeader)] {
			out[i] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedding cache: %w", err)
	}
	return out, nil
}

// putMany stores the vectors of texts, returning once the stream has them.
func (c *vecCache) putMany(ctx context.Context, texts []string, vecs [][]float32) error {
	if !c.batched() {
		for i, t := range texts {
			if err := c.put(ctx, t, vecs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(texts))
	for i, t := range texts {
		m := nats.NewMsg(c.subject(c.key(t)))
		m.Data = encodeCached(vecs[i])
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("write embedding cache: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("write embedding cache: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("write embedding cache: %w", ctx.Err())
		}
	}
	return nil
}

// decodeCached reads a cached vector; another dimension or a damaged
// entry is a miss (nil).
func decodeCached(b []byte, dim int) []float32 {
	if len(b) != 4*dim {
		return nil
	}
	v := make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// encodeCached is a vector as the cache stores it: little-endian float32s.
func encodeCached(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
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
	return decodeCached(e.Value(), dim), nil
}

func (c *vecCache) put(ctx context.Context, text string, v []float32) error {
	if _, err := c.kv.Put(ctx, c.key(text), encodeCached(v)); err != nil {
		return fmt.Errorf("write embedding cache: %w", err)
	}
	return nil
}
