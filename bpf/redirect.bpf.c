// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket redirection between sockets of one node.
 *
 * sockops puts a TCP socket into the SOCKHASH when it becomes established and
 * its peer can be on this node (loopback, or a registered pod address). The
 * sk_msg program then hands each sendmsg() straight to the peer socket's
 * receive queue, skipping TCP/IP, veth and bridge. Anything not found falls
 * through to the normal stack.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <xmesh/redirect.h>
#include "lib/common_maps.h"
#include "lib/addr.h"
#include "lib/lb_probe.h"
#include "lib/lb_sockops.h"
#include "lib/kfeatures.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, XM_MAX_SOCKS);
	__type(key, struct xm_sock_key);
	__type(value, __u64);
} xm_socks SEC(".maps");

/* Opt-outs (xmeshctl sock skip): see struct xm_redirect_skip_key. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XM_MAX_REDIRECT_SKIP);
	__type(key, struct xm_redirect_skip_key);
	__type(value, __u32);
} xm_redirect_skip SEC(".maps");

/* Bulk senders waiting for their peer's answer (enum xm_bulk_ask). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XM_MAX_BULK_ASKS);
	__type(key, struct xm_sock_key);
	__type(value, __u32);
} xm_bulk_asks SEC(".maps");

/* Wakes the agent when a sender asks (the bytes carry nothing). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} xm_bulk_ring SEC(".maps");

static __always_inline __u32 *skip_lookup(__u64 netns_cookie, __u16 port)
{
	struct xm_redirect_skip_key k = { .netns_cookie = netns_cookie, .port = port };

	return bpf_map_lookup_elem(&xm_redirect_skip, &k);
}

/* Has an operator opted this connection out of redirection (by port, netns, or both)? */
static __always_inline int redirect_opted_out(struct bpf_sock_ops *skops,
					      const struct xm_sock_key *key)
{
	__u64 netns = bpf_get_netns_cookie(skops);
	__u32 *pod;

	if (skip_lookup(0, key->local_port) || skip_lookup(0, key->remote_port))
		return 1;
	pod = skip_lookup(netns, 0);
	if (!pod)
		return 0;
	if (!(*pod & XM_REDIRECT_SKIP_F_PORTS))
		return 1; /* the whole pod */
	return skip_lookup(netns, key->local_port) || skip_lookup(netns, key->remote_port);
}

/*
 * Is addr a pod address registered to the netns with this cookie? With
 * netns_cookie == 0, any registered pod address will do (used for the peer,
 * which may live in any pod of the node).
 */
static __always_inline int endpoint_registered(__u8 family, const struct xm_addr *addr,
					       __u64 netns_cookie)
{
	struct xm_endpoint_key k = {};
	struct xm_endpoint *ep;

	k.family = family;
	k.addr = *addr;
	ep = bpf_map_lookup_elem(&xm_endpoints, &k);
	if (!ep)
		return 0;
	return netns_cookie == 0 || ep->netns_cookie == netns_cookie;
}

/*
 * Build the key of a socket seen by sockops. Returns 0 when the socket may be
 * redirected, -1 when it must stay on the normal path.
 */
static __always_inline int sockops_key(struct bpf_sock_ops *skops, struct xm_sock_key *key)
{
	__u64 netns = bpf_get_netns_cookie(skops);
	__u8 lfam, rfam;

	lfam = xm_addr_load(&key->local, skops->family, skops->local_ip4, skops->local_ip6[0],
			    skops->local_ip6[1], skops->local_ip6[2], skops->local_ip6[3]);
	rfam = xm_addr_load(&key->remote, skops->family, skops->remote_ip4, skops->remote_ip6[0],
			    skops->remote_ip6[1], skops->remote_ip6[2], skops->remote_ip6[3]);
	if (lfam != rfam)
		return -1;
	key->family = lfam;
	key->local_port = (__u16)skops->local_port;
	key->remote_port = (__u16)bpf_ntohl(skops->remote_port);

	if (xm_addr_is_loopback(lfam, &key->local) && xm_addr_is_loopback(lfam, &key->remote)) {
		key->scope = netns;
		return 0;
	}
	key->scope = 0;
	if (!endpoint_registered(lfam, &key->remote, 0))
		return -1; /* peer cannot be local: remote traffic pays nothing */
	if (!endpoint_registered(lfam, &key->local, netns)) {
		/* claims a pod address that is not its own: never redirect */
		xm_stat_add(XM_STAT_SOCK_SKIPPED_FOREIGN, 1);
		return -1;
	}
	return 0;
}

