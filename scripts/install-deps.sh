#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages xmesh builds, tests and benchmarks with.
# A quick no-op when everything is present; needs root only when it installs.
set -eu

PKGS="clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool make gcc pkg-config
libmnl-dev libcmocka-dev libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
iproute2 nftables sockperf iperf3 wrk haproxy prometheus containernetworking-plugins
gnuplot-nox python3 python3-yaml util-linux procps libclang-rt-14-dev man-db bash-completion
containerd runc openssl curl nginx-light redis-server redis-tools nghttp2-server nghttp2-client
postgresql-15 postgresql-client python3-urllib3 python3-h2 python3-grpcio"
# `install-deps.sh kernels`: also what the kernel matrix needs (scripts/kernels/run.sh).
[ "${1:-}" = kernels ] && PKGS="$PKGS qemu-system-x86 busybox-static kmod cpio xz-utils"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root (sudo make ...) or apt-get install them" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
# Services some packages would start (prometheus, haproxy, nginx, redis,
# postgresql; the last also creates a default cluster, left stopped) are not wanted:
# tests start their own instances on loopback. policy-rc.d tells invoke-rc.d
# not to start them; ours is removed again whatever happens.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
