package envconf

import (
	"fmt"
	"slices"
	"strings"
)

// Binary is one program, or one command of a program, and every setting
// it reads.
type Binary struct {
	// Name is how the README's "used by" column names it: gateway,
	// `pdfpipe run`.
	Name     string
	Settings Settings
}

// Alias names a set of binaries in the "used by" column: a variable every
// one of them reads says Name instead of listing them.
type Alias struct {
	Name     string
	Binaries []string
}

// Table is the README's configuration table: one row per variable, in
// the order the binaries first declare them, saying its default, which
// binaries read it and what it does. A variable several binaries read
// must be declared alike (kind, secret, file variable, usage); its
// default may differ between binaries, and its row then says which has
// which.
func Table(bins []Binary, aliases ...Alias) (string, error) {
	type row struct {
		s     Setting
		users []string
		defs  []string // per user
	}
	var rows []*row
	byName := map[string]*row{}
	var errs []string
	for _, b := range bins {
		if err := b.Settings.Check(); err != nil {
			return "", fmt.Errorf("%s: %w", b.Name, err)
		}
		for _, s := range b.Settings {
			r := byName[s.Name]
			if r == nil {
				r = &row{s: s}
				byName[s.Name] = r
				rows = append(rows, r)
			} else if d := differs(r.s, s); d != "" {
				errs = append(errs, fmt.Sprintf("%s: %s declares its %s unlike %s", s.Name, b.Name, d, r.users[0]))
			}
			r.users = append(r.users, b.Name)
			r.defs = append(r.defs, showDefault(s))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("settings declared differently: %s", strings.Join(errs, "; "))
	}
	var b strings.Builder
	b.WriteString("| variable | default | used by | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		name := "`" + r.s.Name + "`"
		if r.s.FileVar != "" {
			name += ", `" + r.s.FileVar + "`"
		}
		usage := r.s.Usage
		if r.s.Secret {
			usage += " (secret: logged only as set or unset)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, cell(defaults(r.users, r.defs)), cell(usedBy(r.users, aliases)), cell(usage))
	}
	return b.String(), nil
}

// differs names what of a and b, two declarations of one variable, is not
// the same apart from the default.
func differs(a, b Setting) string {
	switch {
	case a.Kind != b.Kind:
		return "kind"
	case a.Secret != b.Secret:
		return "secrecy"
	case a.FileVar != b.FileVar:
		return "file variable"
	case a.Usage != b.Usage:
		return "usage"
	}
	return ""
}

func showDefault(s Setting) string {
	switch {
	case s.DefaultText != "":
		return s.DefaultText
	case s.Default == "":
		return "unset"
	}
	return "`" + s.Default + "`"
}

// defaults is the default cell: the default most binaries have, then the
// others with the binaries that have them.
func defaults(users, defs []string) string {
	var order []string
	who := map[string][]string{}
	for i, d := range defs {
		if _, ok := who[d]; !ok {
			order = append(order, d)
		}
		who[d] = append(who[d], users[i])
	}
	if len(order) == 1 {
		return order[0]
	}
	main := order[0]
	for _, d := range order[1:] {
		if len(who[d]) > len(who[main]) {
			main = d
		}
	}
	out := main
	for _, d := range order {
		if d != main {
			out += "; " + d + " for " + strings.Join(who[d], ", ")
		}
	}
	return out
}

// usedBy lists users, an alias standing for all of its binaries.
func usedBy(users []string, aliases []Alias) string {
	var out []string
	taken := map[string]bool{}
	for _, a := range aliases {
		all := len(a.Binaries) > 0
		for _, b := range a.Binaries {
			all = all && slices.Contains(users, b)
		}
		if all {
			out = append(out, a.Name)
			for _, b := range a.Binaries {
				taken[b] = true
			}
		}
	}
	for _, u := range users {
		if !taken[u] {
			out = append(out, u)
		}
	}
	return strings.Join(out, ", ")
}

// cell escapes the table's column separator.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\|`, "|"), "|", `\|`)
}
