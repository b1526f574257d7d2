package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	resp, err := r.svc.New(ctx, params, option.WithResponseInto(&httpResp))
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
		v := make([]float32, len(d.Embedding))
		for i, x := range d.Embedding {
			v[i] = float32(x)
		}
		out[d.Index] = v
	}
	return out, nil
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
