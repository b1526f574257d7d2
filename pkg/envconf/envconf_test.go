package envconf_test

import (
	"errors"
	"math"
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
			r := envconf.New(env(map[string]string{"X": tt.val}))
			if got := r.String("X", tt.def); got != tt.want {
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
			r := envconf.New(env(map[string]string{"N": tt.val}))
			if got := r.Int("N", tt.def); got != tt.want {
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
			r := envconf.New(env(map[string]string{"B": tt.val}))
			if got := r.Bytes("B", tt.def); got != tt.want {
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
			r := envconf.New(env(map[string]string{"D": tt.val}))
			if got := r.Duration("D", tt.def); got != tt.want {
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
			r := envconf.New(env(map[string]string{"F": tt.val}))
			if got := r.Bool("F", tt.def); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			checkErr(t, r.Err(), tt.bad, "F")
		})
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
	r := envconf.New(env(map[string]string{
		"WORKERS":  "many",
		"MAX_SIZE": "10MB",
		"TIMEOUT":  "30",
		"DEBUG":    "maybe",
		"NAME":     "pdfpipe",
		"GOOD_INT": "3",
	}))
	if got, want := r.Int("WORKERS", 4), 4; got != want {
		t.Errorf("WORKERS: got %d, want default %d", got, want)
	}
	if got, want := r.Bytes("MAX_SIZE", 1<<20), int64(1<<20); got != want {
		t.Errorf("MAX_SIZE: got %d, want default %d", got, want)
	}
	if got, want := r.Duration("TIMEOUT", time.Minute), time.Minute; got != want {
		t.Errorf("TIMEOUT: got %v, want default %v", got, want)
	}
	if got, want := r.Bool("DEBUG", false), false; got != want {
		t.Errorf("DEBUG: got %v, want default %v", got, want)
	}
	if got, want := r.String("NAME", "x"), "pdfpipe"; got != want {
		t.Errorf("NAME: got %q, want %q", got, want)
	}
	if got, want := r.Int("GOOD_INT", 0), 3; got != want {
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
	r := envconf.New(env(nil))
	r.String("A", "a")
	r.Int("B", 1)
	r.Bytes("C", 1)
	r.Duration("D", 1)
	r.Bool("E", true)
	if err := r.Err(); err != nil {
		t.Errorf("Err with nothing set: got %v, want nil", err)
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"sk-very-secret-123", "***"},
		{"x", "***"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := envconf.Mask(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.in != "" && strings.Contains(got, tt.in) {
				t.Errorf("got %q, which reveals the secret", got)
			}
		})
	}
}
