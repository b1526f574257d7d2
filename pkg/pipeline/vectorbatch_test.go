package pipeline_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

func sampleBatch() pipeline.VectorBatch {
	return pipeline.VectorBatch{TaskID: "t-1", Model: "local/local-ngram-v1", Source: 1234567, First: 32,
		Vectors: [][]float32{{0, -1.5, float32(math.Pi)}, {math.MaxFloat32, math.SmallestNonzeroFloat32, 1}}}
}

func TestVectorBatchRoundTrip(t *testing.T) {
	big := pipeline.VectorBatch{TaskID: "x", Source: 1, Vectors: make([][]float32, 16)}
	for i := range big.Vectors {
		big.Vectors[i] = make([]float32, 384)
		big.Vectors[i][i] = float32(i)
	}
	tests := []struct {
		name string
		b    pipeline.VectorBatch
	}{
		{name: "full", b: sampleBatch()},
		{name: "empty", b: pipeline.VectorBatch{}},
		{name: "sixteen of 384", b: big},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := pipeline.EncodeVectorBatch(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if data[0] != pipeline.VectorFormat2 {
				t.Fatalf("first byte %#x, want %#x", data[0], pipeline.VectorFormat2)
			}
			got, err := pipeline.DecodeVectorBatch(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.b) {
				t.Errorf("got %+v, want %+v", got, tc.b)
			}
		})
	}
}

// TestVectorBatchIsSmall: a batch of 16 vectors of 384 floats costs about
// its floats, not the 16 texts and their JSON that format 1 and JSON held.
func TestVectorBatchIsSmall(t *testing.T) {
	b := pipeline.VectorBatch{TaskID: "0b8f6b3e-6d47-4d2c-9a43-2f4c1d9e7a11", Model: "local/local-ngram-v1", Source: 1 << 40, First: 4096, Vectors: make([][]float32, 16)}
	for i := range b.Vectors {
		b.Vectors[i] = make([]float32, 384)
	}
	data, err := pipeline.EncodeVectorBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if floats := 16 * 384 * 4; len(data) > floats+128 {
		t.Errorf("%d bytes for %d bytes of floats", len(data), floats)
	}
}

func TestVectorBatchRefusesMixedDimensions(t *testing.T) {
	b := sampleBatch()
	b.Vectors[1] = b.Vectors[1][:2]
	if _, err := pipeline.EncodeVectorBatch(b); err == nil || !strings.Contains(err.Error(), "dimensions") {
		t.Errorf("got %v, want an error about dimensions", err)
	}
	if _, err := pipeline.NewVectorBatchMsg(b); err == nil {
		t.Error("NewVectorBatchMsg: got no error")
	}
}

func TestDecodeVectorBatchMalformed(t *testing.T) {
	good, err := pipeline.EncodeVectorBatch(sampleBatch())
	if err != nil {
		t.Fatal(err)
	}
	single := pipeline.EncodeVector(sampleVector())
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "empty", data: nil, want: "not a vector batch"},
		{name: "a single vector", data: single, want: "not a vector batch"},
		{name: "JSON", data: []byte(`{"task_id":"t"}`), want: "not a vector batch"},
		{name: "only the format byte", data: good[:1], want: "bad length"},
		{name: "cut in the floats", data: good[:len(good)-3], want: "vectors of"},
		{name: "bytes after the floats", data: append(append([]byte{}, good...), 0), want: "after the floats"},
		{name: "huge count", data: append(good[:len(good)-2*3*4-2], 0xff, 0xff, 0xff, 0xff, 0x0f, 3), want: "vectors of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.DecodeVectorBatch(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The readers of single vectors refuse a batch rather than misread it.
	if _, err := pipeline.DecodeVector(good); err == nil {
		t.Error("DecodeVector of a batch: got no error")
	}
}

func FuzzDecodeVectorBatch(f *testing.F) {
	good, _ := pipeline.EncodeVectorBatch(sampleBatch())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := pipeline.DecodeVectorBatch(data)
		if err != nil {
			return
		}
		enc, err := pipeline.EncodeVectorBatch(b)
		if err != nil {
			t.Fatalf("encode of a decoded batch: %v", err)
		}
		b2, err := pipeline.DecodeVectorBatch(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded batch: %v", err)
		}
		if again, _ := pipeline.EncodeVectorBatch(b2); string(again) != string(enc) {
			t.Errorf("round trip changed the batch")
		}
	})
}

func TestVectorBatchSubject(t *testing.T) {
	b := sampleBatch()
	if got, want := b.Subject(), "pdf.vec.t-1.32.2"; got != want {
		t.Errorf("Subject: got %q, want %q", got, want)
	}
	m, err := pipeline.NewVectorBatchMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != b.Subject() || m.Header.Get(pipeline.HeaderTaskID) != b.TaskID {
		t.Errorf("message: subject %q, task header %q", m.Subject, m.Header.Get(pipeline.HeaderTaskID))
	}
}

