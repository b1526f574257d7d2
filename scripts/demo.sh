#!/usr/bin/env bash
# The main job on the embedded default: a PDF in, chunks with vectors out.
# Usage: bash scripts/demo.sh [FILE.pdf ...]
# Without a file it generates a 40-page sample (chapters, outline, Latin
# and Chinese text). Needs Go and gcc (cgo for MuPDF); nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v gcc >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc >/dev/null
fi
mkdir -p bin
echo "== building bin/pdfpipe (first build compiles MuPDF bindings: about a minute)"
go build -o bin/pdfpipe ./cmd/pdfpipe
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  bin/pdfpipe sample -pages 40 bin/sample.pdf
  files=(bin/sample.pdf)
fi
bin/pdfpipe run -out bin/chunks.jsonl "${files[@]}"
echo "== first chunk (vector cut to 4 of its floats):"
sed -n 2p bin/chunks.jsonl | python3 -c 'import json,sys; c=json.loads(sys.stdin.read()); c["embedding_vector"]=c["embedding_vector"][:4]+["..."]; print(json.dumps(c, ensure_ascii=False, indent=1))' 2>/dev/null || sed -n 2p bin/chunks.jsonl | cut -c1-600
