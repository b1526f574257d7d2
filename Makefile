# pdfpipe — common tasks. `make help` lists them.
.PHONY: help demo test build generate check-proto

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

demo: ## run the main job on a generated PDF (bin/chunks.jsonl)
	bash scripts/demo.sh

test: ## every check and test (installs what the tests need)
	bash scripts/test.sh

build: ## build every binary into bin/
	mkdir -p bin
	go build -o bin/ ./cmd/pdfpipe ./tools/ingestsink/cmd/ingest-sink \
		./services/gateway/cmd/gateway ./services/fetcher/cmd/fetcher ./services/parser/cmd/parser \
		./services/embedder/cmd/embedder ./services/ingester/cmd/ingester

generate: ## regenerate the gRPC code from proto/
	$(MAKE) -C proto generate

check-proto: ## fail if the generated gRPC code is stale
	$(MAKE) -C proto check
