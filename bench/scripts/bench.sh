#!/usr/bin/env bash
# `make bench`: runs bench/run.ts on a test ground of its own, started fresh at BENCH_TIME_SCALE
# (default 0.25) and stopped afterwards, pass or fail. That ground has its own state directory
# (bench/results/tmp/ground) and port block (BENCH_PORT_BASE, default 27000), so cluster-down here
# never touches the ground in .testground that `make cluster-up` and the tests use.
# BENCH_REUSE_GROUND=1 runs on an already running ground instead (TESTGROUND_FILE, default
# .testground/ground.json) at whatever time scale it was started with.
# Every other BENCH_* variable is a setting of bench/run.ts (`node --import tsx bench/run.ts --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The project's Node (>= 22) first on PATH when run directly, as make does.
node_bin="$(bash scripts/node-runtime.sh)" || exit 1
[[ -z "$node_bin" ]] || export PATH="$node_bin:$PATH"

# The command as a shell would take it back: a value with spaces or quotes is single-quoted.
shell_word() {
  if [[ "$1" =~ ^[A-Za-z0-9_./,:=@+%-]*$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
command="make bench"
for var in $(compgen -e | grep '^BENCH_' | grep -v '^BENCH_COMMAND$' | sort); do
  command+=" $var=$(shell_word "${!var}")"
done

if [[ "${BENCH_REUSE_GROUND:-0}" == 1 ]]; then
  export TESTGROUND_FILE="${TESTGROUND_FILE:-$PWD/.testground/ground.json}"
  if [[ ! -f "$TESTGROUND_FILE" ]]; then
    echo "BENCH_REUSE_GROUND=1 but there is no ground description at $TESTGROUND_FILE (make cluster-up)" >&2
    exit 1
  fi
  [[ -n "${BENCH_TIME_SCALE:-}" ]] && echo "note: BENCH_TIME_SCALE is ignored when reusing a ground; its time scale is fixed at cluster-up" >&2
  command+=" TESTGROUND_FILE=$(shell_word "$TESTGROUND_FILE")"
  BENCH_COMMAND="$command" exec node --import tsx bench/run.ts "$@"
fi

if [[ -z "${BENCH_TIME_SCALE:-}" ]]; then
  BENCH_TIME_SCALE=0.25
  command+=" BENCH_TIME_SCALE=0.25"
fi
export SPOT_TESTGROUND_STATE="${BENCH_GROUND_STATE:-$PWD/bench/results/tmp/ground}"
export TESTGROUND_PORT_BASE="${BENCH_PORT_BASE:-27000}"
export TESTGROUND_FILE="$SPOT_TESTGROUND_STATE/ground.json"
bash testground/scripts/cluster-down.sh >/dev/null
trap 'bash testground/scripts/cluster-down.sh >/dev/null' EXIT
TESTGROUND_TIME_SCALE="$BENCH_TIME_SCALE" bash testground/scripts/cluster-up.sh
BENCH_COMMAND="$command" node --import tsx bench/run.ts "$@"
