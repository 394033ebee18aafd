#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the one-machine test cluster's binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl, kube-proxy) from
# upstream release Go modules pinned in tests/k8s/cluster/go.mod, into
# build/k8s/bin. A no-op when the binaries match the stamp (version, go.mod,
# go.sum, Go version). Cold: tens of minutes on a small machine; Go's caches
# make a rebuild after a version bump much faster.
# Usage: scripts/k8s-build.sh [--force]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOD="$ROOT/tests/k8s/cluster"
OUT="${XM_K8S_BIN:-$ROOT/build/k8s/bin}"
CMDS="etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy"
PKGS="./cmd/etcd
k8s.io/kubernetes/cmd/kube-apiserver
k8s.io/kubernetes/cmd/kube-controller-manager
k8s.io/kubernetes/cmd/kube-scheduler
k8s.io/kubernetes/cmd/kubelet
k8s.io/kubernetes/cmd/kubectl
k8s.io/kubernetes/cmd/kube-proxy"

say() { printf 'k8s-build: [%4ds] %s\n' "$SECONDS" "$*"; }

# Go from the official tarball lives in /usr/local/go, often not on PATH.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || {
	echo "k8s-build: Go is not installed; the test cluster is built with Go >= 1.24" \
		"(golang.org/dl tarball in /usr/local/go)" >&2
	exit 1
}
gominor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
[ "${gominor:-0}" -ge 24 ] || {
	echo "k8s-build: $(go env GOVERSION) is too old for Kubernetes 1.34; need Go >= 1.24" >&2
	exit 1
}
# Never let the go command fetch another toolchain: the machine's Go builds it.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"

version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$MOD/go.mod")
stamp="$version $(go env GOVERSION) $(cat "$MOD/go.mod" "$MOD/go.sum" "$MOD"/cmd/*/*.go | sha256sum | cut -c1-16)"

up_to_date() {
	[ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] || return 1
	for c in $CMDS; do [ -x "$OUT/$c" ] || return 1; done
}
if [ "${1:-}" != --force ] && up_to_date; then
	say "up to date (Kubernetes $version) in $OUT"
	exit 0
fi

mkdir -p "$OUT"
rm -f "$OUT/.stamp"
cd "$MOD"
say "Kubernetes $version with $(go env GOVERSION): downloading modules (proxy $(go env GOPROXY))"
go mod download
say "counting packages"
# shellcheck disable=SC2086
total=$(go list -deps $PKGS | wc -l)
say "compiling $total packages (7 commands in one go build; progress every 30 s)"

# go build -v names each package as it is compiled (not those already in the
# cache); a ticker prints the count so a long cold build never looks hung.
count_file=$(mktemp /tmp/xm-k8s-build.XXXXXX)
trap 'rm -f "$count_file"; [ -n "${ticker:-}" ] && kill "$ticker" 2>/dev/null; true' EXIT
(
	while sleep 30; do
		say "still building: $(wc -l <"$count_file")/$total packages compiled this run"
	done
) &
ticker=$!
set +e
# shellcheck disable=SC2086
go build -v -p "${XM_K8S_BUILD_JOBS:-2}" -trimpath -ldflags='-s -w' -o "$OUT/" $PKGS 2>&1 |
	tee -a "$count_file" | grep -v '^[a-zA-Z0-9_.~/-]*$' >&2
status=${PIPESTATUS[0]}
set -e
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
ticker=
if [ "$status" != 0 ]; then
	echo "k8s-build: go build failed (status $status); see the errors above" >&2
	exit 1
fi
for c in $CMDS; do
	[ -x "$OUT/$c" ] || { echo "k8s-build: $OUT/$c missing after the build" >&2; exit 1; }
done
echo "$stamp" >"$OUT/.stamp"
say "done: $CMDS in $OUT (Kubernetes $version)"
