/* SPDX-License-Identifier: MIT */
/*
 * What every xmesh program costs: the kernel's BPF run-time statistics
 * (run_cnt, run_time_ns; counted only while kernel.bpf_stats_enabled is on or
 * someone holds a BPF_ENABLE_STATS fd) and the size of each program, for the
 * programs reachable from a pin root (pinned links and pinned programs).
 */
#ifndef XMESH_PROGSTATS_H
#define XMESH_PROGSTATS_H

#include <stdbool.h>
#include <linux/bpf.h>

struct xm_prog_stat {
	__u32 id;
	__u32 type;                 /* enum bpf_prog_type */
	char name[BPF_OBJ_NAME_LEN];
	__u64 run_cnt;
	__u64 run_time_ns;
	__u64 recursion_misses;
	__u32 xlated_insns;         /* instructions after the verifier's rewrites */
	__u32 jited_bytes;
	__u32 verified_insns;       /* instructions the verifier walked */
	__u32 pins;                 /* pinned links and programs that lead to it */
};

/*
 * Every program pinned under root (<root>/links, <root>/progs), one entry per
 * program, sorted by name. Fills at most max entries of out; returns how many
 * there are (may be > max) or -errno (-ENOENT: nothing pinned at root).
 */
int xm_prog_stats_read(const char *root, struct xm_prog_stat *out, int max);

/* kernel.bpf_stats_enabled: 1 or 0, or -errno if it cannot be read. */
int xm_bpf_stats_sysctl(void);

/*
 * Turn the run-time statistics on for as long as the returned fd stays open
 * (BPF_ENABLE_STATS: nothing to undo when the holder dies). fd or -errno.
 */
int xm_bpf_stats_hold(void);

/* Program type as bpftool names it ("sock_ops", "cgroup_skb", ...). */
const char *xm_prog_type_name(__u32 type);

/* Average ns per run, 0 without runs. */
static inline double xm_prog_ns_per_run(const struct xm_prog_stat *s)
{
	return s->run_cnt ? (double)s->run_time_ns / s->run_cnt : 0;
}

#endif
