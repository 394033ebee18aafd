/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps shared by more than one BPF object. Every object that includes this
 * header declares them; the agent pins each map under <root>/maps/<name>, so
 * the objects loaded later reuse the instance the first one created.
 */
#ifndef XMESH_BPF_COMMON_MAPS_H
#define XMESH_BPF_COMMON_MAPS_H

#include <xmesh/common.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XM_MAX_ENDPOINTS);
	__type(key, struct xm_endpoint_key);
	__type(value, struct xm_endpoint);
} xm_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XM_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} xm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xm_meta);
} xm_meta SEC(".maps");

static __always_inline void xm_stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&xm_stats, &idx);

	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
}

#endif