/*
 * A connection whose SYN carried data (TCP Fast Open) has bytes in TCP
 * before it is established, and its sequence numbers at this point are not
 * ISN + 1: it stays on TCP (never in the map). At these callbacks:
 * - a Fast Open client has set tcp_sock's syn_data and counted the SYN as a
 *   data segment (data_segs_out);
 * - a Fast Open child runs PASSIVE_ESTABLISHED from tcp_fastopen_create_child,
 *   before the kernel adds the SYN's data or sets syn_fastopen_child (both
 *   come after, in tcp_try_fastopen), so neither can say it; its
 *   fastopen_rsk (the request, set before) does, and so does srtt_us == 0:
 *   its SYN-ACK has not been acked yet, while an ordinary child has taken an
 *   RTT sample from the ACK that completed the handshake (tcp_synack_rtt_meas;
 *   none only after a SYN-ACK retransmitted without timestamps, and such a
 *   connection then stays on TCP, which is safe).
 * tcp_sock's fields are read through BTF; where the kernel's BTF does not
 * match them (Debian's 6.1), the counters decide. The branch not taken is
 * dead code for the verifier, so bpf_skc_to_tcp_sock is never asked of a
 * kernel without it. The agent's feature mask (tcp_fastopen_btf) can force
 * the counters path: tests/integration/test_redirect_fastopen.sh runs both.
 */
static __always_inline int sock_is_fastopen(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	bool passive = skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB;
	struct tcp_sock *tp;

	if (!xm_kf(XM_KF_TCP_FASTOPEN_BTF) || !bpf_core_field_exists(struct tcp_sock, syn_data) ||
	    !bpf_core_field_exists(struct tcp_sock, fastopen_rsk))
		return passive ? skops->srtt_us == 0 : skops->data_segs_out != 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 1; /* not TCP as we know it: keep it out */
	return passive ? BPF_CORE_READ(tp, fastopen_rsk) != NULL
		       : BPF_CORE_READ_BITFIELD(tp, syn_data);
}

/*
 * An established TCP socket enters the map when its peer can be local.
 * Returns its redirect state when it did (st->peer: the peer's key), else
 * NULL.
 */
static __always_inline struct xm_sock_state *redirect_established(struct bpf_sock_ops *skops)
{
	struct xm_sock_key key = {};
	struct xm_sock_state *st;
	struct bpf_sock *sk;
	struct xm_sock *s;

	if (skops->family != AF_INET && skops->family != AF_INET6)
		return NULL;
	if (sockops_key(skops, &key))
		return NULL;
	if (redirect_opted_out(skops, &key)) {
		xm_stat_add(XM_STAT_SOCK_SKIPPED_OPTOUT, 1);
		return NULL;
	}
	sk = skops->sk;
	if (!sk)
		return NULL;
	if (sock_is_fastopen(skops, sk)) {
		xm_stat_add(XM_STAT_SOCK_SKIPPED_FASTOPEN, 1);
		return NULL;
	}
	/*
	 * At the ESTABLISHED callbacks (tcp_finish_connect on the client,
	 * tcp_init_transfer from SYN_RECV on the server) each side has sent
	 * only its SYN and received only the peer's SYN: snd_nxt = ISS + 1,
	 * rcv_nxt = IRS + 1. The client's ISS is the server's IRS and the
	 * other way round, so both ends compute each other's keys exactly.
	 */
	key.local_isn = skops->snd_nxt - 1;
	key.remote_isn = skops->rcv_nxt - 1;
	/*
	 * The per-direction decision and the peer's key live in the socket's
	 * storage; without it the socket must stay out of the map, or sk_msg
	 * could neither keep its choice nor know its peer. A balanced client
	 * has its storage from connect4 already (one storage: xmesh/sock.h).
	 */
	s = bpf_sk_storage_get(&xm_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) {
		xm_stat_add(XM_STAT_SOCK_INSERT_FAILED, 1);
		return NULL;
	}
	st = &s->rd;
	xm_sock_key_peer(&key, &st->peer);
	/*
	 * The key is unique to this incarnation, so nothing live holds it;
	 * BPF_ANY could only replace an entry no message can reach.
	 */
	if (bpf_sock_hash_update(skops, &xm_socks, &key, BPF_ANY) == 0) {
		xm_stat_add(XM_STAT_SOCK_INSERTED, 1);
		return st;
	}
	xm_stat_add(XM_STAT_SOCK_INSERT_FAILED, 1);
	return NULL;
}

