package pdfgen

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// These tests check the generated files with real PDF readers: MuPDF
// (mutool) and poppler (pdftotext, pdfinfo). They skip when a tool is
// missing, unless CI is set.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (required when CI is set): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// runTool runs a command and returns stdout; stderr is returned for checks.
func runTool(t *testing.T, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), needTool(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

func writeFile(t *testing.T, d Doc) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, write(t, d), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF) || r == '“' || r == '”' || r == '…'
}

// normText collapses whitespace runs to one space and drops spaces next to
// CJK characters, where extractors legitimately differ (line breaks inside
// Chinese text, spacing around embedded Latin words).
func normText(s string) string {
	rs := []rune(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for i, r := range rs {
		if r == ' ' && ((i > 0 && isCJK(rs[i-1])) || (i+1 < len(rs) && isCJK(rs[i+1]))) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// assertInOrder checks that every block's text appears in got, in order.
func assertInOrder(t *testing.T, tool string, d Doc, got string) {
	t.Helper()
	norm := normText(got)
	pos := 0
	for pi, p := range d.Pages {
		for bi, b := range p.Blocks {
			want := normText(b.Text)
			if want == "" {
				continue
			}
			i := strings.Index(norm[pos:], want)
			if i < 0 {
				near := norm[pos:min(len(norm), pos+300)]
				t.Fatalf("%s: page %d block %d not found (in order):\nwant %q\nnext %q", tool, pi, bi, want, near)
			}
			pos += i + len(want)
		}
	}
}

func extractionDocs() map[string]Doc {
	compressed := Sample(6)
	compressed.Compress = true
	return map[string]Doc{
		"mixed":             mixedDoc(),
		"sample":            Sample(6),
		"compressed sample": compressed,
	}
}

func TestExtractMuPDF(t *testing.T) {
	needTool(t, "mutool")
	for name, d := range extractionDocs() {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, d)
			out, stderr := runTool(t, "mutool", "draw", "-F", "txt", path)
			checkStderr(t, "mutool draw", stderr)
			assertInOrder(t, "mutool", d, out)
		})
	}
}

func TestExtractPoppler(t *testing.T) {
	needTool(t, "pdftotext")
	for name, d := range extractionDocs() {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, d)
			out, stderr := runTool(t, "pdftotext", "-enc", "UTF-8", path, "-")
			checkStderr(t, "pdftotext", stderr)
			assertInOrder(t, "pdftotext", d, out)
			if got := strings.Count(out, "\f"); got != len(d.Pages) {
				t.Errorf("pdftotext: got %d pages, want %d", got, len(d.Pages))
			}
		})
	}
}

func TestPopplerInfo(t *testing.T) {
	needTool(t, "pdfinfo")
	d := mixedDoc()
	out, stderr := runTool(t, "pdfinfo", "-enc", "UTF-8", writeFile(t, d))
	checkStderr(t, "pdfinfo", stderr)
	info := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			info[k] = strings.TrimSpace(v)
		}
	}
	for key, want := range map[string]string{
		"Title":     d.Title,
		"Pages":     strconv.Itoa(len(d.Pages)),
		"Page size": "595 x 842 pts (A4)",
	} {
		if info[key] != want {
			t.Errorf("pdfinfo %s: got %q, want %q", key, info[key], want)
		}
	}
}

// checkStderr fails on reader errors, including a repaired (broken) xref.
func checkStderr(t *testing.T, tool, stderr string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "error") || strings.Contains(l, "repair") || strings.Contains(l, "broken") {
			t.Errorf("%s reported: %s", tool, line)
		}
	}
}

var mutoolOutlineRE = regexp.MustCompile(`^[-+|]\t(\t*)"(.*)"\t#page=(\d+)&zoom=[^,]*,([-\d.]+),([-\d.]+)$`)

func TestOutlineMuPDF(t *testing.T) {
	needTool(t, "mutool")
	for name, d := range map[string]Doc{"mixed": mixedDoc(), "sample": Sample(15)} {
		t.Run(name, func(t *testing.T) {
			out, stderr := runTool(t, "mutool", "show", writeFile(t, d), "outline")
			checkStderr(t, "mutool show", stderr)
			type entry struct {
				depth, page int
				title       string
				y           float64
			}
			var want []entry
			var flat func(items []OutlineItem, depth int)
			flat = func(items []OutlineItem, depth int) {
				for _, it := range items {
					want = append(want, entry{depth, it.Page + 1, it.Title, it.Y})
					flat(it.Children, depth+1)
				}
			}
			flat(d.Outline, 0)
			var got []entry
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				m := mutoolOutlineRE.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("unparsed outline line %q", line)
				}
				page, _ := strconv.Atoi(m[3])
				y, _ := strconv.ParseFloat(m[5], 64)
				got = append(got, entry{len(m[1]), page, m[2], y})
			}
			if len(got) != len(want) {
				t.Fatalf("got %d outline entries, want %d:\n%s", len(got), len(want), out)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.depth != w.depth || g.page != w.page || g.title != w.title || math.Abs(g.y-w.y) > 0.05 {
					t.Errorf("outline entry %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
