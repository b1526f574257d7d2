// Command pdfcompare checks the parser's chunks against MuPDF's own output
// (the mutool command) for each PDF given, and prints a line per file:
//
//   - char recall: of the non-space characters `mutool draw -F txt`
//     prints (U+FFFD and private-use characters aside), the share the
//     chunks hold (as a multiset; CJK text, written without spaces, is
//     measured by it);
//   - word recall: of the words `mutool draw -F txt` prints, the share the
//     chunks hold (as a multiset, so a dropped repeat counts);
//   - extra: the share of the chunks' words mutool never prints (garbage,
//     bad joins);
//   - page recall: per page, the share of mutool's words on that page
//     found in the chunks that span it, averaged over pages with text (a
//     chunk on the wrong page lowers it);
//   - outline: of the titles `mutool show <file> outline` lists, how many
//     name a chapter of some chunk (a chapter path ends with the title).
//
// Headers and footers the parser removes count as missing words, and words
// hyphenated across lines count as missing on both sides, so recall a few
// points under 100 % is expected. A file the parser fails on prints its
// error. bench/compare.sh runs it over Debian's manuals and any folder.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/pdfpipe/pdfpipe/services/parser/pdftext"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/mupdf"
	"github.com/pdfpipe/pdfpipe/services/parser/pdftext/pdfium"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pdfcompare", flag.ContinueOnError)
	mutool := fs.String("mutool", "mutool", "the mutool command")
	password := fs.String("password", "", "password for encrypted files")
	engineName := fs.String("engine", "mupdf", "the parser's engine: mupdf or pdfium")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var eng pdftext.Engine
	switch *engineName {
	case "mupdf":
		eng = mupdf.New()
	case "pdfium":
		pe := pdfium.New(pdfium.Config{})
		defer pe.Close()
		if err := pe.Init(); err != nil {
			return err
		}
		eng = pe
	default:
		return fmt.Errorf("-engine %q: want mupdf or pdfium", *engineName)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: pdfcompare [flags] file.pdf...")
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%-32s %6s %7s %6s %8s %7s %7s %8s %9s %7s\n", "file", "pages", "chunks", "char%", "recall%", "extra%", "page%", "outline", "chapters", "secs")
	for _, path := range fs.Args() {
		name := filepath.Base(path)
		if len(name) > 32 {
			name = name[:29] + "..."
		}
		r, err := compare(ctx, eng, *mutool, path, *password)
		if err != nil {
			fmt.Fprintf(w, "%-32s %s\n", name, oneLine(err.Error()))
			w.Flush()
			continue
		}
		outline := "-"
		if r.titles > 0 {
			outline = fmt.Sprintf("%d/%d", r.titlesFound, r.titles)
		}
		fmt.Fprintf(w, "%-32s %6d %7d %6.1f %8.1f %7.1f %7.1f %8s %9d %7.2f\n", name, r.pages, r.chunks,
			100*r.charRecall, 100*r.recall, 100*r.extra, 100*r.pageRecall, outline, r.chapters, r.seconds)
		w.Flush()
	}
	return nil
}

type result struct {
	pages, chunks, chapters int
	charRecall              float64
	recall, extra           float64
	pageRecall              float64
	titles, titlesFound     int
	seconds                 float64
}