/*
 * The node's one sockops program: redirection and the LB probes
 * (lib/lb_sockops.h). The kernel runs every sockops program of the cgroup at
 * every callback of every TCP socket, whatever it asked for, so one program
 * that reads the op once is half the cost of one per feature; callbacks
 * neither needs return at once.
 */
SEC("sockops")
int xm_sockops(struct bpf_sock_ops *skops)
{
	struct xm_sock_state *st = NULL;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		st = redirect_established(skops);
		break;
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_RTO_CB:
	case BPF_SOCK_OPS_STATE_CB:
		break;
	default:
		return 1;
	}
	/* a local backend of a balanced connection: its sk_msg times the responses */
	if (lb_sockops(skops, st ? &st->peer : NULL) && st)
		st->flags |= XM_SOCK_F_LB_BACKEND;
	return 1;
}

/*
 * Take an UNDECIDED direction: set mode to want unless it was decided
 * already. Returns the mode it had.
 */
static __always_inline __u32 claim_direction(struct xm_sock_state *st, __u32 want)
{
	struct xm_sock_state was = {}, undecided = {}, claimed = {};

	undecided.mode = XM_SOCK_UNDECIDED;
	claimed.mode = want;
	was.dir = __sync_val_compare_and_swap(&st->dir, undecided.dir, claimed.dir);
	return was.mode;
}

/*
 * Count a redirected sender's bytes; past XM_BULK_DEMOTE_BYTES, ask the
 * agent to demote it (enum xm_sock_mode, xm_redirect_bulk below). Costs a
 * compare and an add per message, and one map insert and a wakeup once per
 * bulk sender; request/response connections get no further. Not on a kernel
 * that refuses the iterator (XM_KF_SOCKMAP_ITER): the sender stays redirected.
 */
static __always_inline void count_bulk_sender(struct xm_sock_state *st, __u32 len)
{
	__u32 pending = XM_BULK_ASK_PENDING;
	__u8 wake = 0;

	if (!xm_kf(XM_KF_SOCKMAP_ITER))
		return; /* nothing could answer: the iterator does not load */
	if (st->bulk_bytes >= XM_BULK_DEMOTE_BYTES)
		return; /* asked or kept already */
	st->bulk_bytes += len;
	if (st->bulk_bytes < XM_BULK_DEMOTE_BYTES)
		return;
	if (bpf_map_update_elem(&xm_bulk_asks, &st->peer, &pending, BPF_NOEXIST)) {
		st->bulk_bytes = XM_BULK_KEEP; /* table full: stay as is */
		xm_stat_add(XM_STAT_REDIRECT_BULK_KEPT, 1);
		return;
	}
	st->bulk_bytes = XM_BULK_ASKED;
	bpf_ringbuf_output(&xm_bulk_ring, &wake, sizeof(wake), 0);
}

/*
 * A balanced client socket whose payload is held (xmesh/lb.h, mark-and-hold):
 * its message takes TCP, where cgroup_skb egress holds it until the close,
 * and so does every later message of this direction, so that no byte
 * overtakes the held ones. A direction never redirected becomes TCP; a
 * redirected one DEMOTED, which keeps the peer in the map (xm_redirect_bulk
 * demotes a bulk peer only while this direction is UNDECIDED or TCP: its
 * redirect queue may still hold our bytes).
 */
static __always_inline int held_to_tcp(struct sk_msg_md *msg, struct xm_sock_state *st,
				       struct xm_lb_sock *ls)
{
	if (!ls || !msg->size || !lb_held(ls))
		return 0;
	if (st && claim_direction(st, XM_SOCK_TCP) == XM_SOCK_REDIRECT)
		st->mode = XM_SOCK_DEMOTED;
	xm_stat_add(XM_STAT_LB_HELD_MSGS, 1);
	return 1;
}

