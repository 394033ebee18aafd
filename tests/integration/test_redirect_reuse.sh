#!/bin/bash
# SPDX-License-Identifier: MIT
# A 4-tuple reused right after an abortive close (SO_LINGER {1, 0}) must not
# lose a message: a redirect goes only to the live peer of the same
# connection, never to an older socket that still holds the same tuple
# (issue 11, case 1). 150 reconnects on 127.0.0.1 in one pod, then the same
# in two pods at once (identical tuples, told apart by the netns scope), then
# between two pods over their pod addresses. Every message has a timeout, so
# a lost one fails the test instead of hanging it.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_two_pods
N=${XM_REUSE_ITERATIONS:-150}

before=$(xm_stat redirect_msgs)
xm_pod_exec a "$XM_TOOLS/xm-sockapi" reuse 127.0.0.1 7400 -n "$N" -t 2000 ||
	xm_fail "one pod: a message on a reused tuple was lost"
xm_assert "$(( $(xm_stat redirect_msgs) - before ))" -ge "$N" "the reused-tuple messages were redirected"

xm_pod_exec a "$XM_TOOLS/xm-sockapi" reuse 127.0.0.1 7400 -n "$N" -t 2000 >"$XM_RUN_DIR/a.out" 2>&1 &
pa=$!
xm_pod_exec b "$XM_TOOLS/xm-sockapi" reuse 127.0.0.1 7400 -n "$N" -t 2000 >"$XM_RUN_DIR/b.out" 2>&1 &
pb=$!
wait $pa || xm_fail "two pods, pod a: $(cat "$XM_RUN_DIR/a.out")"
wait $pb || xm_fail "two pods, pod b: $(cat "$XM_RUN_DIR/b.out")"
xm_log "ok: two pods at once on the same tuple: $(tail -n1 "$XM_RUN_DIR/a.out")"

# Across pods: the client in a binds 10.77.0.2:7451 towards b's 10.77.0.3:7450,
# so the server runs in b and the client in a.
before=$(xm_stat redirect_msgs)
xm_pod_exec b "$XM_TOOLS/xm-sockapi" reuse-server 10.77.0.3 7450 >/dev/null 2>&1 &
XM_PIDS+=($!)
sleep 0.2
xm_pod_exec a "$XM_TOOLS/xm-sockapi" reuse-client 10.77.0.3 7450 -n "$N" -t 2000 -b 10.77.0.2 ||
	xm_fail "two pods over pod addresses: a message on a reused tuple was lost"
xm_assert "$(( $(xm_stat redirect_msgs) - before ))" -ge "$N" "pod-to-pod reused-tuple messages were redirected"
