# Entry points. The README explains each; the scripts under testground/scripts do the work.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Tests run simulated time 10x faster: Fargate's 50-75 s start takes 5-7.5 s, the 120 s warning 12 s. (The
# controller's own costs, API round trips and verification, do not shrink with it, so a faster scale
# would test an unfairly short window.)
TEST_TIME_SCALE ?= 0.1
# Everything below runs on Node >= 22 (Node 24 LTS is what the project is tested on): the machine's node
# when it is new enough, otherwise Node 24 installed once into the project's cache and put first on PATH.
NODE_BIN_DIR := $(shell bash scripts/node-runtime.sh)
ifneq ($(.SHELLSTATUS),0)
$(error could not provide Node >= 22 (scripts/node-runtime.sh failed; its message is above))
endif
ifneq ($(NODE_BIN_DIR),)
export PATH := $(NODE_BIN_DIR):$(PATH)
endif

.PHONY: help install binaries manifests cluster-up cluster-down cluster-status test test-unit test-e2e typecheck lint import-cycles demo versions

help:
	@echo "make demo          bring the local test ground up and watch a spot interruption move Deployments to Fargate"
	@echo "make test          typecheck, unit tests, then the end-to-end suite on a fresh local test ground"
	@echo "make cluster-up    start the local test ground (prints the kubeconfig path)"
	@echo "make cluster-down  stop it and remove its state"

versions:
	@echo "node $$(node --version) ($$(command -v node)), npm $$(npm --version), go $$(go version | awk '{print $$3}'), python $$(python3 --version | awk '{print $$2}')"

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: node_modules binaries

binaries:
	bash testground/scripts/build-binaries.sh
	bash testground/scripts/build-helm.sh
	bash testground/scripts/install-moto.sh
	bash testground/scripts/install-awscli.sh
	bash bench/scripts/install-matplotlib.sh

# Regenerate deployments/kubernetes/ after a chart change (a test checks they are equal).
manifests:
	bash scripts/generate-manifests.sh

cluster-up: node_modules
	bash testground/scripts/cluster-up.sh

cluster-down:
	bash testground/scripts/cluster-down.sh

cluster-status:
	bash testground/scripts/cluster-status.sh

typecheck: node_modules
	npx tsc -p tsconfig.json --noEmit

# Formatting and lint rules (biome.json); `npx biome check --write .` fixes what it can.
lint: node_modules
	npx biome ci --reporter=summary .

# No folder and no file may import one that imports it back (.dependency-cruiser.json).
import-cycles: node_modules
	npx depcruise --config .dependency-cruiser.json --output-type err src testground/src bench test demo

test-unit: node_modules
	npm run --silent test:unit

test-e2e: node_modules
	npm run --silent test:e2e

# The ground is started fresh for the suite and always taken down, pass or fail.
test: node_modules typecheck lint test-unit
	bash testground/scripts/cluster-down.sh >/dev/null
	TESTGROUND_TIME_SCALE=$(TEST_TIME_SCALE) bash testground/scripts/cluster-up.sh
	status=0; npm run --silent test:e2e || status=$$?; \
	  bash testground/scripts/cluster-down.sh >/dev/null; exit $$status
	FAULTS_SHORT=1 TEST_TIME_SCALE=$(TEST_TIME_SCALE) bash test/faults/run.sh

# The demo runs at real AWS timings unless DEMO_TIME_SCALE is set (0.25 makes it four times faster).
DEMO_TIME_SCALE ?= 1
demo: node_modules
	TESTGROUND_TIME_SCALE=$(DEMO_TIME_SCALE) bash testground/scripts/cluster-up.sh
	node --import tsx demo/demo.ts

# Benchmarks (not tests): every strategy against the same spot interruption, on a ground of their
# own at BENCH_TIME_SCALE (default 0.25), or on the running one with BENCH_REUSE_GROUND=1. Writes
# bench/results/<date>.md, .json and PNG plots. Settings: BENCH_N, BENCH_K, ... (see bench/scripts/bench.sh).
.PHONY: bench
bench: node_modules
	bash bench/scripts/bench.sh

# What one API call costs the controller's process over each kube client transport, side by side
# on the running ground (make cluster-up first). Writes bench/results/<date>-client-cost.md.
# Settings: BENCH_CLIENT_N (Deployments, 300), BENCH_CLIENT_ROUNDS (8), BENCH_CLIENT_IN_FLIGHT (50).
.PHONY: bench-client
bench-client: node_modules
	node --import tsx bench/client-cost.ts

# What the built controller holds once loaded, before it caches anything: the shipped (ASCII-only)
# bundle against esbuild's own output, taking turns. No ground needed. Settings: BENCH_LOAD_ROUNDS (5).
.PHONY: bench-load
bench-load: node_modules
	node --import tsx bench/load-memory.ts

, see run.sh there): crashes, restarts, outages, throttling, conflicts,
# bad input and load, on a test ground of its own (ports 28000+, state in .testground-faults), taken
# down after. Prints cases tried, faults injected, Deployments lost and half-patched. FAULTS_SHORT=1
# is the short form that make test runs; FAULTS_SEED=<n> replays a run.
.PHONY: test-faults
test-faults: node_modules
	TEST_TIME_SCALE=$(TEST_TIME_SCALE) bash test/faults/run.sh