SEC("sk_msg")
int xm_sk_msg(struct sk_msg_md *msg)
{
	struct xm_sock_state *st = NULL;
	struct bpf_sock *sk = msg->sk;
	struct xm_lb_sock *ls;
	struct xm_sock *s;
	__u64 len = msg->size;
	long verdict;

	if (!sk)
		return SK_PASS;
	/* Created by sockops before the socket entered the map; never here,
	 * so a socket without state consistently takes TCP. One lookup for
	 * the redirect's and the LB's parts. */
	s = bpf_sk_storage_get(&xm_sock, sk, 0, 0);
	if (s)
		st = &s->rd;
	ls = lb_msg_sock(s);
	/* not timed: the request starts when TCP sends it (cgroup_skb egress) */
	if (held_to_tcp(msg, st, ls))
		return SK_PASS;
	if (!st)
		goto pass;

	if (st->mode == XM_SOCK_UNDECIDED) {
		/*
		 * First message of this direction: claim it for the redirect
		 * before looking; a peer demoting itself may have closed it
		 * (the iterator xm_redirect_bulk), and then it is TCP.
		 */
		if (claim_direction(st, XM_SOCK_REDIRECT) != XM_SOCK_UNDECIDED)
			goto pass;
		/*
		 * Redirect only if the peer is already in the map. If it is not
		 * (the peer's side of the handshake has not finished yet),
		 * this direction stays on TCP for the life of the connection.
		 */
		verdict = bpf_msg_redirect_hash(msg, &xm_socks, &st->peer, BPF_F_INGRESS);
		if (verdict != SK_PASS) {
			st->mode = XM_SOCK_TCP;
			goto pass; /* nothing was set up: plain SK_PASS is TCP */
		}
		goto redirected;
	}
	if (st->mode != XM_SOCK_REDIRECT)
		goto pass; /* TCP; DEMOTED: after the redirected bytes, which are read first */
	count_bulk_sender(st, len);

	/*
	 * Only the other end of this very connection, whose key sockops fixed
	 * from this socket's tuple and ISNs: a socket that merely shares the
	 * tuple (an older incarnation still closing) has other ISNs and is
	 * never found.
	 */
	verdict = bpf_msg_redirect_hash(msg, &xm_socks, &st->peer, BPF_F_INGRESS);
	if (verdict != SK_PASS) {
		/*
		 * A redirected direction whose peer left the map: the peer
		 * closed (a live peer only leaves with the map itself, or as a
		 * bulk sender, which nothing redirects to). TCP then reports
		 * the close to the sender as usual (EPIPE, ECONNRESET) instead
		 * of a puzzling EACCES from SK_DROP, and no byte can overtake
		 * another since the peer reads no more.
		 */
		goto pass;
	}
redirected:
	xm_stat_add(XM_STAT_REDIRECT_MSGS, 1);
	xm_stat_add(XM_STAT_REDIRECT_BYTES, len);
	/* Balanced connections to a local backend are timed here (lib/lb_probe.h). */
	lb_probe_msg(msg, st, ls, 1);
	return SK_PASS;
pass:
	lb_probe_msg(msg, st, ls, 0);
	xm_stat_add(XM_STAT_REDIRECT_MISS_MSGS, 1);
	xm_stat_add(XM_STAT_REDIRECT_MISS_BYTES, len);
	return SK_PASS;
}

/*
 * The agent runs this over the redirect map when a sender asked to be
 * demoted (count_bulk_sender), until no ask is left. The asking sender and
 * its peer are both in the map; each visit does its own part:
 * - the peer (its key is an ask's key) closes its direction if it never
 *   redirected: UNDECIDED -> TCP, against its own first message's
 *   UNDECIDED -> REDIRECT (claim_direction); the ask records the outcome;
 * - the sender, once answered, is demoted (mode DEMOTED: its sk_msg passes
 *   every later message to TCP) and leaves the map. Iterators may delete
 *   from a sockhash (sk_msg may not). The psock goes when its last user does
 *   (a sendmsg in progress keeps it to its end), and with it the redirect
 *   hooks: the socket is plain TCP. Its own redirect queue is empty and
 *   stays so: its peer's direction is closed.
 * The two visits come in either order: a sender seen before its peer is
 * demoted at the next pass.
 */
SEC("iter/sockmap")
int xm_redirect_bulk(struct bpf_iter__sockmap *ctx)
{
	struct xm_sock_key *key = ctx->key, self;
	struct sock *sk = ctx->sk;
	struct xm_sock_state *st;
	struct xm_sock *s;
	__u32 *ask, was;

	if (!key || !sk)
		return 0;
	self = *key;
	s = bpf_sk_storage_get(&xm_sock, sk, 0, 0);
	if (!s)
		return 0;
	st = &s->rd;
	ask = bpf_map_lookup_elem(&xm_bulk_asks, &self);
	if (ask && *ask == XM_BULK_ASK_PENDING) {
		was = claim_direction(st, XM_SOCK_TCP);
		*ask = was == XM_SOCK_UNDECIDED || was == XM_SOCK_TCP ? XM_BULK_ASK_CLOSED
								     : XM_BULK_ASK_REFUSED;
	}
	if (st->mode != XM_SOCK_REDIRECT || st->bulk_bytes != XM_BULK_ASKED)
		return 0;
	ask = bpf_map_lookup_elem(&xm_bulk_asks, &st->peer);
	if (ask && *ask == XM_BULK_ASK_PENDING)
		return 0; /* the peer comes later in this pass, or in the next */
	if (ask && *ask == XM_BULK_ASK_CLOSED) {
		st->mode = XM_SOCK_DEMOTED;
		if (bpf_map_delete_elem(&xm_socks, &self) == 0)
			xm_stat_add(XM_STAT_REDIRECT_BULK_DEMOTED, 1);
	} else {
		st->bulk_bytes = XM_BULK_KEEP; /* refused, or the ask was dropped */
		xm_stat_add(XM_STAT_REDIRECT_BULK_KEPT, 1);
	}
	bpf_map_delete_elem(&xm_bulk_asks, &st->peer);
	return 0;
}

