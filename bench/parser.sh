#!/usr/bin/env bash
# bench/parser.sh — the parser's parse+chunk step (pdftext.Extract, no
# publishing) against `mutool draw -F txt` on Debian's large manuals.
#
# Prints per file: pages, mutool pages/s and ours on one core (taskset -c 0),
# their ratio, our peak RSS; then the same with the PDFium engine for the
# largest manual and R-intro.pdf; then, for the largest manual, ours with two
# page-range workers on two cores against single-core mutool; the parser
# service (BenchmarkParseService) on one core, with its NATS server in the
# same process and, as deployed, on the other core; and the peak RSS of the
# largest manual against a 30-page excerpt of it: the parser service's
# (cmd/parser parsing one document per process, NATS on the other core),
# and the parse step's alone, one run per process and several; and the
# largest manual with MuPDF's default store and a 4 MiB one. mutool and
# ours run alternately.
#
# Usage: bench/parser.sh [runs]   (runs per measurement, best kept; default 3)
# Installs r-doc-pdf octave-doc gnuplot-doc mupdf-tools with apt-get when
# missing. The machine should be otherwise idle: other load shows as noise.
set -euo pipefail

runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
need_debian_pdfs

# find_pdf NAME: the first installed copy (gunzipped into $tmp if needed).
find_pdf() {
	local f
	for f in $(dpkg -L r-doc-pdf octave-doc gnuplot-doc 2>/dev/null | grep -E "/$1(\.gz)?$"); do
		f=$(readlink -f "$f")
		[ -f "$f" ] || continue
		case $f in
		*.gz) gunzip -c "$f" >"$tmp/$1" && echo "$tmp/$1" ;;
		*) echo "$f" ;;
		esac
		return
	done
}

big=$(find_pdf fullrefman.pdf)
[ -n "$big" ] || big=$(find_pdf refman.pdf)
files=("$big")
for n in octave.pdf gnuplot.pdf R-exts.pdf R-intro.pdf R-admin.pdf; do
	f=$(find_pdf "$n")
	[ -n "$f" ] && files+=("$f")
done

# PDFium (slower, and its module takes seconds to compile) runs on the
# largest manual and the smallest one found.
pdfium_files=("$big")
[ -n "$(find_pdf R-intro.pdf)" ] && pdfium_files+=("$(find_pdf R-intro.pdf)")

(cd "$root/services/parser" && go build -o "$tmp/parsebench" ./cmd/parsebench && go build -o "$tmp/parser" ./cmd/parser &&
	go test -c -o "$tmp/parser.test" .)

now() { date +%s.%N; }
# mutool_once FILE CPUS: wall seconds of one mutool draw -F txt.
mutool_once() {
	local s e
	s=$(now)
	taskset -c "$2" mutool draw -q -F txt -o /dev/null "$1" 2>/dev/null
	e=$(now)
	echo "$e - $s" | bc -l
}
# ours FILE CPUS WORKERS [ENGINE]: parsebench's line (one run).
ours() { taskset -c "$2" "$tmp/parsebench" -workers "$3" -engine "${4:-mupdf}" "$1"; }
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# pair FILE CPUS WORKERS: $runs runs of mutool on one core (core 0) and of
# ours, alternating, so that drift in the host's speed (seen here: mutool
# alone from 1,000 to 1,500 pages/s within minutes, and phases of minutes
# at half speed) hits both alike. Sets ms (mutool's best seconds), line
# (parsebench's line of our best run), pr (the median over the runs of
# mutool's time over ours in the same run: back-to-back, so a slow phase
# of the host cancels out) and run_m[i], run_o[i] (the times of run i).
pair() {
	local d l i o ratios=""
	ms="" line=""
	for i in $(seq "$runs"); do
		d=$(mutool_once "$1" 0)
		if [ -z "$ms" ] || [ "$(echo "$d < $ms" | bc -l)" = 1 ]; then ms=$d; fi
		l=$(ours "$1" "$2" "$3")
		o=$(field seconds "$l")
		if [ -z "$line" ] || [ "$(echo "$o < $(field seconds "$line")" | bc -l)" = 1 ]; then line=$l; fi
		run_m[i]=$d
		run_o[i]=$o
		ratios+="$(echo "$d / $o" | bc -l)"$'\n'
	done
	pr=$(printf '%s' "$ratios" | median)
}

