#!/bin/bash
# SPDX-License-Identifier: MIT
# bench recv-trace: what the redirect counters (bpf/redirect.bpf.c,
# xm_redirect_recv on the sock_recv_length raw tracepoint) cost the host's
# other sockets. The tracepoint is not per cgroup: it runs on every recvmsg
# of the machine. Workload outside xmesh, in a pod whose address is not
# registered and whose processes are outside the agent's cgroup:
#   recvloop - one thread sends 1 byte and reads it back on a loopback TCP
#              pair N times (xm-sockapi recvloop): CPU time per send+recv,
#              by the thread's own clock (preemption on a shared machine is
#              not counted), the receive path with nothing else around it;
#   rr       - xm-load rr, 64 B request/response between two processes on one
#              core (two blocking recvmsg per round trip): p50 round trip.
# Each with the agent's link in place (on) and with its pin removed (off:
# the program detached; the agent is restarted before the next "on" run),
# interleaved in alternating order, REPS pairs, medians. Then PROFILE_RUNS
# runs of rr under `xmeshctl prog profile` (BPF run-time statistics through
# a BPF_ENABLE_STATS fd; the sysctl is left alone): runs and ns per run.
#
#   make bench-recv-trace          REPS=9 N=200000 RR_N=20000 PROFILE_RUNS=3
set -eu
. "$(dirname "$0")/../../tests/integration/lib.sh"
REPS=${REPS:-9}
N=${N:-200000}
RR_N=${RR_N:-20000}
PROFILE_RUNS=${PROFILE_RUNS:-3}
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
xm_agent_start 2>>"$XM_RUN_DIR/agent.log"
LINK=$XM_PIN/links/redirect_recv
[ -e "$LINK" ] || xm_skip "no redirect_recv link (kernel without sock_recv_length?)"
xm_bg ip netns exec "$XM_PREFIX-b" taskset -c 0 "$XM_TOOLS/xm-serve" rr -l 10.77.0.3:7600
xm_wait_listen b 7600
samples=$XM_RUN_DIR/samples.txt
: >"$samples"

client() { ip netns exec "$XM_PREFIX-a" taskset -c 0 "$XM_TOOLS/xm-load" rr -t 10.77.0.3:7600 -c 1 -s 64 -n "$RR_N"; }

run() { # MODE REP
	local t0 t1 out
	if [ "$1" = off ]; then
		rm -f "$LINK"
	elif [ ! -e "$LINK" ]; then
		kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
		xm_agent_start 2>>"$XM_RUN_DIR/agent.log"
	fi
	loop=$(ip netns exec "$XM_PREFIX-a" "$XM_TOOLS/xm-sockapi" recvloop 127.0.0.1 7700 -n "$N")
	out=$(client)
	echo "$1 $(xm_kv p50_us "$out") $(echo "$loop" | xm_json 'j["cpu_ns_per_iteration"]')" >>"$samples"
	xm_log "recv-trace: rep $2/$REPS $1: rr $out, recvloop $loop"
}

client >/dev/null # warm-up
for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then run on "$rep"; run off "$rep"; else run off "$rep"; run on "$rep"; fi
done
[ -e "$LINK" ] || { kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true;
	xm_agent_start 2>>"$XM_RUN_DIR/agent.log"; }

# Run time per call, from the kernel's statistics, over the same workload.
prof=$XM_RUN_DIR/profile.txt
: >"$prof"
for i in $(seq "$PROFILE_RUNS"); do
	xm_ctl -j prog profile -- sh -c "$(declare -f client); XM_TOOLS=$XM_TOOLS XM_PREFIX=$XM_PREFIX RR_N=$RR_N client" \
		2>/dev/null | xm_json '[p for p in j["programs"] if p["name"].startswith("xm_redirect_rec")][0]' >>"$prof"
	xm_log "recv-trace: profiled run $i/$PROFILE_RUNS: $(tail -n1 "$prof")"
done

python3 - "$samples" "$prof" "$REPS" "$RR_N" <<'EOF'
import json, statistics as st, sys
samples, prof, reps, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split() for l in open(samples)]
med = lambda mode, i: st.median(float(r[i]) for r in rows if r[0] == mode)
p = [json.loads(l) for l in open(prof) if l.strip()]
runs = st.median(x["run_cnt"] for x in p)
ns = st.median(x["ns_per_run"] for x in p)
print(f"| mode | recvloop: CPU ns per send+recv | rr: p50 round trip (us) |")
print("|---|---|---|")
for m in ("off", "on"):
    print(f"| {m} | {med(m, 2):.0f} | {med(m, 1):.2f} |")
print(f"xm_redirect_recv: {runs:.0f} runs per profiled run of {n} round trips "
      f"({runs / n:.2f} per round trip), {ns:.1f} ns per run")
print(f"bench recv-trace: reps={reps} rr_n={n} p50_us_off={med('off', 1):.2f} "
      f"p50_us_on={med('on', 1):.2f} p50_ratio={med('on', 1) / med('off', 1):.3f} "
      f"recvloop_ns_off={med('off', 2):.0f} recvloop_ns_on={med('on', 2):.0f} "
      f"recvloop_delta_ns={med('on', 2) - med('off', 2):.0f} runs_per_rt={runs / n:.2f} ns_per_run={ns:.1f}")
EOF
