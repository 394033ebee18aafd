# SPDX-License-Identifier: MIT
# bpffs at /sys/fs/bpf for the tests, the demo and the benchmarks (sourced).
# Every node an agent runs on has it (systemd mounts it at boot, and the
# DaemonSet mounts the host's); a machine whose init did not (a container,
# a VM without systemd) gets it for the run, and loses it again at the end,
# so that nothing is left behind. Not a mount of the agent's: it mounts
# bpffs only at its own pin root (docs/install.md).

XM_BPFFS=/sys/fs/bpf

xm_bpffs_mounted() { awk -v d="$XM_BPFFS" '$2 == d && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; }

# xm_bpffs_ensure: mount bpffs at /sys/fs/bpf unless it is there; sets
# XM_BPFFS_OURS=1 when this call mounted it (for xm_bpffs_release).
xm_bpffs_ensure() {
	XM_BPFFS_OURS=
	xm_bpffs_mounted && return 0
	mount -t bpf xm-bpffs "$XM_BPFFS" || {
		echo "bpffs is not mounted at $XM_BPFFS and mounting it failed:" \
			"mount -t bpf bpf $XM_BPFFS (as root), then run again" >&2
		return 1
	}
	XM_BPFFS_OURS=1
	echo "bpffs was not mounted at $XM_BPFFS: mounted for this run, unmounted at its end" >&2
}

# xm_bpffs_release: unmount what xm_bpffs_ensure mounted, unless something
# still uses it (another run's pins: it is theirs too then).
xm_bpffs_release() {
	[ "${XM_BPFFS_OURS:-}" = 1 ] || return 0
	XM_BPFFS_OURS=
	local used
	# maps.debug, progs.debug: the kernel's own (BPF preload), in every bpffs
	used=$(ls -A "$XM_BPFFS" 2>/dev/null | grep -v -x -e maps.debug -e progs.debug | head -n 5 | tr '\n' ' ')
	if [ -n "$used" ]; then
		echo "bpffs at $XM_BPFFS left mounted: in use ($used)" >&2
		return 0
	fi
	umount "$XM_BPFFS" 2>/dev/null || true
}
