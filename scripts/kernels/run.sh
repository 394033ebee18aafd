#!/bin/bash
# SPDX-License-Identifier: MIT
# Kernel matrix: the same build (CO-RE BPF objects, binaries, test scripts)
# run on Debian 12's kernels booted under qemu (TCG: no KVM needed) and on
# the host's own kernel. Prints one table, per test per kernel, and writes it
# to build/kernels/table.md (and docs/kernels.md with XM_KERNEL_DOCS=1).
#
#   scripts/kernels/run.sh [6.1] [6.12] [host]     (default: all three)
#   scripts/kernels/run.sh table [6.1] [6.12] [host]  the table of the last results
#
# Kernels are Debian packages (apt-get download, as this machine's apt is
# configured), cached in build/kernels/. Each guest gets a small initramfs
# (busybox-static + the package's modules, loaded with insmod in the order
# depmod computes here), mounts this machine's root read-only over 9p with a
# tmpfs overlay, and runs tests/run.sh with the subset below. Its serial
# console goes to build/kernels/logs/<kernel>.log; a guest that hangs is
# killed after XM_KERNEL_TIMEOUT seconds.
#
# Environment: XM_KERNEL_TESTS (substrings of test names, space-separated),
# XM_KERNEL_TIMEOUT (s, per guest), XM_KERNEL_MEM (MiB), XM_KERNEL_SMP;
# XM_KERNEL_MERGE=1: keep earlier results of tests not run this time;
# XM_GUEST_CMD: run this shell command in the guest instead of the tests
# (debugging; its output is in the console log).
set -eu
cd "$(dirname "$0")/../.."
TOP=$PWD
K=$TOP/build/kernels
TESTS=${XM_KERNEL_TESTS:-"unit/ bpf/ redirect_pods redirect_isolation lb_select lb_probes
	overlay_traffic test_cni_overlay agent_restart lb_restart kernel_features redirect_fastopen
	lb_rebalance"}
TIMEOUT=${XM_KERNEL_TIMEOUT:-1500}
MEM=${XM_KERNEL_MEM:-2048}
SMP=${XM_KERNEL_SMP:-1}
read -ra WANT <<<"${*:-6.1 6.12 host}"
T0=$SECONDS

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }

# Newest unsigned generic image of a series (it has every module the tests need).
kernel_package() {
	local re
	case $1 in
	6.1) re='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
	6.12) re='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
	*) echo "unknown kernel series '$1' (6.1, 6.12 or host)" >&2; return 1 ;;
	esac
	apt-cache search --names-only "$re" | awk '{print $1}' | sort -V | tail -n1
}

# Download (once) and unpack (once) a kernel package; prints its release.
kernel_fetch() {
	local pkg=$1 rel deb
	rel=${pkg#linux-image-}
	rel=${rel%-unsigned}
	mkdir -p "$K/deb"
	deb=$(ls "$K/deb/${pkg}_"*.deb 2>/dev/null | tail -n1 || true)
	if [ -z "$deb" ]; then
		say "downloading $pkg" >&2
		(cd "$K/deb" && apt-get download -q "$pkg" >&2 2>/dev/null)
		deb=$(ls "$K/deb/${pkg}_"*.deb | tail -n1)
	fi
	if [ ! -e "$K/$rel/.unpacked" ]; then
		say "unpacking $(basename "$deb")" >&2
		rm -rf "${K:?}/$rel"
		dpkg-deb -x "$deb" "$K/$rel"
		depmod -b "$K/$rel" "$rel"
		touch "$K/$rel/.unpacked"
	fi
	echo "$rel"
}

# Modules the tests need, with their dependencies (builtin ones are skipped).
# inet_diag and tcp_diag: a node's kernel loads them through modprobe at the
# first sock_diag request, which the guest cannot (no modules of its kernel on
# the host's root); rebalancing's SOCK_DESTROY fallback needs them.
MODULES="virtio_pci virtio_rng 9pnet_virtio 9p overlay veth bridge vxlan cls_bpf sch_ingress
	act_bpf dummy tun nf_tables nft_ct nft_chain_nat nft_nat nft_masq nft_reject_inet
	nft_compat nft_fib_inet xt_conntrack xt_comment xt_multiport xt_mark xt_MASQUERADE
	xt_addrtype xt_nat ip_tables iptable_nat iptable_filter ip6_tables ip6table_nat
	ip6table_filter inet_diag tcp_diag"

initramfs_build() {
	local rel=$1 root=$K/$1 st=$K/$1/initramfs m f
	rm -rf "$st"
	mkdir -p "$st"/{bin,lib/m,proc,sys,dev}
	cp /bin/busybox "$st/bin/busybox"
	cp scripts/kernels/init "$st/init"
	: >"$st/modules.list"
	for m in $MODULES; do
		modprobe -d "$root" -S "$rel" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r f; do
		local ko
		ko=$(basename "$f")
		ko=${ko%.xz}
		ko=${ko%.zst}
		case $f in
		*.xz) xz -dc "$f" >"$st/lib/m/$ko" ;;
		*.zst) zstd -qdc "$f" >"$st/lib/m/$ko" ;;
		*) cp "$f" "$st/lib/m/$ko" ;;
		esac
		echo "/lib/m/$ko" >>"$st/modules.list"
	done
	(cd "$st" && find . | cpio -o -H newc --quiet | gzip -1) >"$root/initrd.img"
}

