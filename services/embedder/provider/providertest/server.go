// Package providertest has in-process HTTP fakes of the OpenAI and Gemini
// embedding APIs for tests. They follow each API's documented wire format
// (paths, auth headers, request and response JSON, error bodies), so the
// real SDKs talk to them unchanged; they can be told to be slow, to fail the
// next requests with 429 or 5xx, or to return vectors of the wrong size, and
// they record every request.
//
// Vectors are deterministic: the vector for a text is [Vector](text, dim),
// whatever the model or endpoint.
package providertest

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"net/http"
	"sync"
	"time"
)

// Vector returns the fakes' embedding of text: dim components drawn from a
// generator seeded with the text's FNV-1a hash, L2-normalised.
func Vector(text string, dim int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	state := h.Sum64()
	v := make([]float64, dim)
	var sum float64
	for i := range v {
		// splitmix64
		state += 0x9E3779B97F4A7C15
		z := state
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		v[i] = float64(z>>11)/float64(1<<53)*2 - 1
		sum += v[i] * v[i]
	}
	out := make([]float32, dim)
	n := math.Sqrt(sum)
	for i, x := range v {
		out[i] = float32(x / n)
	}
	return out
}

// Failure describes an error response a fake sends instead of embedding.
type Failure struct {
	// Status is the HTTP status: 429, 500, 503, 400, 403, ...
	Status int
	// RetryAfter, if set, is how long the client is asked to wait. The
	// OpenAI fake sends it as `Retry-After` (whole seconds, rounded up) and
	// `retry-after-ms`; the Gemini fake as a google.rpc.RetryInfo detail.
	RetryAfter time.Duration
	// Code is OpenAI's error.code, e.g. "insufficient_quota" or
	// "rate_limit_exceeded" (ignored by the Gemini fake).
	Code string
	// Message replaces the default message.
	Message string
}

// Request is one request a fake received.
type Request struct {
	Time     time.Time
	Method   string
	Path     string
	Header   http.Header
	Body     []byte
	Model    string   // model named in the URL (Gemini) or body (OpenAI)
	Inputs   []string // texts to embed, in order (nil if the body did not parse)
	Dims     int      // requested dimensions / outputDimensionality, 0 if absent
	Encoding string   // OpenAI encoding_format as sent
	// TaskTypes holds Gemini's taskType of each input.
	TaskTypes []string
	// Status is the HTTP status the fake answered.
	Status int
}

// modelInfo is what a fake knows about a model.
type modelInfo struct {
	native   int
	flexible bool
}

// common is the state and programming interface shared by the fakes.
type common struct {
	mu       sync.Mutex
	key      string
	latency  time.Duration
	failNext []Failure
	failNth  map[int]Failure
	forceDim int
	reverse  bool
	models   map[string]modelInfo
	requests int
	inputs   int
	log      []Request
}

func newCommon(key string, models map[string]modelInfo) common {
	return common{key: key, failNth: map[int]Failure{}, models: models}
}

// Key returns the API key the fake accepts.
func (c *common) Key() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.key
}

// SetKey changes the API key the fake accepts. "" accepts any key, and none.
func (c *common) SetKey(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key = key
}

// SetLatency delays every response by d (or until the client gives up).
func (c *common) SetLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
}

// FailNext makes the next n requests (after authentication) fail with f.
func (c *common) FailNext(n int, f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.failNext = append(c.failNext, f)
	}
}

// FailRequest makes the nth request the fake receives (1-based, counting
// every request) fail with f, if it authenticates.
func (c *common) FailRequest(nth int, f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failNth[nth] = f
}

// ForceDimension makes the fake return n-dimensional vectors whatever was
// asked (a misconfigured server); 0 restores normal behaviour.
func (c *common) ForceDimension(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forceDim = n
}

// SetReverseOrder makes the OpenAI fake list `data` in reverse order (each
// item keeps its correct `index`), to check clients match by index.
func (c *common) SetReverseOrder(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reverse = on
}

// AddModel registers a model the fake serves: native is its dimension when
// none is requested; flexible says whether it accepts a requested dimension
// (up to native). A fixed model refuses the dimension parameter, as
// text-embedding-ada-002 and embedding-001 do.
func (c *common) AddModel(name string, native int, flexible bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.models[name] = modelInfo{native: native, flexible: flexible}
}

// Requests returns how many requests the fake received.
func (c *common) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// Inputs returns how many texts the fake embedded (in successful responses).
func (c *common) Inputs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inputs
}

// Log returns a copy of every request received, oldest first.
func (c *common) Log() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.log...)
}

// begin counts a request and returns its 1-based number and the latency.
func (c *common) begin() (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	return c.requests, c.latency
}

// failure returns the programmed failure for request n, if any.
func (c *common) failure(n int) (Failure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.failNth[n]; ok {
		delete(c.failNth, n)
		return f, true
	}
	if len(c.failNext) > 0 {
		f := c.failNext[0]
		c.failNext = c.failNext[1:]
		return f, true
	}
	return Failure{}, false
}

func (c *common) model(name string) (modelInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.models[name]
	return m, ok
}

func (c *common) settings() (forceDim int, reverse bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forceDim, c.reverse
}

func (c *common) record(r Request, embedded int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inputs += embedded
	c.log = append(c.log, r)
}

// wait sleeps for the latency unless the client goes away first.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// float32Bytes encodes v as OpenAI's base64 payload: little-endian float32s.
func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
