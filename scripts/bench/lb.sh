#!/bin/bash
# SPDX-License-Identifier: MIT
# bench lb: a client pod reaches a backend pod (another netns, over veth and
# bridge, not redirected) three ways:
#   direct - connect() to the backend's address
#   nft    - connect() to a VIP that an nftables DNAT rule in the client's
#            netns rewrites (kube-proxy style: conntrack + NAT on every packet)
#   xmesh  - connect() to a VIP that xmesh rewrites once, at connect()
# Metrics: request/response latency (xm-load rr, 64 B echo, p50/p99) and new
# connections per second (connect, read 2 bytes, close; xm-load rr -P label --new).
# Then the cost of connect() itself with 2 and 1000 backends (UDP connect():
# the same hook and table lookup, no packet), against a non-service address.
# Modes are interleaved in rotating order in every repetition; medians.
# REPS=N (default 5), RR_N (default 20000), RATE_S (default 1), RATE_C (default 4).
set -eu
. "$(dirname "$0")/../../tests/integration/lib.sh"
REPS=${REPS:-5}
RR_N=${RR_N:-20000}
RATE_S=${RATE_S:-1}
RATE_C=${RATE_C:-4} # connect loops in parallel: both CPUs busy, so CPU cost per connection shows
CONN_N=${CONN_N:-200000}
xm_setup
NFT_TABLE=$XM_PREFIX-lb
xm_node n1
xm_pod n1 b 10.77.0.3/24
# One client pod per mode, identical but for the mode, so that conntrack state
# left by the nft runs cannot touch the others.
for m in direct nft xmesh; do
	case $m in direct) ip=10.77.0.2 ;; nft) ip=10.77.0.4 ;; xmesh) ip=10.77.0.5 ;; esac
	xm_pod n1 c$m $ip/24
	ip netns exec "$XM_PREFIX-c$m" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
	# kube-proxy nodes route service CIDRs; the DNAT happens after that route lookup
	ip -n "$XM_PREFIX-c$m" route add 10.96.0.0/16 dev eth0
done
ip netns exec "$XM_PREFIX-b" sysctl -qw net.ipv4.tcp_tw_reuse=1
CFG=$XM_RUN_DIR/xm-config.json
python3 - "$CFG" <<'EOP'
import json, sys
be1000 = [{"address": "10.77.0.3", "port": 10000 + i} for i in range(1000)]
json.dump({"services": [
    {"vip": "10.96.0.10", "port": 80, "backends": [{"address": "10.77.0.3", "port": 7600}]},
    {"vip": "10.96.0.10", "port": 81, "backends": [{"address": "10.77.0.3", "port": 8080}]},
    {"vip": "10.96.0.20", "port": 53, "protocol": "udp",
     "backends": [{"address": "10.77.0.3", "port": 53}, {"address": "10.77.0.3", "port": 54}]},
    {"vip": "10.96.0.21", "port": 53, "protocol": "udp", "backends": be1000},
]}, open(sys.argv[1], "w"))
EOP
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.21:53/udp 1000
# client and server of the latency runs share CPU 0: no cross-core wake-ups in the numbers
xm_bg ip netns exec "$XM_PREFIX-b" taskset -c 0 "$XM_TOOLS/xm-serve" rr -l 10.77.0.3:7600
xm_bg ip netns exec "$XM_PREFIX-b" "$XM_TOOLS/xm-serve" label --listen 10.77.0.3:8080 --label b
sleep 0.3

ip netns exec "$XM_PREFIX-cnft" nft -f - <<EON
table ip $NFT_TABLE {
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr 10.96.1.10 tcp dport 80 dnat to 10.77.0.3:7600
		ip daddr 10.96.1.10 tcp dport 81 dnat to 10.77.0.3:8080
	}
}
EON

target() { # mode port-kind(rr|rate)
	local p
	case $1 in
	direct) [ "$2" = rr ] && p=7600 || p=8080; echo "10.77.0.3 $p" ;;
	nft) [ "$2" = rr ] && p=80 || p=81; echo "10.96.1.10 $p" ;;
	xmesh) [ "$2" = rr ] && p=80 || p=81; echo "10.96.0.10 $p" ;;
	esac
}
rr_target() { target "$@" | tr ' ' :; }

