# meshd's two set-up commands are `make lab` (the main job: a BGP lab with
# meshd collecting from it) and `make test` (every test). Both install what
# they need first.

GO      ?= go
# Three binaries, one per job: the collector, the on-box agent, and the
# lab (which runs the other two from bin/).
BINS    := meshd meshd-probe meshd-lab
LAB     := bin/meshd-lab
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build web-assets tools test check generate-check unit integration lab lab-down lab-verify lab-soak lab-cluster probe-soak lab-scale bench bench-e2e bench-page bench-rpki bench-rib soak soak-short cluster-chaos fuzz clean

all: build

build: web-assets
	@for b in $(BINS); do echo "$(GO) build -o bin/$$b ./cmd/$$b"; \
	  $(GO) build -ldflags "$(LDFLAGS)" -o bin/$$b ./cmd/$$b || exit 1; done

tools:
	bash scripts/install-tools.sh

# web-assets: the status page's chart library (uPlot, pinned with its
# sha512 in sinks/web/package-lock.json) from the npm registry, into the
# folder the binary embeds; no npm needed. Not in git: it is another
# project's code.
WEB := sinks/web
web-assets: $(WEB)/assets/vendor/uPlot.iife.min.js

$(WEB)/assets/vendor/uPlot.iife.min.js: $(WEB)/package-lock.json
	$(GO) run ./internal/tools/webassets -lock $(WEB)/package-lock.json -out $(WEB)/assets/vendor

# test: everything CI checks, in order of how fast it fails.
test: tools web-assets check unit integration

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
	$(LAB) up $(LABFLAGS)

lab-down: build
	$(LAB) down

# lab-verify: compare what meshd shows with each router's own view in the
# running lab (exits non-zero on a mismatch).
lab-verify: build
	$(LAB) verify

# The namespace lab runs once per machine: these hold its lock. TestLabVerify
# runs verify after every fault kind in a random order (MESHD_LAB_SEED
# replays one) and after a quiet period; `make integration` runs it with 5
# routers and 30 s of quiet.
LABLOCK ?= /tmp/meshd-lab.lock
LABTEST := $(GO) test -tags integration -count=1 -p 1 -v -run '^TestLabVerify$$' ./clab/netlab

# lab-cluster: the lab's replicas (TestLabReplicas) at full length: 4
# routers, the default lease, a kill, a pause and a cut from etcd, with
# verify after each (CI: 2 routers, a 2 s lease, a kill and a cut).
lab-cluster: tools
	flock $(LABLOCK) env MESHD_LAB_REPLICAS_FULL=1 $(GO) test -tags integration -count=1 -p 1 -v -run '^TestLabReplicas$$' -timeout 30m ./clab/netlab

# lab-soak: a quiet 10 minutes that must produce no event, and (TestLab,
# with the RPKI cache) no alert.
lab-soak: tools
	flock $(LABLOCK) env MESHD_LAB_QUIET=10m $(GO) test -tags integration -count=1 -p 1 -v -run '^(TestLabVerify|TestLab)$$' -timeout 90m ./clab/netlab

# probe-soak: the probe's sessions idle for 10 minutes, with never a
# verdict other than HEALTHY and every loss the kernel's (CI: 1 minute).
probe-soak: tools
	env MESHD_IDLE_MINUTES=10 $(GO) test -tags integration -count=1 -v -run '^TestIdleNoFalseDegraded$$' -timeout 30m ./probe

# lab-scale: the same on 20 routers.
lab-scale: tools
	flock $(LABLOCK) env MESHD_LAB_ROUTERS=20 $(LABTEST) -timeout 90m

# bench: the component benches (the whole-binary one is bench-e2e).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s $$($(GO) list ./... | grep -v /bench/e2e)

# bench-e2e: the whole-binary benchmark (bench/e2e): the real `meshd run`
# with every sink on, a real influxd, a simulated gNMI fleet, BMP full
# tables and gNMI subscribers; E2E picks scenarios (a -bench pattern
# under E2E/), COUNT repeats each. It holds the bench lock so two
# benchmarks never share the cores.
E2E   ?= .
COUNT ?= 1
bench-e2e: tools
	flock /tmp/meshd-bench.lock $(GO) test -run '^$$' -bench 'E2E/$(E2E)' -benchtime 1x -count $(COUNT) -timeout 180m ./bench/e2e/

# bench-page: the status page in headless Chromium on the real meshd
# collecting 1,000 simulated sessions (bench/e2e/page.go); COUNT repeats.
bench-page: tools build
	flock /tmp/meshd-bench.lock $(GO) test -run '^$$' -bench 'Page' -benchtime 1x -count $(COUNT) -timeout 60m ./bench/e2e/

# bench-rpki: route origin validation on the real meshd (bench/e2e/rpki.go):
# a 1M-route BMP table validated as it comes against a real stayrtr, then
# VRP deltas and a whole set changed; COUNT repeats.
bench-rpki: tools
	flock /tmp/meshd-bench.lock $(GO) test -run '^$$' -bench 'RPKI' -benchtime 1x -count $(COUNT) -timeout 90m ./bench/e2e/

# bench-rib: the RIBs served over gNMI on the real meshd (bench/e2e/rib.go):
# a 1M-route BMP table streamed ON_CHANGE to a subscriber as it comes,
# then read whole by a ONCE subscription; COUNT repeats.
bench-rib: tools
	flock /tmp/meshd-bench.lock $(GO) test -run '^$$' -bench 'RIB' -benchtime 1x -count $(COUNT) -timeout 90m ./bench/e2e/

# soak: the soak and chaos harness (bench/e2e/soak.go): the real `meshd
# run` at 20k points/s from a simulated gNMI fleet, each fault (InfluxDB
# down, InfluxDB slow, kill -9) for SOAKFAULT, then what reached InfluxDB
# counted against what the fleet sent; prints the table of the README's
# reliability section and fails a row that lost a point. SOAK picks rows
# (a -bench pattern under Soak/: influx-down, influx-slow, kill-9). It
# holds the bench lock: its recovery times and RSS are figures.
SOAK      ?= .
SOAKFAULT ?= 5m
soak: tools
	flock /tmp/meshd-bench.lock env MESHD_SOAK_FAULT=$(SOAKFAULT) $(GO) test -run '^$$' -bench 'Soak/$(SOAK)' -benchtime 1x -timeout 180m ./bench/e2e/

# soak-short: every soak fault for 20 s at 2,000 points/s, the same
# checks. `make integration` runs it too (TestSoakShort), so CI does.
soak-short: tools
	$(GO) test -tags integration -count=1 -p 1 -v -run '^TestSoakShort$$' -timeout 20m ./bench/e2e/

# cluster-chaos: the cluster harness (bench/e2e/cluster.go) at issue 18's
# size: three `meshd run` replicas on a real etcd sharing 1,000 simulated
# targets, each fault (kill-9 ten times, pause, partition, restart) in
# turn; prints the table. CLUSTER picks rows. `make integration` runs the
# kill row small (TestClusterShort), so CI does.
CLUSTER ?= .
cluster-chaos: tools
	flock /tmp/meshd-bench.lock $(GO) test -run '^$$' -bench 'Cluster/$(CLUSTER)' -benchtime 1x -timeout 180m ./bench/e2e/

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
