# Andon: `make run` starts the product with a demo plant, `make test` runs every test.
# Everything a target needs is installed by the target itself (see `deps`).

# Go 1.27.3: Go 1.26.8 (this machine's) has known vulnerabilities in net/http,
# crypto/tls and crypto/x509 that 1.26.9+ fixes; the go command fetches the
# approved 1.27.3 toolchain from the module proxy once (~75 MB).
export GOTOOLCHAIN ?= go1.27.3

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The vulnerability database: golang.org/x/vulndb at this version (bump to refresh).
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB := $(CURDIR)/.cache/vulndb-$(VULNDB_VERSION)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO      ?= go
export CGO_ENABLED ?= 0

.PHONY: fuzz soak run build test deps apt check-generated generate lint vulncheck bench bench-go screenshots docker vendor clean

## run: start Andon with the embedded broker, ./data and the built-in demo plant (http://localhost:8080)
run:
	$(GO) run -trimpath -ldflags "$(LDFLAGS)" ./cmd/andon serve --demo

## build: a static, CGO-free binary in bin/andon
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/andon ./cmd/andon

## test: every test, with the real brokers and the real browser they need, under the race
## detector where a C compiler is there for it (the binary itself stays CGO-free)
test: deps check-generated
	$(GO) vet ./...
	@if command -v gcc >/dev/null 2>&1; then \
	  echo "CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 8m ./..."; \
	  CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 8m ./... && \
	  echo "tests kept out of the race run (a race inside paho.golang, see ingest/client_redeliver_test.go; the crash tests, slow under it):" && \
	  $(GO) test -count=1 -run 'TestClientStoreFailureRedelivers|TestCrash' ./ingest ./cmd/andon; \
	else \
	  echo "no C compiler: running the tests without the race detector"; \
	  $(GO) test -count=1 -timeout 8m ./...; \
	fi
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2s
	@echo "every benchmark once, with tiny inputs, so that none rots (figures meaningless; make bench measures)"
	ANDON_BENCH_QUICK=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...
	$(GO) build -trimpath -o bin/andon-quick ./cmd/andon
	$(GO) run ./cmd/andon-bench -andon bin/andon-quick -quick

## fuzz: each fuzz target for FUZZTIME (make test runs them for 2 s each; their corpora always run as tests)
FUZZTIME ?= 1m
FUZZ_TARGETS = ./ingest:FuzzParse ./ingest:FuzzDecodeFlat ./ingest/sparkplug:FuzzHandle ./ingest:FuzzRules ./ingest:FuzzDialects ./ingest:FuzzHomeAssistant ./web:FuzzIngestMessages ./web:FuzzExportParams ./cmd/andon:FuzzConfigFile
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	done

## deps: install what the tests use but Go does not bring (mosquitto, chromium) where missing
deps:
	@command -v mosquitto >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin" command -v mosquitto >/dev/null 2>&1 || $(MAKE) --no-print-directory apt PKGS=mosquitto
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory apt PKGS=chromium

apt:
	@echo "installing $(PKGS) with apt-get"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(PKGS) >/dev/null

## generate: regenerate templ code (the generated *_templ.go files are committed)
generate:
	$(GO) tool templ generate

## check-generated: fail if `templ generate` would change the committed code
check-generated:
	@$(GO) tool templ generate >/dev/null 2>&1
	@if [ -n "$$(git status --porcelain -- '*_templ.go')" ]; then \
	  echo "templ generate changed these files; run 'make generate' and commit them:"; \
	  git status --porcelain -- '*_templ.go'; exit 1; fi

## sparkplug-proto: regenerate ingest/sparkplug/sparkplugpb/sparkplug_b.pb.go from its .proto (the generated code is
## committed; make test does not need protoc). protoc comes from apt, protoc-gen-go at go.mod's protobuf version.
.PHONY: sparkplug-proto
sparkplug-proto:
	@command -v protoc >/dev/null 2>&1 || $(MAKE) --no-print-directory apt PKGS=protobuf-compiler
	GOBIN=$(CURDIR)/.cache/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$$($(GO) list -m -f '{{.Version}}' google.golang.org/protobuf)
	cd ingest/sparkplug/sparkplugpb && PATH="$(CURDIR)/.cache/bin:$$PATH" protoc --proto_path=. \
	  --go_out=. --go_opt=paths=source_relative sparkplug_b.proto

## lint: vet, formatting, staticcheck and known vulnerabilities
lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$'); exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(MAKE) --no-print-directory vulncheck

## vulncheck: govulncheck against a local copy of the Go vulnerability database (built once into .cache/)
vulncheck:
	@if [ ! -f "$(VULNDB)/index/db.json" ]; then \
	  echo "building the vulnerability database $(VULNDB_VERSION) (once)"; \
	  $(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION) && \
	  rm -rf "$(VULNDB).tmp" && \
	  $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
	    -vulns "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out "$(VULNDB).tmp" && \
	  mv "$(VULNDB).tmp" "$(VULNDB)"; fi
	@bash .ci/vulncheck "$(VULNDB)"

## bench: the benchmark suite: cmd/andon-bench loads a fresh bin/andon (MQTT, websockets, HTTP) beside bare baselines,
## runs the history Go benchmarks, prints one table of medians and writes it into BENCHMARKS.md (about 10 min)
BENCH_RUNS ?= 3
bench: deps build
	$(GO) run ./cmd/andon-bench -andon bin/andon -runs $(BENCH_RUNS) -out BENCHMARKS.md

## bench-go: every package's Go benchmarks, three runs each (add -cpuprofile to look into one)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./db/ ./ingest/... ./plant/ ./web/
	$(GO) test -run '^$$' -bench 'IngestEmbedded|Pages|StartLargeDB' -count 3 ./cmd/andon

## soak: Andon under steady ingest and 200 websocket clients for SOAK (3m); heap and goroutines sampled into soak.csv
SOAK ?= 3m
soak:
	ANDON_SOAK_DURATION=$(SOAK) ANDON_SOAK_OUT=$(CURDIR)/soak.csv $(GO) test -run '^$$' -bench Soak -benchtime 1x -timeout 60m ./cmd/andon

## screenshots: refresh docs/screenshots from the browser tests (demo plant, phone, desktop, 4K)
screenshots: deps
	ANDON_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestBrowser' ./cmd/andon

## docker: build the container image (needs a Docker engine)
docker:
	docker build --build-arg VERSION=$(VERSION) -t andon:$(VERSION) .

## vendor: refresh the pinned front-end libraries from the npm registry
vendor:
	rm -rf .vendor-tmp && mkdir .vendor-tmp && cd .vendor-tmp && npm pack uplot@1.6.32 >/dev/null && tar xzf uplot-1.6.32.tgz
	cp .vendor-tmp/package/dist/uPlot.iife.min.js .vendor-tmp/package/dist/uPlot.min.css static/vendor/
	cp .vendor-tmp/package/LICENSE static/vendor/uPlot.LICENSE
	rm -rf .vendor-tmp

clean:
	rm -rf bin
