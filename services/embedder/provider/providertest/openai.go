package providertest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// OpenAIServer fakes the OpenAI embeddings API, POST /v1/embeddings:
//
//	request:  {"input": string | [string] | [int] | [[int]], "model": string,
//	           "dimensions"?: int, "encoding_format"?: "float"|"base64", "user"?: string}
//	response: {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...] | "base64"}],
//	           "model": string, "usage":{"prompt_tokens":n,"total_tokens":n}}
//	error:    {"error":{"message","type","param","code"}}
//
// Authentication is `Authorization: Bearer <key>` (401 invalid_api_key
// otherwise). Like the API, it refuses unknown parameters, empty inputs,
// more than 2048 inputs, unknown models (404 model_not_found), and
// `dimensions` for text-embedding-ada-002 or above a model's size.
type OpenAIServer struct {
	common
	// URL is the API root to use as base URL: the server's URL + "/v1".
	URL string
	// Server is the underlying test server.
	Server *httptest.Server
}

// OpenAIKey is the key NewOpenAI accepts until SetKey changes it.
const OpenAIKey = "sk-test-0123456789abcdefFAKE"

// NewOpenAI starts a fake accepting OpenAIKey and serving
// text-embedding-3-small (1536, flexible), text-embedding-3-large (3072,
// flexible) and text-embedding-ada-002 (1536, fixed). It is closed when the
// test ends.
func NewOpenAI(t testing.TB) *OpenAIServer {
	t.Helper()
	s := StartOpenAI()
	t.Cleanup(s.Close)
	return s
}

// StartOpenAI is NewOpenAI outside a test (benchmark commands): the
// caller closes the server.
func StartOpenAI() *OpenAIServer {
	s := &OpenAIServer{common: newCommon(OpenAIKey, map[string]modelInfo{
		"text-embedding-3-small": {native: 1536, flexible: true},
		"text-embedding-3-large": {native: 3072, flexible: true},
		"text-embedding-ada-002": {native: 1536},
	})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.Server.URL + "/v1"
	return s
}

// Close shuts the server down.
func (s *OpenAIServer) Close() { s.Server.Close() }

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *OpenAIServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n, latency := s.begin()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	status, embedded := s.handle(w, r, n, latency, body, &rec)
	rec.Status = status
	s.record(rec, embedded)
}

func writeOpenAIError(w http.ResponseWriter, status int, e openAIError) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]openAIError{"error": e})
	return status
}

func invalid(w http.ResponseWriter, msg string, param string) int {
	return writeOpenAIError(w, http.StatusBadRequest, openAIError{Message: msg, Type: "invalid_request_error", Param: strp(param)})
}

