#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules, cached by version outside
# the repo: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3) and kwok (sigs.k8s.io/kwok). A second run with the
# binaries present returns at once. See docs/local-cluster.md.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.10}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${KOPF_TS_CACHE:-$HOME/.cache/kopf-ts}"
BIN="$CACHE/k8s/$K8S_VERSION/bin"
WORK="$CACHE/k8s/$K8S_VERSION/src"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
# Two cores: a parallel link of the apiserver and the controller-manager is what needs memory.
export GOMAXPROCS="${GOMAXPROCS:-2}"

log() { printf '[cluster build] %s\n' "$*" >&2; }
have_all() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok; do
    [ -x "$BIN/$b" ] || return 1
  done
}

if have_all; then
  log "binaries for $K8S_VERSION present in $BIN"
  echo "BIN=$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
mkdir -p "$BIN" "$WORK"
start=$(date +%s)

build_kubernetes() {
  local d="$WORK/kubernetes" minor="v0.${K8S_VERSION#v1.}"
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kube-scheduler" ] && [ -x "$BIN/kubectl" ] && return 0
  mkdir -p "$d"
  log "kubernetes $K8S_VERSION: resolving staging modules"
  local gomod
  gomod=$(cd "$d" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; return 1; }
  {
    echo "module kopfts.local/k8sbuild"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # The release's go.mod replaces each staging module with a local folder; a dependent
    # module must point them at their published versions instead.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#replace \1 => \1 '"$minor"'#p' "$gomod"
  } >"$d/go.mod"
  log "kubernetes: $(grep -c '^replace' "$d/go.mod") staging replaces"
  cat >"$d/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$d" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$d" && GOFLAGS=-mod=mod go mod tidy)
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ld="$ld -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#v1.}"
  ld="$ld -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$cmd" ] && continue
    log "kubernetes: building $cmd"
    local t0; t0=$(date +%s)
    (cd "$d" && go build -trimpath -ldflags "$ld" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
    log "kubernetes: $cmd built in $(( $(date +%s) - t0 ))s"
  done
}

build_etcd() {
  local d="$WORK/etcd"
  [ -x "$BIN/etcd" ] && return 0
  mkdir -p "$d"
  cat >"$d/go.mod" <<GOMOD
module kopfts.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat >"$d/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "etcd $ETCD_VERSION: building"
  (cd "$d" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kwok() {
  [ -x "$BIN/kwok" ] && return 0
  log "kwok $KWOK_VERSION: building"
  local g="$WORK/kwok-bin"
  GOBIN="$g" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$g/kwok" "$BIN/kwok"
  # The stage configs ship in kwok's module folder.
  local modd
  modd=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kwok@$KWOK_VERSION" 2>/dev/null || true)
  [ -n "$modd" ] || modd=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  mkdir -p "$BIN/../kwok-stages"
  for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cp "$modd/kustomize/stage/$s" "$BIN/../kwok-stages/$(basename "$s")"
  done
}

build_etcd
build_kwok
build_kubernetes
have_all
log "all binaries in $BIN after $(( $(date +%s) - start ))s"
du -sh "$BIN" >&2 || true
echo "BIN=$BIN"
