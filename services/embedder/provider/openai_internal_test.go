package provider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestEmbeddingValue: what OpenAI and compatible servers send as an
// embedding, base64 (escaped or not) or numbers, decodes to the floats the
// SDK's own type gave; malformed values are errors.
func TestEmbeddingValue(t *testing.T) {
	want := []float32{0.25, -1, float32(math.Pi), 1e-7}
	raw := make([]byte, 4*len(want))
	for i, f := range want {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	// A value whose base64 has a '/', which some JSON encoders escape.
	var slash []float32
	var sb64 string
	for i := 1; !strings.Contains(sb64, "/"); i++ {
		slash = []float32{float32(i) / 7, -float32(i)}
		sraw := make([]byte, 8)
		for k, f := range slash {
			binary.LittleEndian.PutUint32(sraw[4*k:], math.Float32bits(f))
		}
		sb64 = base64.StdEncoding.EncodeToString(sraw)
	}
	tests := []struct {
		name    string
		json    string
		want    []float32
		wantErr string
	}{
		{name: "base64", json: `"` + b64 + `"`, want: want},
		{name: "base64 with escaped slashes", json: `"` + strings.ReplaceAll(sb64, "/", `\/`) + `"`, want: slash},
		{name: "numbers", json: `[0.25,-1,3.141592653589793,1e-7]`, want: want},
		{name: "empty", json: `[]`, want: []float32{}},
		{name: "not base64", json: `"***"`, wantErr: "base64"},
		{name: "not a whole float", json: `"` + base64.StdEncoding.EncodeToString(raw[:6]) + `"`, wantErr: "multiple of 4"},
		{name: "an object", json: `{}`, wantErr: "embedding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v embeddingValue
			err := json.Unmarshal([]byte(tc.json), &v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", v, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal([]float32(v), tc.want) {
				t.Errorf("got %v, %v; want %v", v, err, tc.want)
			}
		})
	}
}
