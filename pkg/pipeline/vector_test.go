package pipeline_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

func sampleVector() pipeline.Vector {
	return pipeline.Vector{TaskID: "t-1", Model: "local-384", Vector: []float32{0, -1.5, float32(math.Pi), math.MaxFloat32, math.SmallestNonzeroFloat32},
		Chunk: pipeline.Chunk{ID: "abc", Index: 41, Text: "héllo\x00wörld", Chapter: "2 Data", ChapterNum: "2.1", PageStart: 7, PageEnd: 9}}
}

func TestVectorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    pipeline.Vector
	}{
		{name: "full", v: sampleVector()},
		{name: "empty", v: pipeline.Vector{}},
		{name: "negative numbers", v: pipeline.Vector{Chunk: pipeline.Chunk{Index: -1, PageStart: -5}, Vector: []float32{1}}},
		{name: "384 floats", v: pipeline.Vector{TaskID: "x", Vector: make([]float32, 384)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pipeline.EncodeVector(tc.v)
			if data[0] != pipeline.VectorFormat1 {
				t.Fatalf("first byte %#x, want %#x", data[0], pipeline.VectorFormat1)
			}
			got, err := pipeline.DecodeVector(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Errorf("got %+v, want %+v", got, tc.v)
			}
		})
	}
}

// TestVectorBinaryIsSmaller: the point of the format.
func TestVectorBinaryIsSmaller(t *testing.T) {
	v := sampleVector()
	v.Vector = make([]float32, 384)
	for i := range v.Vector {
		v.Vector[i] = float32(i)/383 - 0.4999
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if b := pipeline.EncodeVector(v); 2*len(b) > len(j) {
		t.Errorf("binary %d bytes, JSON %d: want at most half", len(b), len(j))
	}
}

// TestDecodeVectorJSON reads messages stored by earlier versions.
func TestDecodeVectorJSON(t *testing.T) {
	want := sampleVector()
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.DecodeVector(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecodeVectorMalformed(t *testing.T) {
	good := pipeline.EncodeVector(sampleVector())
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "empty", data: nil, want: "decode"},
		{name: "not JSON", data: []byte("garbage"), want: "decode"},
		{name: "only the format byte", data: good[:1], want: "bad length"},
		{name: "cut in a string", data: good[:6], want: "a string of"},
		{name: "cut in the floats", data: good[:len(good)-3], want: "floats in"},
		{name: "bytes after the floats", data: append(append([]byte{}, good...), 0), want: "after the floats"},
		{name: "huge float count", data: append(pipeline.EncodeVector(pipeline.Vector{})[:10], 0xff, 0xff, 0xff, 0xff, 0x0f), want: "floats in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.DecodeVector(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeVector(f *testing.F) {
	good := pipeline.EncodeVector(sampleVector())
	f.Add(good)
	f.Add(good[:len(good)/2])
	j, _ := json.Marshal(sampleVector())
	f.Add(j)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := pipeline.DecodeVector(data)
		if err != nil || len(data) == 0 || data[0] != pipeline.VectorFormat1 {
			return
		}
		// What decodes survives a round trip (compared as bytes: NaNs
		// keep their bits; varints may be overlong in data, not in enc).
		enc := pipeline.EncodeVector(v)
		v2, err := pipeline.DecodeVector(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded vector: %v", err)
		}
		if again := pipeline.EncodeVector(v2); string(again) != string(enc) {
			t.Errorf("round trip changed the vector")
		}
	})
}