# The machine's real parallel capacity: the same CPU-bound work run twice
# at once, against once. Near 1.0 means two free cores; near 2.0 means the
# cores are shared with other load and no parallel speed-up can show.
head -c 200000000 /dev/zero >"$tmp/zero"
s=$(now); sha256sum "$tmp/zero" >/dev/null; e=$(now); one=$(echo "$e - $s" | bc -l)
s=$(now); sha256sum "$tmp/zero" >/dev/null & sha256sum "$tmp/zero" >/dev/null & wait; e=$(now); two=$(echo "$e - $s" | bc -l)
rm -f "$tmp/zero"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; two CPU-bound jobs at once take $(printf '%.2f' "$(echo "$two / $one" | bc -l)")x one job; best of $runs runs"
echo "ratio: best time of mutool over our best time; pairs: median over the runs of mutool's time over ours, run back to back"
printf '%-16s %6s %10s %10s %7s %7s %9s %8s\n' file pages mutool/s ours/s ratio pairs rss_MiB chunks
tp=0 tm=0 to=0
declare -A mutool_s
declare -a run_m run_o tot_m tot_o
for i in $(seq "$runs"); do tot_m[i]=0 tot_o[i]=0; done
for f in "${files[@]}"; do
	pair "$f" 0 1
	pages=$(field pages "$line")
	os=$(field seconds "$line")
	printf '%-16s %6d %10.0f %10.0f %7.2f %7.2f %9.1f %8d\n' "$(basename "$f")" "$pages" \
		"$(echo "$pages / $ms" | bc -l)" "$(echo "$pages / $os" | bc -l)" "$(echo "$ms / $os" | bc -l)" "$pr" \
		"$(echo "$(field rss_kib "$line") / 1024" | bc -l)" "$(field chunks "$line")"
	for i in $(seq "$runs"); do
		tot_m[i]=$(echo "${tot_m[i]} + ${run_m[i]}" | bc -l)
		tot_o[i]=$(echo "${tot_o[i]} + ${run_o[i]}" | bc -l)
	done
	[ "$f" = "$big" ] && big_ms=$ms
	mutool_s[$f]=$ms
	tp=$((tp + pages))
	tm=$(echo "$tm + $ms" | bc -l)
	to=$(echo "$to + $os" | bc -l)
done
tpr=$(for i in $(seq "$runs"); do echo "${tot_m[i]} / ${tot_o[i]}" | bc -l; done | median)
printf '%-16s %6d %10.0f %10.0f %7.2f %7.2f\n' total "$tp" "$(echo "$tp / $tm" | bc -l)" "$(echo "$tp / $to" | bc -l)" "$(echo "$tm / $to" | bc -l)" "$tpr"

echo
echo "PDFium engine (PDF_ENGINE=pdfium, WebAssembly, module compiled before timing), one core:"
printf '%-16s %6s %10s %10s %7s %9s %8s\n' file pages mutool/s pdfium/s ratio rss_MiB chunks
for f in "${pdfium_files[@]}"; do
	line=$(taskset -c 0 "$tmp/parsebench" -engine pdfium -repeat "$runs" "$f")
	pages=$(field pages "$line")
	ms=${mutool_s[$f]}
	os=$(field seconds "$line")
	printf '%-16s %6d %10.0f %10.0f %7.2f %9.1f %8d\n' "$(basename "$f")" "$pages" \
		"$(echo "$pages / $ms" | bc -l)" "$(echo "$pages / $os" | bc -l)" "$(echo "$ms / $os" | bc -l)" \
		"$(echo "$(field rss_kib "$line") / 1024" | bc -l)" "$(field chunks "$line")"
done

echo
echo "$(basename "$big"), two cores (page ranges in parallel) vs mutool on one core:"
pair "$big" 0,1 2
line2=$line
pages=$(field pages "$line2")
# The ratios below use the fastest mutool time measured on this file in
# this run (the strictest).
if [ "$(echo "$ms < $big_ms" | bc -l)" = 1 ]; then big_ms=$ms; else ms=$big_ms; fi
os=$(field seconds "$line2")
printf '  mutool 1 core %.0f pages/s (fastest of the run); ours 2 workers %.0f pages/s; ratio %.2f, pairs %.2f (target >= 1.7); peak RSS %.1f MiB\n' \
	"$(echo "$pages / $ms" | bc -l)" "$(echo "$pages / $os" | bc -l)" "$(echo "$ms / $os" | bc -l)" "$pr" \
	"$(echo "$(field rss_kib "$line2") / 1024" | bc -l)"

echo
echo "$(basename "$big"), parser service on one core (chunks published asynchronously, at most 32 messages awaiting their PubAck, all acked before the ingest job):"
# Best of $runs single-run benchmarks, as for parsebench and mutool.
svc=$(PARSER_BENCH_PDF="$big" taskset -c 0 "$tmp/parser.test" -test.run '^$' -test.bench BenchmarkParseService \
	-test.benchtime 1x -test.count "$runs" | awk '{for (i = 2; i <= NF; i++) if ($i == "pages/s" && $(i-1) > best) best = $(i-1)} END {print best}')
bp=$(field pages "$(ours "$big" 0 1)")
printf '  NATS in the same process, same core: service %.0f pages/s (best of %d runs); mutool %.0f pages/s (fastest of the run); ratio %.2f (target >= 0.9)\n' \
	"$svc" "$runs" "$(echo "$bp / $big_ms" | bc -l)" "$(echo "$svc / ($bp / $big_ms)" | bc -l)"