/*
 * Where a redirected socket cannot behave as TCP, the kernel's tcp_bpf code
 * (net/ipv4/tcp_bpf.c) decides; this program only counts the cases, so that
 * an operator sees which applications meet which difference
 * (docs/redirect-compat.md). It runs on the sock_recv_length tracepoint
 * (Linux >= 6.3: every recvmsg of every socket of the host, with its result
 * and flags; the agent loads it only where the kernel has the tracepoint,
 * feature sock_recv_tp). A BTF tracepoint, not a raw one: the socket's
 * fields are plain loads instead of probe-read helper calls, which matters
 * because every process of the node pays this program, in the mesh or not
 * (docs/benchmarks.md, "Redirect counters on every host recvmsg"); the
 * agent attaches it only while the config asks. fentry/fexit would
 * need BPF trampolines, which some kernels (this project's CI kernel among
 * them) refuse; a BTF tracepoint does not.
 */
#define XM_EAGAIN 11
#define XM_MSG_DONTWAIT 0x40
#define XM_MSG_WAITALL 0x100
#define XM_MSG_PEEK 0x2
#define XM_SK_USER_DATA_PTRMASK (~7UL) /* low bits of sk_user_data are flags */

/*
 * Is sk in this datapath's redirect map? Its psock's first map link says.
 * sk_user_data is untyped, so the psock behind it is read with probe reads;
 * only sockets with user data (psocks, a few kernel users) get this far.
 */
static __always_inline int sock_in_our_map(struct sock *sk)
{
	struct sk_psock_link *link;
	struct sk_psock *psock;
	struct bpf_map *map;
	unsigned long ud;

	ud = (unsigned long)sk->sk_user_data;
	psock = (struct sk_psock *)(ud & XM_SK_USER_DATA_PTRMASK);
	if (!psock)
		return 0;
	link = (struct sk_psock_link *)BPF_CORE_READ(psock, link.next);
	if (!link || (void *)link == (void *)&psock->link)
		return 0;
	map = BPF_CORE_READ(link, map);
	return (void *)map == (void *)&xm_socks;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(xm_redirect_recv, struct sock *sk, int ret, int flags)
{
	/* Cheap filters first: every recvmsg of the host passes here. */
	if (flags & (XM_MSG_DONTWAIT | XM_MSG_PEEK))
		return 0;
	if (ret != -XM_EAGAIN && !(flags & XM_MSG_WAITALL) && ret <= 0)
		return 0;
	if (ret > 0 && !(flags & XM_MSG_WAITALL) && sk->sk_rcvlowat <= 1)
		return 0;
	if (!sock_in_our_map(sk))
		return 0;
	/*
	 * tcp_bpf_recvmsg waits once (tcp_msg_wait_data) and returns -EAGAIN
	 * when the wakeup brought no data, e.g. a write-space wakeup from
	 * another thread's send. TCP never does that to a blocking socket
	 * without SO_RCVTIMEO (timeout MAX_SCHEDULE_TIMEOUT).
	 */
	if (ret == -XM_EAGAIN) {
		if (sk->sk_rcvtimeo == 0x7fffffffffffffffL)
			xm_stat_add(XM_STAT_REDIRECT_RECV_EAGAIN, 1);
		return 0;
	}
	/* MSG_WAITALL is not honoured: any such read may come back short. */
	if (flags & XM_MSG_WAITALL)
		xm_stat_add(XM_STAT_REDIRECT_RECV_WAITALL, 1);
	else if (ret < sk->sk_rcvlowat)
		xm_stat_add(XM_STAT_REDIRECT_RECV_BELOW_LOWAT, 1);
	return 0;
}
