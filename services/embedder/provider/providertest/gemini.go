package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GeminiServer fakes the Gemini API's embedding methods
// (https://ai.google.dev/api/embeddings):
//
//	POST /v1beta/models/{model}:embedContent
//	  {"model"?, "content":{"parts":[{"text"}]}, "taskType"?, "title"?, "outputDimensionality"?}
//	  -> {"embedding":{"values":[...]}}
//	POST /v1beta/models/{model}:batchEmbedContents
//	  {"requests":[{"model":"models/{model}", "content":..., "taskType"?, "title"?, "outputDimensionality"?}]}
//	  -> {"embeddings":[{"values":[...]}, ...]}
//	error: {"error":{"code":int,"message":string,"status":string,"details"?:[...]}}
//
// The key is read from the `x-goog-api-key` header (what genai sends) or
// the `key` query parameter. A wrong key gets 400 INVALID_ARGUMENT with
// an ErrorInfo detail of reason API_KEY_INVALID, a missing one 403
// PERMISSION_DENIED, as from the real API. Like the API it refuses unknown
// fields, more than 100 requests per batch, a request model other than the
// URL's, empty content, unknown task types and unknown models (404).
type GeminiServer struct {
	common
	// URL is the API root to use as base URL (the genai SDK appends
	// "v1beta/models/...").
	URL string
	// Server is the underlying test server.
	Server *httptest.Server
}

// GeminiKey is the key NewGemini accepts until SetKey changes it.
const GeminiKey = "AIzaFAKE-test-key-0123456789"

// NewGemini starts a fake accepting GeminiKey and serving
// gemini-embedding-001 (3072, flexible), text-embedding-004 (768, flexible)
// and embedding-001 (768, fixed). It is closed when the test ends.
func NewGemini(t testing.TB) *GeminiServer {
	t.Helper()
	s := &GeminiServer{common: newCommon(GeminiKey, map[string]modelInfo{
		"gemini-embedding-001": {native: 3072, flexible: true},
		"text-embedding-004":   {native: 768, flexible: true},
		"embedding-001":        {native: 768},
	})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.Server.URL
	t.Cleanup(s.Server.Close)
	return s
}

func validTaskType(t string) bool {
	switch t {
	case "TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY",
		"CLASSIFICATION", "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY":
		return true
	}
	return false
}

type geminiStatus struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

func writeGeminiError(w http.ResponseWriter, e geminiStatus) int {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(map[string]geminiStatus{"error": e})
	return e.Code
}

func geminiInvalid(w http.ResponseWriter, msg string) int {
	return writeGeminiError(w, geminiStatus{Code: http.StatusBadRequest, Message: msg, Status: "INVALID_ARGUMENT"})
}

// grpcStatus names the google.rpc.Code the API pairs with an HTTP status.
func grpcStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 500:
		return "INTERNAL"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}

type geminiContent struct {
	Parts []struct {
		Text *string `json:"text"`
	} `json:"parts"`
	Role string `json:"role,omitempty"`
}

type geminiEmbedRequest struct {
	Model                string         `json:"model,omitempty"`
	Content              *geminiContent `json:"content"`
	TaskType             string         `json:"taskType,omitempty"`
	Title                string         `json:"title,omitempty"`
	OutputDimensionality *int           `json:"outputDimensionality,omitempty"`
}

func (s *GeminiServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n, latency := s.begin()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	status, embedded := s.handle(w, r, n, latency, body, &rec)
	rec.Status = status
	s.record(rec, embedded)
}

