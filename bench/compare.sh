#!/usr/bin/env bash
# bench/compare.sh — the parser's chunks against MuPDF's own output.
#
# For every PDF of Debian's manuals (r-doc-pdf, octave-doc, gnuplot-doc,
# installed when missing) plus any PDF (or folder of PDFs) given, prints
# services/parser/cmd/pdfcompare's line: character and word recall, extra words
# against `mutool draw -F txt`, per-page recall, and how many titles of
# `mutool show <file> outline` name a chapter of some chunk. Compressed
# manuals (*.pdf.gz under /usr/share/doc) are unpacked into a temp dir.
#
# Usage: bench/compare.sh [file.pdf|folder ...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
need_debian_pdfs

files=()
while IFS= read -r -d '' f; do
	case $f in
	*.gz) gunzip -c "$f" >"$tmp/$(basename "$f" .gz)" && files+=("$tmp/$(basename "$f" .gz)") ;;
	*) files+=("$f") ;;
	esac
done < <(find /usr/share/R/doc/manual /usr/share/doc -xdev \( -name '*.pdf' -o -name '*.pdf.gz' \) -size +1k -print0 2>/dev/null | sort -z)
for a in "$@"; do
	if [ -d "$a" ]; then
		while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$a" -name '*.pdf' -print0 | sort -z)
	else
		files+=("$a")
	fi
done

(cd "$root/services/parser" && go build -o "$tmp/pdfcompare" ./cmd/pdfcompare)
"$tmp/pdfcompare" "${files[@]}"
