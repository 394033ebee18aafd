/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connect-time service load balancing and per-backend probes: the layout of
 * every LB map, shared by bpf/lb.bpf.c, bpf/lib/lb_probe.h and user space
 * (user/lib/lbtable.c, the agent, xmeshctl, the weighting loop).
 *
 * Maps (all pinned under <pin root>/maps/):
 *   xm_lb_svc     HASH   xm_lb_svc_key -> xm_lb_svc       one entry per service
 *   xm_lb_tables  ARRAY  svc_id*2 + t  -> xm_lb_table     two selection tables per service
 *   xm_lb_be      ARRAY  backend id    -> xm_lb_backend   backend addresses and labels
 *   xm_lb_probe   PERCPU_ARRAY id / 64    -> xm_lb_probe_page probe counters of 64 backends (per CPU, summed)
 *   xm_lb_hist    ARRAY  backend id    -> xm_lb_hist      latency histogram (atomic adds; mmapable)
 *   xm_sock       SK_STORAGE           -> xm_sock         .lb: what a socket was balanced to (xmesh/sock.h)
 *   xm_lb_flows   LRU_HASH client ISNs -> xm_lb_flow      state of a redirected connection to a local backend
 *   xm_lb_rev     LRU_HASH xm_lb_rev_key -> xm_lb_rev     reverse translation of UDP replies
 *   xm_lb_cluster ARRAY  cluster id    -> xm_lb_cluster   names of locality labels
 *
 * Selection: a service's entry names its active table (0 or 1). A table is
 * XM_LB_SLOTS backend ids; connect() takes one random number, masks it to a
 * slot and reads that slot: O(1) whatever the number of backends. The agent
 * fills the slots by largest remainder, so each backend's share is within
 * 1/XM_LB_SLOTS of its weight's share. To change weights the agent writes
 * the *inactive* table, then flips `active` (and `backend_count`) in ONE
 * update of the service entry; a connect() that read the old entry keeps
 * reading a table that is not written again before the next change
 * (changes come at most once per agent tick, a connect() lasts microseconds).
 *
 * Byte order as in common.h: addresses network order, ports host order.
 */
#ifndef XMESH_LB_H
#define XMESH_LB_H

#include "common.h"

#ifndef XM_LB_MAX_SERVICES
#define XM_LB_MAX_SERVICES 1024
#endif
#ifndef XM_LB_MAX_BACKENDS
#define XM_LB_MAX_BACKENDS 2048 /* node-wide; ids 1..XM_LB_MAX_BACKENDS-1, 0 = none */
#endif
#ifndef XM_LB_MAX_FLOWS
#define XM_LB_MAX_FLOWS 262144
#endif
#define XM_LB_MAX_CLUSTERS 64
#define XM_LB_CLUSTER_NAME_LEN 32

/* Slots per selection table: a power of two, so a slot is rand & mask. */
#define XM_LB_SLOTS_SHIFT 10
#define XM_LB_SLOTS (1U << XM_LB_SLOTS_SHIFT)
#define XM_LB_SLOT_MASK (XM_LB_SLOTS - 1)

#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif
#ifndef IPPROTO_UDP
#define IPPROTO_UDP 17
#endif

/* A service as the application addresses it. Zero the whole key first. */
struct xm_lb_svc_key {
	struct xm_addr vip;
	__u16 port;   /* host byte order */
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;  /* AF_INET or AF_INET6 */
};

struct xm_lb_svc {
	__u32 id;            /* index of its tables: xm_lb_tables[id*2 + active] */
	__u8 active;         /* table in use: 0 or 1 */
	__u8 pad[3];
	__u32 backend_count; /* backends with at least one slot; 0: connect() is refused */
	__u32 flags;         /* XM_LB_SVC_F_* */
};

/* One selection table: slot -> backend id. */
struct xm_lb_table {
	__u32 backend[XM_LB_SLOTS];
};

#define XM_LB_BE_F_USED (1U << 0)    /* entry is allocated */
#define XM_LB_BE_F_REMOVED (1U << 1) /* no longer selectable; kept while connections may report */

