#!/bin/bash
# SPDX-License-Identifier: MIT
# Connection-level rebalancing on kernels without bpf_sock_destroy (< 6.5):
# test_lb_rebalance.sh with the kfunc disabled, so the iterator only picks
# idle connections and the agent closes them with SOCK_DESTROY over sock_diag
# netlink (CONFIG_INET_DIAG_DESTROY; skipped with the kernel's error without it).
XM_REBAL_VIA=sockdiag exec "$(dirname "$0")/test_lb_rebalance.sh" "$@"
