SHELL := /bin/bash
# fame-go developer targets. `make demo` runs the math example on loopback; `make test` runs
# the unit and end-to-end tests with the race detector.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 5m
BENCHTIME ?= 1s
PKGS      := ./...

# The docker compose deployment: start, run, run-verbose, stop, clean-compose, compose-test.
include compose/make.mk

.PHONY: all build test bench bench-compare bench-cluster bench-ceiling bench-instr bench-fullstack bench-wakeups bench-overlay-profile fuzz vet demo interop scale clean env-table status-screenshot

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/fame ./examples/math/math-agent ./examples/math/math-client

# go.mod and go.sum must be tidy: `go mod tidy -diff` prints what tidy would change and fails.
vet:
	$(GO) mod tidy -diff
	$(GO) vet $(PKGS)

# Rewrite README.md's FAME_* variable table from config/vars.go (config's TestEnvTable fails
# while the two differ).
env-table:
	$(GO) test ./config -run '^TestEnvTable$$' -update-env-table

test: vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# Each fuzz target runs for FUZZTIME (default 5 minutes); override with `make fuzz FUZZTIME=30s`.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# fame-go vs the reference TS sentinel under the same load; rewrites BENCHMARKS.md (needs Node 20, jq, python3, curl).
bench-compare: build
	BIN=$(BIN) GO=$(GO) ./scripts/bench-compare.sh

# What one hop between clustered sentinels costs: a single sentinel against sentinels A and B
# clustered over the embedded NATS (client on A, math agent on B), sequential and 50 callers,
# interleaved; prints the markdown section bench-compare also writes (BENCH_REPEAT, default 3;
# PROFILE=1 adds both sentinels' CPU profiles).
bench-cluster: build
	BIN=$(BIN) GO=$(GO) ./scripts/bench-cluster.sh

# The latency ceiling: a bare coder/websocket relay in the topology of a real call, caller, relay
# and echo agent as three processes and as one (loadgen/ceiling); CEILING_D per load (default 10s).
CEILING_D ?= 10s
bench-ceiling: build
	$(BIN)/fame bench-ceiling -d $(CEILING_D)

# Instructions per call of the sentinel, signatures and verifications per overlay call, the
# crypto floor (valgrind's callgrind; INSTR_D per run, default 5s). With BASE=<ref>: instructions
# per operation of the hot-path benchmarks and per sentinel call, BASE against the working tree
# (scripts/bench-instr-ab.sh; INSTR_ROUNDS, default 3).
BASE ?=
bench-instr:
	BIN=$(BIN) GO=$(GO) ./scripts/bench-instr.sh $(BASE)

# The full Go stack against the full reference TS stack (TS client, sentinel and agent) at 32
# callers, and our stack signed vs signed + channel-encrypted vs strict-overlay + welcome admission at
# 50 (Node 20, jq, python3); prints
# the markdown section BENCHMARKS.md keeps.
bench-fullstack: build
	BIN=$(BIN) GO=$(GO) ./scripts/bench-fullstack.sh

# Where an overlay call's CPU goes beyond its crypto: sentinel and client CPU profiles at 50
# callers, split into ed25519 verify / sign, the rest of security, syscalls, GC (OVERLAY_PROFILE_D
# seconds, default 10); prints the markdown section BENCHMARKS.md keeps.
bench-overlay-profile: build
	BIN=$(BIN) GO=$(GO) ./scripts/bench-overlay-profile.sh

# Goroutine wake-ups per call (runtime trace of an in-process sentinel, agent and client, and of
# the one-process ceiling), by where the woken goroutine blocked.
bench-wakeups:
	set -o pipefail; $(GO) test -run '^$$' -bench Wakeups -benchtime 5000x -v ./loadgen/ ./loadgen/ceiling/ | grep -v '^\(goos\|goarch\|pkg\|cpu\):'


# Scale checks (CI runs them at 10k): sentinel memory and goroutines per idle, heart-beating node
# against the floor of bare WebSocket connections, attach rate, an active client's p99 with and
# without the idle nodes; 1M bindings. `make scale SCALE_NODES=100000` for the 100k case (needs
# RLIMIT_NOFILE of 102000 per process; the test raises its soft limit itself).
SCALE_NODES ?= 10000
scale:
	SCALE_NODES=$(SCALE_NODES) $(GO) test -tags scale -count=1 -v -timeout 20m ./scale/

# A sentinel and two math replicas on loopback, the client, whoami calls; stops what it started.
demo: build
	BIN=$(BIN) ./scripts/demo.sh