func TestParseVectorSubject(t *testing.T) {
	tests := []struct {
		subj         string
		first, count int
		ok           bool
	}{
		{subj: "pdf.vec.t.7", first: 7, count: 1, ok: true},
		{subj: "pdf.vec.t.0.16", first: 0, count: 16, ok: true},
		{subj: pipeline.VectorBatchSubject("t", 4096, 3), first: 4096, count: 3, ok: true},
		{subj: pipeline.VectorSubject("t", 12), first: 12, count: 1, ok: true},
		{subj: "pdf.vec.u.7"},
		{subj: "pdf.vec.tt.7"},
		{subj: "pdf.vec.t.x"},
		{subj: "pdf.vec.t.-1"},
		{subj: "pdf.vec.t.07"},
		{subj: "pdf.vec.t.0.0"},
		{subj: "pdf.vec.t.0.-2"},
		{subj: "pdf.vec.t.0.16.1"},
		{subj: "pdf.vec.t."},
	}
	for _, tc := range tests {
		sp, ok := pipeline.ParseVectorSubject("t", tc.subj)
		if ok != tc.ok || ok && (sp.First != tc.first || sp.Count != tc.count || sp.Subject != tc.subj) {
			t.Errorf("%s: got %+v %t, want first %d count %d %t", tc.subj, sp, ok, tc.first, tc.count, tc.ok)
		}
	}
}

// TestCoverVectors: whatever mix of batches (new embedders), single
// vectors (older ones) and leftovers of another cut a task's subjects
// are, the chunks 0…n-1 are covered once, in order, or the count of those
// held is reported.
func TestCoverVectors(t *testing.T) {
	b := func(first, count int) string { return pipeline.VectorBatchSubject("t", first, count) }
	s := func(i int) string { return pipeline.VectorSubject("t", i) }
	singles := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, s(i))
		}
		return out
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name     string
		subjects []string
		n        int
		want     []string // chosen subjects, nil when not covered
		have     int
	}{
		{name: "no chunks", n: 0, have: 0},
		{name: "batches", subjects: []string{b(16, 16), b(0, 16), b(32, 5)}, n: 37, want: []string{b(0, 16), b(16, 16), b(32, 5)}, have: 37},
		{name: "single vectors", subjects: singles(0, 5), n: 5, want: singles(0, 5), have: 5},
		{name: "batches and single vectors", subjects: cat([]string{b(0, 3)}, singles(3, 6), []string{b(6, 2)}), n: 8,
			want: cat([]string{b(0, 3)}, singles(3, 6), []string{b(6, 2)}), have: 8},
		{name: "a batch rather than its single vectors", subjects: cat(singles(0, 4), []string{b(0, 4)}), n: 4, want: []string{b(0, 4)}, have: 4},
		{name: "a batch of one rather than a single vector", subjects: []string{s(0), b(0, 1)}, n: 1, want: []string{b(0, 1)}, have: 1},
		{name: "a batch that leads nowhere is passed over", subjects: []string{b(0, 5), b(0, 3), b(3, 5)}, n: 8, want: []string{b(0, 3), b(3, 5)}, have: 8},
		{name: "another cut's leftovers", subjects: []string{b(0, 10), b(10, 6), b(0, 16), b(16, 4), b(16, 30)}, n: 20, want: []string{b(0, 16), b(16, 4)}, have: 20},
		{name: "beyond n", subjects: []string{b(0, 4), b(4, 4), s(8), s(9)}, n: 8, want: []string{b(0, 4), b(4, 4)}, have: 8},
		{name: "a gap", subjects: []string{b(0, 16), b(32, 16)}, n: 48, have: 32},
		{name: "the last chunk missing", subjects: cat([]string{b(0, 4)}, singles(4, 9)), n: 10, have: 9},
		{name: "overlapping leftovers counted once", subjects: []string{b(0, 10), b(5, 10), s(20)}, n: 30, have: 16},
		{name: "other tasks and garbage", subjects: []string{"pdf.vec.u.0.4", "pdf.vec.t.zz", b(0, 4)}, n: 4, want: []string{b(0, 4)}, have: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spans, have := pipeline.CoverVectors("t", tc.subjects, tc.n)
			var got []string
			for _, sp := range spans {
				got = append(got, sp.Subject)
			}
			if have != tc.have || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %d held; want %v, %d", got, have, tc.want, tc.have)
			}
		})
	}
}

// TestCoverVectorsLarge: 100,000 chunks in batches of 16 are covered
// without recursion or quadratic work.
func TestCoverVectorsLarge(t *testing.T) {
	const n = 100_000
	var subjects []string
	for f := 0; f < n; f += 16 {
		subjects = append(subjects, pipeline.VectorBatchSubject("t", f, min(16, n-f)))
	}
	spans, have := pipeline.CoverVectors("t", subjects, n)
	if have != n || len(spans) != len(subjects) {
		t.Errorf("got %d spans, %d held; want %d, %d", len(spans), have, len(subjects), n)
	}
}
