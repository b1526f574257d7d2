#!/usr/bin/env bash
# generate.sh regenerates the Go code for every .proto file under proto/.
#
# Usage: proto/generate.sh [OUTPUT_DIR]
#
# OUTPUT_DIR defaults to this directory (generation in place); the check
# (make check, generate_test.go) generates into a temporary directory and
# compares. The tools are pinned:
#   - protoc from the distribution (installed with apt-get when missing);
#   - protoc-gen-go and protoc-gen-go-grpc at the versions below, built with
#     `go install` into TOOLS_DIR (default: proto/.tools, git-ignored).
# Generated files name their sources relative to this directory, so they carry
# no machine-specific paths.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
tools="${TOOLS_DIR:-$here/.tools}"

if ! command -v protoc >/dev/null 2>&1; then
	echo "generate.sh: protoc not found, installing protobuf-compiler with apt-get" >&2
	sudo=""
	if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >&2
	if ! command -v protoc >/dev/null 2>&1; then
		echo "generate.sh: protoc still not found after installing protobuf-compiler" >&2
		exit 1
	fi
fi

mkdir -p "$tools" "$out"
tools="$(cd "$tools" && pwd)"
out="$(cd "$out" && pwd)"

GOBIN="$tools" GOWORK=off go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$tools" GOWORK=off go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

cd "$here"
mapfile -t protos < <(find . -name '*.proto' -not -path './.tools/*' | sed 's|^\./||' | LC_ALL=C sort)
if [ "${#protos[@]}" -eq 0 ]; then
	echo "generate.sh: no .proto files under $here" >&2
	exit 1
fi

protoc \
	--plugin=protoc-gen-go="$tools/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
	-I . \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	"${protos[@]}"
