/* SPDX-License-Identifier: MIT */
/* Datapath counters: the per-CPU stats array summed over CPUs. */
#ifndef XMESH_STATS_H
#define XMESH_STATS_H

#include <xmesh/common.h>

struct xm_stat_desc {
	enum xm_stat idx;
	const char *name; /* JSON field and metric suffix */
	const char *help;
};

extern const struct xm_stat_desc xm_stat_descs[];
extern const unsigned int xm_stat_desc_count;

/* Sum every slot over CPUs into out[XM_STAT_MAX]. Returns 0 or -errno. */
int xm_stats_read(const char *pin_root, __u64 *out);

/*
 * Add n to counter idx from user space (for counters only the agent
 * updates, e.g. overlay invalidations): CPU 0's slot carries it.
 */
int xm_stats_add(const char *pin_root, __u32 idx, __u64 n);

/* Entries in a hash map (batched reads); -errno on error. */
long xm_map_count(int fd);
/*
 * LRU evictions are invisible to BPF: estimate them as the entries of map
 * created (counter `created`) minus those deleted (counters `deleted`,
 * `deleted2`; -1: none) minus those present, and raise counter `evicted`
 * to that. Racy by a few entries; monotonic.
 */
int xm_lru_evictions_update(const char *pin_root, const char *map, int created, int deleted,
			    int deleted2, int evicted);
/* The same for one kind of entry kept in several maps (a NULL-terminated list of names). */
int xm_lru_evictions_update_maps(const char *pin_root, const char *const *maps, int created,
				 int deleted, int deleted2, int evicted);

#endif
