package providertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider/providertest"
)

func TestVector(t *testing.T) {
	a, b := providertest.Vector("hello", 384), providertest.Vector("hello", 384)
	c := providertest.Vector("hellp", 384)
	var norm float64
	same, differ := true, false
	for i := range a {
		norm += float64(a[i]) * float64(a[i])
		same = same && a[i] == b[i]
		differ = differ || a[i] != c[i]
	}
	if len(a) != 384 || math.Abs(norm-1) > 1e-5 || !same || !differ {
		t.Fatalf("got len %d norm %v deterministic %t distinct %t, want 384, 1, true, true", len(a), norm, same, differ)
	}
}

// TestOpenAISDK drives the fake with the official SDK directly, in every
// input shape and both encodings.
func TestOpenAISDK(t *testing.T) {
	srv := providertest.NewOpenAI(t)
	client := openai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey(providertest.OpenAIKey), option.WithMaxRetries(0))
	tests := []struct {
		name   string
		input  openai.EmbeddingNewParamsInputUnion
		texts  []string
		format openai.EmbeddingNewParamsEncodingFormat
	}{
		{name: "string, float", input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("one")}, texts: []string{"one"}},
		{name: "strings, float", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, texts: []string{"a", "b"},
			format: openai.EmbeddingNewParamsEncodingFormatFloat},
		{name: "strings, base64", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"x", "y", "z"}}, texts: []string{"x", "y", "z"},
			format: openai.EmbeddingNewParamsEncodingFormatBase64},
		{name: "tokens", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2}}, texts: []string{"[1 2]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
				Input: tc.input, Model: openai.EmbeddingModelTextEmbedding3Small, Dimensions: openai.Int(16), EncodingFormat: tc.format,
			})
			if err != nil {
				t.Fatalf("Embeddings.New: %v", err)
			}
			if resp.Object != "list" || resp.Model != "text-embedding-3-small" || resp.Usage.TotalTokens < 1 || len(resp.Data) != len(tc.texts) {
				t.Fatalf("got object %q model %q usage %d data %d, want list, the model, >0, %d", resp.Object, resp.Model, resp.Usage.TotalTokens, len(resp.Data), len(tc.texts))
			}
			for _, d := range resp.Data {
				want := providertest.Vector(tc.texts[d.Index], 16)
				if len(d.Embedding) != 16 {
					t.Fatalf("got %d dimensions, want 16", len(d.Embedding))
				}
				for i := range want {
					if float32(d.Embedding[i]) != want[i] {
						t.Fatalf("index %d component %d: got %v, want %v", d.Index, i, d.Embedding[i], want[i])
					}
				}
			}
		})
	}
	t.Run("401 is an OpenAI error object", func(t *testing.T) {
		bad := openai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-nope-nope-nope"), option.WithMaxRetries(0))
		_, err := bad.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}, Model: openai.EmbeddingModelTextEmbedding3Small})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" || apiErr.Type != "invalid_request_error" {
			t.Fatalf("got %v, want a 401 invalid_api_key openai.Error", err)
		}
	})
}

func post(t *testing.T, url string, header map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response %s is not JSON: %v", raw, err)
	}
	return resp.StatusCode, out
}

func TestOpenAIWire(t *testing.T) {
	srv := providertest.NewOpenAI(t)
	auth := map[string]string{"Authorization": "Bearer " + providertest.OpenAIKey}
	tests := []struct {
		name       string
		header     map[string]string
		body       string
		wantStatus int
		wantCode   any
	}{
		{name: "ok", header: auth, body: `{"input":"hi","model":"text-embedding-3-small","dimensions":4}`, wantStatus: 200},
		{name: "no key", body: `{"input":"hi","model":"text-embedding-3-small"}`, wantStatus: 401, wantCode: nil},
		{name: "wrong key", header: map[string]string{"Authorization": "Bearer sk-bad-bad-bad"}, body: `{"input":"hi","model":"text-embedding-3-small"}`, wantStatus: 401, wantCode: "invalid_api_key"},
		{name: "unknown parameter", header: auth, body: `{"input":"hi","model":"text-embedding-3-small","foo":1}`, wantStatus: 400, wantCode: nil},
		{name: "empty input", header: auth, body: `{"input":"","model":"text-embedding-3-small"}`, wantStatus: 400, wantCode: nil},
		{name: "too many inputs", header: auth, body: `{"input":[` + strings.Repeat(`"a",`, 2048) + `"a"],"model":"text-embedding-3-small"}`, wantStatus: 400, wantCode: nil},
		{name: "ada-002 with dimensions", header: auth, body: `{"input":"hi","model":"text-embedding-ada-002","dimensions":384}`, wantStatus: 400, wantCode: nil},
		{name: "unknown model", header: auth, body: `{"input":"hi","model":"gpt-9"}`, wantStatus: 404, wantCode: "model_not_found"},
		{name: "bad encoding", header: auth, body: `{"input":"hi","model":"text-embedding-3-small","encoding_format":"int8"}`, wantStatus: 400, wantCode: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, srv.URL+"/embeddings", tc.header, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("got status %d (%v), want %d", status, body, tc.wantStatus)
			}
			if status == 200 {
				data := body["data"].([]any)
				if body["object"] != "list" || len(data) != 1 || len(data[0].(map[string]any)["embedding"].([]any)) != 4 {
					t.Fatalf("got %v, want one 4-dimensional embedding in a list", body)
				}
				return
			}
			e, ok := body["error"].(map[string]any)
			if !ok {
				t.Fatalf("got %v, want an error object", body)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e[k]; !ok {
					t.Errorf("error object %v lacks %q", e, k)
				}
			}
			if e["code"] != tc.wantCode {
				t.Errorf("got code %v, want %v", e["code"], tc.wantCode)
			}
			if strings.Contains(e["message"].(string), "sk-bad-bad-bad") {
				t.Errorf("fake echoed the whole key: %s", e["message"])
			}
		})
	}
}

