package envconf

import (
	"io"
	"strings"
)

// WriteHelp lists settings for a binary's -h: each variable with its
// default, whether it is secret, and its usage. It shows declarations
// only, never a value from the environment.
func WriteHelp(w io.Writer, settings Settings) error {
	var b strings.Builder
	b.WriteString("Environment (unset or blank takes the default):\n")
	for _, s := range settings {
		b.WriteString(HelpLine(s) + "\n")
		for _, line := range wrap(plain(s.Usage), 74) {
			b.WriteString("      " + line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// HelpLine is the line WriteHelp starts s's entry with: its name, its
// file variable, and its default or that it is secret.
func HelpLine(s Setting) string {
	line := "  " + s.Name
	if s.FileVar != "" {
		line += " or " + s.FileVar + " (a file holding it)"
	}
	switch def := s.DefaultShown(); {
	case s.Secret:
		line += "  (secret, never printed)"
	case def != "":
		line += "  default: " + plain(def)
	}
	return line
}

// plain drops Markdown's backticks.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// wrap breaks s into lines of at most width bytes at spaces (a longer word
// stands alone).
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
