#!/usr/bin/env bash
# bench/stages.sh — the stage binaries as deployed: gateway, fetcher, parser,
# embedder and ingester each in its own process on a nats-server process
# (the nats-server module pdfpipe builds with), a real redis-server, the
# reference IngestService (ingest-sink) and the PDF served over loopback
# HTTP; one task pushed to Redis as the backend does. Prints the CPU-seconds
# (user + system) each process spent on it, and the wall time from the push
# to the sink's answer.
#
# Usage: bench/stages.sh [-r RUNS] FILE.pdf
# The embedder uses its default provider (local) unless EMBEDDING_* say
# otherwise; other stage settings come from the environment too.
set -euo pipefail

runs=1
while getopts r: o; do
	case $o in
	r) runs=$OPTARG ;;
	*) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: bench/stages.sh [-r RUNS] FILE.pdf" >&2; exit 2; }
pdf=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
stop() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'stop; rm -rf "$tmp"' EXIT

stages=(gateway fetcher parser embedder ingester)
for s in "${stages[@]}"; do (cd "$root/services/$s" && go build -o "$tmp/$s" "./cmd/$s"); done
(cd "$root/tools/ingestsink" && go build -o "$tmp/sink" ./cmd/ingest-sink)
(cd "$root/pkg" && go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
mkdir "$tmp/www"
ln -s "$pdf" "$tmp/www/doc.pdf"
printf '%-4s' run
for s in "${stages[@]}" nats-server sink; do printf ' %11s' "$s"; done
printf ' %13s %8s\n' stages+server wall_s
for run in $(seq "$runs"); do
	np=$(free_port) rp=$(free_port) sp=$(free_port) hp=$(free_port)
	rm -rf "$tmp/nats" "$tmp/out.jsonl"
	"$tmp/nats-server" -js -sd "$tmp/nats" -a 127.0.0.1 -p "$np" >"$tmp/nats.log" 2>&1 &
	pids+=($!)
	declare -A pid=([nats-server]=$!)
	redis-server --bind 127.0.0.1 --port "$rp" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
	pids+=($!)
	"$tmp/sink" -addr "127.0.0.1:$sp" -out "$tmp/out.jsonl" 2>"$tmp/sink.log" &
	pids+=($!)
	pid[sink]=$!
	(cd "$tmp/www" && exec python3 -m http.server "$hp" --bind 127.0.0.1 >/dev/null 2>&1) &
	pids+=($!)
	for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$np") 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$hp") 2>/dev/null && break; sleep 0.1; done
	for s in "${stages[@]}"; do
		NATS_URL="nats://127.0.0.1:$np" REDIS_URL="redis://127.0.0.1:$rp/0" GO_GRPC_INGEST_ADDR="127.0.0.1:$sp" \
			GRPC_SERVER_PORT="127.0.0.1:$(free_port)" GRPC_EMBEDDING_PORT="127.0.0.1:$(free_port)" \
			FETCH_ALLOW_HOSTS="127.0.0.1:$hp" TEMP_DIR="$tmp" LOG_LEVEL="${LOG_LEVEL:-warn}" "$tmp/$s" 2>"$tmp/$s.log" &
		pids+=($!)
		pid[$s]=$!
	done
	# Every stage connected and set up: its consumer exists.
	for _ in $(seq 100); do
		up=1
		for s in "${stages[@]}"; do [ -e "/proc/${pid[$s]}" ] || { echo "$s stopped:" >&2; tail -3 "$tmp/$s.log" >&2; exit 1; }; done
		for c in fetcher parser embedder ingester; do grep -q "$c" <(ls "$tmp/nats/jetstream/\$G/streams/PDFPIPE/obs" 2>/dev/null) || up=0; done
		[ $up = 1 ] && break
		sleep 0.1
	done
	declare -A c0=()
	for p in "${!pid[@]}"; do c0[$p]=$(cpu "${pid[$p]}"); done
	start=$(date +%s.%N)
	redis-cli -p "$rp" LPUSH queue:upload_tasks \
		"{\"DocID\":\"stages-$run\",\"FileName\":\"doc.pdf\",\"UserID\":\"bench\",\"URL\":\"http://127.0.0.1:$hp/doc.pdf\",\"RagMode\":\"true\"}" >/dev/null
	for _ in $(seq 6000); do grep -q '"success":true' "$tmp/out.jsonl" 2>/dev/null && break; sleep 0.02; done
	end=$(date +%s.%N)
	grep -q '"success":true' "$tmp/out.jsonl" || { echo "the document was not stored:" >&2; tail -3 "$tmp"/*.log >&2; exit 1; }
	sleep 0.3 # the stages' last acks and status writes
	printf '%-4s' "$run"
	total=0
	for p in "${stages[@]}" nats-server sink; do
		c=$(echo "$(cpu "${pid[$p]}") - ${c0[$p]}" | bc -l)
		[ "$p" = sink ] || total=$(echo "$total + $c" | bc -l)
		printf ' %11.2f' "$c"
	done
	printf ' %13.2f %8.2f\n' "$total" "$(echo "$end - $start" | bc -l)"
	stop
done
echo "CPU-seconds per process for the one task (stages+server: all but the sink); wall: push to the sink's answer"
