#!/usr/bin/env bash
# bench/e2e.sh — the whole pipeline end to end, as deployed without Docker:
# `pdfpipe up` (every service in one process, embedded NATS) against a real
# redis-server, the project's fake OpenAI embeddings server answering after
# a chosen latency (test/cmd/fakeopenai), and the reference IngestService
# (tools/ingestsink, served by test/cmd/e2ebench, which also serves the
# PDFs over loopback HTTP and pushes one task per PDF with LPUSH, as the
# backend does).
#
# Prints documents/min, pages/s, chunks/s, p50/p99 task latency (push →
# every chunk stored at the sink), the time from the first push to the
# first chunk at the sink (and its median per task), pdfpipe's peak RSS and
# CPU-seconds per page (pdfpipe's process only: not Redis, the fake or the
# sink), after a load control line as bench/parser.sh prints; then
# mutool draw -F txt's CPU-seconds per page over the same PDFs, on one
# core, and the ratio.
#
# Usage: bench/e2e.sh [-l LATENCY_MS] [-s full|small] [-r RUNS] [-m] [-e NAME=VALUE]... [PDF or DIR...]
#   -l  latency of every embeddings response (default 0)
#   -s  the default corpus: full (default) = every *.pdf and *.pdf.gz that
#       r-doc-pdf, octave-doc, gnuplot-doc, maxima-doc, python-reportlab-doc,
#       lilypond-doc-pdf, valgrind, bzip2-doc, nettle-dev and zlib1g-dev
#       install (without R's refman.pdf, which repeats fullrefman.pdf),
#       installed with apt-get when missing; small = R's seven small
#       manuals and gnuplot.pdf
#   -r  runs (default 1), each on fresh services
#   -m  also split pdfpipe's peak resident memory (Go heap, stacks, the
#       rest: MuPDF's C heap and the binary's pages), from the heap
#       profile PDFPIPE_MEMPROFILE takes at the peak (kept as
#       $TMPDIR/pdfpipe-e2e-mem-RUN.pprof, for go tool pprof)
#   -e  a setting for pdfpipe up (repeatable), e.g. -e PARSE_PAGE_WORKERS=1
# PDFs or directories given as arguments replace the default corpus.
set -euo pipefail

latency=0 set=full runs=1 memsplit="" extra=()
while getopts l:s:r:me: o; do
	case $o in
	l) latency=$OPTARG ;;
	s) set=$OPTARG ;;
	r) runs=$OPTARG ;;
	m) memsplit=1 ;;
	e)
		case $OPTARG in
		[A-Z_]*=*) extra+=("$OPTARG") ;;
		*) echo "-e wants NAME=VALUE, got $OPTARG" >&2; exit 2 ;;
		esac
		;;
	*) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

