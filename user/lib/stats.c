// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "pin.h"
#include "stats.h"

const struct xm_stat_desc xm_stat_descs[] = {
	{ XM_STAT_REDIRECT_MSGS, "redirect_msgs", "messages handed socket-to-socket" },
	{ XM_STAT_REDIRECT_BYTES, "redirect_bytes", "bytes handed socket-to-socket" },
	{ XM_STAT_REDIRECT_MISS_MSGS, "redirect_miss_msgs",
	  "messages of redirect-map sockets that took the TCP path" },
	{ XM_STAT_REDIRECT_MISS_BYTES, "redirect_miss_bytes",
	  "bytes of redirect-map sockets that took the TCP path" },
	{ XM_STAT_SOCK_INSERTED, "sock_inserted", "sockets added to the redirect map" },
	{ XM_STAT_SOCK_INSERT_FAILED, "sock_insert_failed",
	  "sockets that could not be added (map full?)" },
	{ XM_STAT_SOCK_SKIPPED_FOREIGN, "sock_skipped_foreign",
	  "sockets using a pod address not registered to their netns" },
	{ XM_STAT_LB_CONNECTS, "lb_connects", "connects to a service VIP rewritten to a backend" },
	{ XM_STAT_LB_NO_BACKEND, "lb_no_backend", "connects to a VIP refused: no backend" },
	{ XM_STAT_LB_SENDMSG, "lb_sendmsg", "UDP datagrams to a VIP sent to a backend" },
	{ XM_STAT_LB_REVNAT, "lb_revnat", "UDP replies shown as coming from the VIP" },
	{ XM_STAT_OVL_ENCAP_PKTS, "overlay_encap_pkts",
	  "packets encapsulated by the overlay cache (fast path out)" },
	{ XM_STAT_OVL_ENCAP_BYTES, "overlay_encap_bytes", "inner bytes encapsulated by the cache" },
	{ XM_STAT_OVL_DECAP_PKTS, "overlay_decap_pkts",
	  "packets decapsulated by the overlay cache (fast path in)" },
	{ XM_STAT_OVL_DECAP_BYTES, "overlay_decap_bytes", "inner bytes decapsulated by the cache" },
	{ XM_STAT_OVL_ENCAP_MISSES, "overlay_encap_misses",
	  "pod TCP/UDP packets not in the cache: kernel overlay out" },
	{ XM_STAT_OVL_DECAP_MISSES, "overlay_decap_misses",
	  "VXLAN TCP/UDP packets not in the cache: kernel overlay in" },
	{ XM_STAT_OVL_DECAP_REJECTED, "overlay_decap_rejected",
	  "VXLAN packets whose outer address, port or VNI differ from the learned ones" },
	{ XM_STAT_OVL_FLOWS_CACHED, "overlay_flows_cached",
	  "flows the slow path delivered both ways, put on the fast path" },
	{ XM_STAT_OVL_LEARNED_REMOTE, "overlay_learned_remote", "outer headers learned or changed" },
	{ XM_STAT_OVL_LEARNED_LOCAL, "overlay_learned_local", "pod deliveries learned or changed" },
	{ XM_STAT_OVL_EVICTIONS, "overlay_evictions",
	  "flows pushed out of the full cache (LRU), estimated by the agent" },
	{ XM_STAT_OVL_INVALIDATIONS, "overlay_invalidations",
	  "cache entries removed or flushed on netlink, nftables or endpoint changes" },
	{ XM_STAT_OVL_FLOWS_NEW, "overlay_flows_new", "flow entries created by the slow path" },
	{ XM_STAT_OVL_FLOWS_ENDED, "overlay_flows_ended", "flow entries removed on TCP FIN/RST" },
	{ XM_STAT_OVL_FLOWS_REMOVED, "overlay_flows_removed",
	  "flow entries removed by invalidation (agent, xmeshctl, CNI)" },
	{ XM_STAT_LB_REV_NEW, "lb_rev_new", "UDP reverse-translation entries created" },
	{ XM_STAT_LB_REV_EVICTIONS, "lb_rev_evictions",
	  "UDP reverse-translation entries pushed out of the full LRU, estimated by the agent "
	  "(their replies show the backend's address)" },
	{ XM_STAT_LB_FLOWS_NEW, "lb_flows_new", "flow states shared with a local backend's socket" },
	{ XM_STAT_LB_FLOWS_ENDED, "lb_flows_ended", "shared flow states removed at close" },
	{ XM_STAT_LB_FLOWS_EVICTIONS, "lb_flows_evictions",
	  "shared flow states pushed out of the full LRU, estimated by the agent (probes of "
	  "those connections are lost)" },
	{ XM_STAT_SOCK_SKIPPED_FASTOPEN, "sock_skipped_fastopen",
	  "connections whose SYN carried data (TCP Fast Open): left on TCP" },
	{ XM_STAT_SOCK_SKIPPED_OPTOUT, "sock_skipped_optout",
	  "connections of an opted-out port or netns (xmeshctl sock skip): left on TCP" },
	{ XM_STAT_REDIRECT_RECV_EAGAIN, "redirect_recv_eagain",
	  "blocking recv() on a redirected socket returned EAGAIN (TCP would wait); counted "
	  "only with config \"redirect_recv_counters\": true" },
	{ XM_STAT_REDIRECT_RECV_WAITALL, "redirect_recv_waitall",
	  "MSG_WAITALL recv() on a redirected socket (not honoured: may return short); "
	  "counted only with config \"redirect_recv_counters\": true" },
	{ XM_STAT_REDIRECT_RECV_BELOW_LOWAT, "redirect_recv_below_lowat",
	  "blocking recv() on a redirected socket returned fewer than SO_RCVLOWAT bytes; "
	  "counted only with config \"redirect_recv_counters\": true" },
	{ XM_STAT_REDIRECT_BULK_DEMOTED, "redirect_bulk_demoted",
	  "one-way bulk senders taken out of the redirect map (plain TCP from then on)" },
	{ XM_STAT_REDIRECT_BULK_KEPT, "redirect_bulk_kept",
	  "bulk senders left redirected: their peer had redirected to them (cannot leave safely)" },
	{ XM_STAT_LB_PROBE_LOOKUPS, "lb_probe_lookups",
	  "packets (cgroup_skb) that could change a probe: payload, reset, backend's FIN" },
	{ XM_STAT_LB_HELD_SEGS, "lb_held_segments",
	  "data segments of connections picked for retirement held back until the close "
	  "(SOCK_DESTROY over sock_diag; TCP sends them later if the close does not come)" },
	{ XM_STAT_LB_HELD_MSGS, "lb_held_msgs",
	  "sends of such connections that sk_msg passed to TCP instead of redirecting them" },
};
const unsigned int xm_stat_desc_count = sizeof(xm_stat_descs) / sizeof(xm_stat_descs[0]);

