#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the test cluster's images without a registry: static C binaries,
# each image one uncompressed layer, written as an OCI image layout archive
# (oci-layout, index.json, blobs/sha256/...) that `ctr images import` reads.
#
#   scripts/k8s-images.sh OUTDIR
#   scripts/k8s-images.sh --agent OUTDIR    only the xmesh image, rebuilt each time
#
# OUTDIR/pause.tar     xm.local/pause:1     /pause (the pod sandbox)
# OUTDIR/testsrv.tar   xm.local/testsrv:1   /bin/xm-serve, /bin/xm-load,
#                                           /bin/xm-whoami (tests/tools, tests/lib,
#                                           tests/k8s/images)
# OUTDIR/xmesh.tar     xm.local/xmesh:dev   (--agent) deploy/Dockerfile's content
#                                           without a registry: build/bin/xmesh-*, the
#                                           node scripts, the shell tools they use and
#                                           the shared libraries of all of it, from this host
# Rebuilt only when a source changed. Prints each image's reference and archive.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
agent=0
[ "${1:-}" = --agent ] && agent=1 && shift
OUT=${1:?usage: k8s-images.sh [--agent] OUTDIR}
CC=${CC:-gcc}
mkdir -p "$OUT"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# blob FILE DIR: store FILE under DIR/blobs/sha256/<digest>, print the digest.
blob() {
	local d
	d=$(sha "$1")
	mkdir -p "$2/blobs/sha256"
	cp "$1" "$2/blobs/sha256/$d"
	echo "$d"
}

# image NAME REF ENTRYPOINT FILE:PATH_IN_IMAGE...
image() {
	local name=$1 ref=$2 entry=$3 work layer cfg man ldig cdig mdig
	shift 3
	work=$(mktemp -d "$OUT/.xm-img.XXXXXX")
	mkdir -p "$work/root" "$work/oci"
	for f in "$@"; do
		install -D -m 0755 "${f%%:*}" "$work/root/${f#*:}"
	done
	mkdir -p "$work/root/tmp" && chmod 1777 "$work/root/tmp"
	layer=$work/layer.tar
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$work/root" -cf "$layer" .
	ldig=$(blob "$layer" "$work/oci")
	cfg=$work/config.json
	printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["%s"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$entry" "$ldig" >"$cfg"
	cdig=$(blob "$cfg" "$work/oci")
	man=$work/manifest.json
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
		"$cdig" "$(stat -c %s "$cfg")" "$ldig" "$(stat -c %s "$layer")" >"$man"
	mdig=$(blob "$man" "$work/oci")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$mdig" "$(stat -c %s "$man")" "$ref" "${ref##*:}" >"$work/oci/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$work/oci" -cf "$OUT/$name.tar.new" .
	mv -f "$OUT/$name.tar.new" "$OUT/$name.tar"
	rm -rf "$work"
}

# The agent image: the binaries of `make`, the DaemonSet's scripts, a shell and
# the tools the scripts call, each with the shared libraries ldd names.
if [ $agent = 1 ]; then
	files=()
	for f in xmesh-agent xmeshctl xmesh-cni; do
		[ -x "$ROOT/build/bin/$f" ] || { echo "k8s-images: build/bin/$f missing: run make" >&2; exit 1; }
		files+=("$ROOT/build/bin/$f:usr/local/bin/$f")
	done
	files+=("$ROOT/deploy/install-cni.sh:usr/local/bin/install-cni.sh"
		"$ROOT/deploy/uninstall-node.sh:usr/local/bin/uninstall-node.sh")
	for t in sh cp mv rm chmod mkdir cat cmp stat grep ls sleep; do
		files+=("$(command -v $t):bin/$t")
	done
	for lib in $(for f in "${files[@]}"; do ldd "${f%%:*}" 2>/dev/null; done |
		awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u); do
		files+=("$lib:${lib#/}")
	done
	image xmesh xm.local/xmesh:dev /usr/local/bin/xmesh-agent "${files[@]}"
	echo "xm.local/xmesh:dev $OUT/xmesh.tar"
	exit 0
fi

# static NAME SRC...: a static binary in OUT/bin, rebuilt when a SRC (or a
# header of tests/lib) is newer.
static() {
	local name=$1 src
	shift
	mkdir -p "$OUT/bin"
	for src in "$@" "$ROOT"/tests/lib/*.h "$ROOT"/tests/tools/*/*.h; do
		if [ ! "$OUT/bin/$name" -nt "$src" ]; then
			$CC -O2 -Wall -static -I"$ROOT/tests" -o "$OUT/bin/$name" "$@" \
				-ljansson -lm -lpthread
			return
		fi
	done
}

static pause "$ROOT/tests/k8s/images/pause.c"
static xm-whoami "$ROOT/tests/k8s/images/xm-whoami.c"
static xm-serve "$ROOT"/tests/tools/xm-serve/*.c "$ROOT"/tests/lib/*.c
static xm-load "$ROOT"/tests/tools/xm-load/*.c "$ROOT"/tests/lib/*.c

if [ ! "$OUT/pause.tar" -nt "$OUT/bin/pause" ]; then
	image pause xm.local/pause:1 /pause "$OUT/bin/pause:pause"
fi
if [ ! "$OUT/testsrv.tar" -nt "$OUT/bin/xm-whoami" ] || [ ! "$OUT/testsrv.tar" -nt "$OUT/bin/xm-serve" ] ||
	[ ! "$OUT/testsrv.tar" -nt "$OUT/bin/xm-load" ]; then
	image testsrv xm.local/testsrv:1 /bin/xm-whoami "$OUT/bin/xm-whoami:bin/xm-whoami" \
		"$OUT/bin/xm-serve:bin/xm-serve" "$OUT/bin/xm-load:bin/xm-load"
fi
echo "xm.local/pause:1 $OUT/pause.tar"
echo "xm.local/testsrv:1 $OUT/testsrv.tar"
