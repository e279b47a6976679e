#!/usr/bin/env bash
# Builds etcd, the Kubernetes control plane, kubectl and KWOK from their Go modules, once per
# version: a directory in the cache holds a complete set or is rebuilt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build() { # build <module dir> <output dir> <ldflags> <package>...
  local dir="$1" out="$2" ldflags="$3"; shift 3
  if [[ -f "$out/.complete" ]]; then
    echo "cached: $out"
    return
  fi
  local started=$SECONDS tmp="$out.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  echo "building into $out: $*"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/" "$@")
  touch "$tmp/.complete"
  rm -rf "$out" && mv "$tmp" "$out"
  echo "built $out in $((SECONDS - started)) s"
}

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build "$GO_DIR/etcd" "$ETCD_BIN" "" .
build "$GO_DIR/kubernetes" "$K8S_BIN" "$version_flags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
build "$GO_DIR/kwok" "$KWOK_BIN" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
