#!/usr/bin/env bash
# Sends one PDF through docker-compose.yml's real path and checks it arrives:
# build and start the stack (a project of its own, "pdfpipe-smoke", on host
# ports 1xxxx so a running pdfpipe stack is left alone), upload a generated
# PDF to MinIO, LPUSH an s3:// task onto Redis, wait for the document's
# metadata and chunks in ingest-sink's output, and check that Prometheus
# scrapes every stage. The stack and its volumes are removed at the end
# (KEEP=1 keeps them).
#
# Usage: bash scripts/compose-smoke.sh
# Needs a Docker engine with the compose plugin. Without an engine it says
# "no Docker engine: skipped" and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "compose-smoke: no Docker engine: skipped"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1; then
  echo "compose-smoke: docker is there but not its compose plugin (docker compose): install docker-compose-plugin" >&2
  exit 1
fi

export COMPOSE_PROJECT_NAME=pdfpipe-smoke
# every published port moved by 10000 (see docker-compose.yml)
export NATS_PORT=14222 NATS_MONITOR_PORT=18222 REDIS_PORT=16379 MINIO_PORT=19000 MINIO_CONSOLE_PORT=19001 \
  GRPC_SERVER_PORT=60052 GRPC_EMBEDDING_PORT=60053 INGEST_SINK_PORT=60051 PROMETHEUS_PORT=19090 GRAFANA_PORT=13000
timeout=${SMOKE_TIMEOUT:-600}
tmp=$(mktemp -d)
dc() { docker compose "$@"; }
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then
    echo "== compose-smoke failed; the stages' last logs:" >&2
    dc logs --tail 30 gateway fetcher parser embedder ingester ingest-sink >&2 || true
  fi
  if [ "${KEEP:-}" = 1 ]; then
    echo "== KEEP=1: the stack runs on (docker compose -p $COMPOSE_PROJECT_NAME down -v to remove it)"
  else
    dc down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

# wait_for DESCRIPTION COMMAND...: retry every 2 s until it succeeds or
# $timeout seconds passed since the start.
wait_for() {
  local what=$1; shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$timeout" ]; then
      echo "compose-smoke: gave up after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 2
  done
}

echo "== building the images and starting the stack (the first build takes 10 minutes or more)"
dc up -d --build
docker build -q --target pdfpipe -t "pdfpipe/pdfpipe:${PDFPIPE_TAG:-dev}" . >/dev/null
SECONDS=0 # the waits below count from here

echo "== generating a PDF and uploading it to MinIO"
chmod 0777 "$tmp"
docker run --rm --user 65532 -v "$tmp:/out" "pdfpipe/pdfpipe:${PDFPIPE_TAG:-dev}" sample -pages 12 /out/smoke.pdf
key="smoke/$(date +%s)-sample.pdf"
upload() {
  dc run --rm --no-deps -T -v "$tmp:/in:ro" --entrypoint /bin/sh minio-init -c \
    "mc alias set local http://minio:9000 \"\$MINIO_ROOT_USER\" \"\$MINIO_ROOT_PASSWORD\" && mc cp /in/smoke.pdf \"local/\$BUCKET_NAME/$key\""
}
wait_for "MinIO and its bucket" upload
bucket=${BUCKET_NAME:-uploads}

id="smoke-$(date +%s)"
echo "== LPUSH task $id: s3://$bucket/$key"
task="{\"task_id\":\"$id\",\"DocID\":\"$id\",\"FileName\":\"sample.pdf\",\"UserID\":\"smoke\",\"URL\":\"s3://$bucket/$key\",\"RagMode\":\"true\"}"
dc exec -T redis redis-cli LPUSH queue:upload_tasks "$task" >/dev/null

echo "== waiting for its chunks at ingest-sink"
arrived() {
  dc cp ingest-sink:/data/ingested.jsonl "$tmp/ingested.jsonl" &&
    grep "\"type\":\"metadata\"" "$tmp/ingested.jsonl" | grep -q "\"file_id\":\"$id\".*\"success\":true"
}
wait_for "the document at the sink" arrived
chunks=$(grep '"type":"chunk"' "$tmp/ingested.jsonl" | grep -c "\"file_id\":\"$id\"")
echo "   $chunks chunks of $id stored by ingest-sink"
[ "$chunks" -gt 0 ]

echo "== checking that Prometheus scrapes every stage"
scraped() {
  dc exec -T prometheus wget -qO- 'http://127.0.0.1:9090/api/v1/query?query=count(up{job=~"gateway|fetcher|parser|embedder|ingester"}==1)' |
    grep -q '"value":\[[0-9.]*,"5"\]'
}
wait_for "Prometheus to scrape the five stages" scraped
dc exec -T prometheus wget -qO- 'http://127.0.0.1:9090/api/v1/query?query=pdfpipe_stage_pending_messages' | grep -q '"stage":"parse"'
echo "compose-smoke: ok ($chunks chunks through MinIO, Redis, NATS, the five stages and ingest-sink; Prometheus scrapes all five)"