# The real Naylence TS and Python peers against fame-go (needs Node 20 and Python >= 3.12; installs
# the pinned npm packages and, with pip --require-hashes, the pinned PyPI packages into
# interop/py/.venv, reused while interop/py/requirements.txt is unchanged).
interop:
	./interop/py/venv.sh >/dev/null
	$(GO) test -tags interop -count=1 -timeout 15m -v ./interop/

clean:
	rm -rf $(BIN)

# The status page in Debian's chromium (installed when missing): runs the browser test and
# rewrites docs/status-page.png from it.
status-screenshot:
	./scripts/chromium-install.sh
	STATUS_SCREENSHOT=1 $(GO) test -count=1 -run 'TestStatusPageBrowser$$' -v ./e2e/

# Replica drain: a sentinel, two math replicas and six client sessions under load (one process,
# real WebSockets); drains the replica with the most sessions through the admin endpoint and
# prints each session moving (from which replica to which) and that every call succeeded.
.PHONY: drain-demo
drain-demo:
	$(GO) run ./examples/drain-demo

# The Helm chart (deploy/helm/fame): helm lint and helm template for each profile, then the Go
# test that checks the rendered manifests against what fame reads (deploy/helm/helm_test.go).
# helm is built once from the Go module proxy into bin/ and reused (the stamp names the version).
HELM_VERSION ?= v3.22.0
HELM_STAMP   := $(BIN)/.helm-$(HELM_VERSION)
$(HELM_STAMP):
	GOBIN=$(abspath $(BIN)) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@
HELM_SETS := "" "--set profile=overlay" "--set profile=direct,credentials.replicaClientSecret=ci-secret" \
	"--set profile=strict,credentials.existingSecret=c,ca.existingSecret=ca,tls.existingSecret=tls,sentinel.kind=StatefulSet"
helm-check: $(HELM_STAMP)
	@set -e; for s in $(HELM_SETS); do \
		$(BIN)/helm lint --strict deploy/helm/fame $$s >/dev/null; \
		$(BIN)/helm template rel deploy/helm/fame $$s >/dev/null; \
		echo "helm lint + template ok: $${s:-defaults}"; done
	HELM=$(abspath $(BIN))/helm $(GO) test -count=1 ./deploy/helm/
.PHONY: helm-check

# The A2A task example (examples/tasks): a background agent whose count task reports every step.
# task-subscribe-demo follows a task's status updates to completion; task-cancel-demo cancels a
# long task mid-way (tasks/cancel) and shows it ended canceled. Each by address, then by capability.
.PHONY: task-subscribe-demo task-cancel-demo
task-subscribe-demo:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/fame ./examples/tasks/task-agent ./examples/tasks/task-client
	BIN=$(BIN) ./scripts/task-demo.sh subscribe

task-cancel-demo:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/fame ./examples/tasks/task-agent ./examples/tasks/task-client
	BIN=$(BIN) ./scripts/task-demo.sh cancel

# Chaos and soak (package chaos, `fame chaos`): a strict-profile stack of real processes (fame
# sentinel on a bbolt store, three math-agent replicas, oauth2/welcome/ca) under keyed
# at-least-once, sticky and streaming load, with seeded faults (kill -9 and restart of a replica
# or of the sentinel, SIGSTOP 1-10 s, replica drains, a slow-reading client). Prints the summary,
# writes CHAOS_OUT (one JSON object) and fails when a criterion does. RELIABILITY.md has figures.
DURATION      ?= 2m
SEED          ?= 1
CHAOS_PROFILE ?= strict
CHAOS_OUT     ?= $(BIN)/chaos-result.json
.PHONY: chaos chaos-ci chaos-ts
chaos: build
	$(BIN)/fame chaos -duration $(DURATION) -seed $(SEED) -profile $(CHAOS_PROFILE) -out $(CHAOS_OUT)

# The overlay profile with one real TypeScript client (interop/'s pinned @naylence packages,
# Node 20) calling add beside the Go load: npm ci in interop/ once, as make interop does.
chaos-ts: build
	@test -d interop/node_modules/@naylence/runtime || (cd interop && npm ci --no-audit --no-fund)
	$(BIN)/fame chaos -duration $(DURATION) -seed $(SEED) -profile overlay -ts-client -out $(CHAOS_OUT)

# Two minutes, seed 1, the strict profile: what CI runs (.ci/run; RELIABILITY.md has its runs).
chaos-ci: build
	$(BIN)/fame chaos -duration 2m -seed 1 -profile strict -out $(BIN)/chaos-ci-result.json
