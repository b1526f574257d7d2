package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genai"
)

// geminiRequester calls POST {BaseURL}/v1beta/models/{model}:batchEmbedContents
// through google.golang.org/genai (Models.EmbedContent), API-key auth.
type geminiRequester struct {
	models  *genai.Models
	model   string
	dim     int
	sendDim bool
	key     string
}

func newGemini(cfg Config, sendDim bool, hc *http.Client) (*geminiRequester, error) {
	base := cfg.BaseURL
	if base == "" {
		base = geminiBaseURL // explicit, so GOOGLE_GEMINI_BASE_URL cannot redirect the key
	}
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:      cfg.APIKey,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: base},
	})
	if err != nil {
		// genai prints its whole ClientConfig, key included, into this error.
		return nil, fmt.Errorf("%w: gemini client: %s", ErrInvalidConfig, redact(err.Error(), cfg.APIKey))
	}
	return &geminiRequester{models: c.Models, model: cfg.Model, dim: cfg.Dimension, sendDim: sendDim, key: cfg.APIKey}, nil
}

// geminiTaskType maps a Kind to the Gemini task type.
func geminiTaskType(k Kind) string {
	if k == Query {
		return "RETRIEVAL_QUERY"
	}
	return "RETRIEVAL_DOCUMENT"
}

func (r *geminiRequester) embed(ctx context.Context, texts []string, kind Kind) ([][]float32, error) {
	contents := make([]*genai.Content, len(texts))
	for i, t := range texts {
		contents[i] = &genai.Content{Parts: []*genai.Part{{Text: t}}}
	}
	cfg := &genai.EmbedContentConfig{TaskType: geminiTaskType(kind)}
	if r.sendDim {
		d := int32(r.dim)
		cfg.OutputDimensionality = &d
	}
	resp, err := r.models.EmbedContent(ctx, r.model, contents, cfg)
	if err != nil {
		return nil, r.classify(err)
	}
	if len(resp.Embeddings) != len(texts) {
		return nil, &Error{Provider: ProviderGemini, Kind: ErrBadResponse, Message: fmt.Sprintf("got %d embeddings for %d inputs", len(resp.Embeddings), len(texts))}
	}
	out := make([][]float32, len(texts))
	for i, e := range resp.Embeddings {
		if e == nil {
			return nil, &Error{Provider: ProviderGemini, Kind: ErrBadResponse, Message: fmt.Sprintf("embedding %d is null", i)}
		}
		out[i] = l2normalize(e.Values)
	}
	return out, nil
}

// l2normalize scales v to unit length in place. Gemini normalises only
// full-size (3072) vectors and asks callers to normalise truncated ones.
func l2normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return v
	}
	n := math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) / n)
	}
	return v
}

func (r *geminiRequester) classify(err error) error {
	var apiErr genai.APIError
	var apiErrPtr *genai.APIError
	switch {
	case errors.As(err, &apiErr):
	case errors.As(err, &apiErrPtr) && apiErrPtr != nil:
		apiErr = *apiErrPtr
	default:
		return transportError(ProviderGemini, err, r.key)
	}
	status := apiErr.Code
	if status == 0 {
		status = grpcStatusHTTP(apiErr.Status)
	}
	kind := kindForStatus(status)
	if errorReason(apiErr.Details) == "API_KEY_INVALID" || apiErr.Status == "UNAUTHENTICATED" {
		kind = ErrInvalidKey
	}
	e := &Error{Provider: ProviderGemini, Kind: kind, StatusCode: status}
	if kind == ErrInvalidKey {
		return e
	}
	if kind == ErrRateLimited || kind == ErrTransient {
		e.RetryAfter = retryInfoDelay(apiErr.Details)
	}
	e.Message = cleanMessage(apiErr.Message, r.key)
	return e
}

// errorReason returns the reason of a google.rpc.ErrorInfo detail.
func errorReason(details []map[string]any) string {
	for _, d := range details {
		if t, _ := d["@type"].(string); strings.HasSuffix(t, "google.rpc.ErrorInfo") {
			if r, _ := d["reason"].(string); r != "" {
				return r
			}
		}
	}
	return ""
}

// retryInfoDelay returns the delay of a google.rpc.RetryInfo detail, whose
// retryDelay is a protobuf Duration in JSON form ("37s", "0.250s").
func retryInfoDelay(details []map[string]any) time.Duration {
	for _, d := range details {
		if t, _ := d["@type"].(string); !strings.HasSuffix(t, "google.rpc.RetryInfo") {
			continue
		}
		s, _ := d["retryDelay"].(string)
		if dur, err := time.ParseDuration(s); err == nil && dur > 0 {
			return dur
		}
	}
	return 0
}

// grpcStatusHTTP maps a google.rpc.Code name to its HTTP status, for error
// bodies without a numeric code.
func grpcStatusHTTP(status string) int {
	switch status {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	case "INTERNAL", "UNKNOWN", "DATA_LOSS":
		return http.StatusInternalServerError
	}
	return 0
}
