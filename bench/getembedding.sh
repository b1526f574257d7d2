#!/usr/bin/env bash
# GetEmbedding latency through the gateway: gRPC EmbeddingService on a loopback
# port → NATS request → one embedder with the local provider, all on an
# in-process NATS server. Fires N sequential calls, then N calls from C
# concurrent callers, and prints p50/p90/p99/max and calls/s of each.
#
#   bench/getembedding.sh            # N=2000, C=32
#   N=5000 C=64 bench/getembedding.sh
set -euo pipefail
cd "$(dirname "$0")/../test"
exec go run ./cmd/getembedbench -n "${N:-2000}" -c "${C:-32}" "$@"
