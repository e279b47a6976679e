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

# KWOK from a copy of its module with our patches applied (each says why), through a replace in a
# copy of the wrapper module; the wrapper's go.sum still pins every dependency.
kwok_dir="$GO_DIR/kwok"
if [[ ! -f "$KWOK_BIN/.complete" && ${#KWOK_PATCHES[@]} -gt 0 ]]; then
  work="$CACHE_DIR/kwok-src.partial"
  rm -rf "$work" && mkdir -p "$work/wrapper"
  src="$(cd "$GO_DIR/kwok" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$src" ]] || { echo "could not download sigs.k8s.io/kwok@$KWOK_VERSION" >&2; exit 1; }
  cp -R "$src" "$work/kwok" && chmod -R u+w "$work/kwok"
  for p in "${KWOK_PATCHES[@]}"; do
    (cd "$work/kwok" && git apply "$p") || { echo "$p does not apply to sigs.k8s.io/kwok@$KWOK_VERSION" >&2; exit 1; }
    echo "patched kwok: $(basename "$p")"
  done
  cp "$GO_DIR"/kwok/go.mod "$GO_DIR"/kwok/go.sum "$GO_DIR"/kwok/*.go "$work/wrapper/"
  (cd "$work/wrapper" && go mod edit -replace "sigs.k8s.io/kwok=$work/kwok")
  kwok_dir="$work/wrapper"
fi
build "$kwok_dir" "$KWOK_BIN" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
[[ "$kwok_dir" == "$GO_DIR/kwok" ]] || rm -rf "$CACHE_DIR/kwok-src.partial"
