#!/bin/bash
# SPDX-License-Identifier: MIT
# bench recv-trace: what the redirect counters (bpf/redirect.bpf.c,
# xm_redirect_recv on the sock_recv_length tracepoint; attached only with
# config "redirect_recv_counters": true) cost the host's other sockets. The
# tracepoint is not per cgroup: it runs on every recvmsg of the machine.
# Workload outside xmesh, in a pod whose address is not registered and whose
# processes are outside the agent's cgroup:
#   unixloop - one thread sends 1 byte and reads it back on an AF_UNIX
#              socketpair N times (xm-sockapi unixloop): CPU time per
#              send+recv by the thread's own clock; the cheapest recvmsg;
#   recvloop - the same on a loopback TCP pair (xm-sockapi recvloop);
#   rr       - xm-load rr, 64 B request/response between two processes on one
#              core (two blocking recvmsg per round trip): p50 round trip.
# Modes: on (this build's agent, the counters configured on), off (the
# link's pin removed: the program detached) and, with BASE_BIN=DIR, base
# (that build's agent with its link, e.g. main's before a change to the
# program), in a rotating order, REPS rounds, medians. Then PROFILE_RUNS
# runs of unixloop under `xmeshctl prog profile` per build (BPF run-time
# statistics through a BPF_ENABLE_STATS fd; the sysctl is left alone): runs
# and ns per run.
#
#   make bench-recv-trace          REPS=9 N=200000 RR_N=20000 PROFILE_RUNS=3
#   BASE_BIN=/path/to/other/build/bin make bench-recv-trace
set -eu
. "$(dirname "$0")/../../tests/integration/lib.sh"
REPS=${REPS:-9}
N=${N:-200000}
RR_N=${RR_N:-20000}
PROFILE_RUNS=${PROFILE_RUNS:-3}
MODES="on off"
[ -n "${BASE_BIN:-}" ] && MODES="on off base"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
cfg=$XM_RUN_DIR/agent.json
echo '{"redirect_recv_counters": true}' >"$cfg"
LINK=$XM_PIN/links/redirect_recv
running=none
# agent BIN NAME: run that build's agent with its link in place (restarted if needed)
agent() {
	if [ "$running" = "$2" ] && [ -e "$LINK" ]; then return; fi
	if [ "$running" != none ]; then kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true; fi
	XM_BIN=$1 xm_agent_start --config "$cfg" 2>>"$XM_RUN_DIR/agent.log"
	running=$2
	for _ in $(seq 50); do [ -e "$LINK" ] && break; sleep 0.1; done
}
agent "$XM_BIN" on
[ -e "$LINK" ] || xm_skip "no redirect_recv link (kernel without sock_recv_length?)"
xm_bg ip netns exec "$XM_PREFIX-b" taskset -c 0 "$XM_TOOLS/xm-serve" rr -l 10.77.0.3:7600
xm_wait_listen b 7600
samples=$XM_RUN_DIR/samples.txt
: >"$samples"

client() { ip netns exec "$XM_PREFIX-a" taskset -c 0 "$XM_TOOLS/xm-load" rr -t 10.77.0.3:7600 -c 1 -s 64 -n "$RR_N"; }
sockapi() { ip netns exec "$XM_PREFIX-a" "$XM_TOOLS/xm-sockapi" "$1" 127.0.0.1 7700 -n "$N"; }

run() { # MODE ROUND
	local out loop unix
	case $1 in
	off) rm -f "$LINK" ;;
	on) agent "$XM_BIN" on ;;
	base) agent "$BASE_BIN" base ;;
	esac
	unix=$(sockapi unixloop)
	loop=$(sockapi recvloop)
	out=$(client)
	echo "$1 $(xm_kv p50_us "$out") $(echo "$loop" | xm_json 'j["cpu_ns_per_iteration"]')" \
		"$(echo "$unix" | xm_json 'j["cpu_ns_per_iteration"]')" >>"$samples"
	xm_log "recv-trace: round $2/$REPS $1: rr $out, recvloop $loop, unixloop $unix"
}

client >/dev/null # warm-up
read -ra modes <<<"$MODES"
for rep in $(seq "$REPS"); do
	# rotate the order: every mode runs first, second, ... about equally often
	for k in $(seq 0 $((${#modes[@]} - 1))); do
		run "${modes[$(((rep + k) % ${#modes[@]}))]}" "$rep"
	done
done

# Run time per call, from the kernel's statistics, over unixloop.
prof=$XM_RUN_DIR/profile.txt
: >"$prof"
for m in $MODES; do
	case $m in off) continue ;; on) agent "$XM_BIN" on ;; base) agent "$BASE_BIN" base ;; esac
	for i in $(seq "$PROFILE_RUNS"); do
		xm_ctl -j prog profile -- sh -c "$(declare -f sockapi); XM_TOOLS=$XM_TOOLS XM_PREFIX=$XM_PREFIX N=$N sockapi unixloop" \
			2>/dev/null | xm_json '[p for p in j["programs"] if p["name"].startswith("xm_redirect_rec")][0]' |
			sed "s/^/$m /" >>"$prof"
		xm_log "recv-trace: profiled run $i/$PROFILE_RUNS of $m: $(tail -n1 "$prof")"
	done
done

python3 - "$samples" "$prof" "$REPS" "$N" "$MODES" <<'EOF'
import json, statistics as st, sys
samples, prof, reps, n, modes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
rows = [l.split() for l in open(samples)]
med = lambda mode, i: st.median(float(r[i]) for r in rows if r[0] == mode)
print("| mode | unixloop: CPU ns per send+recv | recvloop (TCP): CPU ns per send+recv | rr: p50 round trip (us) |")
print("|---|---|---|---|")
for m in modes:
    print(f"| {m} | {med(m, 3):.0f} | {med(m, 2):.0f} | {med(m, 1):.2f} |")
line = [f"reps={reps} n={n}"]
for m in modes:
    line.append(f"unixloop_ns_{m}={med(m, 3):.0f} recvloop_ns_{m}={med(m, 2):.0f} p50_us_{m}={med(m, 1):.2f}")
for m in modes:
    if m != "off":
        line.append(f"unixloop_delta_ns_{m}={med(m, 3) - med('off', 3):.0f}"
                    f" recvloop_delta_ns_{m}={med(m, 2) - med('off', 2):.0f}")
for m in modes:
    p = [json.loads(l.split(" ", 1)[1]) for l in open(prof) if l.startswith(m + " ")]
    if not p:
        continue
    runs, ns = st.median(x["run_cnt"] for x in p), st.median(x["ns_per_run"] for x in p)
    print(f"{m}: xm_redirect_recv ran {runs / n:.2f} times per unixloop iteration, {ns:.1f} ns per run "
          "(the statistics' two clock reads included)")
    line.append(f"runs_per_iter_{m}={runs / n:.2f} ns_per_run_{m}={ns:.1f}")
print("bench recv-trace: " + " ".join(line))
EOF
