package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// openaiRequester calls POST {BaseURL}/embeddings through the official SDK.
type openaiRequester struct {
	svc     openai.EmbeddingService
	model   string
	dim     int
	sendDim bool
	floats  bool
	key     string
}

// newOpenAI builds the SDK's embeddings service from cfg alone. It uses
// openai.NewEmbeddingService, the service behind Client.Embeddings, rather
// than openai.NewClient because NewClient also reads OPENAI_API_KEY,
// OPENAI_BASE_URL and friends from the environment: with a keyless
// OpenAI-compatible server that would send the ambient OpenAI key to it.
// The SDK's own retries are off; WithRetry does that.
func newOpenAI(cfg Config, sendDim bool, hc *http.Client) *openaiRequester {
	base := cfg.BaseURL
	if base == "" {
		base = openAIBaseURL
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	return &openaiRequester{
		svc:     openai.NewEmbeddingService(opts...),
		model:   cfg.Model,
		dim:     cfg.Dimension,
		sendDim: sendDim,
		floats:  cfg.FloatVectors,
		key:     cfg.APIKey,
	}
}

func (r *openaiRequester) embed(ctx context.Context, texts []string, _ Kind) ([][]float32, error) {
	params := openai.EmbeddingNewParams{
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
		Model: r.model,
	}
	if r.sendDim {
		params.Dimensions = openai.Int(int64(r.dim))
	}
	if !r.floats {
		params.EncodingFormat = openai.EmbeddingNewParamsEncodingFormatBase64 // the SDK decodes it
	}
	var httpResp *http.Response
	var resp embeddingsResponse
	_, err := r.svc.New(ctx, params, option.WithResponseInto(&httpResp), option.WithResponseBodyInto(&resp))
	if err != nil {
		return nil, r.classify(err, httpResp)
	}
	if len(resp.Data) != len(texts) {
		return nil, &Error{Provider: ProviderOpenAI, Kind: ErrBadResponse, Message: fmt.Sprintf("got %d embeddings for %d inputs", len(resp.Data), len(texts))}
	}
	out := make([][]float32, len(texts))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= int64(len(texts)) {
			return nil, &Error{Provider: ProviderOpenAI, Kind: ErrBadResponse, Message: fmt.Sprintf("embedding index %d out of range 0..%d", d.Index, len(texts)-1)}
		}
		if out[d.Index] != nil {
			return nil, &Error{Provider: ProviderOpenAI, Kind: ErrBadResponse, Message: fmt.Sprintf("embedding index %d appears twice", d.Index)}
		}
		out[d.Index] = d.Embedding
	}
	return out, nil
}

// embeddingsResponse is what the embedder reads of an embeddings
// response. It is decoded with encoding/json and embeddingValue rather
// than the SDK's own response type, whose generic decoder (gjson, then
// float64s) cost the embed stage more CPU and allocations than anything
// else it does with a compatible server at 0 ms.
type embeddingsResponse struct {
	Data []struct {
		Index     int64          `json:"index"`
		Embedding embeddingValue `json:"embedding"`
	} `json:"data"`
}

// embeddingValue is an embedding as OpenAI sends it: base64 of
// little-endian float32s (encoding_format=base64), or an array of numbers
// (read as float64, then rounded to float32, as the SDK's type did).
type embeddingValue []float32

func (e *embeddingValue) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		var fs []float64
		if err := json.Unmarshal(b, &fs); err != nil {
			return fmt.Errorf("embedding: %w", err)
		}
		v := make([]float32, len(fs))
		for i, x := range fs {
			v[i] = float32(x)
		}
		*e = v
		return nil
	}
	s := b[1 : len(b)-1]
	if bytes.IndexByte(s, '\\') >= 0 { // an escaped character (\/): unquote first
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return fmt.Errorf("embedding: %w", err)
		}
		s = []byte(str)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(raw, s)
	if err != nil {
		return fmt.Errorf("embedding: base64: %w", err)
	}
	if n%4 != 0 {
		return fmt.Errorf("embedding: %d bytes of base64 floats, not a multiple of 4", n)
	}
	v := make([]float32, n/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	*e = v
	return nil
}

// classify turns an SDK error into an *Error. httpResp is the response the
// SDK saw, if any (set even when its error body was not OpenAI-shaped).
func (r *openaiRequester) classify(err error, httpResp *http.Response) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		var h http.Header
		msg := apiErr.Message
		if apiErr.Response != nil {
			h = apiErr.Response.Header
			if msg == "" && apiErr.Response.Body != nil {
				// Not an OpenAI error object: plain text or {"error":"..."}.
				body, _ := io.ReadAll(io.LimitReader(apiErr.Response.Body, 4<<10))
				msg = errorBodyMessage(body)
			}
		}
		return r.statusError(apiErr.StatusCode, h, msg, apiErr.Code)
	}
	if httpResp != nil && httpResp.StatusCode >= 400 {
		// An error body the SDK could not parse: OpenAI-compatible servers
		// often send {"error":"..."} (TEI, Ollama) or plain text.
		var msg string
		if httpResp.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(httpResp.Body, 4<<10))
			msg = errorBodyMessage(body)
		}
		return r.statusError(httpResp.StatusCode, httpResp.Header, msg, "")
	}
	return transportError(ProviderOpenAI, err, r.key)
}

func (r *openaiRequester) statusError(status int, h http.Header, msg, code string) error {
	kind := kindForStatus(status)
	e := &Error{Provider: ProviderOpenAI, Kind: kind, StatusCode: status}
	switch kind {
	case ErrInvalidKey:
		// OpenAI echoes part of the key in this message: leave it out.
		return e
	case ErrRateLimited:
		if code == "insufficient_quota" {
			e.Kind = ErrQuotaExceeded
		} else {
			e.RetryAfter = parseRetryAfter(h, time.Now())
		}
	case ErrTransient:
		e.RetryAfter = parseRetryAfter(h, time.Now())
	}
	e.Message = cleanMessage(msg, r.key)
	return e
}

// errorBodyMessage extracts a message from a non-OpenAI error body.
func errorBodyMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &o) == nil && o.Message != "" {
			return o.Message
		}
		if v.Message != "" {
			return v.Message
		}
		if len(v.Detail) > 0 {
			return string(v.Detail)
		}
	}
	return strings.TrimSpace(string(body))
}

// transportError classifies an error that came without an HTTP error
// status: timeouts and connection failures are transient, anything else
// (undecodable response) is a bad response.
func transportError(provider string, err error, key string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		// The per-request timeout, not the caller's deadline (the client
		// checks that first). Not wrapped, so that errors.Is(err,
		// context.DeadlineExceeded) keeps meaning "the caller's ctx ended".
		return &Error{Provider: provider, Kind: ErrTransient, Message: "no response within the request timeout"}
	}
	var urlErr *url.Error
	var netErr net.Error
	kind := ErrBadResponse
	switch {
	case errors.As(err, &urlErr), errors.As(err, &netErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		kind = ErrTransient
	}
	return &Error{Provider: provider, Kind: kind, Err: redactErr(err, key)}
}
