#!/usr/bin/env bash
# scripts/sanitize.sh — the MuPDF shim of services/parser/pdftext/mupdf under
# AddressSanitizer and UndefinedBehaviorSanitizer, over hostile input.
#
# Compiles the shim (mupdf_shim.c, its allocator) and a small C driver
# (mupdf/testdata/sanitize/driver.c, which reads a PDF as pdftext does:
# open, outline and targets, every page's layout, trims) with
# -fsanitize=address,undefined against the static MuPDF that go-fitz
# bundles, then runs it over every fixture (FuzzExtract's seeds: pdfgen
# documents and damaged copies, and the inputs kept under
# testdata/fuzz/FuzzExtract) and over mutants of them (random PDF-token
# edits, flipped bytes, cut runs) until the time is up. A mutant that
# faults is kept in the output directory and the run goes on after it.
#
# Usage: scripts/sanitize.sh [seconds] [outdir]   (default 120 s, a temp dir)
#   ALLOCATOR=pool  the pool allocator (pt_pool.c) instead of malloc
#   LEAKS=1         count leaks as faults (LeakSanitizer)
#   EXTRA_PDFS=dir  fixtures from dir too (for example Debian's manuals)
# Prints: fixtures run, mutants run, faults found (and hangs: a batch of
# mutants past 300 s); exits 1 on a fault.
set -euo pipefail

secs=${1:-120}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$(mktemp -d)}
mkdir -p "$out/seeds" "$out/faults"
pkg=$root/services/parser/pdftext/mupdf

fitz=$(cd "$root/services/parser" && go list -m -f '{{.Dir}}' github.com/gen2brain/go-fitz)
case "$(go env GOOS)/$(go env GOARCH)" in
linux/amd64) libs=(-lmupdf_linux_amd64 -lmupdfthird_linux_amd64) ;;
linux/arm64) libs=(-lmupdf_linux_arm64 -lmupdfthird_linux_arm64) ;;
*) echo "sanitize.sh: no go-fitz MuPDF library known for $(go env GOOS)/$(go env GOARCH)"; exit 1 ;;
esac
alloc=$pkg/pt_malloc.c
[ "${ALLOCATOR:-malloc}" = pool ] && alloc=$pkg/pt_pool.c

echo "== building the sanitized driver (${ALLOCATOR:-malloc} allocator)"
cc=${CC:-gcc}
"$cc" -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Wclobbered -Werror -o "$out/driver" \
	"$pkg/testdata/sanitize/driver.c" "$pkg/mupdf_shim.c" "$alloc" \
	-L"$fitz/libs" "${libs[@]}" -lm -lpthread

echo "== writing the fixtures"
(cd "$root/services/parser" && PDFTEXT_SEED_DIR="$out/seeds" go test -count=1 -run '^TestWriteFuzzSeeds$' ./pdftext/mupdf >/dev/null)
fixtures=("$out"/seeds/*.pdf)
if [ -n "${EXTRA_PDFS:-}" ]; then
	while IFS= read -r f; do fixtures+=("$f"); done < <(find "$EXTRA_PDFS" -name '*.pdf' | sort)
fi

export ASAN_OPTIONS="detect_leaks=${LEAKS:-0}:abort_on_error=0:exitcode=86:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
faults=0
files=0
# A fixture run: each file alone, so that one fault names its file.
for f in "${fixtures[@]}"; do
	files=$((files + 1))
	if ! "$out/driver" -pages 400 "$f" >>"$out/fixtures.log" 2>"$out/last.err"; then
		faults=$((faults + 1))
		cp "$f" "$out/faults/fixture-$(basename "$f")"
		cp "$out/last.err" "$out/faults/fixture-$(basename "$f").txt"
		echo "FAULT in fixture $f (report: $out/faults/fixture-$(basename "$f").txt)"
	fi
done

# Mutants, in batches, until the time is up; after a fault the batch
# goes on from the next mutant.
end=$(($(date +%s) + secs))
k=0
mutants=0
hangs=0
while [ "$(date +%s)" -lt "$end" ]; do
	to=$((k + 200))
	rc=0
	timeout 300 "$out/driver" -pages 50 -mutate -from "$k" -to "$to" -out "$out/mutant.pdf" "$out"/seeds/*.pdf >"$out/batch.log" 2>"$out/last.err" || rc=$?
	if [ "$rc" -eq 0 ]; then
		mutants=$((mutants + to - k))
		k=$to
		continue
	fi
	last=$(grep -o '^mutant [0-9]*' "$out/batch.log" | tail -1 | cut -d' ' -f2)
	if [ -z "$last" ]; then
		echo "driver failed before any mutant:"; cat "$out/last.err"; exit 1
	fi
	kind=fault
	if [ "$rc" -eq 124 ]; then
		kind=hang # a mutant that did not finish within the batch's time
		hangs=$((hangs + 1))
	else
		faults=$((faults + 1))
	fi
	cp "$out/mutant.pdf" "$out/faults/$kind-$last.pdf"
	cp "$out/last.err" "$out/faults/$kind-$last.txt"
	echo "${kind^^} in mutant $last (report: $out/faults/$kind-$last.txt)"
	mutants=$((mutants + last + 1 - k))
	k=$((last + 1))
done
echo "sanitize: fixtures run $files, mutants run $mutants, faults found $faults, hangs $hangs (${ALLOCATOR:-malloc} allocator; outputs in $out)"
[ "$faults" -eq 0 ]
