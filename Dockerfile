# syntax=docker/dockerfile:1
#
# One Dockerfile, one image per binary. Build a service with its target:
#
#   docker build --target gateway     -t pdfpipe/gateway .
#   docker build --target fetcher     -t pdfpipe/fetcher .
#   docker build --target parser      -t pdfpipe/parser .
#   docker build --target embedder    -t pdfpipe/embedder .
#   docker build --target ingester    -t pdfpipe/ingester .
#   docker build --target ingest-sink -t pdfpipe/ingest-sink .
#   docker build --target pdfpipe     -t pdfpipe/pdfpipe .
#   docker build --target parser-nomupdf -t pdfpipe/parser-nomupdf .   # no MuPDF (AGPL): PDFium
#
# (`docker compose build` builds them all; see docker-compose.yml.)
#
# Every binary is fully static and runs on distroless/static as the
# nonroot user (uid 65532). The parser and the all-in-one pdfpipe link
# MuPDF through go-fitz (cgo): they are linked statically against glibc
# with -tags netgo,osusergo, so that no glibc NSS lookup is needed at run
# time. CGO_ENABLED=0 would build them too, but go-fitz then panics at run
# time. Building for linux/arm64 works the same way (go-fitz ships arm64
# MuPDF libraries); build on an arm64 host or under emulation, since the
# cgo stage does not cross-compile.
#
# Licence: go-fitz and MuPDF are AGPL-3.0, so the parser and pdfpipe
# images are AGPL-3.0 works; the other images contain no MuPDF.

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# ---------------------------------------------------------------- build
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# The .git directory is not in the build context (.dockerignore). The
# deployment-file tests (test/deploy: compose-go, Kubernetes types,
# kustomize) are left out of the image's workspace: no binary needs them.
ENV GOFLAGS=-buildvcs=false
COPY . .
# One workspace build (go.work) of every binary, plus the stdlib-only
# healthcheck probe (distroless has no shell, curl or wget for compose
# healthchecks); then refuse to ship any binary that needs a dynamic loader.
# The module and build caches persist between builds as BuildKit cache mounts.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eux; \
    go work edit -dropuse=./test/deploy; \
    go mod download; \
    mkdir -p /out /out/data; \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ \
        ./services/gateway/cmd/gateway \
        ./services/fetcher/cmd/fetcher \
        ./services/embedder/cmd/embedder \
        ./services/ingester/cmd/ingester \
        ./tools/ingestsink/cmd/ingest-sink; \
    for pkg in ./services/parser/cmd/parser ./cmd/pdfpipe; do \
        CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
            -ldflags='-s -w -linkmode external -extldflags "-static"' \
            -o /out/ "$pkg"; \
    done; \
    CGO_ENABLED=0 go build -trimpath -tags nomupdf -ldflags='-s -w' \
        -o /out/parser-nomupdf ./services/parser/cmd/parser; \
    GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
        -o /out/healthcheck ./deploy/healthcheck/main.go; \
    for b in /out/*; do \
        [ -f "$b" ] || continue; \
        if ldd "$b" >/dev/null 2>&1; then echo "$b is dynamically linked" >&2; exit 1; fi; \
    done

# -------------------------------------------------------------- runtime
# Shared base of the images: distroless static, nonroot, JSON logs, the
# health endpoint (/healthz, /readyz, /metrics) on :8080 and the probe binary.
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
ENV HEALTH_ADDR=:8080 \
    LOG_FORMAT=json
USER 65532:65532

FROM runtime AS gateway
COPY --from=build /out/gateway /usr/local/bin/gateway
# 50052 APIKeyService (GRPC_SERVER_PORT), 50053 EmbeddingService + VectorizerService (GRPC_EMBEDDING_PORT)
EXPOSE 8080 50052 50053
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS fetcher
COPY --from=build /out/fetcher /usr/local/bin/fetcher
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fetcher"]

FROM runtime AS parser
COPY --from=build /out/parser /usr/local/bin/parser
# One temp file per document in flight. /tmp/pdfpipe is owned by nonroot, so
# a fresh named volume (compose) or an emptyDir (Kubernetes) there is writable
# under a read-only root filesystem.
COPY --from=build --chown=65532:65532 /out/data /tmp/pdfpipe
ENV TEMP_DIR=/tmp/pdfpipe
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/parser"]

# The parser without MuPDF (AGPL-3.0): PDFium in WebAssembly, MIT, no cgo.
FROM runtime AS parser-nomupdf
COPY --from=build /out/parser-nomupdf /usr/local/bin/parser
COPY --from=build --chown=65532:65532 /out/data /tmp/pdfpipe
ENV TEMP_DIR=/tmp/pdfpipe
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/parser"]

FROM runtime AS embedder
COPY --from=build /out/embedder /usr/local/bin/embedder
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/embedder"]

FROM runtime AS ingester
COPY --from=build /out/ingester /usr/local/bin/ingester
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ingester"]

# The reference cognicore.IngestService: stands in for the backend.
# It has no HTTP health endpoint (gRPC health on :50051 instead).
FROM runtime AS ingest-sink
COPY --from=build /out/ingest-sink /usr/local/bin/ingest-sink
# /data, owned by nonroot, so a fresh named volume mounted there is writable
# (INGEST_SINK_OUT=/data/ingested.jsonl); the default output is stdout.
COPY --from=build --chown=65532:65532 /out/data /data
ENV INGEST_SINK_ADDR=:50051
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/ingest-sink"]

# Every service in one process on an embedded NATS server (`pdfpipe up`),
# or `pdfpipe run FILE.pdf` / `pdfpipe status TASK_ID`. `up` has no HTTP
# health endpoint; it serves 50052 and 50053 on every interface of the
# container (set GRPC_AUTH_TOKEN / GRPC_TLS_* to secure them) and its NATS on
# the container's loopback: to reach NATS from outside, set
# NATS_LISTEN=0.0.0.0:4222 together with NATS_TOKEN (or NATS_USER and
# NATS_PASSWORD): the embedded server refuses an open listener without auth.
FROM runtime AS pdfpipe
COPY --from=build /out/pdfpipe /usr/local/bin/pdfpipe
COPY --from=build --chown=65532:65532 /out/data /data
ENV NATS_LISTEN=127.0.0.1:4222 \
    GRPC_SERVER_PORT=0.0.0.0:50052 \
    GRPC_EMBEDDING_PORT=0.0.0.0:50053 \
    NATS_STORE_DIR=/data/nats \
    TEMP_DIR=/tmp
WORKDIR /data
EXPOSE 4222 50052 50053
ENTRYPOINT ["/usr/local/bin/pdfpipe"]
CMD ["up"]