func compare(ctx context.Context, eng pdftext.Engine, mutool, path, password string) (result, error) {
	var r result
	var chunks []pdftext.Chunk
	start := time.Now()
	info, err := pdftext.Extract(ctx, eng, path, pdftext.Options{Password: password}, func(c pdftext.Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	r.seconds = time.Since(start).Seconds()
	if err != nil {
		return r, err
	}
	r.pages, r.chunks, r.chapters = info.Pages, info.Chunks, info.Chapters

	// One file per page: splitting mutool's single output at form feeds
	// goes wrong when a page's text holds one.
	dir, err := os.MkdirTemp("", "pdfcompare-*")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	args := []string{"draw", "-q", "-F", "txt", "-o", filepath.Join(dir, "p%d.txt")}
	if password != "" {
		args = append(args, "-p", password)
	}
	if out, err := exec.CommandContext(ctx, mutool, append(args, path)...).CombinedOutput(); err != nil {
		return r, fmt.Errorf("mutool draw: %w: %s", err, bytes.TrimSpace(out))
	}
	mutoolPages := make([][]byte, info.Pages)
	for i := range mutoolPages {
		mutoolPages[i], _ = os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.txt", i+1))) // missing: no text
	}

	ref := bag{}
	for _, p := range mutoolPages {
		ref.addText(string(p))
	}
	ours := bag{}
	pageWords := make([]map[string]bool, info.Pages+1)
	for _, c := range chunks {
		ours.addText(c.Text)
		for p := max(c.PageStart, 1); p <= min(c.PageEnd, info.Pages); p++ {
			if pageWords[p] == nil {
				pageWords[p] = map[string]bool{}
			}
			for _, w := range words(c.Text) {
				pageWords[p][w] = true
			}
		}
	}
	refChars, ourChars := bag{}, bag{}
	for _, p := range mutoolPages {
		refChars.addChars(string(p))
	}
	for _, c := range chunks {
		ourChars.addChars(c.Text)
	}
	r.charRecall = refChars.coveredBy(ourChars)
	r.recall = ref.coveredBy(ours)
	r.extra = 1 - ours.coveredBy(ref.asSet())

	var sum float64
	n := 0
	for i, p := range mutoolPages {
		ws := words(string(p))
		if len(ws) == 0 || i+1 > info.Pages {
			continue
		}
		found := 0
		for _, w := range ws {
			if pageWords[i+1][w] {
				found++
			}
		}
		sum += float64(found) / float64(len(ws))
		n++
	}
	if n > 0 {
		r.pageRecall = sum / float64(n)
	}

	args = []string{"show"}
	if password != "" {
		args = append(args, "-p", password)
	}
	out, err := exec.CommandContext(ctx, mutool, append(args, path, "outline")...).Output()
	if err == nil {
		chapters := map[string]bool{}
		for _, c := range chunks {
			parts := strings.Split(c.Chapter, " › ")
			chapters[normTitle(parts[len(parts)-1])] = true
		}
		for _, line := range strings.Split(string(out), "\n") {
			a, b := strings.IndexByte(line, '"'), strings.LastIndexByte(line, '"')
			if a < 0 || b <= a {
				continue
			}
			title := normTitle(unescape(line[a+1 : b]))
			if title == "" {
				continue
			}
			r.titles++
			if chapters[title] {
				r.titlesFound++
			}
		}
	}
	return r, nil
}

// bag is a multiset of words.
type bag map[string]int

func (b bag) addText(s string) {
	for _, w := range words(s) {
		b[w]++
	}
}

// addChars adds the non-space characters of s, lower-cased, leaving out
// U+FFFD and private-use characters: glyphs without a Unicode mapping are
// not text, and the parser drops lines made of them.
func (b bag) addChars(s string) {
	for _, r := range s {
		if !unicode.IsSpace(r) && r != unicode.ReplacementChar && !unicode.Is(unicode.Co, r) {
			b[string(unicode.ToLower(r))]++
		}
	}
}

func (b bag) asSet() bag {
	s := bag{}
	for w := range b {
		s[w] = 1 << 30
	}
	return s
}

// coveredBy is the share of b's words (with repeats) that other holds.
func (b bag) coveredBy(other bag) float64 {
	total, found := 0, 0
	for w, n := range b {
		total += n
		found += min(n, other[w])
	}
	if total == 0 {
		return 1
	}
	return float64(found) / float64(total)
}

// words splits s into lower-case runs of letters and digits; each CJK
// character is a word of its own.
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, string(cur))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r):
			flush()
			out = append(out, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur = append(cur, unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return out
}

// unescape undoes mutool's escaping of quotes and backslashes in titles.
func unescape(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(s)
}

func normTitle(s string) string { return strings.Join(strings.Fields(s), " ") }

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