struct xm_lb_backend {
	struct xm_addr addr;
	__u16 port;          /* host byte order */
	__u8 family;
	__u8 proto;
	__u16 cluster;       /* index into xm_lb_cluster */
	__u16 pad;
	__u32 svc_id;        /* service it belongs to */
	__u32 flags;         /* XM_LB_BE_F_* */
	/*
	 * Its configured weight x1000, written when the agent applies the
	 * service or a control request sets weights (xm_lb_table_write()), never
	 * by the weighting loop; a restarted agent takes it back as the config.
	 * Until ABI 6's agents it was also rewritten with every table the loop
	 * wrote (~5,500 entries a tick at 1,000 services): readers now take a
	 * weighed service's weight from xm_lb_wstate (XM_WSTATE_F_TABLE).
	 */
	__u32 weight_milli;
	/*
	 * Was the slots it held in the active table, rewritten with every table
	 * write; retired (always 0, same layout): readers count the service's
	 * active table (xm_lb_backend_foreach(), user/lib/lbtable.h).
	 */
	__u32 slots_retired;
};

_Static_assert(sizeof(struct xm_lb_backend) == 40, "xm_lb_backend layout is ABI");

struct xm_lb_cluster {
	char name[XM_LB_CLUSTER_NAME_LEN];
};

/*
 * Probe counters of one backend, per CPU; readers sum over CPUs and take
 * differences between reads (user/lib/lbtable.h: xm_lb_probe_read/delta).
 * In-flight requests = req_started - req_completed - req_aborted.
 */
struct xm_lb_probe {
	__u64 conns;          /* TCP connections that reached ESTABLISHED */
	__u64 conn_refused;   /* SYN answered by a reset (SYN_SENT -> CLOSE without a SYN timeout) */
	__u64 conn_timeout;   /* SYN retransmitted by timeout, then the connect gave up */
	__u64 resets;         /* ESTABLISHED -> CLOSE without FIN: reset by either side */
	__u64 req_started;    /* first bytes sent after the previous response began */
	__u64 req_completed;  /* first bytes of the response received */
	__u64 req_aborted;    /* connection closed while a request waited for its response */
	__u64 http_5xx;       /* completed requests whose response began "HTTP/1.x 5" */
	__u64 latency_sum_ns; /* sum of the latencies of completed requests */
	__u64 udp_sends;      /* datagrams to the VIP sent to this backend */
};

/*
 * xm_lb_probe holds the counters of XM_LB_PROBE_PAGE backends per entry:
 * backend id's are in entry id >> XM_LB_PROBE_PAGE_SHIFT, at b[id & mask].
 * The weighting loop copies every busy backend's per-CPU counters each tick,
 * and the kernel's batched copy costs per entry (key walk, per-CPU copy,
 * user copy checks: ~500 cycles), not per byte: 64 backends per entry make
 * the copy of 10,000 backends ~160 entries instead of 10,000. Same per-CPU counters,
 * same single lookup per probe update (lb_probe_of() in bpf/lib/lb_probe.h).
 */
#define XM_LB_PROBE_PAGE_SHIFT 6
#define XM_LB_PROBE_PAGE (1U << XM_LB_PROBE_PAGE_SHIFT)
#define XM_LB_PROBE_PAGES ((XM_LB_MAX_BACKENDS + XM_LB_PROBE_PAGE - 1) / XM_LB_PROBE_PAGE)

struct xm_lb_probe_page {
	struct xm_lb_probe b[XM_LB_PROBE_PAGE];
};

/* A per-CPU map value may not exceed 32 KB (the kernel's PCPU_MIN_UNIT_SIZE). */
_Static_assert(sizeof(struct xm_lb_probe_page) <= 32768, "xm_lb_probe_page: per-CPU value too big");

/*
 * Log-linear latency histogram in nanoseconds: values below 16 have one
 * bucket each; above, every power of two [2^e, 2^(e+1)) is split into 16
 * equal buckets. A bucket is at most 1/16 of its lower bound wide, so its
 * midpoint is within 3.2% of any value in it (<= 5% asked). The last bucket
 * also holds everything above 2^36 ns (68.7 s).
 *
 * Counts are 32 bits and wrap: readers take differences modulo 2^32 (the
 * weighting loop reads a backend's histogram at least every 2 s, far fewer
 * than 2^32 requests). The map is mmapable (ABI 7): the loop reads the
 * buckets a backend used before in place, not the whole entry (2 KB) with a
 * syscall (docs/benchmarks.md, "Weighting loop"); xmeshctl and /metrics,
 * which want every bucket of one backend now and then, look it up.
 */