mutool merge -o "$tmp/excerpt30.pdf" "$big" 1-30 2>/dev/null
# As deployed: the NATS server is a process of its own (here on the other
# core), the parser has core 0 to itself.
(cd "$root/pkg" && go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
taskset -c 1 "$tmp/nats-server" -js -sd "$tmp/js" -a 127.0.0.1 -p "$port" >"$tmp/nats.log" 2>&1 &
nats_pid=$!
trap 'kill $nats_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
svc2=$(PARSER_BENCH_NATS_URL="nats://127.0.0.1:$port" PARSER_BENCH_PDF="$big" taskset -c 0 "$tmp/parser.test" -test.run '^$' \
	-test.bench BenchmarkParseService -test.benchtime 1x -test.count "$runs" | awk '{for (i = 2; i <= NF; i++) if ($i == "pages/s" && $(i-1) > best) best = $(i-1)} END {print best}')
# service_rss FILE: the peak RSS in MiB of a parser service process
# (cmd/parser, on core 0, the nats-server on core 1) that starts, parses
# FILE (stored and published by BenchmarkParseService in another process)
# and stops: the median of $runs such processes, then the lowest and the
# highest.
service_rss() {
	local i pid out=""
	for i in $(seq "$runs"); do
		NATS_URL="nats://127.0.0.1:$port" taskset -c 0 "$tmp/parser" >"$tmp/parser.log" 2>&1 &
		pid=$!
		sleep 1
		PARSER_BENCH_SERVICE=external PARSER_BENCH_NATS_URL="nats://127.0.0.1:$port" PARSER_BENCH_PDF="$1" taskset -c 1 "$tmp/parser.test" \
			-test.run '^$' -test.bench BenchmarkParseService -test.benchtime 1x -test.count 1 >/dev/null
		out+="$(awk '/^VmHWM:/ {print $2 / 1024}' "/proc/$pid/status")"$'\n'
		kill "$pid"
		wait "$pid" 2>/dev/null || true
	done
	printf '%s' "$out" | median | tr '\n' ' '
	printf '%s' "$out" | sort -g | sed -n '1p;$p' | tr '\n' ' '
}
svc_small=$(service_rss "$tmp/excerpt30.pdf")
svc_large=$(service_rss "$big")
kill $nats_pid 2>/dev/null || true
printf '  NATS server on the other core (as deployed): service %.0f pages/s; ratio %.2f (target >= 0.9)\n' \
	"$svc2" "$(echo "$svc2 / ($bp / $big_ms)" | bc -l)"

echo
# Peak RSS (VmHWM) of a process that parses one document ("cold"), and
# of one that parses it $runs times in a row, as a long-running parser
# does ("warm": the Go heap and glibc keep some of what earlier runs used).
mem() {
	local small large
	small=$(taskset -c 0 "$tmp/parsebench" -repeat "$1" "$tmp/excerpt30.pdf")
	large=$(taskset -c 0 "$tmp/parsebench" -repeat "$1" "$big")
	printf '  %s: peak RSS %.1f MiB on a 30-page excerpt, %.1f MiB on all %d pages: ratio %.2f (for reference: the target is the service'"'"'s)\n' "$2" \
		"$(echo "$(field rss_kib "$small") / 1024" | bc -l)" "$(echo "$(field rss_kib "$large") / 1024" | bc -l)" \
		"$(field pages "$large")" "$(echo "$(field rss_kib "$large") / $(field rss_kib "$small")" | bc -l)"
}
read -r small_med small_min small_max <<<"$svc_small"
read -r large_med large_min large_max <<<"$svc_large"
printf 'memory, parser service (cmd/parser, one document per process, median of %d and range): %.1f MiB (%.1f-%.1f) on a 30-page excerpt, %.1f MiB (%.1f-%.1f) on all pages: ratio %.2f (target <= 1.5 and < 160 MiB)\n' \
	"$runs" "$small_med" "$small_min" "$small_max" "$large_med" "$large_min" "$large_max" "$(echo "$large_med / $small_med" | bc -l)"
echo "memory, parse step alone (parsebench, one worker):"
mem 1 "cold, one run per process"
mem "$runs" "warm, $runs runs per process"
printf '  with 2 workers: peak RSS %.1f MiB\n' "$(echo "$(field rss_kib "$line2") / 1024" | bc -l)"

# MuPDF's store keeps what pages share (fonts mostly: images are not
# loaded for text); mupdf.DefaultMaxStore (pdftext/mupdf) explains its size.
ld=$(taskset -c 0 "$tmp/parsebench" -repeat "$runs" "$big")
l4=$(taskset -c 0 "$tmp/parsebench" -store 4 -repeat "$runs" "$big")
printf 'MuPDF store: %d MiB per open document; %s with it: %.0f pages/s, peak RSS %.1f MiB; with %d MiB: %.0f pages/s, peak RSS %.1f MiB\n' \
	"$(field store_mib "$ld")" "$(basename "$big")" "$(field pages_per_s "$ld")" "$(echo "$(field rss_kib "$ld") / 1024" | bc -l)" \
	"$(field store_mib "$l4")" "$(field pages_per_s "$l4")" "$(echo "$(field rss_kib "$l4") / 1024" | bc -l)"
