// Package envconf describes and reads the environment variables pdfpipe's
// binaries are configured with. Each setting is declared once, as a
// Setting in its package's Settings list (name, kind, default, secret or
// not, one line of usage); from that one declaration a Reader reads it
// (collecting every bad value into one error, so an operator sees all
// mistakes at once instead of one per restart), Values logs what was read
// with secrets and URL credentials masked, WriteHelp lists it under a
// binary's -h and Table writes the README's configuration table.
package envconf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Getenv looks a variable up; os.Getenv fits.
type Getenv func(string) string

// Reader reads declared settings and remembers what was wrong and what
// was read. Reading a variable its declarations do not name, or with the
// wrong method for its kind, is an error too: every variable a binary
// reads is declared, so its -h and the README list it.
type Reader struct {
	get  Getenv
	decl Settings
	errs []error
	read map[string]string // name → value as logged
}

// New returns a Reader of the settings decl declares, from getenv.
func New(getenv Getenv, decl ...Settings) *Reader {
	r := &Reader{get: getenv, decl: Join(decl...), read: map[string]string{}}
	if err := r.decl.Check(); err != nil {
		r.errs = append(r.errs, fmt.Errorf("envconf: bad declarations: %w", err))
	}
	return r
}

// Fail records a problem the caller found with a value it read, so that
// Err reports it with the others. It must not contain a secret.
func (r *Reader) Fail(err error) { r.errs = append(r.errs, err) }

// Err returns every problem met so far, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Values are the settings read so far, for logging.
func (r *Reader) Values() Values {
	var v Values
	for _, s := range r.decl {
		if shown, ok := r.read[s.Name]; ok {
			v.items = append(v.items, item{name: s.Name, shown: shown})
		}
	}
	return v
}

// IsSet says whether name (or its file variable) is set and not blank.
func (r *Reader) IsSet(name string) bool {
	s, ok := r.declared(name)
	if !ok {
		return false
	}
	return strings.TrimSpace(r.get(s.Name)) != "" || (s.FileVar != "" && strings.TrimSpace(r.get(s.FileVar)) != "")
}

// String returns a text setting, or its default when unset or blank.
func (r *Reader) String(name string) string {
	s, v, ok := r.text(name, KindString, false)
	if !ok {
		return ""
	}
	if v == "" {
		v = s.Default
	}
	r.note(s, v)
	return v
}

// StringOr returns a text setting declared with a computed default, or
// def when unset or blank.
func (r *Reader) StringOr(name, def string) string {
	s, v, ok := r.text(name, KindString, true)
	if !ok {
		return def
	}
	if v == "" {
		v = def
	}
	r.note(s, v)
	return v
}

// Int returns an integer setting.
func (r *Reader) Int(name string) int {
	s, v, ok := r.text(name, KindInt, false)
	if !ok {
		return 0
	}
	return r.int(s, v, s.Default)
}

// IntOr returns an integer setting declared with a computed default, or
// def when unset or blank.
func (r *Reader) IntOr(name string, def int) int {
	s, v, ok := r.text(name, KindInt, true)
	if !ok {
		return def
	}
	return r.int(s, v, strconv.Itoa(def))
}

func (r *Reader) int(s Setting, v, def string) int {
	if v == "" {
		v = def
	}
	n, err := parseInt(v)
	if err != nil {
		r.bad(s, v, err)
		n, _ = parseInt(def)
	}
	r.note(s, strconv.Itoa(n))
	return n
}

// Bytes returns a size setting: a byte count with an optional KiB, MiB or
// GiB suffix.
func (r *Reader) Bytes(name string) int64 {
	s, v, ok := r.text(name, KindBytes, false)
	if !ok {
		return 0
	}
	if v == "" {
		v = s.Default
	}
	n, err := parseBytes(v)
	if err != nil {
		r.bad(s, v, err)
		n, _ = parseBytes(s.Default)
	}
	r.note(s, FormatBytes(n))
	return n
}

// Duration returns a duration setting ("30s", "5m").
func (r *Reader) Duration(name string) time.Duration {
	s, v, ok := r.text(name, KindDuration, false)
	if !ok {
		return 0
	}
	if v == "" {
		v = s.Default
	}
	d, err := parseDuration(v)
	if err != nil {
		r.bad(s, v, err)
		d, _ = parseDuration(s.Default)
	}
	r.note(s, FormatDuration(d))
	return d
}

// Bool returns a boolean setting.
func (r *Reader) Bool(name string) bool {
	s, v, ok := r.text(name, KindBool, false)
	if !ok {
		return false
	}
	if v == "" {
		v = s.Default
	}
	b, err := parseBool(v)
	if err != nil {
		r.bad(s, v, err)
		b, _ = parseBool(s.Default)
	}
	r.note(s, strconv.FormatBool(b))
	return b
}

