#!/usr/bin/env bash
# Builds the helm CLI from its Go module (testground/go/helm pins the release), once per version,
# into the same cache as the control plane: a directory there holds a complete build or is rebuilt.
# The tests use it for `helm lint` and `helm template`; nothing at run time needs it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION="$(module_version "$GO_DIR/helm" helm.sh/helm/v3)"
HELM_BIN="$CACHE_DIR/helm-$HELM_VERSION"

# The last line of output is always the helm binary's path (scripts and tests read it).
if [[ -f "$HELM_BIN/.complete" ]]; then
  echo "cached: $HELM_BIN"
  echo "$HELM_BIN/helm"
  exit 0
fi

# Helm's own Makefile stamps its version and the Kubernetes version it assumes (client-go v0.X.Y
# means Kubernetes 1.X, used by `helm lint` and .Capabilities) into the binary; do the same.
client_go="$(cd "$GO_DIR/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"
k8s_minor="${client_go#v0.}"; k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

started=$SECONDS tmp="$HELM_BIN.partial"
rm -rf "$tmp" && mkdir -p "$tmp"
echo "building into $HELM_BIN: helm.sh/helm/v3/cmd/helm"
(cd "$GO_DIR/helm" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" helm.sh/helm/v3/cmd/helm)
"$tmp/helm" version --short >/dev/null
touch "$tmp/.complete"
rm -rf "$HELM_BIN" && mv "$tmp" "$HELM_BIN"
echo "built $HELM_BIN in $((SECONDS - started)) s"
echo "$HELM_BIN/helm"