// handle serves one request and returns the status and the number of texts embedded.
func (s *OpenAIServer) handle(w http.ResponseWriter, r *http.Request, n int, latency time.Duration, body []byte, rec *Request) (int, int) {
	w.Header().Set("X-Request-Id", fmt.Sprintf("req_fake_%d", n))
	if !wait(r, latency) {
		return 499, 0
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		return writeOpenAIError(w, http.StatusNotFound, openAIError{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), Type: "invalid_request_error"}), 0
	}

	if key := s.Key(); key != "" {
		auth := r.Header.Get("Authorization")
		got, ok := strings.CutPrefix(auth, "Bearer ")
		switch {
		case auth == "" || !ok:
			return writeOpenAIError(w, http.StatusUnauthorized, openAIError{
				Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
				Type:    "invalid_request_error"}), 0
		case got != key:
			return writeOpenAIError(w, http.StatusUnauthorized, openAIError{
				Message: fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", maskOpenAIKey(got)),
				Type:    "invalid_request_error", Code: strp("invalid_api_key")}), 0
		}
	}

	if f, ok := s.failure(n); ok {
		return s.fail(w, f), 0
	}

	// Parse, refusing parameters the API does not know.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return invalid(w, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)", ""), 0
	}
	for k := range raw {
		switch k {
		case "input", "model", "dimensions", "encoding_format", "user":
		default:
			return invalid(w, fmt.Sprintf("Unrecognized request argument supplied: %s", k), ""), 0
		}
	}
	var req struct {
		Input          json.RawMessage `json:"input"`
		Model          string          `json:"model"`
		Dimensions     *int            `json:"dimensions"`
		EncodingFormat *string         `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return invalid(w, fmt.Sprintf("Invalid type in request body: %v", err), ""), 0
	}
	rec.Model = req.Model
	if req.Model == "" {
		return invalid(w, "you must provide a model parameter", ""), 0
	}
	inputs, ok := parseOpenAIInput(req.Input)
	if !ok {
		return invalid(w, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", ""), 0
	}
	rec.Inputs = inputs
	if len(inputs) > 2048 {
		return invalid(w, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", ""), 0
	}
	format := "float"
	if req.EncodingFormat != nil {
		rec.Encoding = *req.EncodingFormat
		format = *req.EncodingFormat
	}
	if format != "float" && format != "base64" {
		return invalid(w, fmt.Sprintf("'%s' is not one of ['float', 'base64'] - 'encoding_format'", format), ""), 0
	}
	m, known := s.model(req.Model)
	if !known {
		return writeOpenAIError(w, http.StatusNotFound, openAIError{
			Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model),
			Type:    "invalid_request_error", Code: strp("model_not_found")}), 0
	}
	dim := m.native
	if req.Dimensions != nil {
		rec.Dims = *req.Dimensions
		switch d := *req.Dimensions; {
		case !m.flexible:
			return invalid(w, "This model does not support specifying dimensions.", ""), 0
		case d < 1:
			return invalid(w, fmt.Sprintf("Invalid value for 'dimensions' = %d. Must be greater than 0.", d), "dimensions"), 0
		case d > m.native:
			return invalid(w, fmt.Sprintf("This model's maximum dimensions is %d, but %d was requested.", m.native, d), "dimensions"), 0
		}
		dim = *req.Dimensions
	}
	forced, reverse := s.settings()
	if forced > 0 {
		dim = forced
	}

	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, len(inputs))
	tokens := 0
	for i, text := range inputs {
		v := Vector(text, dim)
		var emb any = v
		if format == "base64" {
			emb = base64.StdEncoding.EncodeToString(float32Bytes(v))
		}
		data[i] = item{Object: "embedding", Index: i, Embedding: emb}
		tokens += max(1, len(strings.Fields(text)))
	}
	if reverse {
		for i, j := 0, len(data)-1; i < j; i, j = i+1, j-1 {
			data[i], data[j] = data[j], data[i]
		}
	}
	resp := map[string]any{
		"object": "list",
		"data":   data,
		"model":  req.Model,
		"usage":  map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		return writeOpenAIError(w, http.StatusInternalServerError, openAIError{Message: err.Error(), Type: "server_error"}), 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Openai-Model", req.Model)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return http.StatusOK, len(inputs)
}

// parseOpenAIInput accepts the four documented input shapes. Token arrays
// are embedded as their decimal text. Empty strings and arrays are invalid.
func parseOpenAIInput(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, one != ""
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		if len(many) == 0 {
			return nil, false
		}
		for _, s := range many {
			if s == "" {
				return nil, false
			}
		}
		return many, true
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		return []string{fmt.Sprint(tokens)}, len(tokens) > 0
	}
	var tokenArrays [][]int
	if json.Unmarshal(raw, &tokenArrays) == nil && len(tokenArrays) > 0 {
		out := make([]string, len(tokenArrays))
		for i, t := range tokenArrays {
			if len(t) == 0 {
				return nil, false
			}
			out[i] = fmt.Sprint(t)
		}
		return out, true
	}
	return nil, false
}

// maskOpenAIKey masks a key the way the API's 401 message does.
func maskOpenAIKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

func (s *OpenAIServer) fail(w http.ResponseWriter, f Failure) int {
	e := openAIError{Message: f.Message, Code: strp(f.Code)}
	switch {
	case f.Status == http.StatusTooManyRequests:
		e.Type = "requests"
		if f.Code == "insufficient_quota" {
			e.Type = "insufficient_quota"
		} else if e.Code == nil {
			e.Code = strp("rate_limit_exceeded")
		}
		if e.Message == "" {
			e.Message = "Rate limit reached for text-embedding-3-small in organization org-fake on requests per min (RPM): Limit 3000, Used 3000, Requested 1. Please try again in 20ms."
			if f.Code == "insufficient_quota" {
				e.Message = "You exceeded your current quota, please check your plan and billing details."
			}
		}
	case f.Status >= 500:
		e.Type = "server_error"
		if e.Message == "" {
			e.Message = "The server had an error while processing your request. Sorry about that!"
		}
	case f.Status == http.StatusUnauthorized:
		e.Type = "invalid_request_error"
		if e.Code == nil {
			e.Code = strp("invalid_api_key")
		}
	default:
		e.Type = "invalid_request_error"
	}
	if e.Message == "" {
		e.Message = http.StatusText(f.Status)
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
		w.Header().Set("Retry-After-Ms", strconv.FormatInt(f.RetryAfter.Milliseconds(), 10))
	}
	return writeOpenAIError(w, f.Status, e)
}