// List returns a comma-separated setting's items, trimmed, blank ones
// dropped.
func (r *Reader) List(name string) []string {
	s, v, ok := r.text(name, KindList, false)
	if !ok {
		return nil
	}
	if v == "" {
		v = s.Default
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	r.note(s, strings.Join(out, ","))
	return out
}

// Secret returns a secret setting: the variable, or the trimmed content of
// the file its file variable names. Neither the value nor the file's
// content is ever logged or put in an error; both variables set is an
// error.
func (r *Reader) Secret(name string) string {
	s, ok := r.declared(name)
	if !ok {
		return ""
	}
	if !s.Secret {
		r.errs = append(r.errs, fmt.Errorf("envconf: %s is not declared secret: read it with %s", name, method(s.Kind)))
		return ""
	}
	v := strings.TrimSpace(r.get(s.Name))
	shown := "set"
	if s.FileVar != "" {
		if path := strings.TrimSpace(r.get(s.FileVar)); path != "" {
			if v != "" {
				r.errs = append(r.errs, fmt.Errorf("%s and %s: set only one", s.Name, s.FileVar))
				r.read[s.Name] = "set twice"
				return ""
			}
			b, err := os.ReadFile(path)
			if err != nil {
				r.errs = append(r.errs, fmt.Errorf("%s: %w", s.FileVar, err))
				r.read[s.Name] = "unreadable file " + path
				return ""
			}
			v, shown = strings.TrimSpace(string(b)), "set from file "+path
			if v == "" {
				// A mounted secret that came out empty is a broken mount,
				// not "no secret": going on without it would store keys
				// unsealed or serve without authentication.
				r.errs = append(r.errs, fmt.Errorf("%s: file %s is empty", s.FileVar, path))
				r.read[s.Name] = "empty file " + path
				return ""
			}
		}
	}
	if v == "" {
		shown = "unset"
	}
	r.read[s.Name] = shown
	return v
}

// declared returns name's declaration, recording an error when there is
// none.
func (r *Reader) declared(name string) (Setting, bool) {
	s, ok := r.decl.Lookup(name)
	if !ok || s.Name != name {
		r.errs = append(r.errs, fmt.Errorf("envconf: %s is read but not declared: add it to its package's Settings", name))
		return Setting{}, false
	}
	return s, true
}

// text returns name's declaration and trimmed value, checking that it is
// read as declared: the kind, a secret only through Secret, a computed
// default only through the …Or methods.
func (r *Reader) text(name string, kind Kind, computed bool) (Setting, string, bool) {
	s, ok := r.declared(name)
	if !ok {
		return s, "", false
	}
	switch {
	case s.Secret:
		r.errs = append(r.errs, fmt.Errorf("envconf: %s is secret: read it with Secret", name))
		return s, "", false
	case s.Kind != kind:
		r.errs = append(r.errs, fmt.Errorf("envconf: %s is declared %s: read it with %s", name, s.Kind, method(s.Kind)))
		return s, "", false
	case computed && s.DefaultText == "":
		r.errs = append(r.errs, fmt.Errorf("envconf: %s has a declared default (%q): read it without one", name, s.Default))
		return s, "", false
	case !computed && s.DefaultText != "":
		r.errs = append(r.errs, fmt.Errorf("envconf: %s has a computed default (%s): read it with %sOr", name, s.DefaultText, method(s.Kind)))
		return s, "", false
	}
	return s, strings.TrimSpace(r.get(name)), true
}

// note remembers the value read, masked, for Values.
func (r *Reader) note(s Setting, v string) { r.read[s.Name] = Redact(v) }

// bad records an unusable value; the value is masked like in logs.
func (r *Reader) bad(s Setting, v string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %w", s.Name, Redact(v), err))
}

func method(k Kind) string {
	switch k {
	case KindInt:
		return "Int"
	case KindBytes:
		return "Bytes"
	case KindDuration:
		return "Duration"
	case KindBool:
		return "Bool"
	case KindList:
		return "List"
	}
	return "String"
}

// parse checks that v is a valid value of s's kind.
func parse(s Setting, v string) error {
	var err error
	switch s.Kind {
	case KindInt:
		_, err = parseInt(v)
	case KindBytes:
		_, err = parseBytes(v)
	case KindDuration:
		_, err = parseDuration(v)
	case KindBool:
		_, err = parseBool(v)
	}
	return err
}

var (
	errInt      = errors.New("not an integer")
	errBytes    = errors.New("not a size (e.g. 200MiB)")
	errDuration = errors.New("not a duration (e.g. 30s)")
	errBool     = errors.New("not a boolean")
)

func parseInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errInt
	}
	return n, nil
}

func parseBytes(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			mult, v = u.size, strings.TrimSpace(strings.TrimSuffix(v, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, errBytes
	}
	return n * mult, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errBool
	}
	return b, nil
}