packages=(r-doc-pdf octave-doc gnuplot-doc maxima-doc python-reportlab-doc lilypond-doc-pdf valgrind bzip2-doc nettle-dev zlib1g-dev)
mkdir -p "$tmp/corpus"
# add FILE: put a PDF (gunzipped when .gz) into the corpus, under a unique name.
n=0
add() {
	local f=$1 name
	n=$((n + 1))
	name=$(printf '%03d-%s' "$n" "$(basename "${f%.gz}")")
	case $f in
	*.gz) gunzip -c "$f" >"$tmp/corpus/$name" ;;
	*) ln -s "$(readlink -f "$f")" "$tmp/corpus/$name" ;;
	esac
}
if [ $# -gt 0 ]; then
	for a in "$@"; do
		if [ -d "$a" ]; then
			while IFS= read -r f; do add "$f"; done < <(find "$a" -type f \( -name '*.pdf' -o -name '*.pdf.gz' \) | sort)
		else
			add "$a"
		fi
	done
elif [ "$set" = small ]; then
	need_debian_pdfs
	for f in R-intro R-admin R-data R-exts R-FAQ R-ints R-lang; do
		p=$(dpkg -L r-doc-pdf | grep -E "/$f\.pdf(\.gz)?$" | head -1)
		[ -n "$p" ] && add "$p"
	done
	p=$(dpkg -L gnuplot-doc | grep -E '/gnuplot\.pdf(\.gz)?$' | head -1)
	[ -n "$p" ] && add "$p"
else
	need=()
	for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
	if [ ${#need[@]} -gt 0 ]; then
		echo "installing ${need[*]}" >&2
		sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq || true
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null ||
			echo "warning: could not install every package; using what is installed" >&2
	fi
	# Every PDF the packages install, once (some are installed under two
	# names through symlinks), without R's refman.pdf.
	declare -A seen
	while IFS= read -r f; do
		[ -f "$f" ] || continue
		r=$(readlink -f "$f")
		[ -n "${seen[$r]:-}" ] && continue
		seen[$r]=1
		case $(basename "$f") in refman.pdf | refman.pdf.gz) continue ;; esac
		add "$f"
	done < <(dpkg -L "${packages[@]}" 2>/dev/null | grep -E '\.pdf(\.gz)?$' | sort)
fi
files=("$tmp"/corpus/*)
[ -e "${files[0]}" ] || { echo "no PDFs found" >&2; exit 1; }

(cd "$root/cmd" && go build -o "$tmp/pdfpipe" ./pdfpipe)
(cd "$root/test" && go build -o "$tmp/e2ebench" ./cmd/e2ebench && go build -o "$tmp/fakeopenai" ./cmd/fakeopenai)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
tck=$(getconf CLK_TCK)
# cpu PID: user+system CPU-seconds of a process so far.
cpu() { awk -v t="$tck" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

load_control
settings="default settings"
[ ${#extra[@]} -gt 0 ] && settings="default settings but ${extra[*]}"
echo "corpus: ${#files[@]} PDFs ($set set unless given); embeddings latency ${latency} ms; pdfpipe up with $settings"
printf '%-4s %5s %6s %7s %8s %8s %9s %9s %8s %7s %7s %8s %8s %8s %10s\n' run docs failed pages chunks seconds docs/min pages/s chunks/s p50_s p99_s first_s ttfc_p50 rss_MiB cpu_s/page
for run in $(seq "$runs"); do
	rp=$(free_port)
	redis-server --bind 127.0.0.1 --port "$rp" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
	pids+=($!)
	"$tmp/fakeopenai" -latency "${latency}ms" >"$tmp/fake.url" 2>"$tmp/fake.log" &
	pids+=($!)
	wait_port "$rp"
	for _ in $(seq 100); do [ -s "$tmp/fake.url" ] && break; sleep 0.1; done
	sp=$(free_port) hp=$(free_port)
	rm -rf "$tmp/nats"
	# e2ebench serves the PDFs on a loopback port it picks itself: the fetch
	# guard must let 127.0.0.1 through for this harness (and only it).
	REDIS_URL="redis://127.0.0.1:$rp/0" GO_GRPC_INGEST_ADDR="127.0.0.1:$sp" \
		GRPC_SERVER_PORT="127.0.0.1:$(free_port)" GRPC_EMBEDDING_PORT="127.0.0.1:$(free_port)" \
		NATS_LISTEN="127.0.0.1:$(free_port)" NATS_STORE_DIR="$tmp/nats" HEALTH_ADDR="127.0.0.1:$hp" \
		EMBEDDING_PROVIDER=openai EMBEDDING_BASE_URL="$(head -1 "$tmp/fake.url")" \
		EMBEDDING_API_KEY=sk-test-0123456789abcdefFAKE EMBEDDING_MODEL_NAME=text-embedding-3-small \
		FETCH_ALLOW_CIDRS=127.0.0.1/32 LOG_LEVEL=warn \
		env ${memsplit:+PDFPIPE_MEMPROFILE="${TMPDIR:-/tmp}/pdfpipe-e2e-mem-$run.pprof"} ${extra[@]+"${extra[@]}"} \
		"$tmp/pdfpipe" up >"$tmp/pdfpipe.log" 2>&1 &
	up=$!
	pids+=($up)
	for _ in $(seq 300); do curl -sf "http://127.0.0.1:$hp/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -sf "http://127.0.0.1:$hp/readyz" >/dev/null || { echo "pdfpipe up never got ready:" >&2; tail "$tmp/pdfpipe.log" >&2; exit 1; }
	c0=$(cpu "$up")
	line=$("$tmp/e2ebench" -redis "redis://127.0.0.1:$rp/0" -sink "127.0.0.1:$sp" "${files[@]}" 2>"$tmp/e2ebench.log") ||
		{ cat "$tmp/e2ebench.log" >&2; tail "$tmp/pdfpipe.log" >&2; exit 1; }
	c1=$(cpu "$up")
	rss=$(awk '/^VmHWM:/ {print $2 / 1024}' "/proc/$up/status")
	s=$(field seconds "$line") pages=$(field pages "$line") chunks=$(field chunks "$line") docs=$(field documents "$line")
	printf '%-4s %5d %6d %7d %8d %8.1f %9.1f %9.0f %8.0f %7.2f %7.2f %8.2f %8.2f %8.1f %10.4f\n' "$run" "$docs" "$(field failed "$line")" \
		"$pages" "$chunks" "$s" "$(echo "$docs * 60 / $s" | bc -l)" "$(echo "$pages / $s" | bc -l)" "$(echo "$chunks / $s" | bc -l)" \
		"$(field p50 "$line")" "$(field p99 "$line")" "$(field first_chunk "$line")" "$(field ttfc_p50 "$line")" "$rss" \
		"$(echo "($c1 - $c0) / $pages" | bc -l)"
	sed 's/^/  /' "$tmp/e2ebench.log" >&2
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	# The split is written when pdfpipe up stops.
	[ -n "$memsplit" ] && { grep -h '^memory peak' "$tmp/pdfpipe.log" | sed 's/^/  /' >&2 || echo "  (no memory split in the log)" >&2; }
done
echo "pages and chunks count the stored documents; a failed one (e.g. a PDF without text) counts in docs and failed only"
# The reference: mutool's CPU-seconds per page over the same corpus, on
# one core, against pdfpipe's of the last run.
mc=0
for f in "${files[@]}"; do
	/usr/bin/time -o "$tmp/time" -f '%U %S' taskset -c 0 mutool draw -q -F txt -o /dev/null "$f" >/dev/null 2>&1 || true
	t=$(tail -1 "$tmp/time")
	mc=$(echo "$mc + ${t% *} + ${t#* }" | bc -l)
done
mp=0
for f in "${files[@]}"; do mp=$((mp + $(mutool info "$f" 2>/dev/null | sed -n 's/^Pages: *//p' | head -1 || echo 0))); done
ours=$(echo "($c1 - $c0) / $pages" | bc -l)
printf 'mutool draw -F txt, one core: %.4f CPU-s/page over %d pages; pdfpipe (last run) %.4f: %.2fx\n' \
	"$(echo "$mc / $mp" | bc -l)" "$mp" "$ours" "$(echo "$ours / ($mc / $mp)" | bc -l)"
