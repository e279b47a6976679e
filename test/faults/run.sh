#!/usr/bin/env bash
# The fault suite (make test-faults): a test ground of its own (port block FAULTS_PORT_BASE, default
# 28000; state in .testground-faults), so restarting its API server never touches the ground other
# tests run on. Brings it up fresh, runs test/faults/*.test.ts one file at a time, takes it down
# (pass or fail), then prints the figures and fails if any must-be-zero figure is not zero.
#   FAULTS_SHORT=1         fewer iterations, the load scenario at 300 Deployments (what make test runs)
#   FAULTS_SEED=<n>        replay the random kill points, delays and garbage of an earlier run
#   FAULTS_REUSE_GROUND=1  use the fault ground if it is already up, and leave it up
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The project's Node (>= 22) first on PATH when run directly, as make does.
node_bin="$(bash scripts/node-runtime.sh)" || exit 1
[[ -z "$node_bin" ]] || export PATH="$node_bin:$PATH"
export TESTGROUND_PORT_BASE="${FAULTS_PORT_BASE:-28000}"
export SPOT_TESTGROUND_STATE="${FAULTS_STATE:-$PWD/.testground-faults}"
export TESTGROUND_TIME_SCALE="${TEST_TIME_SCALE:-0.05}"
export TESTGROUND_FILE="$SPOT_TESTGROUND_STATE/ground.json"
export FAULTS_SEED="${FAULTS_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"
if [[ "$(realpath -m "$SPOT_TESTGROUND_STATE")" == "$(realpath -m "$PWD/.testground")" ]]; then
  echo "test-faults: refusing to run on the shared ground in .testground; it restarts components" >&2
  exit 2
fi
ledger="$(mktemp "${TMPDIR:-/tmp}/spot-faults-ledger.XXXXXX")"
export FAULTS_LEDGER="$ledger"
started=$SECONDS

echo "fault suite ($([[ "${FAULTS_SHORT:-}" == 1 ]] && echo short || echo full)), seed $FAULTS_SEED, ground $SPOT_TESTGROUND_STATE (port base $TESTGROUND_PORT_BASE)"
[[ "${FAULTS_REUSE_GROUND:-}" == 1 ]] || bash testground/scripts/cluster-down.sh >/dev/null
if ! bash testground/scripts/cluster-up.sh; then
  rm -f "$ledger"
  exit 1
fi
status=0
node --import tsx --test --test-concurrency=1 --test-timeout=1800000 $(find test/faults -name '*.test.ts' | sort) || status=$?
[[ "${FAULTS_REUSE_GROUND:-}" == 1 ]] || bash testground/scripts/cluster-down.sh >/dev/null
node --import tsx test/faults/report.ts "$ledger" $((SECONDS - started)) || status=1
rm -f "$ledger"
exit $status
