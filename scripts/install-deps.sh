#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages xmesh builds, tests and benchmarks with.
# A quick no-op when everything is present; needs root only when it installs.
set -eu

PKGS="clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool make gcc pkg-config
libmnl-dev libcmocka-dev libjansson-dev libmicrohttpd-dev
iproute2 nftables sockperf iperf3 wrk haproxy prometheus containernetworking-plugins
gnuplot-nox python3 python3-yaml util-linux procps"

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
apt-get update -q >/dev/null
# Services some packages would start (prometheus, haproxy) are not wanted:
# tests start their own instances on loopback.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.xm-tmp
chmod +x /usr/sbin/policy-rc.d.xm-tmp
[ -e /usr/sbin/policy-rc.d ] || { mv /usr/sbin/policy-rc.d.xm-tmp /usr/sbin/policy-rc.d; xm_prc=1; }
rm -f /usr/sbin/policy-rc.d.xm-tmp
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
[ "${xm_prc:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
