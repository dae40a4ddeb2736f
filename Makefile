# appreg: thin wrappers over the go tool. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
DIST  ?= dist
BIN   ?= bin
GOTEST_FLAGS ?= -timeout 12m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build the handler, azemu, funchost and appreg into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./handler ./cmd/...

.PHONY: package
package: ## stage dist/ (host.json, one folder per function, a static linux/amd64 handler) and zip it into bin/appreg-dist.zip
	$(GO) run ./cmd/azemu stage --dist $(DIST) --release --goos linux --goarch amd64 --zip $(BIN)/appreg-dist.zip

RUN_DIR ?= .run
EXAMPLES ?= examples

.PHONY: run
run: build package ## run everything locally: local Azure, Functions host, handler, the examples (RUN_ONCE=1: then exit)
	@# dist/ holds a linux/amd64 handler for Azure; elsewhere, run one built for this machine.
	@if [ "$$($(GO) env GOOS)/$$($(GO) env GOARCH)" != linux/amd64 ]; then \
		echo "rebuilding $(DIST)/handler for $$($(GO) env GOOS)/$$($(GO) env GOARCH) to run it here"; \
		$(GO) build -o $(DIST)/handler ./handler; \
	fi
	$(BIN)/azemu run --dist $(DIST) --dir $(RUN_DIR) --examples $(EXAMPLES)$(if $(RUN_ONCE), --once)

.PHONY: test
test: ## vet and run every test (the local Azure runs in-process; nothing leaves this machine)
	$(GO) vet ./...
	$(GO) test $(GOTEST_FLAGS) ./...

.PHONY: race
race: ## run the tests with the race detector
	$(GO) test -race $(GOTEST_FLAGS) ./...

CHAOS ?=
.PHONY: chaos
chaos: ## the chaos runs at full size (faults, outages, kills, 3 hosts), printing their tables; CHAOS=Registrations|ForbiddenForEver|MultiHost|Throughput runs one
	APPREG_CHAOS=full $(GO) test ./e2e/ -run '^TestChaos$(CHAOS)' -count=1 -v -timeout 45m

.PHONY: bench
bench: ## run the benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: lint
lint: $(BIN)/staticcheck ## gofmt, go vet, staticcheck, and go.mod/go.sum as go mod tidy leaves them
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	@cd tools && $(GO) mod tidy -diff >/dev/null || { echo "tools/go.mod is not tidy: run (cd tools && go mod tidy)"; exit 1; }

# staticcheck comes from the tools module (tools/go.mod), so the product's go.mod stays lean.
$(BIN)/staticcheck: tools/go.mod tools/go.sum
	@mkdir -p $(BIN)
	cd tools && $(GO) build -o ../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

.PHONY: clean
clean: ## remove build output
	rm -rf $(DIST) $(BIN)
