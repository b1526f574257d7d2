package envconf_test

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdfpipe/pdfpipe/pkg/envconf"
)

func env(m map[string]string) envconf.Getenv {
	return func(k string) string { return m[k] }
}

func TestString(t *testing.T) {
	tests := []struct {
		name, val, def, want string
	}{
		{"unset", "", "d", "d"},
		{"set", "v", "d", "v"},
		{"blank is unset", "   ", "d", "d"},
		{"trimmed", "  v \t", "d", "v"},
		{"empty default", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"X": tt.val}), envconf.Settings{envconf.String("X", tt.def, "x")})
			if got := r.String("X"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err := r.Err(); err != nil {
				t.Errorf("Err: got %v, want nil", err)
			}
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		name, val string
		def, want int
		bad       bool
	}{
		{"unset", "", 7, 7, false},
		{"set", "42", 7, 42, false},
		{"negative", "-3", 7, -3, false},
		{"spaces", " 5 ", 7, 5, false},
		{"zero", "0", 7, 0, false},
		{"float", "1.5", 7, 7, true},
		{"word", "ten", 7, 7, true},
		{"suffix", "10k", 7, 7, true},
		{"overflow", "99999999999999999999", 7, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"N": tt.val}), envconf.Settings{envconf.Int("N", tt.def, "n")})
			if got := r.Int("N"); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
			checkErr(t, r.Err(), tt.bad, "N")
		})
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		name, val string
		def, want int64
		bad       bool
	}{
		{"unset", "", 99, 99, false},
		{"plain", "1024", 99, 1024, false},
		{"zero", "0", 99, 0, false},
		{"KiB", "4KiB", 99, 4 << 10, false},
		{"MiB", "200MiB", 99, 200 << 20, false},
		{"GiB", "2GiB", 99, 2 << 30, false},
		{"space before suffix", "3 MiB", 99, 3 << 20, false},
		{"surrounding space", " 1KiB ", 99, 1 << 10, false},
		{"largest plain", "9223372036854775807", 99, math.MaxInt64, false},
		{"negative", "-1", 99, 99, true},
		{"negative with suffix", "-1MiB", 99, 99, true},
		{"SI suffix not accepted", "10MB", 99, 99, true},
		{"lower case suffix not accepted", "10mib", 99, 99, true},
		{"fraction", "1.5GiB", 99, 99, true},
		{"suffix only", "MiB", 99, 99, true},
		{"word", "lots", 99, 99, true},
		{"overflow after multiplying", "9000000000GiB", 99, 99, true},
		{"overflow KiB", "9007199254740992KiB", 99, 99, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"B": tt.val}), envconf.Settings{envconf.Bytes("B", tt.def, "b")})
			if got := r.Bytes("B"); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
			checkErr(t, r.Err(), tt.bad, "B")
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name, val string
		def, want time.Duration
		bad       bool
	}{
		{"unset", "", time.Second, time.Second, false},
		{"seconds", "30s", time.Second, 30 * time.Second, false},
		{"compound", "1h5m", time.Second, time.Hour + 5*time.Minute, false},
		{"zero", "0", time.Second, 0, false},
		{"spaces", " 5m ", time.Second, 5 * time.Minute, false},
		{"no unit", "30", time.Second, time.Second, true},
		{"days not supported", "2d", time.Second, time.Second, true},
		{"word", "soon", time.Second, time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"D": tt.val}), envconf.Settings{envconf.Duration("D", tt.def, "d")})
			if got := r.Duration("D"); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			checkErr(t, r.Err(), tt.bad, "D")
		})
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		name, val string
		def, want bool
		bad       bool
	}{
		{"unset keeps true", "", true, true, false},
		{"unset keeps false", "", false, false, false},
		{"true", "true", false, true, false},
		{"1", "1", false, true, false},
		{"TRUE", "TRUE", false, true, false},
		{"false", "false", true, false, false},
		{"0", "0", true, false, false},
		{"spaces", " f ", true, false, false},
		{"yes not accepted", "yes", true, true, true},
		{"on not accepted", "on", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"F": tt.val}), envconf.Settings{envconf.Bool("F", tt.def, "f")})
			if got := r.Bool("F"); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			checkErr(t, r.Err(), tt.bad, "F")
		})
	}
}