#define XM_LB_HIST_SUB_BITS 4
#define XM_LB_HIST_SUB (1U << XM_LB_HIST_SUB_BITS)
#define XM_LB_HIST_MAX_EXP 35
#define XM_LB_HIST_BUCKETS (XM_LB_HIST_SUB + (XM_LB_HIST_MAX_EXP - XM_LB_HIST_SUB_BITS + 1) * XM_LB_HIST_SUB)

struct xm_lb_hist {
	__u32 bucket[XM_LB_HIST_BUCKETS];
};

/* Index of the highest set bit, v != 0; written without loops for BPF. */
static inline __u32 xm_lb_fls64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static inline __u32 xm_lb_hist_bucket(__u64 ns)
{
	__u32 e, sub;

	if (ns < XM_LB_HIST_SUB)
		return (__u32)ns;
	e = xm_lb_fls64(ns);
	if (e > XM_LB_HIST_MAX_EXP)
		return XM_LB_HIST_BUCKETS - 1;
	sub = (__u32)(ns >> (e - XM_LB_HIST_SUB_BITS)) & (XM_LB_HIST_SUB - 1);
	return XM_LB_HIST_SUB + (e - XM_LB_HIST_SUB_BITS) * XM_LB_HIST_SUB + sub;
}

/* Lower bound and width of bucket i, in ns. */
static inline __u64 xm_lb_hist_lower(__u32 i)
{
	__u32 e, sub;

	if (i < XM_LB_HIST_SUB)
		return i;
	e = (i - XM_LB_HIST_SUB) / XM_LB_HIST_SUB + XM_LB_HIST_SUB_BITS;
	sub = (i - XM_LB_HIST_SUB) % XM_LB_HIST_SUB;
	return (__u64)(XM_LB_HIST_SUB + sub) << (e - XM_LB_HIST_SUB_BITS);
}

static inline __u64 xm_lb_hist_width(__u32 i)
{
	if (i < XM_LB_HIST_SUB)
		return 1;
	return 1ULL << ((i - XM_LB_HIST_SUB) / XM_LB_HIST_SUB);
}

/*
 * Request/response state of one balanced TCP connection. It lives in the
 * client socket's storage (xm_lb_sock.st), where the client's hooks find it
 * with no further lookup. When the backend is local (loopback or a registered
 * endpoint), the backend's accepted socket must reach it too (its sk_msg
 * times redirected responses): then, from ESTABLISHED on, a redirected
 * connection's state lives in xm_lb_flows under the client's two ISNs, which
 * both sockets know from their redirect keys, and xm_lb_sock.shared is set;
 * the backend's socket is marked in its redirect state (XM_SOCK_F_LB_BACKEND).
 *
 * A request begins with the first payload bytes the client sends while no
 * request is outstanding; its response begins with the first payload bytes
 * that come back. Latency = time between the two. The next request begins
 * with the next bytes the client sends after that.
 */
enum xm_lb_phase {
	XM_LB_IDLE = 0,   /* connected, nothing sent yet */
	XM_LB_REQUEST,    /* request sent, waiting for the first response byte */
	XM_LB_RESPONSE,   /* response started; next bytes sent start a new request */
};

#define XM_LB_FLOW_F_SYN_RTO (1U << 0) /* the SYN was retransmitted by timeout */
#define XM_LB_FLOW_F_EST (1U << 1)     /* reached ESTABLISHED */
#define XM_LB_FLOW_F_DONE (1U << 2)    /* ended (reset, or the backend closed): counted */

struct xm_lb_flow {
	__u64 t_start;    /* bpf_ktime_get_ns() of the current request's first byte */
	__u32 backend;
	__u8 phase;       /* enum xm_lb_phase */
	__u8 flags;       /* XM_LB_FLOW_F_* */
	__u16 pad;
};