# Boot one kernel, follow its console, collect results into $K/results/<label>.
guest_run() {
	local label=$1 rel=$2 root=$K/$2 log=$K/logs/$1.log params=$K/params-$1.sh qpid rc t
	mkdir -p "$K/logs" "$K/results"
	cat >"$params" <<-EOP
		XM_TOP=$TOP
		export XM_TEST="$(echo $TESTS)" XM_SMALL=1
		XM_GUEST_CMD=$(printf '%q' "${XM_GUEST_CMD:-}")
	EOP
	t=$SECONDS
	say "$label: booting $rel (TCG, ${SMP} vCPU, ${MEM} MiB; console: ${log#$TOP/})"
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM" \
		-display none -monitor none -serial "file:$log" -no-reboot \
		-kernel "$root/boot/vmlinuz-$rel" -initrd "$root/initrd.img" \
		-append "console=ttyS0 panic=-1 loglevel=4 xm_guest=$TOP/scripts/kernels/guest.sh xm_params=$params" \
		-virtfs "local,path=/,mount_tag=xmroot,security_model=none,readonly=on,multidevs=remap" \
		-device virtio-rng-pci -nic none </dev/null &
	qpid=$!
	: >"$log"
	# Progress: the guest's own milestones and one line per test.
	tail -n +1 -F --pid="$qpid" "$log" 2>/dev/null | while IFS= read -r line; do
		line=${line%$'\r'}
		case $line in
		xm-guest:*|*" ok ("*|*"skipped:"*|*"FAIL (rc"*|*"Kernel panic"*|*"passed,"*)
			say "$label: ${line}" ;;
		esac
	done
	wait "$qpid" && rc=0 || rc=$?
	sed -n '/^XM-RESULTS-BEGIN/,/^XM-RESULTS-END/p' "$log" | tr -d '\r' |
		grep -v '^XM-RESULTS' >"$K/results/$label.new" || true
	if ! grep -q '^XM-RESULTS-END' "$log"; then
		say "$label: guest did not finish (qemu rc $rc$([ "$rc" = 124 ] && echo ", killed after ${TIMEOUT}s")): see ${log#$TOP/}"
		echo "(guest) fail $((SECONDS - t))" >>"$K/results/$label.new"
	fi
	results_keep "$label"
	echo "$rel" >"$K/results/$label.release"
	say "$label: done in $((SECONDS - t))s"
}

# Results of this run into results/<label>; with XM_KERNEL_MERGE=1, only the
# tests that ran replace their lines (re-running a few tests of a matrix).
results_keep() {
	local r=$K/results/$1
	if [ "${XM_KERNEL_MERGE:-0}" = 1 ] && [ -f "$r" ]; then
		awk 'NR == FNR {n[$1] = $0; next} $1 in n {print n[$1]; delete n[$1]; next} {print}
			END {for (k in n) print n[k]}' "$r.new" "$r" >"$r.merged"
		mv "$r.merged" "$r"
		rm -f "$r.new"
	else
		mv "$r.new" "$r"
	fi
}

host_run() {
	local t=$SECONDS
	mkdir -p "$K/results"
	: >"$K/results/host.new"
	say "host: running the subset on $(uname -r)"
	XM_TEST="$(echo $TESTS)" XM_RESULTS="$K/results/host.new" tests/run.sh |
		while IFS= read -r line; do say "host: $line"; done || true
	results_keep host
	uname -r >"$K/results/host.release"
	say "host: done in $((SECONDS - t))s"
}

table() {
	local labels=("$@") names l n cell
	names=$(for l in "${labels[@]}"; do awk '{print $1}' "$K/results/$l"; done | awk '!s[$0]++')
	printf '| test |'
	for l in "${labels[@]}"; do printf ' %s |' "$(cat "$K/results/$l.release")"; done
	printf '\n|---|'
	for l in "${labels[@]}"; do printf -- '---|'; done
	echo
	for n in $names; do
		printf '| %s |' "$n"
		for l in "${labels[@]}"; do
			cell=$(awk -v n="$n" '$1 == n {print ($2 == "fail" ? "**FAIL**" : $2) " " $3 "s"}' \
				"$K/results/$l")
			printf ' %s |' "${cell:-not run}"
		done
		echo
	done
}

labels=()
if [ "${WANT[0]}" = table ]; then
	read -ra WANT <<<"${WANT[*]:1}"
	[ ${#WANT[@]} -gt 0 ] || WANT=(6.1 6.12 host)
	labels=("${WANT[@]}")
	WANT=()
else
	scripts/install-deps.sh kernels
fi
for w in "${WANT[@]}"; do
	if [ "$w" = host ]; then
		host_run
	else
		pkg=$(kernel_package "$w")
		[ -n "$pkg" ] || { echo "no package for kernel $w in this machine's apt sources" >&2; exit 1; }
		rel=$(kernel_fetch "$pkg")
		initramfs_build "$rel"
		guest_run "$w" "$rel"
	fi
	labels+=("$w")
done
table "${labels[@]}" >"$K/table.md"
echo
cat "$K/table.md"
echo
say "kernel matrix done (${labels[*]})"
if [ "${XM_KERNEL_DOCS:-0}" = 1 ]; then
	awk -v t="$K/table.md" '/<!-- kernels-table-begin -->/ {print; while ((getline l < t) > 0) print l; skip = 1; next}
		/<!-- kernels-table-end -->/ {skip = 0} !skip' docs/kernels.md >docs/kernels.md.tmp &&
		mv docs/kernels.md.tmp docs/kernels.md
fi
! grep -q ' fail ' "$K"/results/* 2>/dev/null
