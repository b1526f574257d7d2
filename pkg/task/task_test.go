package task

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Task
	}{
		{
			name: "backend today",
			raw:  `{"DocID":"9b2f3c1e-0000-4000-8000-000000000001","FileName":"a.pdf","UserID":"u1","CreatedAt":"2025-01-02T03:04:05.123456789Z","URL":"https://bucket.s3.amazonaws.com/u1/a.pdf?X-Amz-Signature=abc&X-Amz-Expires=900","RagMode":"false"}`,
			want: Task{
				ID: "9b2f3c1e-0000-4000-8000-000000000001", DocID: "9b2f3c1e-0000-4000-8000-000000000001",
				UserID: "u1", FileName: "a.pdf", CreatedAt: "2025-01-02T03:04:05.123456789Z",
				URL:     "https://bucket.s3.amazonaws.com/u1/a.pdf?X-Amz-Signature=abc&X-Amz-Expires=900",
				RagMode: "false",
			},
		},
		{
			name: "backend today, empty RagMode",
			raw:  `{"DocID":"d1","FileName":"a.pdf","UserID":"u1","CreatedAt":"2025-01-02T03:04:05Z","URL":"http://minio:9000/b/k.pdf","RagMode":""}`,
			want: Task{ID: "d1", DocID: "d1", UserID: "u1", FileName: "a.pdf", CreatedAt: "2025-01-02T03:04:05Z", URL: "http://minio:9000/b/k.pdf"},
		},
		{
			name: "original README with task_id and numeric FileSize",
			raw:  `{"DocID":"d2","UserID":"u2","FileName":"b.pdf","URL":"https://example.com/b.pdf","FileSize":1024000,"task_id":"t2"}`,
			want: Task{ID: "t2", DocID: "d2", UserID: "u2", FileName: "b.pdf", URL: "https://example.com/b.pdf", FileSize: 1024000},
		},
		{
			name: "FileSize as a string",
			raw:  `{"DocID":"d3","URL":"https://example.com/c.pdf","FileSize":"2048"}`,
			want: Task{ID: "d3", DocID: "d3", URL: "https://example.com/c.pdf", FileSize: 2048},
		},
		{
			name: "FileSize as a whole float",
			raw:  `{"DocID":"d3","URL":"https://example.com/c.pdf","FileSize":1.5e3}`,
			want: Task{ID: "d3", DocID: "d3", URL: "https://example.com/c.pdf", FileSize: 1500},
		},
		{
			name: "oldest shape",
			raw:  `{"task_id":"doc_123","s3_url":"s3://my-bucket/uploads/x%20y.pdf"}`,
			want: Task{ID: "doc_123", URL: "s3://my-bucket/uploads/x%20y.pdf"},
		},
		{
			name: "URL wins over s3_url",
			raw:  `{"task_id":"t","URL":"https://example.com/x.pdf","s3_url":"s3://b/k"}`,
			want: Task{ID: "t", URL: "https://example.com/x.pdf"},
		},
		{
			name: "empty URL falls back to s3_url",
			raw:  `{"task_id":"t","URL":"","s3_url":"s3://b/k"}`,
			want: Task{ID: "t", URL: "s3://b/k"},
		},
		{
			name: "empty task_id falls back to DocID",
			raw:  `{"task_id":"","DocID":"d","URL":"s3://b/k"}`,
			want: Task{ID: "d", DocID: "d", URL: "s3://b/k"},
		},
		{
			name: "re-queued by the original worker, unknown fields ignored",
			raw:  `{"DocID":"d4","URL":"https://e.com/x","retry_count":2,"last_error":"boom","last_attempt_time":"2025-01-01T00:00:00","nested":{"a":[1,2]}}`,
			want: Task{ID: "d4", DocID: "d4", URL: "https://e.com/x"},
		},
		{
			name: "RagMode as a boolean, nulls as absent",
			raw:  `{"DocID":"d5","URL":"https://e.com/x","RagMode":false,"UserID":null,"FileSize":null}`,
			want: Task{ID: "d5", DocID: "d5", URL: "https://e.com/x", RagMode: "false"},
		},
		{
			name: "upper-case scheme",
			raw:  `{"DocID":"d6","URL":"HTTPS://e.com/x"}`,
			want: Task{ID: "d6", DocID: "d6", URL: "HTTPS://e.com/x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.raw))
			if err != nil {
				t.Fatalf("Parse: got error %v, want nil", err)
			}
			if string(got.Raw) != tc.raw {
				t.Errorf("Raw: got %s, want the input bytes %s", got.Raw, tc.raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRawIsACopy(t *testing.T) {
	in := []byte(`{"task_id":"t","s3_url":"s3://b/k"}`)
	got, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	in[2] = 'X'
	if want := `{"task_id":"t","s3_url":"s3://b/k"}`; string(got.Raw) != want {
		t.Errorf("Raw changed with the caller's buffer: got %s, want %s", got.Raw, want)
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", MaxIDLen+1)
	tests := []struct {
		name   string
		raw    string
		want   error
		msgHas string // a piece of the message that says what is wrong
		msgNot string // a piece that must not leak into the message
	}{
		{name: "empty", raw: "", want: ErrMalformed, msgHas: "empty"},
		{name: "blank", raw: " \n", want: ErrMalformed, msgHas: "empty"},
		{name: "not JSON", raw: "DocID=1", want: ErrMalformed, msgHas: "not JSON"},
		{name: "truncated JSON", raw: `{"DocID":"d"`, want: ErrMalformed, msgHas: "not JSON"},
		{name: "two values", raw: `{"DocID":"d","URL":"s3://b/k"} {}`, want: ErrMalformed, msgHas: "after the first value"},
		{name: "array", raw: `[{"DocID":"d"}]`, want: ErrMalformed, msgHas: "got an array"},
		{name: "string", raw: `"hello"`, want: ErrMalformed, msgHas: "got a string"},
		{name: "null", raw: `null`, want: ErrMalformed, msgHas: "got null"},
		{name: "DocID number", raw: `{"DocID":42,"URL":"s3://b/k"}`, want: ErrMalformed, msgHas: "field DocID: want a string, got a number"},
		{name: "URL object", raw: `{"DocID":"d","URL":{"a":1}}`, want: ErrMalformed, msgHas: "field URL: want a string, got an object"},
		{name: "RagMode number", raw: `{"DocID":"d","URL":"s3://b/k","RagMode":1}`, want: ErrMalformed, msgHas: "field RagMode"},
		{name: "FileSize word", raw: `{"DocID":"d","URL":"s3://b/k","FileSize":"big"}`, want: ErrMalformed, msgHas: `FileSize: "big" is not a whole number`},
		{name: "FileSize fraction", raw: `{"DocID":"d","URL":"s3://b/k","FileSize":1.5}`, want: ErrMalformed, msgHas: "not a whole number"},
		{name: "FileSize negative", raw: `{"DocID":"d","URL":"s3://b/k","FileSize":-1}`, want: ErrMalformed, msgHas: "negative"},
		{name: "FileSize boolean", raw: `{"DocID":"d","URL":"s3://b/k","FileSize":true}`, want: ErrMalformed, msgHas: "got a boolean"},
		{name: "no id", raw: `{"URL":"s3://b/k","FileName":"a.pdf"}`, want: ErrMissingID},
		{name: "empty ids", raw: `{"task_id":"","DocID":"","URL":"s3://b/k"}`, want: ErrMissingID},
		{name: "task_id too long", raw: `{"task_id":"` + long + `","URL":"s3://b/k"}`, want: ErrBadID, msgHas: "task_id is 257 bytes"},
		{name: "DocID too long", raw: `{"DocID":"` + long + `","URL":"s3://b/k"}`, want: ErrBadID, msgHas: "DocID is 257 bytes"},
		{name: "id with newline", raw: `{"DocID":"a\nb","URL":"s3://b/k"}`, want: ErrBadID, msgHas: "control character U+000A at byte 1"},
		{name: "id with NUL", raw: `{"task_id":"\u0000","URL":"s3://b/k"}`, want: ErrBadID, msgHas: "U+0000"},
		{name: "no URL", raw: `{"DocID":"d"}`, want: ErrMissingURL, msgHas: `"d"`},
		{name: "blank URL and s3_url", raw: `{"DocID":"d","URL":" ","s3_url":""}`, want: ErrMissingURL},
		{name: "ftp", raw: `{"DocID":"d","URL":"ftp://h/x.pdf"}`, want: ErrUnsupportedScheme, msgHas: `"ftp"`},
		{name: "file", raw: `{"DocID":"d","URL":"file:///etc/passwd"}`, want: ErrUnsupportedScheme, msgHas: `"file"`},
		{name: "no scheme", raw: `{"DocID":"d","URL":"example.com/x.pdf"}`, want: ErrUnsupportedScheme, msgHas: "no scheme"},
		{name: "http without host", raw: `{"DocID":"d","URL":"http:///x.pdf"}`, want: ErrBadURL, msgHas: "no host"},
		{name: "unparsable http", raw: `{"DocID":"d","URL":"http://h/%zz?X-Amz-Signature=secret"}`, want: ErrBadURL, msgNot: "secret"},
		{name: "s3 without key", raw: `{"task_id":"t","s3_url":"s3://bucket"}`, want: ErrBadS3URL, msgHas: "no object key"},
		{name: "s3 with empty key", raw: `{"task_id":"t","s3_url":"s3://bucket/"}`, want: ErrBadS3URL, msgHas: "no object key"},
		{name: "s3 without bucket", raw: `{"task_id":"t","s3_url":"s3:///key"}`, want: ErrBadS3URL, msgHas: "no bucket"},
		{name: "s3 opaque", raw: `{"task_id":"t","s3_url":"s3:bucket/key"}`, want: ErrBadS3URL, msgHas: "want s3://bucket/key"},
		{name: "s3 with port", raw: `{"task_id":"t","URL":"s3://bucket:9000/key"}`, want: ErrBadS3URL, msgHas: "port"},
		{name: "s3 with query", raw: `{"task_id":"t","URL":"s3://bucket/key?versionId=1"}`, want: ErrBadS3URL, msgHas: "query"},
		{name: "s3 unparsable", raw: `{"task_id":"t","URL":"s3://bucket/%zz"}`, want: ErrBadS3URL},
		{name: "s3_url field named in message", raw: `{"task_id":"t","s3_url":"s3://bucket"}`, want: ErrBadS3URL, msgHas: "field s3_url"},
	}
	sentinels := []error{ErrMalformed, ErrMissingID, ErrBadID, ErrMissingURL, ErrUnsupportedScheme, ErrBadURL, ErrBadS3URL}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.raw))
			if err == nil {
				t.Fatalf("Parse: got %+v and nil error, want %v", got, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %q, want one wrapping %q", err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %q also wraps %q, want only %q", err, s, tc.want)
				}
			}
			if tc.msgHas != "" && !strings.Contains(err.Error(), tc.msgHas) {
				t.Errorf("got message %q, want it to contain %q", err, tc.msgHas)
			}
			if tc.msgNot != "" && strings.Contains(err.Error(), tc.msgNot) {
				t.Errorf("got message %q, want it without %q", err, tc.msgNot)
			}
			if got.ID != "" || got.Raw != nil {
				t.Errorf("got non-zero Task %+v with an error", got)
			}
		})
	}
}

