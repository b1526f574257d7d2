package provider_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/services/embedder/provider"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  provider.Config
		want error // nil: New succeeds
	}{
		{name: "local", cfg: provider.Config{Provider: "local"}},
		{name: "OpenAI spelled by the backend", cfg: provider.Config{Provider: "OpenAI", APIKey: "k"}},
		{name: "Gemini spelled by the backend", cfg: provider.Config{Provider: "Gemini", APIKey: "k"}},
		{name: "no provider", cfg: provider.Config{}, want: provider.ErrInvalidConfig},
		{name: "unknown provider", cfg: provider.Config{Provider: "cohere"}, want: provider.ErrInvalidConfig},
		{name: "openai without key", cfg: provider.Config{Provider: "openai"}, want: provider.ErrInvalidKey},
		{name: "compatible server without key", cfg: provider.Config{Provider: "openai", BaseURL: "http://tei:80/v1"}},
		{name: "gemini without key", cfg: provider.Config{Provider: "gemini"}, want: provider.ErrInvalidKey},
		{name: "ada-002 cannot do 384", cfg: provider.Config{Provider: "openai", APIKey: "k", Model: "text-embedding-ada-002"}, want: provider.ErrDimensionMismatch},
		{name: "ada-002 at 1536", cfg: provider.Config{Provider: "openai", APIKey: "k", Model: "text-embedding-ada-002", Dimension: 1536}},
		{name: "3-small above 1536", cfg: provider.Config{Provider: "openai", APIKey: "k", Dimension: 2000}, want: provider.ErrDimensionMismatch},
		{name: "embedding-001 cannot do 384", cfg: provider.Config{Provider: "gemini", APIKey: "k", Model: "models/embedding-001"}, want: provider.ErrDimensionMismatch},
		{name: "openai batch above API limit", cfg: provider.Config{Provider: "openai", APIKey: "k", MaxBatch: 2049}, want: provider.ErrInvalidConfig},
		{name: "gemini batch above API limit", cfg: provider.Config{Provider: "gemini", APIKey: "k", MaxBatch: 101}, want: provider.ErrInvalidConfig},
		{name: "negative dimension", cfg: provider.Config{Provider: "local", Dimension: -1}, want: provider.ErrInvalidConfig},
		{name: "local has one model", cfg: provider.Config{Provider: "local", Model: "bert"}, want: provider.ErrInvalidConfig},
		{name: "base URL scheme", cfg: provider.Config{Provider: "openai", BaseURL: "tei:80"}, want: provider.ErrInvalidConfig},
		{name: "gemini model with query", cfg: provider.Config{Provider: "gemini", APIKey: "k", Model: "m?key=x"}, want: provider.ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := provider.New(tc.cfg, nil)
			if tc.want == nil {
				if err != nil || e == nil {
					t.Fatalf("got %v, want an embedder", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		cfg       provider.Config
		wantModel string
		wantBatch int
	}{
		{provider.Config{Provider: "OpenAI"}, "text-embedding-3-small", 2048},
		{provider.Config{Provider: "openai", BaseURL: "http://tei/v1"}, "text-embedding-3-small", 32},
		{provider.Config{Provider: "Gemini"}, "gemini-embedding-001", 100},
		{provider.Config{Provider: "local"}, "local-ngram-v1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.cfg.Provider+tc.cfg.BaseURL, func(t *testing.T) {
			got := tc.cfg.WithDefaults()
			if got.Model != tc.wantModel || got.MaxBatch != tc.wantBatch || got.Dimension != 384 || got.Timeout != provider.DefaultTimeout {
				t.Errorf("got model %q batch %d dimension %d timeout %s, want %q %d 384 %s",
					got.Model, got.MaxBatch, got.Dimension, got.Timeout, tc.wantModel, tc.wantBatch, provider.DefaultTimeout)
			}
		})
	}
	if got := provider.DefaultMaxBatch("Gemini"); got != 100 {
		t.Errorf("DefaultMaxBatch(Gemini): got %d, want 100", got)
	}
}

func TestConfigNeverPrintsKey(t *testing.T) {
	const key = "sk-live-VERY-SECRET-123"
	cfg := provider.Config{Provider: "openai", APIKey: key, Timeout: time.Second}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "provider", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "provider", cfg)
	outputs := []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%v", &cfg), buf.String()}
	for _, s := range outputs {
		if strings.Contains(s, key) {
			t.Fatalf("key printed: %s", s)
		}
	}
	if !strings.Contains(buf.String(), `"api_key":"[set]"`) {
		t.Errorf("got log %s, want api_key masked as [set]", buf.String())
	}
	_, err := provider.New(provider.Config{Provider: "openai", APIKey: key, Model: "text-embedding-ada-002"}, nil)
	checkNoKey(t, err, key)
}

// TestConfigNeverPrintsBaseURLCredentials: a base URL's user information
// and query never reach a log line, a %v or an error.
func TestConfigNeverPrintsBaseURLCredentials(t *testing.T) {
	const pw = "pw-VERY-SECRET"
	for _, base := range []string{"https://user:" + pw + "@tei.internal/v1", "https://tei.internal/v1?key=" + pw, "tp://u:" + pw + "@tei/v1"} {
		cfg := provider.Config{Provider: "openai", BaseURL: base, Timeout: time.Second}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "provider", cfg)
		_, err := provider.New(cfg, nil)
		for _, s := range []string{buf.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), fmt.Sprint(err)} {
			if strings.Contains(s, pw) {
				t.Errorf("base URL %s: credentials printed: %s", base, s)
			}
		}
		if !strings.Contains(buf.String(), "tei") {
			t.Errorf("base URL %s: log lacks the host: %s", base, buf.String())
		}
	}
}
