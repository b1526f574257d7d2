package pipeline_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/pdfpipe/pdfpipe/pkg/pipeline"
)

var trickyIDs = []string{
	"",
	"plain",
	"550e8400-e29b-41d4-a716-446655440000",
	"under_score-and-dash",
	"a.b.c",
	".",
	"..",
	"with space",
	" ",
	"tab\there",
	"new\nline",
	"*",
	">",
	"a.*.>",
	"=",
	"=abc",
	"==",
	"=PWFiYw", // Token("=abc")
	"PWFiYw",
	"abc=",
	"a/b",
	"ünïcødé",
	"日本語のタスク",
	"emoji 🚀",
	"nul\x00byte",
	"\xff\xfe invalid utf-8",
	"$JS.API",
	strings.Repeat("x.", 128),
}

func TestTokenRoundTrip(t *testing.T) {
	for _, id := range trickyIDs {
		t.Run(id, func(t *testing.T) {
			tok := pipeline.Token(id)
			got, err := pipeline.TaskIDFromToken(tok)
			if err != nil {
				t.Fatalf("TaskIDFromToken(%q): %v", tok, err)
			}
			if got != id {
				t.Errorf("round trip: got %q, want %q (token %q)", got, id, tok)
			}
		})
	}
}

func TestTokenPlainIDsUnchanged(t *testing.T) {
	for _, id := range []string{"plain", "550e8400-e29b-41d4-a716-446655440000", "A_b-9"} {
		if got := pipeline.Token(id); got != id {
			t.Errorf("Token(%q): got %q, want it unchanged", id, got)
		}
	}
}

// TestTokenIsSingleTokenAndKey checks every token is one subject token and
// a valid KV key, without relying on the client's own validation only:
// each is used as a real subject and a real key.
func TestTokenIsSingleTokenAndKey(t *testing.T) {
	r := setup(t, pipeline.Config{})
	ctx := testCtx(t)
	for _, id := range trickyIDs {
		t.Run(id, func(t *testing.T) {
			tok := pipeline.Token(id)
			if tok == "" {
				t.Fatal("got empty token")
			}
			if strings.ContainsAny(tok, ".*>") {
				t.Errorf("token %q: contains a subject separator or wildcard", tok)
			}
			if strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || r > unicode.MaxASCII || r < 0x21 }) >= 0 {
				t.Errorf("token %q: contains whitespace, control or non-ASCII characters", tok)
			}
			subj := pipeline.Fetch.Subject(id)
			if got, want := len(strings.Split(subj, ".")), 3; got != want {
				t.Errorf("subject %q: got %d tokens, want %d", subj, got, want)
			}
			ack, err := pipeline.Publish(ctx, r.JS, subj, id, "", struct{}{})
			if err != nil {
				t.Fatalf("Publish to %q: %v", subj, err)
			}
			s, err := r.JS.Stream(ctx, pipeline.Stream)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			m, err := s.GetMsg(ctx, ack.Sequence)
			if err != nil {
				t.Fatalf("GetMsg: %v", err)
			}
			if m.Subject != subj {
				t.Errorf("stored subject: got %q, want %q", m.Subject, subj)
			}
			back, err := pipeline.TaskIDFromToken(strings.Split(m.Subject, ".")[2])
			if err != nil || back != id {
				t.Errorf("id from stored subject: got %q, %v; want %q", back, err, id)
			}
			// NATS headers cannot carry control characters or edge
			// whitespace; the subject token above is exact for every id.
			if headerSafe(id) {
				if got := m.Header.Get(pipeline.HeaderTaskID); got != id {
					t.Errorf("task id header: got %q, want %q", got, id)
				}
			}
			if _, err := r.Status.Put(ctx, tok, []byte(id)); err != nil {
				t.Fatalf("KV put with key %q: %v", tok, err)
			}
			e, err := r.Status.Get(ctx, tok)
			if err != nil {
				t.Fatalf("KV get %q: %v", tok, err)
			}
			if got := string(e.Value()); got != id {
				t.Errorf("KV value: got %q, want %q", got, id)
			}
		})
	}
	// Every id got its own key: nothing overwrote another.
	keys, err := r.Status.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if got, want := len(keys), len(trickyIDs); got != want {
		t.Errorf("distinct KV keys: got %d, want %d", got, want)
	}
}

func TestTokenNeverCollides(t *testing.T) {
	ids := append([]string(nil), trickyIDs...)
	// Also use every token as an id of its own: a plain id must never be
	// mistaken for an encoded one.
	for _, id := range trickyIDs {
		ids = append(ids, pipeline.Token(id))
	}
	seen := map[string]string{}
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		tok := pipeline.Token(id)
		for other, otherTok := range seen {
			if otherTok == tok {
				t.Errorf("ids %q and %q: both got token %q", id, other, tok)
			}
		}
		seen[id] = tok
	}
}

func TestTaskIDFromTokenRejectsBadEncoding(t *testing.T) {
	for _, tok := range []string{"=!!", "=a", "=ab=="} {
		t.Run(tok, func(t *testing.T) {
			if got, err := pipeline.TaskIDFromToken(tok); err == nil {
				t.Errorf("got %q, nil; want an error", got)
			}
		})
	}
}

func headerSafe(id string) bool {
	return strings.TrimSpace(id) == id && strings.IndexFunc(id, unicode.IsControl) < 0
}