func (s *GeminiServer) handle(w http.ResponseWriter, r *http.Request, n int, latency time.Duration, body []byte, rec *Request) (int, int) {
	if !wait(r, latency) {
		return 499, 0
	}
	model, method, ok := parseGeminiPath(r.URL.Path)
	if !ok || r.Method != http.MethodPost || (method != "embedContent" && method != "batchEmbedContents") {
		return writeGeminiError(w, geminiStatus{Code: http.StatusNotFound, Status: "NOT_FOUND",
			Message: fmt.Sprintf("The requested URL %s was not found on this server.", r.URL.Path)}), 0
	}
	rec.Model = model

	if key := s.Key(); key != "" {
		got := r.Header.Get("X-Goog-Api-Key")
		if got == "" {
			got = r.URL.Query().Get("key")
		}
		switch {
		case got == "":
			return writeGeminiError(w, geminiStatus{Code: http.StatusForbidden, Status: "PERMISSION_DENIED",
				Message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."}), 0
		case got != key:
			return writeGeminiError(w, geminiStatus{Code: http.StatusBadRequest, Status: "INVALID_ARGUMENT",
				Message: "API key not valid. Please pass a valid API key.",
				Details: []map[string]any{{
					"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
					"reason":   "API_KEY_INVALID",
					"domain":   "googleapis.com",
					"metadata": map[string]string{"service": "generativelanguage.googleapis.com"},
				}}}), 0
		}
	}

	if f, ok := s.failure(n); ok {
		return s.fail(w, f), 0
	}

	m, known := s.model(model)
	if !known {
		return writeGeminiError(w, geminiStatus{Code: http.StatusNotFound, Status: "NOT_FOUND",
			Message: fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for %s. Call ListModels to see the list of available models and their supported methods.", model, method)}), 0
	}

	var reqs []geminiEmbedRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if method == "batchEmbedContents" {
		var batch struct {
			Requests []geminiEmbedRequest `json:"requests"`
		}
		if err := dec.Decode(&batch); err != nil {
			return geminiInvalid(w, "Invalid JSON payload received. "+err.Error()), 0
		}
		switch {
		case len(batch.Requests) == 0:
			return geminiInvalid(w, "* BatchEmbedContentsRequest.requests: requests must not be empty\n"), 0
		case len(batch.Requests) > 100:
			return geminiInvalid(w, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"), 0
		}
		for i, q := range batch.Requests {
			if q.Model != "models/"+model {
				return geminiInvalid(w, fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].model: model %q does not match the model in the URL (models/%s)\n", i, q.Model, model)), 0
			}
		}
		reqs = batch.Requests
	} else {
		var one geminiEmbedRequest
		if err := dec.Decode(&one); err != nil {
			return geminiInvalid(w, "Invalid JSON payload received. "+err.Error()), 0
		}
		reqs = []geminiEmbedRequest{one}
	}

	texts := make([]string, len(reqs))
	dims := make([]int, len(reqs))
	rec.TaskTypes = make([]string, len(reqs))
	for i, q := range reqs {
		field := "EmbedContentRequest"
		if method == "batchEmbedContents" {
			field = fmt.Sprintf("BatchEmbedContentsRequest.requests[%d]", i)
		}
		if q.Content == nil || len(q.Content.Parts) == 0 {
			return geminiInvalid(w, fmt.Sprintf("* %s.content: contents is not specified\n", field)), 0
		}
		var sb strings.Builder
		for j, p := range q.Content.Parts {
			if p.Text == nil || *p.Text == "" {
				return geminiInvalid(w, fmt.Sprintf("* %s.content.parts[%d].data: required oneof field 'data' must have one initialized field\n", field, j)), 0
			}
			sb.WriteString(*p.Text)
		}
		texts[i] = sb.String()
		if q.TaskType != "" && !validTaskType(q.TaskType) {
			return geminiInvalid(w, fmt.Sprintf("Invalid value at '%s.task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), %q", field, q.TaskType)), 0
		}
		rec.TaskTypes[i] = q.TaskType
		dims[i] = m.native
		if q.OutputDimensionality != nil {
			d := *q.OutputDimensionality
			rec.Dims = d
			switch {
			case !m.flexible:
				return geminiInvalid(w, "Setting output_dimensionality is not supported for this model."), 0
			case d < 1 || d > m.native:
				return geminiInvalid(w, fmt.Sprintf("* %s.output_dimensionality: must be between 1 and %d\n", field, m.native)), 0
			}
			dims[i] = d
		}
	}
	rec.Inputs = texts

	forced, _ := s.settings()
	type values struct {
		Values []float32 `json:"values"`
	}
	embs := make([]values, len(texts))
	for i, t := range texts {
		d := dims[i]
		if forced > 0 {
			d = forced
		}
		embs[i] = values{Values: Vector(t, d)}
	}
	var resp any = map[string]any{"embeddings": embs}
	if method == "embedContent" {
		resp = map[string]any{"embedding": embs[0]}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		return writeGeminiError(w, geminiStatus{Code: 500, Status: "INTERNAL", Message: err.Error()}), 0
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return http.StatusOK, len(texts)
}

// parseGeminiPath splits /{version}/models/{model}:{method}.
func parseGeminiPath(p string) (model, method string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v1beta/models/")
	if !ok {
		if rest, ok = strings.CutPrefix(p, "/v1/models/"); !ok {
			return "", "", false
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || strings.Contains(rest[:i], "/") {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

func (s *GeminiServer) fail(w http.ResponseWriter, f Failure) int {
	e := geminiStatus{Code: f.Status, Status: grpcStatus(f.Status), Message: f.Message}
	if e.Message == "" {
		switch f.Status {
		case http.StatusTooManyRequests:
			e.Message = "Resource has been exhausted (e.g. check quota)."
		case http.StatusServiceUnavailable:
			e.Message = "The model is overloaded. Please try again later."
		case http.StatusInternalServerError:
			e.Message = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
		case http.StatusForbidden:
			e.Message = "The caller does not have permission"
		default:
			e.Message = http.StatusText(f.Status)
		}
	}
	if f.RetryAfter > 0 {
		e.Details = append(e.Details, map[string]any{
			"@type":      "type.googleapis.com/google.rpc.RetryInfo",
			"retryDelay": strconv.FormatFloat(f.RetryAfter.Seconds(), 'f', -1, 64) + "s",
		})
	}
	return writeGeminiError(w, e)
}