// TestGeminiSDK drives the fake with genai directly.
func TestGeminiSDK(t *testing.T) {
	srv := providertest.NewGemini(t)
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: providertest.GeminiKey, Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	dim := int32(8)
	resp, err := client.Models.EmbedContent(context.Background(), "gemini-embedding-001",
		[]*genai.Content{genai.NewContentFromText("first", genai.RoleUser), genai.NewContentFromText("second", genai.RoleUser)},
		&genai.EmbedContentConfig{TaskType: "SEMANTIC_SIMILARITY", OutputDimensionality: &dim})
	if err != nil {
		t.Fatalf("EmbedContent: %v", err)
	}
	for i, text := range []string{"first", "second"} {
		want := providertest.Vector(text, 8)
		got := resp.Embeddings[i].Values
		if len(got) != 8 {
			t.Fatalf("embedding %d: got %d values, want 8", i, len(got))
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("embedding %d value %d: got %v, want %v", i, j, got[j], want[j])
			}
		}
	}
	if tt := srv.Log()[0].TaskTypes; len(tt) != 2 || tt[0] != "SEMANTIC_SIMILARITY" {
		t.Errorf("got task types %v, want SEMANTIC_SIMILARITY twice", tt)
	}

	bad, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: "AIza-bad", Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Models.EmbedContent(context.Background(), "gemini-embedding-001", genai.Text("x"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || apiErr.Status != "INVALID_ARGUMENT" || len(apiErr.Details) == 0 || apiErr.Details[0]["reason"] != "API_KEY_INVALID" {
		t.Fatalf("got %#v, want 400 INVALID_ARGUMENT with reason API_KEY_INVALID", err)
	}
}

func TestGeminiWire(t *testing.T) {
	srv := providertest.NewGemini(t)
	key := map[string]string{"x-goog-api-key": providertest.GeminiKey}
	base := srv.URL + "/v1beta/models/gemini-embedding-001"
	tests := []struct {
		name           string
		url            string
		header         map[string]string
		body           string
		prepare        func()
		wantStatus     int
		wantStatusName string
	}{
		{name: "embedContent", url: base + ":embedContent", header: key, body: `{"content":{"parts":[{"text":"hi"}]},"outputDimensionality":5}`, wantStatus: 200},
		{name: "key as query parameter", url: base + ":embedContent?key=" + providertest.GeminiKey, body: `{"content":{"parts":[{"text":"hi"}]}}`, wantStatus: 200},
		{name: "batch", url: base + ":batchEmbedContents", header: key,
			body: `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":5}]}`, wantStatus: 200},
		{name: "no key", url: base + ":embedContent", body: `{"content":{"parts":[{"text":"hi"}]}}`, wantStatus: 403, wantStatusName: "PERMISSION_DENIED"},
		{name: "model mismatch", url: base + ":batchEmbedContents", header: key,
			body: `{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}`, wantStatus: 400, wantStatusName: "INVALID_ARGUMENT"},
		{name: "over 100 requests", url: base + ":batchEmbedContents", header: key,
			body:       `{"requests":[` + strings.Repeat(`{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},`, 100) + `{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}}]}`,
			wantStatus: 400, wantStatusName: "INVALID_ARGUMENT"},
		{name: "unknown field", url: base + ":embedContent", header: key, body: `{"content":{"parts":[{"text":"hi"}]},"dims":3}`, wantStatus: 400, wantStatusName: "INVALID_ARGUMENT"},
		{name: "bad task type", url: base + ":embedContent", header: key, body: `{"content":{"parts":[{"text":"hi"}]},"taskType":"SEARCH"}`, wantStatus: 400, wantStatusName: "INVALID_ARGUMENT"},
		{name: "programmed 429", url: base + ":embedContent", header: key, body: `{"content":{"parts":[{"text":"hi"}]}}`,
			prepare: func() { srv.FailNext(1, providertest.Failure{Status: 429, RetryAfter: 1500 * time.Millisecond}) }, wantStatus: 429, wantStatusName: "RESOURCE_EXHAUSTED"},
		{name: "unknown model", url: srv.URL + "/v1beta/models/nope:embedContent", header: key, body: `{"content":{"parts":[{"text":"hi"}]}}`, wantStatus: 404, wantStatusName: "NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			status, body := post(t, tc.url, tc.header, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("got status %d (%v), want %d", status, body, tc.wantStatus)
			}
			if status == 200 {
				var values []any
				if e, ok := body["embedding"].(map[string]any); ok {
					values, _ = e["values"].([]any)
				} else if es, ok := body["embeddings"].([]any); ok && len(es) == 1 {
					values, _ = es[0].(map[string]any)["values"].([]any)
				}
				if len(values) != 5 && len(values) != 3072 {
					t.Fatalf("got %v, want an embedding with values", body)
				}
				return
			}
			e, ok := body["error"].(map[string]any)
			if !ok || e["status"] != tc.wantStatusName || e["code"] != float64(tc.wantStatus) || e["message"] == "" {
				t.Fatalf("got %v, want error {code %d, status %s, message}", body, tc.wantStatus, tc.wantStatusName)
			}
			if tc.wantStatus == 429 {
				d, _ := json.Marshal(e["details"])
				if !bytes.Contains(d, []byte(`"retryDelay":"1.5s"`)) {
					t.Errorf("got details %s, want RetryInfo retryDelay 1.5s", d)
				}
			}
		})
	}
}
