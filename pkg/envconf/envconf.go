// Package envconf reads typed settings from environment variables,
// collecting every bad value into one error so an operator sees all
// mistakes at once instead of one per restart.
package envconf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Getenv looks a variable up; os.Getenv fits.
type Getenv func(string) string

// Reader reads variables and remembers what was wrong.
type Reader struct {
	get  Getenv
	errs []error
}

// New returns a Reader over getenv.
func New(getenv Getenv) *Reader { return &Reader{get: getenv} }

// String returns the variable, or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.get(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an int.
func (r *Reader) Int(name string, def int) int {
	v := strings.TrimSpace(r.get(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not an integer", name, v))
		return def
	}
	return n
}

// Bytes returns the variable as a byte count; it accepts KiB/MiB/GiB suffixes.
func (r *Reader) Bytes(name string, def int64) int64 {
	v := strings.TrimSpace(r.get(name))
	if v == "" {
		return def
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			mult, v = m, strings.TrimSpace(strings.TrimSuffix(v, suffix))
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a size (e.g. 200MiB)", name, r.get(name)))
		return def
	}
	return n * mult
}

// Duration returns the variable as a time.Duration ("30s", "5m").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a duration (e.g. 30s)", name, v))
		return def
	}
	return d
}

// Bool returns the variable as a bool.
func (r *Reader) Bool(name string, def bool) bool {
	v := strings.TrimSpace(r.get(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a boolean", name, v))
		return def
	}
	return b
}

// Err returns every problem met so far, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Mask hides a secret for logging: it keeps only whether it is set.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}
