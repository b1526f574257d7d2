package envconf

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Kind is what a setting's value is and how it is spelt.
type Kind uint8

// Kinds of settings.
const (
	KindString   Kind = iota + 1 // any text
	KindInt                      // a decimal integer
	KindBytes                    // a byte count: 1024, 64KiB, 200MiB, 2GiB
	KindDuration                 // a Go duration: 30s, 5m, 72h
	KindBool                     // true or false (1, 0, t, f, TRUE… as strconv.ParseBool)
	KindList                     // comma-separated items; blank items are dropped
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "integer"
	case KindBytes:
		return "size"
	case KindDuration:
		return "duration"
	case KindBool:
		return "bool"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Setting is the one description of an environment variable: the Reader
// reads it, Values logs it, WriteHelp lists it under -h and Table makes
// the README's row of it. Declare a package's settings in one Settings
// list beside the code that reads them (see servicemain.Settings).
type Setting struct {
	Name string
	Kind Kind
	// Default is the value taken when the variable is unset or blank,
	// spelt as the variable would be ("30s", "200MiB", "true"); "" is
	// none.
	Default string
	// DefaultText, when set, says what a default the reading code works
	// out at run time is ("hostname-pid"); Default is then "". Such a
	// setting is read with StringOr or IntOr.
	DefaultText string
	// Secret settings are never shown: logs say only set or unset, errors
	// never hold the value. Read them with Secret.
	Secret bool
	// FileVar, when set, is a second variable naming a file whose content
	// is the value (a mounted secret); at most one of the two may be set.
	FileVar string
	// Usage says what the setting does, in one line of Markdown.
	Usage string
}

// String declares a text setting.
func String(name, def, usage string) Setting {
	return Setting{Name: name, Kind: KindString, Default: def, Usage: usage}
}

// Int declares an integer setting.
func Int(name string, def int, usage string) Setting {
	return Setting{Name: name, Kind: KindInt, Default: strconv.Itoa(def), Usage: usage}
}

// Bytes declares a size setting (KiB, MiB and GiB suffixes accepted).
func Bytes(name string, def int64, usage string) Setting {
	return Setting{Name: name, Kind: KindBytes, Default: FormatBytes(def), Usage: usage}
}

// Duration declares a duration setting.
func Duration(name string, def time.Duration, usage string) Setting {
	return Setting{Name: name, Kind: KindDuration, Default: FormatDuration(def), Usage: usage}
}

// Bool declares a boolean setting.
func Bool(name string, def bool, usage string) Setting {
	return Setting{Name: name, Kind: KindBool, Default: strconv.FormatBool(def), Usage: usage}
}

// List declares a comma-separated setting with no default.
func List(name, usage string) Setting {
	return Setting{Name: name, Kind: KindList, Usage: usage}
}

// Secret declares a secret text setting with no default.
func Secret(name, usage string) Setting {
	return Setting{Name: name, Kind: KindString, Secret: true, Usage: usage}
}

// Computed returns s with a default the reading code works out (text
// says what it is) instead of a declared one.
func (s Setting) Computed(text string) Setting {
	s.Default, s.DefaultText = "", text
	return s
}

// WithFile returns s with fileVar as the variable naming a file that holds
// the value instead.
func (s Setting) WithFile(fileVar string) Setting {
	s.FileVar = fileVar
	return s
}

// DefaultShown is the default as help and the README show it: the
// declared value, the computed default's description, or "".
func (s Setting) DefaultShown() string {
	if s.DefaultText != "" {
		return s.DefaultText
	}
	return s.Default
}

// Settings is a list of declarations, in the order help and logs show
// them.
type Settings []Setting

// Join concatenates lists into a new one, keeping the first of
// declarations that are exactly alike (one Setting shared by two
// packages' lists, as EMBEDDING_DIMENSION is).
func Join(lists ...Settings) Settings {
	var out Settings
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Lookup returns the declaration of name, which may also be a FileVar.
func (l Settings) Lookup(name string) (Setting, bool) {
	for _, s := range l {
		if s.Name == name || (s.FileVar != "" && s.FileVar == name) {
			return s, true
		}
	}
	return Setting{}, false
}

// Names are every variable the list declares, file variables included.
func (l Settings) Names() []string {
	var out []string
	for _, s := range l {
		out = append(out, s.Name)
		if s.FileVar != "" {
			out = append(out, s.FileVar)
		}
	}
	return out
}

// WithDefault returns a copy of l in which name's default is def: a
// binary whose default differs (`pdfpipe run` logs at warn). It panics
// when l does not declare name, as regexp.MustCompile does on a bad
// constant: declarations are constants.
func (l Settings) WithDefault(name, def string) Settings {
	out := Join(l)
	for i := range out {
		if out[i].Name == name {
			out[i].Default, out[i].DefaultText = def, ""
			return out
		}
	}
	panic("envconf: WithDefault: " + name + " is not declared")
}

// WithComputed returns a copy of l in which name's default is worked out
// by the reading code, described by text. It panics when l does not
// declare name.
func (l Settings) WithComputed(name, text string) Settings {
	out := Join(l)
	for i := range out {
		if out[i].Name == name {
			out[i] = out[i].Computed(text)
			return out
		}
	}
	panic("envconf: WithComputed: " + name + " is not declared")
}

// Without returns a copy of l without the named settings. It panics when
// l does not declare one of them.
func (l Settings) Without(names ...string) Settings {
	out := Join(l)
	for _, n := range names {
		i := -1
		for j, s := range out {
			if s.Name == n {
				i = j
			}
		}
		if i < 0 {
			panic("envconf: Without: " + n + " is not declared")
		}
		out = append(out[:i], out[i+1:]...)
	}
	return out
}

var validName = regexp.MustCompile(`^[A-Z]([A-Z0-9_]*[A-Z0-9])?$`)

// Check reports what is wrong with the declarations: names that are not
// UPPER_SNAKE or declared twice, defaults that do not parse as their
// kind, secrets with a default, a missing kind or usage.
func (l Settings) Check() error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range l {
		names := []string{s.Name}
		if s.FileVar != "" {
			names = append(names, s.FileVar)
		}
		for _, n := range names {
			if !validName.MatchString(n) {
				errs = append(errs, fmt.Errorf("%q: not an UPPER_SNAKE variable name", n))
			}
			if seen[n] {
				errs = append(errs, fmt.Errorf("%s: declared twice", n))
			}
			seen[n] = true
		}
		if s.Usage == "" {
			errs = append(errs, fmt.Errorf("%s: no usage", s.Name))
		}
		if s.Kind < KindString || s.Kind > KindList {
			errs = append(errs, fmt.Errorf("%s: no kind", s.Name))
		}
		if s.Secret && (s.Default != "" || s.Kind != KindString) {
			errs = append(errs, fmt.Errorf("%s: a secret is a string without a default", s.Name))
		}
		if s.Default != "" && s.DefaultText != "" {
			errs = append(errs, fmt.Errorf("%s: both a default and a computed one", s.Name))
		}
		if s.DefaultText != "" && s.Kind != KindString && s.Kind != KindInt {
			errs = append(errs, fmt.Errorf("%s: only string and integer settings may have a computed default", s.Name))
		}
		if s.Default != "" {
			if err := parse(s, s.Default); err != nil {
				errs = append(errs, fmt.Errorf("%s: default %q: %w", s.Name, s.Default, err))
			}
		}
	}
	return errors.Join(errs...)
}

// FormatBytes spells n as a size setting would: the largest of GiB, MiB
// and KiB that divides it, else plain bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatDuration spells d in its largest whole unit (72h, 10m, 30s,
// 10ms), else as time.Duration.String does.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d%u.size == 0 {
			return strconv.FormatInt(int64(d/u.size), 10) + u.name
		}
	}
	return d.String()
}
