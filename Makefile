# meshd's two set-up commands are `make lab` (the main job: a BGP lab with
# meshd collecting from it) and `make test` (every test). Both install what
# they need first.

GO      ?= go
BIN     := bin/meshd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build tools test check generate-check unit integration lab lab-down bench fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/meshd

tools:
	bash scripts/install-tools.sh

# test: everything CI checks, in order of how fast it fails.
test: tools check unit integration

check: generate-check
	@bad=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^ygot/')); \
	  if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

# The generated bindings must be exactly what models/ generates.
generate-check:
	$(GO) generate ./ygot/...
	@git diff --exit-code -- ygot/ || { echo "ygot/ is stale: run 'go generate ./ygot/...' and commit"; exit 1; }

unit:
	$(GO) test -race -count=1 ./...

# Integration tests need root (namespaces, veth, raw sockets) and the tools.
integration: build
	$(GO) test -tags integration -count=1 -p 1 -timeout 40m ./...

lab: tools build
	$(BIN) lab up

lab-down: build
	$(BIN) lab down

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

# fuzz: every fuzz target for FUZZTIME each (go test takes one -fuzz target
# a run). New inputs that fail land in the package's testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