int xm_stats_read(const char *pin_root, __u64 *out)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	int fd, err = 0;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	fd = xm_map_open(pin_root, "xm_stats");
	if (fd < 0)
		return fd;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals) {
		close(fd);
		return -ENOMEM;
	}
	memset(out, 0, XM_STAT_MAX * sizeof(*out));
	for (__u32 i = 0; i < XM_STAT_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	close(fd);
	return err;
}

int xm_stats_add(const char *pin_root, __u32 idx, __u64 n)
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	__u64 *vals;

	if (ncpu <= 0)
		return -EINVAL;
	fd = xm_map_open(pin_root, "xm_stats");
	if (fd < 0)
		return fd;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals) {
		close(fd);
		return -ENOMEM;
	}
	/* Slot written by user space only: CPU 0's share carries the count. */
	if (bpf_map_lookup_elem(fd, &idx, vals))
		err = -errno;
	else {
		vals[0] += n;
		if (bpf_map_update_elem(fd, &idx, vals, BPF_ANY))
			err = -errno;
	}
	free(vals);
	close(fd);
	return err;
}

long xm_map_count(int fd)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), batch = 1024, n, out_batch;
	char *keys, *vals, *prev = NULL;
	long total = 0;
	int err = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	keys = malloc((size_t)batch * info.key_size);
	vals = malloc((size_t)batch * info.value_size);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	/* Batched: a full 256k-entry LRU is counted in a few hundred syscalls. */
	for (;;) {
		n = batch;
		err = bpf_map_lookup_batch(fd, prev ? &out_batch : NULL, &out_batch, keys, vals, &n,
					   &opts);
		if (err && errno != ENOENT)
			break;
		total += n;
		prev = keys;
		if (err) { /* ENOENT: that was the last batch */
			err = 0;
			break;
		}
	}
	if (err && (errno == EINVAL || errno == EOPNOTSUPP)) {
		/* No batch ops for this map type or kernel: key by key. */
		err = 0;
		total = 0;
		for (prev = NULL; !bpf_map_get_next_key(fd, prev, keys); prev = vals) {
			memcpy(vals, keys, info.key_size);
			total++;
		}
		if (errno != ENOENT)
			err = -errno;
	} else if (err) {
		err = -errno;
	}
	free(keys);
	free(vals);
	return err ? err : total;
}

int xm_lru_evictions_update_maps(const char *pin_root, const char *const *maps, int created,
				 int deleted, int deleted2, int evicted)
{
	__u64 vals[XM_STAT_MAX];
	long present = 0;
	__s64 est;
	int err;

	for (; *maps; maps++) {
		int fd = xm_map_open(pin_root, *maps);
		long n;

		if (fd < 0)
			return fd;
		n = xm_map_count(fd);
		close(fd);
		if (n < 0)
			return n;
		present += n;
	}
	err = xm_stats_read(pin_root, vals);
	if (err)
		return err;
	/* Whatever was created and is neither present nor deleted by anyone was evicted. */
	est = (__s64)vals[created] - (deleted >= 0 ? (__s64)vals[deleted] : 0) -
	      (deleted2 >= 0 ? (__s64)vals[deleted2] : 0) - present;
	if (est > (__s64)vals[evicted])
		return xm_stats_add(pin_root, evicted, est - vals[evicted]);
	return 0;
}

int xm_lru_evictions_update(const char *pin_root, const char *map, int created, int deleted,
			    int deleted2, int evicted)
{
	const char *const maps[] = { map, NULL };

	return xm_lru_evictions_update_maps(pin_root, maps, created, deleted, deleted2, evicted);
}