func TestParseMaxIDLen(t *testing.T) {
	id := strings.Repeat("x", MaxIDLen)
	got, err := Parse([]byte(`{"task_id":"` + id + `","s3_url":"s3://b/k"}`))
	if err != nil {
		t.Fatalf("Parse of a %d-byte id: got %v, want nil", MaxIDLen, err)
	}
	if got.ID != id {
		t.Errorf("got ID of %d bytes, want %d", len(got.ID), MaxIDLen)
	}
}

func TestSkipEmbedding(t *testing.T) {
	tests := []struct {
		rag  string
		want bool
	}{
		{"false", true}, {"FALSE", true}, {" False ", true},
		{"true", false}, {"", false}, {"no", false}, {"0", false},
	}
	for _, tc := range tests {
		t.Run(tc.rag, func(t *testing.T) {
			if got := (Task{RagMode: tc.rag}).SkipEmbedding(); got != tc.want {
				t.Errorf("RagMode %q: got %v, want %v", tc.rag, got, tc.want)
			}
		})
	}
}

func TestDocumentIDAndS3Location(t *testing.T) {
	tests := []struct {
		name               string
		raw                string
		docID, bucket, key string
		s3                 bool
	}{
		{name: "oldest", raw: `{"task_id":"t1","s3_url":"s3://bkt/dir/a%20b.pdf"}`, docID: "t1", bucket: "bkt", key: "dir/a b.pdf", s3: true},
		{name: "backend", raw: `{"DocID":"d1","task_id":"t1","URL":"https://h/x.pdf"}`, docID: "d1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task, err := Parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := task.DocumentID(); got != tc.docID {
				t.Errorf("DocumentID: got %q, want %q", got, tc.docID)
			}
			b, k, ok := task.S3Location()
			if b != tc.bucket || k != tc.key || ok != tc.s3 {
				t.Errorf("S3Location: got (%q, %q, %v), want (%q, %q, %v)", b, k, ok, tc.bucket, tc.key, tc.s3)
			}
		})
	}
}
