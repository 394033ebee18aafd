#!/bin/bash
# SPDX-License-Identifier: MIT
# PID 1 of a test guest (after scripts/kernels/init): the host's root, read
# only, under a tmpfs overlay. Mounts what the tests need, runs the selected
# tests with the project's tests/run.sh, prints the results between markers
# on the console (the host parses them) and powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=755 tmpfs /run
# shellcheck disable=SC1090
. "$xm_params" # XM_TOP, XM_TEST, and the size knobs the tests honour
# A checkout under /tmp (a clone made there) must stay visible under the
# guest's own /tmp: carry it across that mount at the same path.
case $XM_TOP/ in
/tmp/*) mkdir -p /run/xm-top && mount --bind "$XM_TOP" /run/xm-top ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /tmp
if mountpoint -q /run/xm-top; then
	mkdir -p "$XM_TOP" && mount --move /run/xm-top "$XM_TOP"
fi
mkdir -p /dev/pts /dev/shm
# What udev would add: bash process substitution needs /dev/fd.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up
hostname xm-guest
echo 1 >/proc/sys/kernel/sysrq

cd "$XM_TOP" || exit 1
echo "xm-guest: ready after $(cut -d' ' -f1 /proc/uptime)s: running tests"
if [ -n "${XM_GUEST_CMD:-}" ]; then # a debugging session: one command instead
	bash -c "$XM_GUEST_CMD" 2>&1
else
	XM_RESULTS=/tmp/xm-results tests/run.sh 2>&1
fi
echo "XM-RESULTS-BEGIN"
cat /tmp/xm-results
echo "XM-RESULTS-END"
echo o >/proc/sysrq-trigger
sleep 60
