#!/usr/bin/env bash
# Embedder throughput: one embedder service on an in-process JetStream versus
# the original design (one request per chunk, one at a time), both against a
# local fake of the OpenAI embeddings API with 50 ms latency per request and
# the same chunk texts. Prints chunks/s of both and the ratio (target >= 20x).
#
#   bench/embedder.sh                      # 2,000 chunks; the original design takes ~100 s
#   CHUNKS=500 bench/embedder.sh           # quicker
#   bench/embedder.sh -baseline-chunks 200 # time the original on the first 200 chunks only
#   bench/embedder.sh -env EMBED_REQUESTS=4 -env EMBED_LINGER=25ms
#
# Flags after the script name go to the Go command (services/embedder/cmd/embedbench;
# -h lists them). MIN_RATIO (default 20) makes the script fail below that ratio.
set -euo pipefail
cd "$(dirname "$0")/../services/embedder"
exec go run ./cmd/embedbench -chunks "${CHUNKS:-2000}" -latency "${LATENCY:-50ms}" -min-ratio "${MIN_RATIO:-20}" "$@"