out=$XM_RUN_DIR/samples.txt
: >"$out"
modes=(direct nft xmesh)
for rep in $(seq "$REPS"); do
	for i in 0 1 2; do
		mode=${modes[$(((i + rep) % 3))]}
		# shellcheck disable=SC2046
		r=$(xm_pod_exec c$mode taskset -c 0 "$XM_TOOLS/xm-load" rr -t "$(rr_target $mode rr)" -c 1 -s 64 -n "$RR_N")
		# shellcheck disable=SC2046
		c=$(xm_pod_exec c$mode "$XM_TOOLS/xm-load" rr -t "$(rr_target $mode rate)" -P label --new -d "$RATE_S" -c "$RATE_C")
		echo "$mode rr_p50 $(xm_kv p50_us "$r")" >>"$out"
		echo "$mode rr_p99 $(xm_kv p99_us "$r")" >>"$out"
		echo "$mode conn_s $(xm_kv rps "$c")" >>"$out"
		echo "$mode conn_failed $(xm_kv errors "$c")" >>"$out"
	done
	conn=(plain 2 1000)
	for i in 0 1 2; do
		k=${conn[$(((i + rep) % 3))]}
		case $k in
		plain) t=10.77.0.3:53 ;;
		2) t=10.96.0.20:53 ;;
		1000) t=10.96.0.21:53 ;;
		esac
		u=$(xm_pod_exec cxmesh taskset -c 0 "$XM_TOOLS/xm-load" udpconnect -t "$t" -n "$CONN_N")
		echo "be$k connect_ns $(xm_kv ns_per_connect "$u")" >>"$out"
	done
	xm_log "rep $rep done"
done

python3 - "$out" <<'EOP'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    m, k, v = line.split()
    d.setdefault((m, k), []).append(float(v))
med = lambda m, k: statistics.median(d[(m, k)])
print(f"{'metric':<22}{'direct':>12}{'nft DNAT':>12}{'xmesh':>12}{'xmesh/direct':>14}{'xmesh/nft':>11}")
for k, name in (("rr_p50", "RR 64 B p50 (us)"), ("rr_p99", "RR 64 B p99 (us)"), ("conn_s", "new conns/s")):
    a, b, c = med("direct", k), med("nft", k), med("xmesh", k)
    print(f"{name:<22}{a:>12.2f}{b:>12.2f}{c:>12.2f}{c/a:>14.3f}{c/b:>11.3f}")
fails = sum(sum(d[(m, "conn_failed")]) for m in ("direct", "nft", "xmesh"))
print(f"\n{'connect() cost':<22}{'no service':>12}{'2 backends':>12}{'1000 backends':>14}")
p, b2, b1000 = med("beplain", "connect_ns"), med("be2", "connect_ns"), med("be1000", "connect_ns")
print(f"{'ns per UDP connect()':<22}{p:>12.1f}{b2:>12.1f}{b1000:>14.1f}")
print(f"\nfailed connects during the rate runs: {int(fails)}")
print(f"bench lb: rr_p50_direct_us={med('direct','rr_p50'):.2f} rr_p50_nft_us={med('nft','rr_p50'):.2f} "
      f"rr_p50_xmesh_us={med('xmesh','rr_p50'):.2f} latency_xmesh_vs_direct={med('xmesh','rr_p50')/med('direct','rr_p50'):.3f} "
      f"conn_s_direct={med('direct','conn_s'):.0f} conn_s_nft={med('nft','conn_s'):.0f} conn_s_xmesh={med('xmesh','conn_s'):.0f} "
      f"conn_xmesh_vs_nft={med('xmesh','conn_s')/med('nft','conn_s'):.3f} connect_ns_plain={p:.0f} "
      f"connect_ns_2={b2:.0f} connect_ns_1000={b1000:.0f} connect_1000_vs_2={b1000/b2:.3f}")
EOP
