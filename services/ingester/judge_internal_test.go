package ingester

import (
	"fmt"
	"strings"
	"testing"

	pb "github.com/pdfpipe/pdfpipe/proto/cognicore"
)

func TestJudge(t *testing.T) {
	const n = 10
	dupMsg := func(failed int) string {
		return fmt.Sprintf("finish 10 chunks, %d failed: ", failed) + `chunk 0 (a): ERROR: duplicate key value violates unique constraint "chunks_pkey" (SQLSTATE 23505); chunk 1 (b): ERROR: duplicate key value violates unique constraint "chunks_pkey" (SQLSTATE 23505); …`
	}
	answer := func(msg string, received, stored, failed int32) *pb.IngestResponse {
		return &pb.IngestResponse{Success: failed == 0, Message: msg, ChunksReceived: received, ChunksStored: stored, ChunksFailed: failed}
	}
	tests := []struct {
		name     string
		resp     *pb.IngestResponse
		h        history
		wantErr  string // "" means done
		wantNote string // "" means a clean done
	}{
		{"success", answer("finish 10 chunks", n, n, 0), history{}, "", ""},
		{"sink: duplicates of an earlier attempt", answer(dupMsg(4), n, 6, 4), history{sentMax: 4}, "", "already held 4 chunks"},
		{"real backend: counts within the bound", answer("finish 10 chunks", n, 6, 4), history{sentMax: 256}, "", "inferred"},
		{"real backend: whole earlier attempt, answer lost", answer("finish 10 chunks", n, 0, n), history{sentMax: n, sentWhole: 1}, "", "stored by attempt 1"},
		{"sink: whole earlier attempt, answer lost", answer(dupMsg(n), n, 0, n), history{sentMax: n, sentWhole: 2}, "", "stored by attempt 2"},
		{"real backend: first attempt, chunks failed", answer("finish 10 chunks", n, 9, 1), history{}, "received 10, stored 9 of 10, failed 1; earlier attempts delivered at most 0", ""},
		{"real backend: more failed than earlier attempts sent", answer("finish 10 chunks", n, 5, 5), history{sentMax: 3}, "earlier attempts delivered at most 3", ""},
		{"sink: a non-duplicate reason", answer("finish 10 chunks, 2 failed: chunk 0 (a): ERROR: duplicate key value (SQLSTATE 23505); chunk 7 (h): expected 384 dimensions, not 383", n, 8, 2), history{sentMax: 5}, "expected 384 dimensions", ""},
		{"unknown backend wording", answer("database is read-only", n, 8, 2), history{sentMax: 5}, "database is read-only", ""},
		{"stream not processed whole", answer("finish 7 chunks", 7, 5, 2), history{sentMax: 5}, "did not process the whole stream", ""},
		{"done before a replay: refusal keeps it done", answer("finish 10 chunks", n, 0, n), history{doneBefore: true}, "", "still holds the document"},
		{"done before a replay: even a bad resend", answer("finish 10 chunks, 1 failed: chunk 3 (d): NaN not allowed in vector", n, 0, n), history{doneBefore: true}, "", "still holds the document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.resp, n, tc.h)
			switch {
			case tc.wantErr != "":
				if v.err == nil || !strings.Contains(v.err.Error(), tc.wantErr) {
					t.Errorf("got error %v (note %q), want an error containing %q", v.err, v.note, tc.wantErr)
				}
				if v.err != nil && !strings.Contains(v.err.Error(), tc.resp.GetMessage()) {
					t.Errorf("error %q lacks the backend's message %q", v.err, tc.resp.GetMessage())
				}
			case v.err != nil:
				t.Errorf("got error %v, want done", v.err)
			case tc.wantNote == "" && v.note != "":
				t.Errorf("got note %q, want none", v.note)
			case !strings.Contains(v.note, tc.wantNote):
				t.Errorf("got note %q, want it to contain %q", v.note, tc.wantNote)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	tests := []struct {
		msg        string
		dup, other bool
	}{
		{"finish 12 chunks", false, false},
		{"", false, false},
		{`finish 3 chunks, 1 failed: chunk 0 (x): ERROR: duplicate key value violates unique constraint "chunks_pkey" (SQLSTATE 23505)`, true, false},
		{"finish 3 chunks, 2 failed: chunk 0 (x): duplicate key; chunk 2 (z): NaN not allowed in vector", true, true},
		{"finish 9 chunks, 5 failed: chunk 0 (a): 23505; chunk 1 (b): 23505; chunk 2 (c): 23505; …", true, false},
		{"something else went wrong", false, true},
		{"finish many chunks", false, true},
	}
	for _, tc := range tests {
		dup, other := reasons(tc.msg)
		if dup != tc.dup || other != tc.other {
			t.Errorf("reasons(%q): got dup %v other %v, want %v %v", tc.msg, dup, other, tc.dup, tc.other)
		}
	}
}
