package parser

import (
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdfium"
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
		{"", "*mupdf.Engine"},
		{"mupdf", "*mupdf.Engine"},
		{"pdfium", "*pdfium.Engine"},
	}
	for _, tc := range tests {
		t.Run(tc.engine, func(t *testing.T) {
			eng := newEngine(Config{Workers: 2, Engine: tc.engine})
			var got string
			switch e := eng.(type) {
			case *mupdf.Engine:
				got = "*mupdf.Engine"
			case *pdfium.Engine:
				got = "*pdfium.Engine"
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

func TestConfigChunkSettings(t *testing.T) {
	tests := []struct {
		name                  string
		env                   map[string]string
		wantUnit              pdftext.Unit
		wantSize, wantOverlap int
		wantScheme            string
		wantErr               string // part of the error; "" for none
	}{
		{name: "defaults", env: nil, wantUnit: pdftext.UnitRunes, wantSize: 1000, wantOverlap: 100, wantScheme: ChunkIDDocID},
		{name: "tokens defaults", env: map[string]string{"CHUNK_UNIT": "tokens"}, wantUnit: pdftext.UnitTokens, wantSize: 400, wantOverlap: 40, wantScheme: ChunkIDDocID},
		{name: "tokens sized", env: map[string]string{"CHUNK_UNIT": "tokens", "CHUNK_SIZE": "512", "CHUNK_OVERLAP": "64"}, wantUnit: pdftext.UnitTokens, wantSize: 512, wantOverlap: 64, wantScheme: ChunkIDDocID},
		{name: "content ids", env: map[string]string{"CHUNK_ID_SCHEME": "content"}, wantUnit: pdftext.UnitRunes, wantSize: 1000, wantOverlap: 100, wantScheme: ChunkIDContent},
		{name: "bad unit", env: map[string]string{"CHUNK_UNIT": "bytes"}, wantErr: "CHUNK_UNIT"},
		{name: "bad scheme", env: map[string]string{"CHUNK_ID_SCHEME": "uuid"}, wantErr: "CHUNK_ID_SCHEME"},
		{name: "too small", env: map[string]string{"CHUNK_UNIT": "tokens", "CHUNK_SIZE": "50"}, wantErr: "CHUNK_SIZE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := ConfigFromEnv(func(k string) string {
				if k == "TEMP_DIR" {
					return dir
				}
				return tc.env[k]
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Chunks
			if c.Unit != tc.wantUnit || c.ChunkSize != tc.wantSize || c.ChunkOverlap != tc.wantOverlap || cfg.ChunkIDScheme != tc.wantScheme {
				t.Errorf("got unit %q size %d overlap %d scheme %q, want %q %d %d %q",
					c.Unit, c.ChunkSize, c.ChunkOverlap, cfg.ChunkIDScheme, tc.wantUnit, tc.wantSize, tc.wantOverlap, tc.wantScheme)
			}
		})
	}
}

// TestConfigMuPDFStore: MUPDF_STORE_MIB sizes MuPDF's store per open
// document (4 MiB unless set) and reaches the engine.
func TestConfigMuPDFStore(t *testing.T) {
	tests := []struct {
		env     string // "" leaves it unset
		want    int
		wantErr bool
	}{
		{env: "", want: 4 << 20},
		{env: "64", want: 64 << 20},
		{env: "-1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := ConfigFromEnv(func(k string) string {
				switch k {
				case "TEMP_DIR":
					return dir
				case "MUPDF_STORE_MIB":
					return tc.env
				}
				return ""
			})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "MUPDF_STORE_MIB") {
					t.Fatalf("got error %v, want one about MUPDF_STORE_MIB", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eng, ok := newEngine(cfg).(*mupdf.Engine)
			if !ok || eng.MaxStore != tc.want || cfg.MuPDFStore != tc.want {
				t.Errorf("got config %d, engine %+v; want %d", cfg.MuPDFStore, eng, tc.want)
			}
		})
	}
}
