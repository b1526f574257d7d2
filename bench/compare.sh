#!/usr/bin/env bash
# bench/compare.sh — the parser's chunks against MuPDF's own output.
#
# For every PDF of Debian's manuals (r-doc-pdf, octave-doc, gnuplot-doc,
# installed when missing) plus any PDF (or folder of PDFs) given, prints
# services/parser/cmd/pdfcompare's line: word recall and extra words
# against `mutool draw -F txt`, per-page recall, and how many titles of
# `mutool show <file> outline` name a chapter of some chunk. Compressed
# manuals (*.pdf.gz under /usr/share/doc) are unpacked into a temp dir.
#
# Usage: bench/compare.sh [file.pdf|folder ...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need=()
[ -e /usr/share/R/doc/manual/fullrefman.pdf ] || need+=(r-doc-pdf)
[ -e /usr/share/doc/octave/octave.pdf ] || [ -e /usr/share/doc/octave/octave.pdf.gz ] || need+=(octave-doc)
[ -e /usr/share/doc/gnuplot/gnuplot.pdf ] || [ -e /usr/share/doc/gnuplot-doc/gnuplot.pdf ] || need+=(gnuplot-doc)
command -v mutool >/dev/null || need+=(mupdf-tools)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

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
