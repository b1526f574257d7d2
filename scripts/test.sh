#!/usr/bin/env bash
# Runs every check and test of pdfpipe, installing what the tests need when
# it is missing: redis-server, protoc, mutool and pdftotext (Debian
# packages), versitygw (S3 server, Go module). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v mutool >/dev/null || need_apt+=(mupdf-tools)
command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
command -v gcc >/dev/null || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN_DIR"
if ! command -v versitygw >/dev/null; then
  echo "== installing versitygw (S3 server for the tests)"
  (cd /tmp && GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go mod tidy (every module)"
for mod in $(go list -m -f '{{.Dir}}'); do
  (cd "$mod" && go mod tidy -diff >/dev/null) || { echo "go.mod/go.sum of $mod are not tidy: run go mod tidy there"; exit 1; }
done

echo "== go vet"
go vet work

echo "== no binary outside test/ links the test helpers (module testkit)"
mains=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' work | grep -v '/test/')
deps=$(go list -f '{{.ImportPath}}: {{join .Deps " "}}' $mains)
if grep '/testkit/' <<<"$deps" | cut -d: -f1 | grep .; then
  echo "the binaries above import github.com/pdfpipe/pdfpipe/testkit: only tests may"; exit 1
fi

echo "== build without MuPDF (AGPL-free: -tags nomupdf, CGO_ENABLED=0) and run it"
nomupdf=$(mktemp -d)
CGO_ENABLED=0 go build -tags nomupdf -o "$nomupdf/pdfpipe" ./cmd/pdfpipe
if go tool nm "$nomupdf/pdfpipe" | grep -q ' T fz_'; then echo "MuPDF is linked into the -tags nomupdf build"; exit 1; fi
"$nomupdf/pdfpipe" sample -pages 5 "$nomupdf/s.pdf" >/dev/null
"$nomupdf/pdfpipe" run -out "$nomupdf/chunks.jsonl" "$nomupdf/s.pdf" >/dev/null
rm -rf "$nomupdf"

echo "== pdftext core without cgo (CGO_ENABLED=0: builds and tests on recorded engine output)"
# The core (chunking, chapters, headers and footers, garbage) must not
# depend on an engine: a change to it builds and tests without MuPDF.
core=./pdftext
engines=$(cd services/parser && CGO_ENABLED=0 go list -deps -test $core ./pdftext/pdftexttest | grep -E 'go-fitz|go-pdfium|wazero|/pdftext/(mupdf|pdfium)$' || true)
if [ -n "$engines" ]; then echo "the pdftext core depends on an engine:"; echo "$engines"; exit 1; fi
(cd services/parser && CGO_ENABLED=0 go test -count=1 $core ./pdftext/pdftexttest)
# pdftexttest embeds the recordings (a megabyte): only tests may import it.
mains=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' work)
if go list -f '{{.ImportPath}}: {{join .Deps " "}}' $mains | grep '/pdftext/pdftexttest' | cut -d: -f1 | grep .; then
  echo "the binaries above import pdftext/pdftexttest: only tests may"; exit 1
fi

echo "== MuPDF shim: gcc -Wclobbered -Werror (setjmp/longjmp-safe locals in fz_try)"
# -Wclobbered needs the optimiser; the shim declares what it uses of MuPDF
# itself, so it compiles without go-fitz's headers.
mupdf=services/parser/pdftext/mupdf
for opt in -O1 -O2 -O3; do
  for c in mupdf_shim.c pt_malloc.c pt_pool.c; do
    gcc "$opt" -c -Wall -Wextra -Wclobbered -Werror -o /dev/null "$mupdf/$c"
  done
done

echo "== go test -race"
go test -race -count=1 -timeout 15m work

echo "== fuzz: FuzzExtract for 20s (inputs that fail are kept under $mupdf/testdata/fuzz/FuzzExtract)"
# New inputs are not minimised (-fuzzminimizetime 1x): a PDF takes tens of
# runs a byte, which would take the whole time.
(cd services/parser && go test -run '^$' -fuzz '^FuzzExtract$' -fuzztime 20s -fuzzminimizetime 1x ./pdftext/mupdf)
