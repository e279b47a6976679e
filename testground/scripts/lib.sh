# Shared settings of the local test ground scripts (sourced, not run).
TESTGROUND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_DIR="$(cd "$TESTGROUND_DIR/.." && pwd)"
GO_DIR="$TESTGROUND_DIR/go"

# Binaries live outside the clone so a fresh clone on the same machine reuses them.
CACHE_DIR="${SPOT_TESTGROUND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spot-fargate-orchestrator}"
# The ground's own processes (the Fargate simulator, setup) run on the project's Node (>= 22), also when
# a script is run directly rather than through make, which sets PATH the same way.
NODE_BIN_DIR="$(bash "$PROJECT_DIR/scripts/node-runtime.sh")" || return 1
[[ -z "$NODE_BIN_DIR" || ":$PATH:" == *":$NODE_BIN_DIR:"* ]] || export PATH="$NODE_BIN_DIR:$PATH"
# Runtime state (certificates, etcd data, logs, pids) of the running cluster.
STATE_DIR="${SPOT_TESTGROUND_STATE:-$PROJECT_DIR/.testground}"

module_version() { # module_version <go.mod dir> <module path>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}

install_venv() { # install_venv <dir> <pip requirement> [check command...]
  # A virtualenv of its own in the cache, once. Made in place (a virtualenv cannot be moved: its
  # scripts name its path) and marked complete last, so an interrupted install is redone.
  local dir="$1" requirement="$2"
  shift 2
  if [[ -f "$dir/.complete" ]]; then
    echo "cached: $dir"
    return 0
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$requirement"
  if [[ $# -gt 0 ]]; then "$@"; fi
  touch "$dir/.complete"
  echo "installed $requirement into $dir"
}

K8S_VERSION="$(module_version "$GO_DIR/kubernetes" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$GO_DIR/etcd" go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(module_version "$GO_DIR/kwok" sigs.k8s.io/kwok)"

K8S_BIN="$CACHE_DIR/kubernetes-$K8S_VERSION"
ETCD_BIN="$CACHE_DIR/etcd-$ETCD_VERSION"
# KWOK is built with the fixes in testground/go/kwok/patches; their hash names the build, so a
# changed or added patch rebuilds it.
KWOK_PATCHES=("$GO_DIR"/kwok/patches/*.patch)
[[ -e "${KWOK_PATCHES[0]}" ]] || KWOK_PATCHES=()
KWOK_PATCH_ID=""
(( ${#KWOK_PATCHES[@]} == 0 )) || KWOK_PATCH_ID="-p$(cat "${KWOK_PATCHES[@]}" | sha256sum | cut -c1-8)"
KWOK_BIN="$CACHE_DIR/kwok-$KWOK_VERSION$KWOK_PATCH_ID"

# Ports sit in one block, away from the usual service ports; move the block with TESTGROUND_PORT_BASE.
PORT_BASE="${TESTGROUND_PORT_BASE:-26000}"
PORT_ETCD=$((PORT_BASE + 379))
PORT_ETCD_PEER=$((PORT_BASE + 380))
PORT_APISERVER=$((PORT_BASE + 443))
PORT_WEBHOOK=$((PORT_BASE + 444))
PORT_KCM=$((PORT_BASE + 257))
PORT_SCHEDULER=$((PORT_BASE + 259))
PORT_KWOK=$((PORT_BASE + 247))
PORT_SQS=$((PORT_BASE + 566))

MOTO_VERSION="5.2.5"
MOTO_VENV="$CACHE_DIR/moto-$MOTO_VERSION"

LOG_DIR="$STATE_DIR/logs"
PID_DIR="$STATE_DIR/pids"
PKI_DIR="$STATE_DIR/pki"
ADMIN_KUBECONFIG="$STATE_DIR/kubeconfig"
