package envconf

import (
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Values are the settings a Reader read, as they are logged: secrets as
// set or unset, credentials in URLs masked (Redact), defaults filled in.
// A Config keeps them from its ConfigFromEnv and returns them from its
// LogValue, so the start-up log line lists every setting the binary
// declares, with no second list to keep in step.
type Values struct{ items []item }

type item struct{ name, shown string }

// LogValue is a group of NAME=value, in declaration order.
func (v Values) LogValue() slog.Value {
	attrs := make([]slog.Attr, len(v.items))
	for i, it := range v.items {
		attrs[i] = slog.String(it.name, it.shown)
	}
	return slog.GroupValue(attrs...)
}

// Lookup returns how name is logged, if it was read.
func (v Values) Lookup(name string) (string, bool) {
	for _, it := range v.items {
		if it.name == name {
			return it.shown, true
		}
	}
	return "", false
}

// Redact hides credentials in a value that may hold URLs or addresses:
// in each comma-separated item, the user information (user, password or
// token: nats://***@host:4222, ***@host:4222) and the query of a URL
// (https://host/v1?***), which may carry a key. Other values are
// returned as they are.
func Redact(v string) string {
	if !strings.ContainsAny(v, "@?") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(p string) string {
	scheme, rest := "", p
	if i := strings.Index(p, "://"); i >= 0 {
		scheme, rest = p[:i+3], p[i+3:]
	}
	// A password may hold '/', '?' or '#' unescaped: everything up to the
	// last '@' is user information.
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = "***@" + rest[i+1:]
	}
	if scheme != "" {
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i] + "?***"
		}
	}
	return scheme + rest
}

// RedactError returns err with the URL of a *url.Error in its chain
// (url.Parse puts the whole raw URL, password included, in its message)
// masked by Redact; other errors are returned as they are.
func RedactError(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	if r := Redact(ue.URL); r != ue.URL {
		if ue == err {
			return &url.Error{Op: ue.Op, URL: r, Err: ue.Err}
		}
		msg := strings.ReplaceAll(err.Error(), strconv.Quote(ue.URL), strconv.Quote(r))
		return errors.New(strings.ReplaceAll(msg, ue.URL, r))
	}
	return err
}
