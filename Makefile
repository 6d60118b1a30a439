# betasync: every target is documented; `make help` lists them.

GO       ?= go
PKGS     ?= ./...
# The race detector needs cgo (a C compiler). Where there is none, the tests
# still run, without it, and say so.
RACE     := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)
TIMEOUT  ?= 8m
FUZZTIME ?= 30s
BENCHCOUNT ?= 1
GOLANGCI := $(GO) run -modfile=scripts/tools.mod github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## run the daemon with an embedded NATS server (API on :4000, NATS on 127.0.0.1:4222)
	$(GO) run ./cmd/betasync

# Version, commit and build date for `betasync version` (debug.ReadBuildInfo
# fills in the commit when these are empty).
VERSION ?= 0.1.0-dev
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

.PHONY: build
build: ## build bin/betasync and bin/examplepod
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

.PHONY: test
test: ## run every test (race detector when cgo is available), no cache, with a timeout
	@[ -n "$(RACE)" ] || echo "note: cgo is off (no C compiler?): running without the race detector"
	$(GO) test $(RACE) -count=1 -timeout $(TIMEOUT) $(PKGS)

.PHONY: bench
bench: ## the performance table (cmd/betasync-bench, ~5 min; BENCH_PODS=... etc.), then the Go micro-benchmarks
	$(GO) build -o bin/betasync ./cmd/betasync
	BENCH_DAEMON=bin/betasync $(GO) run ./cmd/betasync-bench
	$(GO) test -run '^$$' -bench . -benchmem -count=$(BENCHCOUNT) .

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (make test runs only their seeds)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s .
	$(GO) test -run '^$$' -fuzz '^FuzzAppendBetas$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s .
	$(GO) test -run '^$$' -fuzz '^FuzzParseHours$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s .
	$(GO) test -run '^$$' -fuzz '^FuzzCommandPayloads$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./publisher

.PHONY: vet
vet: ## go vet and a gofmt check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l .); [ -z "$$out" ] || { echo "gofmt would change:"; echo "$$out"; exit 1; }

.PHONY: lint
lint: ## golangci-lint v2, pinned in scripts/tools.mod
	$(GOLANGCI) run $(PKGS)

.PHONY: tidy-check
tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	$(GO) mod tidy -diff

.PHONY: demo
demo: ## start the daemon and an example pod, walk the curl flow
	bash scripts/demo.sh

.PHONY: up
up: ## docker compose (needs LITELLM_MASTER_KEY): 3-node NATS cluster, two betasync replicas, one example pod
	docker compose up --build -d

.PHONY: down
down: ## docker compose: stop and remove everything
	docker compose down -v
