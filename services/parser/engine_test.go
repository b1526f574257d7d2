package parser

import (
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
)

func TestConfigPDFEngine(t *testing.T) {
	tests := []struct {
		env     string // PDF_ENGINE; "-" leaves it unset
		want    string
		wantErr bool
	}{
		{env: "-", want: "mupdf"},
		{env: "mupdf", want: "mupdf"},
		{env: "pdfium", want: "pdfium"},
		{env: "poppler", wantErr: true},
		{env: "PDFium", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			cfg, err := ConfigFromEnv(func(k string) string {
				if k == "PDF_ENGINE" && tc.env != "-" {
					return tc.env
				}
				if k == "TEMP_DIR" {
					return t.TempDir()
				}
				return ""
			})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "PDF_ENGINE") {
					t.Fatalf("got error %v, want one about PDF_ENGINE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Engine != tc.want {
				t.Errorf("got engine %q, want %q", cfg.Engine, tc.want)
			}
		})
	}
}

func TestNewEngine(t *testing.T) {
	tests := []struct {
		engine string
		want   string
	}{
		{"", "*pdftext.FitzEngine"},
		{"mupdf", "*pdftext.FitzEngine"},
		{"pdfium", "*pdftext.PDFiumEngine"},
	}
	for _, tc := range tests {
		t.Run(tc.engine, func(t *testing.T) {
			eng := newEngine(Config{Workers: 2, Engine: tc.engine})
			var got string
			switch e := eng.(type) {
			case *pdftext.FitzEngine:
				got = "*pdftext.FitzEngine"
			case *pdftext.PDFiumEngine:
				got = "*pdftext.PDFiumEngine"
				// Nothing was started, so closing is immediate.
				if err := e.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			default:
				got = "other"
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