/* Per-socket LB state (SK_STORAGE), created by connect()/sendmsg() hooks. */
enum xm_lb_role {
	XM_LB_ROLE_NONE = 0,
	XM_LB_ROLE_CLIENT, /* the socket that connected to the VIP */
	XM_LB_ROLE_SERVER, /* a local backend's socket, as agents before ISN-keyed sharing tied it */
};

struct xm_lb_sock {
	__u64 flow;          /* key of xm_lb_flows while shared (lb_flow_key: the client's ISNs) */
	struct xm_addr vip;  /* what the application connected to */
	__u16 vport;         /* host byte order */
	__u8 family;         /* family of vip */
	__u8 role;           /* enum xm_lb_role */
	__u32 backend;       /* backend id (a client's; 0 on a backend's socket) */
	__u8 shared;         /* 1: the state is xm_lb_flows[flow], not st */
	__u8 pad[3];
	__u32 retire_mark;   /* picked for retirement at xm_lb_mark_clock() (below); 0: not */
	struct xm_lb_flow st; /* the connection's state while not shared (client only) */
};

/*
 * Mark-and-hold (docs/weighting.md, "Kernels without bpf_sock_destroy"). Where
 * the kernel lacks bpf_sock_destroy() the rebalancing iterator only picks an
 * idle client socket (under its lock) and the agent closes it afterwards with
 * SOCK_DESTROY over sock_diag. So that a request written between the two
 * never reaches the backend (to be cut there), the pick marks the socket
 * (retire_mark) and, while the mark is fresh, the client's hooks hold its
 * payload: cgroup_skb egress drops its data segments (TCP keeps them queued
 * and sends them again later), sk_msg sends it to TCP instead of redirecting
 * it. The close then fails the request at the client (ECONNABORTED), which a
 * retrying client sends again on a new connection. If the close never comes,
 * TCP sends the held bytes once the mark is stale: late, never lost.
 *
 * XM_LB_HOLD_NS: longer than the agent takes from its pass to the close
 * (microseconds while it runs, tens of milliseconds when scheduled late on
 * a loaded machine); short enough that a request held by a close that never
 * came is only late by about one TCP probe (>= 200 ms). The agent closes a
 * picked socket only within XM_LB_HOLD_CLOSE_NS of its mark, so the close
 * itself always falls inside the hold; later it leaves it open.
 *
 * The clock is CLOCK_MONOTONIC (bpf_ktime_get_ns()) in units of 2^20 ns
 * (~1.05 ms) in 32 bits: it comes round after 52 days, when a mark nobody
 * cleared could hold a socket's payload once more for XM_LB_HOLD_NS (late,
 * not lost); the egress hook clears a stale mark when it meets one.
 */
#define XM_LB_MARK_SHIFT 20
#define XM_LB_HOLD_NS (200ULL * 1000 * 1000)
#define XM_LB_HOLD_CLOSE_NS (150ULL * 1000 * 1000)

_Static_assert(sizeof(struct xm_lb_sock) == 56, "xm_lb_sock layout is ABI");

/* A mark for now (ns of CLOCK_MONOTONIC): never 0, which means none. */
static inline __u32 xm_lb_mark_clock(__u64 now_ns)
{
	__u32 t = (__u32)(now_ns >> XM_LB_MARK_SHIFT);

	return t ? t : 1;
}

/* Was mark set less than within_ns before now_ns? */
static inline int xm_lb_mark_fresh(__u32 mark, __u64 now_ns, __u64 within_ns)
{
	return mark && (__u32)((__u32)(now_ns >> XM_LB_MARK_SHIFT) - mark) <
			       (__u32)(within_ns >> XM_LB_MARK_SHIFT);
}

/* Unconnected UDP: which VIP a datagram from backend addr:port answers. */
struct xm_lb_rev_key {
	__u64 cookie; /* client socket */
	struct xm_addr addr;
	__u16 port;
	__u8 family;
	__u8 pad[5];
};

struct xm_lb_rev {
	struct xm_addr vip;
	__u16 vport;
	__u8 family;
	__u8 pad[5];
};

#endif /* XMESH_LB_H */