func TestList(t *testing.T) {
	r := envconf.New(env(map[string]string{"L": " a, b ,,c ,"}), envconf.Settings{envconf.List("L", "l"), envconf.List("E", "e")})
	if got := strings.Join(r.List("L"), "|"); got != "a|b|c" {
		t.Errorf("got %q, want a|b|c", got)
	}
	if got := r.List("E"); got != nil {
		t.Errorf("unset list: got %q, want nil", got)
	}
	if shown, _ := r.Values().Lookup("L"); shown != "a,b,c" {
		t.Errorf("logged as %q, want a,b,c", shown)
	}
}

func checkErr(t *testing.T, err error, bad bool, name string) {
	t.Helper()
	switch {
	case bad && err == nil:
		t.Errorf("Err: got nil, want an error naming %s", name)
	case bad && !strings.Contains(err.Error(), name+"="):
		t.Errorf("Err: got %q, want it to name %s=", err, name)
	case !bad && err != nil:
		t.Errorf("Err: got %v, want nil", err)
	}
}

func TestErrCollectsEveryBadValue(t *testing.T) {
	decl := envconf.Settings{
		envconf.Int("WORKERS", 4, "w"),
		envconf.Bytes("MAX_SIZE", 1<<20, "m"),
		envconf.Duration("TIMEOUT", time.Minute, "t"),
		envconf.Bool("DEBUG", false, "d"),
		envconf.String("NAME", "x", "n"),
		envconf.Int("GOOD_INT", 0, "g"),
	}
	r := envconf.New(env(map[string]string{
		"WORKERS":  "many",
		"MAX_SIZE": "10MB",
		"TIMEOUT":  "30",
		"DEBUG":    "maybe",
		"NAME":     "pdfpipe",
		"GOOD_INT": "3",
	}), decl)
	if got, want := r.Int("WORKERS"), 4; got != want {
		t.Errorf("WORKERS: got %d, want default %d", got, want)
	}
	if got, want := r.Bytes("MAX_SIZE"), int64(1<<20); got != want {
		t.Errorf("MAX_SIZE: got %d, want default %d", got, want)
	}
	if got, want := r.Duration("TIMEOUT"), time.Minute; got != want {
		t.Errorf("TIMEOUT: got %v, want default %v", got, want)
	}
	if got, want := r.Bool("DEBUG"), false; got != want {
		t.Errorf("DEBUG: got %v, want default %v", got, want)
	}
	if got, want := r.String("NAME"), "pdfpipe"; got != want {
		t.Errorf("NAME: got %q, want %q", got, want)
	}
	if got, want := r.Int("GOOD_INT"), 3; got != want {
		t.Errorf("GOOD_INT: got %d, want %d", got, want)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("Err: got nil, want the four bad values")
	}
	for _, want := range []string{`WORKERS="many"`, `MAX_SIZE="10MB"`, `TIMEOUT="30"`, `DEBUG="maybe"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err: got %q, want it to contain %s", err, want)
		}
	}
	for _, notWant := range []string{"NAME", "GOOD_INT"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("Err: got %q, want no mention of good variable %s", err, notWant)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("Err: got %T, want a joined error", err)
	}
	if got, want := len(joined.Unwrap()), 4; got != want {
		t.Errorf("number of errors: got %d, want %d", got, want)
	}
}

func TestErrNilWhenAllGood(t *testing.T) {
	r := envconf.New(env(nil), envconf.Settings{
		envconf.String("A", "a", "a"), envconf.Int("B", 1, "b"), envconf.Bytes("C", 1, "c"),
		envconf.Duration("D", 1, "d"), envconf.Bool("E", true, "e"), envconf.Secret("F", "f"),
	})
	r.String("A")
	r.Int("B")
	r.Bytes("C")
	r.Duration("D")
	r.Bool("E")
	r.Secret("F")
	if err := r.Err(); err != nil {
		t.Errorf("Err with nothing set: got %v, want nil", err)
	}
}

// Every variable read is declared, and read as declared: a typo, a read
// of the wrong kind, a secret read as plain text or a computed default
// read without one is an error naming the variable.
func TestReadAsDeclared(t *testing.T) {
	decl := envconf.Settings{
		envconf.Int("WORKERS", 4, "w"),
		envconf.Secret("API_KEY", "k"),
		envconf.String("TEMP_DIR", "", "t").Computed("OS temp dir"),
		envconf.String("MODE", "fast", "m"),
	}
	tests := []struct {
		name, want string
		read       func(r *envconf.Reader)
	}{
		{"undeclared", "WORKRES is read but not declared", func(r *envconf.Reader) { r.Int("WORKRES") }},
		{"wrong kind", "WORKERS is declared integer", func(r *envconf.Reader) { r.String("WORKERS") }},
		{"secret as text", "API_KEY is secret", func(r *envconf.Reader) { r.String("API_KEY") }},
		{"text as secret", "MODE is not declared secret", func(r *envconf.Reader) { r.Secret("MODE") }},
		{"computed without a default", "TEMP_DIR has a computed default", func(r *envconf.Reader) { r.String("TEMP_DIR") }},
		{"declared default given again", "MODE has a declared default", func(r *envconf.Reader) { r.StringOr("MODE", "slow") }},
		{"undeclared IsSet", "NOPE is read but not declared", func(r *envconf.Reader) { r.IsSet("NOPE") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := envconf.New(env(map[string]string{"API_KEY": "sk-hush"}), decl)
			tc.read(r)
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "sk-hush") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

func TestComputedDefault(t *testing.T) {
	decl := envconf.Settings{
		envconf.String("TEMP_DIR", "", "t").Computed("OS temp dir"),
		envconf.Int("CHUNK_SIZE", 0, "c").Computed("1000 runes, 400 tokens"),
	}
	r := envconf.New(env(map[string]string{"CHUNK_SIZE": "321"}), decl)
	if got := r.StringOr("TEMP_DIR", "/tmp/x"); got != "/tmp/x" {
		t.Errorf("TEMP_DIR: got %q, want the computed /tmp/x", got)
	}
	if got := r.IntOr("CHUNK_SIZE", 400); got != 321 {
		t.Errorf("CHUNK_SIZE: got %d, want the variable's 321", got)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if shown, _ := r.Values().Lookup("TEMP_DIR"); shown != "/tmp/x" {
		t.Errorf("TEMP_DIR logged as %q, want the computed value", shown)
	}
}

func TestSecret(t *testing.T) {
	const key = "sk-live-0123456789abcdef"
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	decl := envconf.Settings{envconf.Secret("API_KEY", "the key").WithFile("API_KEY_FILE")}
	tests := []struct {
		name      string
		env       map[string]string
		want      string
		wantShown string
		wantErr   string
	}{
		{"unset", nil, "", "unset", ""},
		{"variable", map[string]string{"API_KEY": " " + key + " "}, key, "set", ""},
		{"file", map[string]string{"API_KEY_FILE": file}, key, "set from file " + file, ""},
		{"both", map[string]string{"API_KEY": key, "API_KEY_FILE": file}, "", "set twice", "API_KEY and API_KEY_FILE: set only one"},
		{"missing file", map[string]string{"API_KEY_FILE": file + ".none"}, "", "unreadable file " + file + ".none", "API_KEY_FILE"},
		// A broken mount, not "no secret".
		{"empty file", map[string]string{"API_KEY_FILE": empty}, "", "empty file " + empty, "API_KEY_FILE: file " + empty + " is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := envconf.New(env(tc.env), decl)
			if got := r.Secret("API_KEY"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			err := r.Err()
			if (err != nil) != (tc.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Err: got %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Errorf("error %q holds the key", err)
			}
			if shown, _ := r.Values().Lookup("API_KEY"); shown != tc.wantShown {
				t.Errorf("logged as %q, want %q", shown, tc.wantShown)
			}
			if got := r.IsSet("API_KEY"); got != (len(tc.env) > 0) {
				t.Errorf("IsSet: got %v, want %v", got, len(tc.env) > 0)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		decl envconf.Settings
		want string // in the error; "" for none
	}{
		{"good", envconf.Settings{envconf.Duration("ACK_WAIT", 30*time.Second, "a"), envconf.Secret("KEY", "k").WithFile("KEY_FILE")}, ""},
		{"lower case", envconf.Settings{envconf.String("ack_wait", "", "a")}, "not an UPPER_SNAKE"},
		{"twice", envconf.Settings{envconf.String("A_B", "", "a"), envconf.Int("A_B", 1, "b")}, "A_B: declared twice"},
		{"file variable twice", envconf.Settings{envconf.String("KEY_FILE", "", "a"), envconf.Secret("KEY", "k").WithFile("KEY_FILE")}, "KEY_FILE: declared twice"},
		{"bad default", envconf.Settings{{Name: "ACK_WAIT", Kind: envconf.KindDuration, Default: "30", Usage: "a"}}, `ACK_WAIT: default "30"`},
		{"secret default", envconf.Settings{{Name: "KEY", Kind: envconf.KindString, Secret: true, Default: "x", Usage: "k"}}, "secret is a string without a default"},
		{"no usage", envconf.Settings{envconf.String("A", "", "")}, "A: no usage"},
		{"no kind", envconf.Settings{{Name: "A", Usage: "a"}}, "A: no kind"},
		{"computed duration", envconf.Settings{envconf.Duration("D", 0, "d").Computed("later")}, "only string and integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decl.Check()
			if (err != nil) != (tc.want != "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			// A Reader over bad declarations fails whatever it reads.
			if tc.want != "" && envconf.New(env(nil), tc.decl).Err() == nil {
				t.Error("New over bad declarations: Err is nil")
			}
		})
	}
}

// Declared defaults are spelt as the variable would be, and read back to
// the same value.
func TestFormatRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, 10 * time.Millisecond, time.Second, 30 * time.Second, time.Minute, 90 * time.Minute, 72 * time.Hour, 1500 * time.Microsecond} {
		s := envconf.Duration("D", d, "d")
		r := envconf.New(env(nil), envconf.Settings{s})
		if got := r.Duration("D"); got != d || r.Err() != nil {
			t.Errorf("%v spelt %q reads back as %v (%v)", d, s.Default, got, r.Err())
		}
	}
	for _, n := range []int64{0, 1, 1000, 1 << 10, 8 << 10, 64 << 10, 200 << 20, 3 << 30, 1<<20 + 1} {
		s := envconf.Bytes("B", n, "b")
		r := envconf.New(env(nil), envconf.Settings{s})
		if got := r.Bytes("B"); got != n || r.Err() != nil {
			t.Errorf("%d spelt %q reads back as %d (%v)", n, s.Default, got, r.Err())
		}
	}
	if got := envconf.FormatBytes(200 << 20); got != "200MiB" {
		t.Errorf("FormatBytes(200 MiB) = %q", got)
	}
	if got := envconf.FormatDuration(72 * time.Hour); got != "72h" {
		t.Errorf("FormatDuration(72h) = %q", got)
	}
}

// TestRedact: credentials in URLs and addresses never survive; what
// carries none is left alone.
func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pa55@nats:4222", "nats://***@nats:4222"},
		{"nats://s3cr3t-token@nats:4222", "nats://***@nats:4222"},
		{"tls://a:b@n1:4222, nats://n2:4222,nats://c:d@n3:4222", "tls://***@n1:4222,nats://n2:4222,nats://***@n3:4222"},
		{"u:p@host:4222", "***@host:4222"},
		{"nats://us%er:p@ss@host:4222", "nats://***@host:4222"},
		{"redis://:hunter2@redis:6379/0", "redis://***@redis:6379/0"},
		{"rediss://default:pa/ss?w#rd@redis:6380/1", "rediss://***@redis:6380/1"},
		{"https://user:pw@tei.internal/v1", "https://***@tei.internal/v1"},
		{"https://generativelanguage.googleapis.com/v1?key=AIzaSECRET", "https://generativelanguage.googleapis.com/v1?***"},
		{"http://minio:9000", "http://minio:9000"},
		{"dns:///backend:50051", "dns:///backend:50051"},
		{"backend:50051", "backend:50051"},
		{"/run/secrets/key", "/run/secrets/key"},
		{"", ""},
	}
	secrets := []string{"pa55", "s3cr3t", "hunter2", "pa/ss", "w#rd", ":pw", "AIzaSECRET", "us%er", "p@ss"}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := envconf.Redact(tc.in)
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q still holds %q", tc.in, got, s)
				}
			}
		})
	}
}

func TestRedactError(t *testing.T) {
	raw := "redis://user:topsecret@host:port/0"
	_, err := parseURL(raw)
	if err == nil || !strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("url.Parse(%q): got %v, want the error that holds the password (the case RedactError is for)", raw, err)
	}
	for _, e := range []error{err, errors.Join(errors.New("REDIS_URL"), err)} {
		got := envconf.RedactError(e)
		if strings.Contains(got.Error(), "topsecret") {
			t.Errorf("RedactError(%q) = %q, still holds the password", e, got)
		}
		if !strings.Contains(got.Error(), "host:port") {
			t.Errorf("RedactError(%q) = %q, lost the rest", e, got)
		}
	}
	plain := errors.New("plain")
	if got := envconf.RedactError(plain); got != plain {
		t.Errorf("RedactError(plain) = %v, want it unchanged", got)
	}
}

// TestValuesMaskSecrets: neither a secret nor a URL's credentials reach a
// log line, in JSON or text, while other values do.
func TestValuesMaskSecrets(t *testing.T) {
	decl := envconf.Settings{
		envconf.String("NATS_URL", "nats://127.0.0.1:4222", "n"),
		envconf.String("REDIS_URL", "", "r"),
		envconf.List("HOSTS", "h"),
		envconf.Secret("API_KEY", "k"),
		envconf.Secret("UNSET_KEY", "k"),
		envconf.Int("WORKERS", 4, "w"),
		envconf.Duration("WAIT", 30*time.Second, "w"),
	}
	r := envconf.New(env(map[string]string{
		"NATS_URL":  "nats://svc:natspw@n1:4222,nats://svc:natspw@n2:4222",
		"REDIS_URL": "redis://:redispw@redis:6379/0",
		"HOSTS":     "a:b@minio:9000, plain:80",
		"API_KEY":   "sk-apikey",
	}), decl)
	r.String("NATS_URL")
	r.String("REDIS_URL")
	r.List("HOSTS")
	r.Secret("API_KEY")
	r.Secret("UNSET_KEY")
	r.Int("WORKERS")
	r.Duration("WAIT")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", r.Values())
	slog.New(slog.NewTextHandler(&buf, nil)).Info("starting", "config", r.Values())
	out := buf.String()
	for _, secret := range []string{"natspw", "redispw", "a:b", "sk-apikey"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"NATS_URL":"nats://***@n1:4222,nats://***@n2:4222"`, `"REDIS_URL":"redis://***@redis:6379/0"`,
		`"HOSTS":"***@minio:9000,plain:80"`, `"API_KEY":"set"`, `"UNSET_KEY":"unset"`, `"WORKERS":"4"`, `"WAIT":"30s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestWriteHelp(t *testing.T) {
	decl := envconf.Settings{
		envconf.String("REDIS_URL", "redis://localhost:6379/0", "Redis with the `task` list"),
		envconf.Secret("API_KEY", "the key").WithFile("API_KEY_FILE"),
		envconf.String("GATEWAY_ID", "", "this replica's name").Computed("hostname-pid"),
		envconf.Bytes("MAX_FILE_SIZE", 200<<20, strings.Repeat("long words ", 20)),
	}
	var buf bytes.Buffer
	if err := envconf.WriteHelp(&buf, decl); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"REDIS_URL  default: redis://localhost:6379/0", "Redis with the task list",
		"API_KEY or API_KEY_FILE (a file holding it)  (secret, never printed)", "GATEWAY_ID  default: hostname-pid",
		"MAX_FILE_SIZE  default: 200MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 80 {
			t.Errorf("line of %d bytes: %q", len(line), line)
		}
	}
}

func TestTable(t *testing.T) {
	common := envconf.Settings{
		envconf.String("LOG_LEVEL", "info", "`debug` or `info`"),
		envconf.Secret("KEY", "the | key").WithFile("KEY_FILE"),
	}
	bins := []envconf.Binary{
		{Name: "a", Settings: envconf.Join(common, envconf.Settings{envconf.Int("A_WORKERS", 4, "workers")})},
		{Name: "b", Settings: common},
		{Name: "`tool`", Settings: common.WithDefault("LOG_LEVEL", "warn")},
	}
	got, err := envconf.Table(bins, envconf.Alias{Name: "services", Binaries: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "| variable | default | used by | meaning |\n" +
		"|---|---|---|---|\n" +
		"| `LOG_LEVEL` | `info`; `warn` for `tool` | services, `tool` | `debug` or `info` |\n" +
		"| `KEY`, `KEY_FILE` | unset | services, `tool` | the \\| key (secret: logged only as set or unset) |\n" +
		"| `A_WORKERS` | `4` | a | workers |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// Two declarations of one variable that differ in more than the
	// default cannot make one row.
	bins[1].Settings = envconf.Settings{envconf.String("LOG_LEVEL", "info", "how much to log")}
	if _, err := envconf.Table(bins); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL: b declares its usage unlike a") {
		t.Errorf("got %v, want an error naming LOG_LEVEL's usage", err)
	}
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
