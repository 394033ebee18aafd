// SPDX-License-Identifier: MIT
/*
 * xm-ovl-prog: the overlay cache programs on crafted packets
 * (BPF_PROG_TEST_RUN), one table row per case: what goes in, which verdict
 * must come out, and what the output packet must look like. Loads its own
 * copy of bpf/overlay.bpf.c (maps not pinned), teaches it a flow the way the
 * slow path would (an encapsulated frame on the underlay egress, a delivered
 * frame on the pod veth egress), then checks the fast paths: outer header
 * fields and checksum, UDP source port (range, per-flow hash), TTL/hop limit, ECN on the way
 * out (INET_ECN_encapsulate) and in (INET_ECN_decapsulate), the VNI / outer
 * address / port checks, SYN/FIN/RST and TTL 1 left to the slow path.
 * Exit 0 iff every case passed.
 *
 * xm-ovl-prog bench [N [--base OBJ]]: after the cases, the cost of the fast
 * paths: N rounds of single runs (repeat 1: a repeated run would see its own
 * output, an encapsulated frame, and take the slow path) of encap and decap
 * of a cached 64 B TCP segment, the learner and the floor; median and p90 of
 * the kernel's per-run time. --base OBJ: another build's bpf/overlay.bpf.o,
 * loaded beside this one and timed in the same rounds (an A/B that the
 * machine's moods cannot tilt); then the same programs as the kernel's BPF
 * statistics count them (the program alone, no test-run frame around it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xmesh/overlay.h>
#include "kfeatures.h"
#include "lib/pctl.h"
#include "overlay.skel.h"

#define TC_ACT_OK 0
#define TC_ACT_REDIRECT 7
#define VX_IFINDEX 4242 /* what the delivered frames claim to have come in by */

static int failures;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			failures++;                                      \
			printf("FAIL %s:%d: ", __func__, __LINE__);     \
			printf(__VA_ARGS__);                             \
			printf("\n");                                    \
		}                                                        \
	} while (0)

static const __u8 POD_MAC[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const __u8 GW_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const __u8 NODE1_MAC[6] = { 0 }; /* lo's address: frames to it are PACKET_HOST */
static const __u8 NODE2_MAC[6] = { 0x02, 0, 0, 0, 2, 0x02 };
static const __u8 VX1_MAC[6] = { 0x02, 0, 0, 0, 1, 0xee };
static const __u8 VX2_MAC[6] = { 0x02, 0, 0, 0, 2, 0xee };
#define POD_A "10.244.1.10"
#define POD_B "10.244.2.10"
#define NODE1 "172.31.0.1"
#define NODE2 "172.31.0.2"
#define VNI 42

static __u16 csum16(const void *p, size_t n, __u32 sum)
{
	const __u8 *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (b[i] << 8) | b[i + 1];
	if (n & 1)
		sum += b[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u32 ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* eth + IPv4 + UDP(payload n) at p; returns length. */
static size_t put_inner4(__u8 *p, const __u8 *dmac, const __u8 *smac, const char *src,
			 const char *dst, __u8 tos, __u8 ttl, __u16 sport, __u16 dport, size_t n,
			 bool tcp, __u8 tcp_flags)
{
	size_t l4 = tcp ? 20 : 8, len;
	__u8 *ip = p + 14, *th = ip + 20;
	__u32 s = ip4(src), d = ip4(dst);

	memcpy(p, dmac, 6);
	memcpy(p + 6, smac, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	len = 20 + l4 + n;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = tos;
	ip[2] = len >> 8;
	ip[3] = len & 0xff;
	ip[6] = 0x40; /* DF */
	ip[8] = ttl;
	ip[9] = tcp ? 6 : 17;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	*(__u16 *)(ip + 10) = htons(csum16(ip, 20, 0));
	memset(th, 0, l4);
	th[0] = sport >> 8;
	th[1] = sport & 0xff;
	th[2] = dport >> 8;
	th[3] = dport & 0xff;
	if (tcp) {
		th[12] = 5 << 4;
		th[13] = tcp_flags;
	} else {
		th[4] = (8 + n) >> 8;
		th[5] = (8 + n) & 0xff;
	}
	for (size_t i = 0; i < n; i++)
		th[l4 + i] = (__u8)(i * 7 + 3);
	return 14 + len;
}

/* eth + IPv6 + UDP(payload n) at p; returns length. tc: traffic class. */
static size_t put_inner6(__u8 *p, const __u8 *dmac, const __u8 *smac, const char *src,
			 const char *dst, __u8 tc, __u8 hlim, __u16 sport, __u16 dport, size_t n)
{
	__u8 *ip = p + 14, *uh = ip + 40;

	memcpy(p, dmac, 6);
	memcpy(p + 6, smac, 6);
	p[12] = 0x86;
	p[13] = 0xdd;
	memset(ip, 0, 40);
	ip[0] = 0x60 | (tc >> 4);
	ip[1] = (__u8)(tc << 4) | 0x0a; /* and a flow label */
	ip[4] = (8 + n) >> 8;
	ip[5] = (8 + n) & 0xff;
	ip[6] = 17;
	ip[7] = hlim;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	uh[0] = sport >> 8;
	uh[1] = sport & 0xff;
	uh[2] = dport >> 8;
	uh[3] = dport & 0xff;
	uh[4] = (8 + n) >> 8;
	uh[5] = (8 + n) & 0xff;
	uh[6] = 0x12; /* not checked by the cache: any value */
	uh[7] = 0x34;
	for (size_t i = 0; i < n; i++)
		uh[8 + i] = (__u8)(i * 5 + 1);
	return 14 + 40 + 8 + n;
}

static __u8 tclass(const __u8 *ip6)
{
	return (__u8)(((ip6[0] & 0x0f) << 4) | (ip6[1] >> 4));
}

/* Outer eth + IPv4 + UDP + VXLAN in front of an inner frame already at p + 50. */
static size_t put_outer4(__u8 *p, size_t inner, const __u8 *dmac, const __u8 *smac,
			 const char *src, const char *dst, __u8 tos, __u32 vni, __u16 dport)
{
	__u8 *ip = p + 14, *uh = ip + 20, *vx = uh + 8;
	__u32 s = ip4(src), d = ip4(dst);
	size_t len = 20 + 8 + 8 + inner;

	memcpy(p, dmac, 6);
	memcpy(p + 6, smac, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = tos;
	ip[2] = len >> 8;
	ip[3] = len & 0xff;
	ip[4] = 0x12;
	ip[5] = 0x34;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	*(__u16 *)(ip + 10) = htons(csum16(ip, 20, 0));
	uh[0] = 0xc0;
	uh[1] = 0x01;
	uh[2] = dport >> 8;
	uh[3] = dport & 0xff;
	uh[4] = (len - 20) >> 8;
	uh[5] = (len - 20) & 0xff;
	uh[6] = uh[7] = 0;
	memset(vx, 0, 8);
	vx[0] = 0x08;
	vx[4] = vni >> 16;
	vx[5] = vni >> 8;
	vx[6] = vni;
	return 14 + len;
}

/* What the kernel offers, as the agent finds it (kfeatures.h). */
static __u32 kfeatures;

struct run {
	int ret;
	__u8 out[2048];
	__u32 out_len;
};

static int run_prog(struct bpf_program *prog, const __u8 *pkt, size_t len, __u32 ifindex,
		    __u32 ingress_ifindex, struct run *r)
{
	struct __sk_buff ctx = { .ifindex = ifindex, .ingress_ifindex = ingress_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	if (err) {
		printf("test run of %s: %s\n", bpf_program__name(prog), strerror(errno));
		return -1;
	}
	r->ret = o.retval;
	r->out_len = o.data_size_out;
	return 0;
}

static struct xm_overlay *skel;

static int flow_seen(const char *local, const char *remote, __u16 lp, __u16 rp, __u8 proto)
{
	struct xm_ovl_flow_key k = { .family = AF_INET, .proto = proto, .local_port = lp,
				     .remote_port = rp };
	struct xm_ovl_tcp4_key k4 = { .local = ip4(local), .remote = ip4(remote),
				      .local_port = lp, .remote_port = rp };
	int flows = bpf_map__fd(skel->maps.xm_ovl_flows), tcp4 = bpf_map__fd(skel->maps.xm_ovl_tcp4);
	struct xm_ovl_flow f;

	k.local.ip[0] = k4.local;
	k.remote.ip[0] = k4.remote;
	/* TCP between IPv4 pods under its 12-byte key only, every other flow under the whole one. */
	if (proto == IPPROTO_TCP) {
		CHECK(bpf_map_lookup_elem(flows, &k, &f), "TCP/IPv4 flow %u -> %u under the 40-byte key",
		      lp, rp);
		return bpf_map_lookup_elem(tcp4, &k4, &f) ? -1 : f.seen;
	}
	CHECK(bpf_map_lookup_elem(tcp4, &k4, &f), "proto %u flow %u -> %u in the TCP map", proto,
	      lp, rp);
	if (bpf_map_lookup_elem(flows, &k, &f))
		return -1;
	return f.seen;
}

/* Teach the cache the UDP flow a:sport <-> b:dport the way the slow path would. */
static void learn(__u16 sport, __u16 dport)
{
	__u8 pkt[512];
	struct run r;
	size_t n;

	/* a -> b, as node 1's kernel encapsulated it (inner TTL already spent). */
	n = put_inner4(pkt + 50, VX2_MAC, VX1_MAC, POD_A, POD_B, 0, 63, sport, dport, 32, false, 0);
	n = put_outer4(pkt, n, NODE2_MAC, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	if (run_prog(skel->progs.xm_ovl_ul_egress, pkt, n, 1, 0, &r))
		return;
	CHECK(r.ret == TC_ACT_OK, "learner verdict %d", r.ret);
	CHECK(flow_seen(POD_A, POD_B, sport, dport, 17) == XM_OVL_SEEN_OUT, "SEEN_OUT after egress");
	/* b -> a, as node 1's kernel delivers it to the pod. */
	n = put_inner4(pkt, POD_MAC, GW_MAC, POD_B, POD_A, 0, 62, dport, sport, 32, false, 0);
	if (run_prog(skel->progs.xm_ovl_pod_egress, pkt, n, 1, VX_IFINDEX, &r))
		return;
	CHECK(flow_seen(POD_A, POD_B, sport, dport, 17) == XM_OVL_SEEN_BOTH, "both ways seen");
}

static void test_encap(void)
{
	static const struct {
		const char *what;
		__u8 tos, outer_ecn;
	} cases[] = {
		{ "not-ECT", 0x00, 0 }, { "ECT(1)", 0x01, 1 }, { "ECT(0)", 0x02, 2 },
		{ "CE -> outer ECT(0)", 0x03, 2 }, { "DSCP 10 + ECT(0)", 0x2a, 2 },
	};
	__u8 pkt[512], *o, *oip, *uh, *iip;
	struct run r;
	size_t n;

	learn(40000, 7000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, cases[i].tos, 64, 40000, 7000,
			       100 + i, false, 0);
		if (run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r))
			return;
		CHECK(r.ret == TC_ACT_REDIRECT, "%s: verdict %d, want redirect", cases[i].what, r.ret);
		CHECK(r.out_len == n + 50, "%s: length %u, want %zu", cases[i].what, r.out_len, n + 50);
		o = r.out;
		oip = o + 14;
		uh = oip + 20;
		iip = o + 64;
		CHECK(!memcmp(o, NODE2_MAC, 6) && !memcmp(o + 6, NODE1_MAC, 6), "%s: outer MACs",
		      cases[i].what);
		CHECK(csum16(oip, 20, 0) == 0, "%s: outer IPv4 checksum invalid", cases[i].what);
		CHECK((size_t)((oip[2] << 8) | oip[3]) == n + 50 - 14, "%s: outer total length",
		      cases[i].what);
		CHECK((oip[1] & 3) == cases[i].outer_ecn, "%s: outer ECN %d, want %d",
		      cases[i].what, oip[1] & 3, cases[i].outer_ecn);
		CHECK((size_t)((uh[4] << 8) | uh[5]) == n + 50 - 34, "%s: UDP length", cases[i].what);
		CHECK(((uh[2] << 8) | uh[3]) == 4789, "%s: UDP port", cases[i].what);
		CHECK(((uh[0] << 8) | uh[1]) >= 32768 && ((uh[0] << 8) | uh[1]) <= 60999,
		      "%s: UDP source port %d out of range", cases[i].what, (uh[0] << 8) | uh[1]);
		CHECK(((o[46] << 16) | (o[47] << 8) | o[48]) == VNI, "%s: VNI", cases[i].what);
		CHECK(!memcmp(o + 50, VX2_MAC, 6) && !memcmp(o + 56, VX1_MAC, 6), "%s: inner MACs",
		      cases[i].what);
		CHECK(iip[8] == 63, "%s: inner TTL %d, want 63", cases[i].what, iip[8]);
		CHECK(csum16(iip, 20, 0) == 0, "%s: inner IPv4 checksum invalid", cases[i].what);
		CHECK(iip[1] == cases[i].tos, "%s: inner TOS changed", cases[i].what);
		CHECK(!memcmp(o + 64 + 20, pkt + 14 + 20, n - 34), "%s: payload changed",
		      cases[i].what);
	}
	/* Same flow, same hash, same source port. */
	{
		struct run r2;

		n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40000, 7000, 10, false, 0);
		run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
		run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r2);
		CHECK(!memcmp(r.out + 34, r2.out + 34, 2), "source port differs within one flow");
	}
	/* Left to the slow path, untouched. */
	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 1, 40000, 7000, 10, false, 0);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK && r.out_len == n && !memcmp(r.out, pkt, n), "TTL 1 not left alone");
	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40001, 7000, 10, false, 0);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK && r.out_len == n, "unknown flow not left alone");
	n = put_inner4(pkt, GW_MAC, NODE2_MAC, POD_A, POD_B, 0, 64, 40000, 7000, 10, false, 0);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK, "frame from another MAC than the pod's fast-pathed");
}

/* The encap's source port for a packet without a hash: ours, scaled as udp_flow_src_port(). */
static __u16 port_of(const struct xm_ovl_flow_key *k, __u32 lo, __u32 hi)
{
	__u32 h = xm_ovl_flow_hash(k);

	h ^= h << 16;
	return (__u16)((((__u64)h * (hi - lo)) >> 32) + lo);
}

/*
 * The outer UDP source port is the ECMP and RSS entropy of the underlay:
 * a pure function of the inner flow (the packet's hash, else ours over the
 * parsed flow key; the test run's skb has none), the same for every packet
 * of a flow, different flows spread over the whole range.
 */
#define PORT_FLOWS 64
static void test_source_port(void)
{
	__u16 ports[PORT_FLOWS];
	int distinct = 0, low = 0;
	__u8 pkt[512];
	struct run r;
	size_t n;

	for (int i = 0; i < PORT_FLOWS; i++) {
		struct xm_ovl_flow_key k = { .family = AF_INET, .proto = IPPROTO_UDP,
					     .local_port = 42000 + i, .remote_port = 7000 };
		__u16 want;

		k.local.ip[0] = ip4(POD_A);
		k.remote.ip[0] = ip4(POD_B);
		want = port_of(&k, 32768, 60999);
		learn(42000 + i, 7000);
		n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 42000 + i, 7000, 10, false, 0);
		for (int rep = 0; rep < 2; rep++) {
			if (run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r))
				return;
			CHECK(r.ret == TC_ACT_REDIRECT, "flow %d: verdict %d", i, r.ret);
			ports[i] = (r.out[34] << 8) | r.out[35];
			CHECK(ports[i] == want, "flow %d (run %d): source port %u, want %u (the flow hash)",
			      i, rep, ports[i], want);
		}
	}
	for (int i = 0; i < PORT_FLOWS; i++) {
		int seen = 0;

		for (int j = 0; j < i; j++)
			seen |= ports[j] == ports[i];
		distinct += !seen;
		low += ports[i] < (32768 + 60999) / 2;
	}
	/* 64 draws from 28,231 ports: a collision is rare, a skew of a half is a bad hash. */
	CHECK(distinct >= PORT_FLOWS - 2, "%d distinct source ports for %d flows", distinct,
	      PORT_FLOWS);
	CHECK(low >= PORT_FLOWS / 4 && low <= PORT_FLOWS * 3 / 4,
	      "%d of %d flows in the lower half of the port range", low, PORT_FLOWS);
}

static void test_decap(void)
{
	static const struct {
		const char *what;
		__u8 outer_tos, inner_tos, want_ret, want_inner_tos;
	} cases[] = {
		{ "plain", 0x00, 0x00, TC_ACT_REDIRECT, 0x00 },
		{ "outer CE, inner ECT(0) -> CE", 0x03, 0x02, TC_ACT_REDIRECT, 0x03 },
		{ "outer CE, inner ECT(1) -> CE", 0x03, 0x01, TC_ACT_REDIRECT, 0x03 },
		{ "outer CE, inner not-ECT: slow path", 0x03, 0x00, TC_ACT_OK, 0x00 },
		{ "outer ECT(0), inner ECT(0)", 0x02, 0x02, TC_ACT_REDIRECT, 0x02 },
	};
	__u8 pkt[512], *iip;
	struct run r;
	size_t n, in;

	learn(40010, 7010);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		in = put_inner4(pkt + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, cases[i].inner_tos, 64,
				7010, 40010, 60, false, 0);
		n = put_outer4(pkt, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, cases[i].outer_tos, VNI,
			       4789);
		if (run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r))
			return;
		CHECK(r.ret == cases[i].want_ret, "%s: verdict %d, want %d", cases[i].what, r.ret,
		      cases[i].want_ret);
		if (r.ret != TC_ACT_REDIRECT) {
			CHECK(r.out_len == n && !memcmp(r.out, pkt, n), "%s: changed on the slow path",
			      cases[i].what);
			continue;
		}
		iip = r.out + 14;
		CHECK(r.out_len == in, "%s: length %u, want %zu", cases[i].what, r.out_len, in);
		CHECK(!memcmp(r.out, POD_MAC, 6) && !memcmp(r.out + 6, GW_MAC, 6),
		      "%s: delivered MACs", cases[i].what);
		CHECK(iip[8] == 63, "%s: TTL %d, want 63", cases[i].what, iip[8]);
		CHECK(iip[1] == cases[i].want_inner_tos, "%s: TOS %#x, want %#x", cases[i].what,
		      iip[1], cases[i].want_inner_tos);
		CHECK(csum16(iip, 20, 0) == 0, "%s: IPv4 checksum invalid", cases[i].what);
		CHECK(!memcmp(r.out + 34, pkt + 50 + 34, in - 34), "%s: payload changed",
		      cases[i].what);
	}
	/* Outer checks: each wrong field leaves the frame to the kernel. */
	{
		static const struct {
			const char *what, *src, *dst;
			__u32 vni;
		} bad[] = {
			{ "another VNI", NODE2, NODE1, VNI + 1 },
			{ "another source node", "172.31.0.9", NODE1, VNI },
			{ "another destination", NODE2, "172.31.0.8", VNI },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			in = put_inner4(pkt + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 7010, 40010, 60,
					false, 0);
			n = put_outer4(pkt, in, NODE1_MAC, NODE2_MAC, bad[i].src, bad[i].dst, 0,
				       bad[i].vni, 4789);
			run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r);
			CHECK(r.ret == TC_ACT_OK && r.out_len == n && !memcmp(r.out, pkt, n),
			      "%s: not left to the kernel", bad[i].what);
		}
		in = put_inner4(pkt + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 7010, 40010, 60,
				false, 0);
		n = put_outer4(pkt, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4790);
		run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r);
		CHECK(r.ret == TC_ACT_OK, "another UDP port: not left to the kernel");
		n = put_outer4(pkt, in, NODE2_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4789);
		run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r);
		CHECK(r.ret == TC_ACT_OK, "frame for another host's MAC taken");
	}
}

static void test_tcp_flags(void)
{
	__u8 pkt[512];
	struct run r;
	size_t n;

	/* A TCP flow learned from its handshake (SYN out, SYN-ACK in). */
	n = put_inner4(pkt + 50, VX2_MAC, VX1_MAC, POD_A, POD_B, 0, 63, 40100, 80, 0, true, 0x02);
	n = put_outer4(pkt, n, NODE2_MAC, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	run_prog(skel->progs.xm_ovl_ul_egress, pkt, n, 1, 0, &r);
	n = put_inner4(pkt, POD_MAC, GW_MAC, POD_B, POD_A, 0, 62, 80, 40100, 0, true, 0x12);
	run_prog(skel->progs.xm_ovl_pod_egress, pkt, n, 1, VX_IFINDEX, &r);
	CHECK(flow_seen(POD_A, POD_B, 40100, 80, 6) == XM_OVL_SEEN_BOTH, "handshake: both ways");

	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40100, 80, 100, true, 0x10);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_REDIRECT, "TCP data not fast-pathed");
	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40100, 80, 0, true, 0x02);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK, "SYN fast-pathed");
	/* FIN from the pod: half-closed, the other direction stays fast. */
	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40100, 80, 0, true, 0x11);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK, "FIN fast-pathed");
	CHECK(flow_seen(POD_A, POD_B, 40100, 80, 6) == XM_OVL_SEEN_BOTH, "half-closed flow gone");
	{
		__u8 f[512];
		size_t in = put_inner4(f + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 80, 40100, 50,
				       true, 0x10);
		size_t m = put_outer4(f, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4789);

		run_prog(skel->progs.xm_ovl_ul_ingress, f, m, 1, 0, &r);
		CHECK(r.ret == TC_ACT_REDIRECT, "data after the peer's FIN not fast-pathed");
		/* RST ends it. */
		in = put_inner4(f + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 80, 40100, 0, true,
				0x14);
		m = put_outer4(f, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4789);
		run_prog(skel->progs.xm_ovl_ul_ingress, f, m, 1, 0, &r);
		CHECK(r.ret == TC_ACT_OK, "RST fast-pathed");
	}
	CHECK(flow_seen(POD_A, POD_B, 40100, 80, 6) == -1, "flow survived RST");
}

static void test_epoch(void)
{
	struct xm_ovl_cfg cfg;
	__u32 zero = 0;
	__u8 pkt[512];
	struct run r;
	size_t n;
	int fd = bpf_map__fd(skel->maps.xm_ovl_cfg);

	learn(40200, 7200);
	bpf_map_lookup_elem(fd, &zero, &cfg);
	cfg.epoch++;
	bpf_map_update_elem(fd, &zero, &cfg, BPF_EXIST);
	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40200, 7200, 10, false, 0);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_OK, "flow of an old epoch fast-pathed");
	learn(40200, 7200);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_REDIRECT, "flow relearned in the new epoch not fast-pathed");
}

/* The slow path encapsulated a -> b (sport -> dport) toward outer MAC dmac. */
static void kernel_sent(__u16 sport, __u16 dport, const __u8 *dmac)
{
	__u8 pkt[512];
	struct run r;
	size_t n;

	n = put_inner4(pkt + 50, VX2_MAC, VX1_MAC, POD_A, POD_B, 0, 63, sport, dport, 32, false, 0);
	n = put_outer4(pkt, n, dmac, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	run_prog(skel->progs.xm_ovl_ul_egress, pkt, n, 1, 0, &r);
}

/* Encap of a -> b: the verdict; the outer destination MAC in dmac when redirected. */
static int encap_to(__u16 sport, __u16 dport, __u8 *dmac)
{
	__u8 pkt[512];
	struct run r;
	size_t n;

	n = put_inner4(pkt, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, sport, dport, 10, false, 0);
	if (run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r))
		return -1;
	if (r.ret == TC_ACT_REDIRECT)
		memcpy(dmac, r.out, 6);
	return r.ret;
}

static int decap_from(__u16 sport, __u16 dport)
{
	__u8 pkt[512];
	struct run r;
	size_t n, in;

	in = put_inner4(pkt + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, dport, sport, 20, false, 0);
	n = put_outer4(pkt, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4789);
	return run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r) ? -1 : r.ret;
}

/*
 * The outer header the fast paths use is the flow's own copy: a header the
 * kernel builds differently for the flow replaces it, and retiring every
 * copy (xm_ovl_cfg.tmpl_gen, what the agent does when neighbours or FDB
 * entries change) sends the flow to the slow path, verdict kept, until its
 * next slow-path packet teaches the header again.
 */
static void test_template(void)
{
	static const __u8 MAC_B[6] = { 0x02, 0, 0, 0, 2, 0xbb }, MAC_C[6] = { 0x02, 0, 0, 0, 2, 0xcc };
	int fd = bpf_map__fd(skel->maps.xm_ovl_cfg);
	struct xm_ovl_cfg cfg;
	__u32 zero = 0;
	__u8 mac[6];

	learn(40300, 7300);
	CHECK(encap_to(40300, 7300, mac) == TC_ACT_REDIRECT && !memcmp(mac, NODE2_MAC, 6),
	      "template: first header not used");
	kernel_sent(40300, 7300, MAC_B);
	CHECK(encap_to(40300, 7300, mac) == TC_ACT_REDIRECT && !memcmp(mac, MAC_B, 6),
	      "template: header the kernel built anew for a cached flow not taken");

	bpf_map_lookup_elem(fd, &zero, &cfg);
	cfg.tmpl_gen++;
	bpf_map_update_elem(fd, &zero, &cfg, BPF_EXIST);
	CHECK(encap_to(40300, 7300, mac) == TC_ACT_OK, "template: retired header still used (encap)");
	CHECK(decap_from(40300, 7300) == TC_ACT_OK, "template: retired header still used (decap)");
	CHECK(flow_seen(POD_A, POD_B, 40300, 7300, 17) == XM_OVL_SEEN_BOTH,
	      "template: retiring headers lost the flow");
	kernel_sent(40300, 7300, MAC_C);
	CHECK(encap_to(40300, 7300, mac) == TC_ACT_REDIRECT && !memcmp(mac, MAC_C, 6),
	      "template: relearned header not used");
	CHECK(decap_from(40300, 7300) == TC_ACT_REDIRECT, "template: decap after the relearn");
}

/* IPv6 pods inside the IPv4 underlay: learn, encap, decap with CE. */
static void test_ipv6(void)
{
	__u8 pkt[512], *o;
	struct run r;
	size_t n, in;

	n = put_inner6(pkt + 50, VX2_MAC, VX1_MAC, "fd44:1::10", "fd44:2::10", 0, 63, 41000, 7100,
		       32);
	n = put_outer4(pkt, n, NODE2_MAC, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	run_prog(skel->progs.xm_ovl_ul_egress, pkt, n, 1, 0, &r);
	n = put_inner6(pkt, POD_MAC, GW_MAC, "fd44:2::10", "fd44:1::10", 0, 62, 7100, 41000, 32);
	run_prog(skel->progs.xm_ovl_pod_egress, pkt, n, 1, VX_IFINDEX, &r);

	n = put_inner6(pkt, GW_MAC, POD_MAC, "fd44:1::10", "fd44:2::10", 0x03, 64, 41000, 7100, 77);
	run_prog(skel->progs.xm_ovl_pod_ingress, pkt, n, 1, 0, &r);
	CHECK(r.ret == TC_ACT_REDIRECT, "IPv6 encap: verdict %d", r.ret);
	o = r.out;
	CHECK(r.out_len == n + 50, "IPv6 encap: length");
	CHECK(csum16(o + 14, 20, 0) == 0, "IPv6 encap: outer IPv4 checksum invalid");
	CHECK((o[15] & 3) == 2, "IPv6 encap: CE inside must give ECT(0) outside, got %d", o[15] & 3);
	CHECK(o[62] == 0x86 && o[63] == 0xdd, "IPv6 encap: inner Ethernet type");
	CHECK(o[64 + 7] == 63, "IPv6 encap: hop limit %d, want 63", o[64 + 7]);
	CHECK(!memcmp(o + 64 + 8, pkt + 14 + 8, n - 22), "IPv6 encap: addresses or payload changed");

	in = put_inner6(pkt + 50, VX1_MAC, VX2_MAC, "fd44:2::10", "fd44:1::10", 0x02, 64, 7100,
			41000, 55);
	n = put_outer4(pkt, in, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0x03, VNI, 4789);
	run_prog(skel->progs.xm_ovl_ul_ingress, pkt, n, 1, 0, &r);
	if (!xm_kf_has(kfeatures, XM_KF_ADJ_ROOM_DECAP_L3)) {
		/* Linux < 6.3: IPv6 in IPv4 is left to the kernel's VXLAN path, untouched. */
		CHECK(r.ret == TC_ACT_OK, "IPv6 decap without DECAP_L3: verdict %d, want the slow path",
		      r.ret);
		CHECK(r.out_len == n && !memcmp(r.out, pkt, n), "IPv6 decap without DECAP_L3: changed");
		printf("IPv6 decap: slow path (no adj_room_decap_l3 in this kernel)\n");
		return;
	}
	CHECK(r.ret == TC_ACT_REDIRECT, "IPv6 decap: verdict %d", r.ret);
	o = r.out;
	CHECK(r.out_len == in, "IPv6 decap: length");
	CHECK(o[12] == 0x86 && o[13] == 0xdd, "IPv6 decap: Ethernet type not IPv6");
	CHECK(!memcmp(o, POD_MAC, 6) && !memcmp(o + 6, GW_MAC, 6), "IPv6 decap: MACs");
	CHECK(tclass(o + 14) == 0x03, "IPv6 decap: outer CE not carried in (tclass %#x)",
	      tclass(o + 14));
	CHECK((o[15] & 0x0f) == 0x0a, "IPv6 decap: flow label changed");
	CHECK(o[14 + 7] == 63, "IPv6 decap: hop limit %d, want 63", o[14 + 7]);
	CHECK(!memcmp(o + 14 + 8, pkt + 64 + 8, in - 22), "IPv6 decap: addresses or payload changed");
}

/*
 * One build of the overlay programs for the bench: this build's skeleton, or
 * another build's bpf/overlay.bpf.o (--base FILE) loaded beside it, so that
 * both are timed in the same seconds on the same machine state.
 */
struct ovl_build {
	const char *name;
	struct bpf_object *obj; /* --base: owned; NULL for the skeleton */
	struct bpf_program *pod_ingress, *pod_egress, *ul_ingress, *ul_egress;
	int cfg_fd;
};

static void build_of_skel(struct ovl_build *b)
{
	*b = (struct ovl_build){ .name = "this", .pod_ingress = skel->progs.xm_ovl_pod_ingress,
				 .pod_egress = skel->progs.xm_ovl_pod_egress,
				 .ul_ingress = skel->progs.xm_ovl_ul_ingress,
				 .ul_egress = skel->progs.xm_ovl_ul_egress,
				 .cfg_fd = bpf_map__fd(skel->maps.xm_ovl_cfg) };
}

/*
 * A build loaded from an object: another build's file (path), or this
 * build's own bytes (path NULL: the skeleton's copy), both loaded the same
 * way so that neither is favoured (two loads of one object differ by 15-20 ns
 * per run when one is the skeleton that ran the test cases).
 */
static int build_of_file(struct ovl_build *b, const char *name, const char *path,
			 const struct xm_ovl_cfg *cfg)
{
	__u32 zero = 0;
	struct bpf_map *m;

	*b = (struct ovl_build){ .name = name };
	if (path) {
		b->obj = bpf_object__open_file(path, NULL);
	} else {
		size_t sz;
		const void *bytes = xm_overlay__elf_bytes(&sz);

		b->obj = bpf_object__open_mem(bytes, sz, NULL);
	}
	if (!b->obj || bpf_object__load(b->obj)) {
		printf("bench: cannot load %s: %s\n", path ? path : "this build", strerror(errno));
		return -1;
	}
	b->pod_ingress = bpf_object__find_program_by_name(b->obj, "xm_ovl_pod_ingress");
	b->pod_egress = bpf_object__find_program_by_name(b->obj, "xm_ovl_pod_egress");
	b->ul_ingress = bpf_object__find_program_by_name(b->obj, "xm_ovl_ul_ingress");
	b->ul_egress = bpf_object__find_program_by_name(b->obj, "xm_ovl_ul_egress");
	m = bpf_object__find_map_by_name(b->obj, "xm_ovl_cfg");
	if (!b->pod_ingress || !b->pod_egress || !b->ul_ingress || !b->ul_egress || !m) {
		printf("bench: %s is not an overlay object\n", path ? path : "this build");
		return -1;
	}
	b->cfg_fd = bpf_map__fd(m);
	return bpf_map_update_elem(b->cfg_fd, &zero, cfg, BPF_ANY);
}

/* The kernel's run count of prog: it moves only while BPF statistics are on. */
static __u64 run_cnt(struct bpf_program *prog)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.run_cnt;
}

/* The kernel's run-time statistics of prog (counted only while they are on). */
static int run_stats(struct bpf_program *prog, __u64 *cnt, __u64 *ns)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return -1;
	*cnt = info.run_cnt;
	*ns = info.run_time_ns;
	return 0;
}

/* repeat runs of prog on pkt; the kernel's time per run in *ns. */
static int time_runs(struct bpf_program *prog, const __u8 *pkt, size_t len, int want, int repeat,
		     __u32 *ns)
{
	struct __sk_buff ctx = { .ifindex = 1 };
	__u8 out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o) || (int)o.retval != want) {
		printf("bench: %s returned %d, want %d\n", bpf_program__name(prog), o.retval, want);
		return -1;
	}
	*ns = o.duration;
	return 0;
}

static int time_once(struct bpf_program *prog, const __u8 *pkt, size_t len, int want, __u32 *ns)
{
	return time_runs(prog, pkt, len, want, 1, ns);
}

enum { B_ENCAP, B_DECAP, B_LEARNER, B_FLOOR, B_KINDS };

/*
 * The cost as the kernel's BPF statistics count it (run_time_ns / run_cnt:
 * the program alone, between two clock reads of the kernel's, no test-run
 * frame around it), what `make bench-ovl-inplace` reads on live traffic.
 * The statistics are machine-wide while on: held for this phase only
 * (BPF_ENABLE_STATS, released with its fd), STATS_CHUNKS chunks of
 * STATS_RUNS single runs of each program of each build in turn; the median
 * chunk's ns per run in ns[build][kind]. Another holder's programs pay the
 * clock reads meanwhile (~0.1 s).
 */
#define STATS_CHUNKS 21
#define STATS_RUNS 200
static int time_by_stats(const struct ovl_build *builds, int nb, const __u8 *const pkt[B_KINDS],
			 const size_t len[B_KINDS], const int want[B_KINDS],
			 __u32 ns[2][B_KINDS])
{
	struct xt_samples d[2][B_KINDS] = { 0 };
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME), err = 0;

	if (fd < 0) {
		printf("bench: cannot turn on BPF statistics: %s\n", strerror(errno));
		return -1;
	}
	for (int c = 0; c < STATS_CHUNKS && !err; c++)
		for (int b = 0; b < nb && !err; b++) {
			const struct ovl_build *o = &builds[(b + c) % nb];
			struct bpf_program *progs[B_KINDS] = { o->pod_ingress, o->ul_ingress,
							       o->ul_egress, o->pod_ingress };

			for (int k = 0; k < B_KINDS && !err; k++) {
				__u64 cnt0, ns0, cnt1, ns1;
				__u32 t;

				err = run_stats(progs[k], &cnt0, &ns0);
				for (int i = 0; i < STATS_RUNS && !err; i++)
					err = time_once(progs[k], pkt[k], len[k], want[k], &t);
				if (!err)
					err = run_stats(progs[k], &cnt1, &ns1);
				if (!err && cnt1 > cnt0)
					xt_samples_add(&d[(b + c) % nb][k], (ns1 - ns0) / (cnt1 - cnt0));
			}
		}
	close(fd);
	for (int b = 0; b < nb; b++)
		for (int k = 0; k < B_KINDS; k++) {
			ns[b][k] = err ? 0 : xt_pctl(&d[b][k], 0.5);
			xt_samples_free(&d[b][k]);
		}
	return err;
}

/*
 * For a decap that BPF_PROG_TEST_RUN can repeat: a frame of `layers` VXLAN
 * encapsulations, each inside the one before, every layer from node 2 to
 * node 1 for the cached UDP flow node 2:49153 -> node 1:4789 (the next
 * layer's outer UDP header is this layer's inner packet), the innermost one
 * a TCP segment. Each run of the decap takes one layer off and leaves the
 * next one in front, so a test run of layers - 1 repeats decapsulates a
 * real cached frame every time, and the clock is read once for all.
 * Returns the frame's length.
 */
#define NEST_SPORT 49153 /* the UDP source port put_outer4() writes */
static size_t put_nested(__u8 *p, int layers)
{
	size_t len = put_inner4(p + layers * 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 8080,
				40200, 64, true, 0x18);

	for (int k = layers - 1; k >= 0; k--)
		len = put_outer4(p + k * 50, len, k ? VX1_MAC : NODE1_MAC, k ? VX2_MAC : NODE2_MAC,
				 NODE2, NODE1, 0, VNI, 4789);
	return len;
}

/* The slow path carried node 1:4789 <-> node 2:49153 both ways: cache it in b. */
static void nested_learn(const struct ovl_build *b)
{
	__u8 pkt[512];
	struct run r;
	size_t len;

	len = put_inner4(pkt + 50, VX2_MAC, VX1_MAC, NODE1, NODE2, 0, 63, 4789, NEST_SPORT, 32,
			 false, 0);
	len = put_outer4(pkt, len, NODE2_MAC, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	run_prog(b->ul_egress, pkt, len, 1, 0, &r);
	len = put_inner4(pkt, POD_MAC, GW_MAC, NODE2, NODE1, 0, 62, NEST_SPORT, 4789, 32, false, 0);
	run_prog(b->pod_egress, pkt, len, 1, VX_IFINDEX, &r);
}

/*
 * The decap as BPF_PROG_TEST_RUN's repeat counts it: p50 over `tests` test
 * runs of NEST_LAYERS - 1 decaps each, ns per decap; checks that every
 * repeat did decapsulate (one layer left).
 */
#define NEST_LAYERS 64
static int time_decap_repeated(const struct ovl_build *b, int tests, __u32 *p50)
{
	static __u8 frame[NEST_LAYERS * 50 + 256];
	struct xt_samples d = { 0 };
	size_t len = put_nested(frame, NEST_LAYERS);
	__u8 out[sizeof(frame)];
	int err = 0;

	nested_learn(b);
	for (int i = 0; i < tests && !err; i++) {
		struct __sk_buff ctx = { .ifindex = 1 };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = NEST_LAYERS - 1);

		if (bpf_prog_test_run_opts(bpf_program__fd(b->ul_ingress), &o) ||
		    o.retval != TC_ACT_REDIRECT || o.data_size_out != len - (NEST_LAYERS - 1) * 50) {
			printf("bench: repeated decap: verdict %d, %u bytes left, want %d and %zu\n",
			       o.retval, o.data_size_out, TC_ACT_REDIRECT, len - (NEST_LAYERS - 1) * 50);
			err = -1;
			break;
		}
		xt_samples_add(&d, o.duration);
	}
	if (!err)
		*p50 = xt_pctl(&d, 0.5);
	xt_samples_free(&d);
	return err;
}

/*
 * Teach build b the established TCP flow 40200 -> 8080 from its handshake,
 * as the slow path would.
 */
static void bench_learn(const struct ovl_build *b)
{
	__u8 pkt[512];
	struct run r;
	size_t len;

	len = put_inner4(pkt + 50, VX2_MAC, VX1_MAC, POD_A, POD_B, 0, 63, 40200, 8080, 0, true, 0x02);
	len = put_outer4(pkt, len, NODE2_MAC, NODE1_MAC, NODE1, NODE2, 0, VNI, 4789);
	run_prog(b->ul_egress, pkt, len, 1, 0, &r);
	len = put_inner4(pkt, POD_MAC, GW_MAC, POD_B, POD_A, 0, 62, 8080, 40200, 0, true, 0x12);
	run_prog(b->pod_egress, pkt, len, 1, VX_IFINDEX, &r);
}

/*
 * The cost of the fast paths, N rounds; each round runs every program of
 * every build once, in turn (encap, decap, learner, floor), so that all
 * figures of a run see the same moments of a shared machine. The floor is a
 * frame the encap returns on at once (ARP): what a test run costs around
 * any program (its clock reads, the bottom-half toggles). A repeated run
 * (repeat > 1) is no use here: it would see its own output (an encapsulated
 * frame) and take the slow path.
 */
static void bench(struct ovl_build *builds, int nb, int n)
{
	static const char *const what[B_KINDS] = {
		"encap (xm_ovl_pod_ingress)", "decap (xm_ovl_ul_ingress)",
		"learner (xm_ovl_ul_egress, slow path)", "floor (ARP frame, returns at once)",
	};
	static const int want[B_KINDS] = { TC_ACT_REDIRECT, TC_ACT_REDIRECT, TC_ACT_OK, TC_ACT_OK };
	struct xt_samples d[2][B_KINDS] = { 0 };
	__u32 p50[2][B_KINDS], p90[2][B_KINDS], ns;
	__u8 enc[512], dec[512], arp[64] = { 0 };
	size_t enc_len, dec_len;
	__u64 cnt0 = run_cnt(builds[0].pod_ingress), stats_runs;
	struct xt_samples floor_rep = { 0 };
	__u32 floor_rep_ns, dec_rep[2], st[2][B_KINDS];

	for (int b = 0; b < nb; b++)
		bench_learn(&builds[b]);
	/* pod -> remote pod: 64 B of payload, ACK|PSH */
	enc_len = put_inner4(enc, GW_MAC, POD_MAC, POD_A, POD_B, 0, 64, 40200, 8080, 64, true, 0x18);
	/* remote pod -> pod, as it arrives on the underlay */
	dec_len = put_inner4(dec + 50, VX1_MAC, VX2_MAC, POD_B, POD_A, 0, 64, 8080, 40200, 64, true,
			     0x18);
	dec_len = put_outer4(dec, dec_len, NODE1_MAC, NODE2_MAC, NODE2, NODE1, 0, VNI, 4789);
	arp[12] = 0x08;
	arp[13] = 0x06;
	for (int i = 0; i < n; i++) {
		for (int b = 0; b < nb; b++) {
			const struct ovl_build *o = &builds[(b + i) % nb]; /* alternate who goes first */
			int k = (b + i) % nb;

			if (time_once(o->pod_ingress, enc, enc_len, want[B_ENCAP], &ns))
				goto fail;
			xt_samples_add(&d[k][B_ENCAP], ns);
			if (time_once(o->ul_ingress, dec, dec_len, want[B_DECAP], &ns))
				goto fail;
			xt_samples_add(&d[k][B_DECAP], ns);
			if (time_once(o->ul_egress, dec, dec_len, want[B_LEARNER], &ns))
				goto fail;
			xt_samples_add(&d[k][B_LEARNER], ns);
			if (time_once(o->pod_ingress, arp, sizeof(arp), want[B_FLOOR], &ns))
				goto fail;
			xt_samples_add(&d[k][B_FLOOR], ns);
		}
		if ((i + 1) % 10000 == 0)
			fprintf(stderr, "bench: %d of %d rounds\n", i + 1, n);
	}
	/* Each round ran the encap twice (segment and ARP frame). */
	stats_runs = (run_cnt(builds[0].pod_ingress) - cnt0) / 2;
	/*
	 * What the floor is made of: the ARP frame is left as it was, so it
	 * may be run 1000 times in one test run, where the clock is read once
	 * for all; the per-run time is then the program and the bottom-half
	 * toggles alone, and floor - that is the single run's clock read.
	 */
	for (int i = 0; i < 50; i++) {
		if (time_runs(builds[0].pod_ingress, arp, sizeof(arp), TC_ACT_OK, 1000, &ns))
			goto fail;
		xt_samples_add(&floor_rep, ns);
	}
	floor_rep_ns = xt_pctl(&floor_rep, 0.5);
	for (int b = 0; b < nb; b++)
		if (time_decap_repeated(&builds[b], 2000, &dec_rep[b]))
			goto fail;
	{
		const __u8 *const pkts[B_KINDS] = { enc, dec, dec, arp };
		const size_t lens[B_KINDS] = { enc_len, dec_len, dec_len, sizeof(arp) };

		if (time_by_stats(builds, nb, pkts, lens, want, st))
			goto fail;
	}
	for (int b = 0; b < nb; b++)
		for (int k = 0; k < B_KINDS; k++) {
			p50[b][k] = xt_pctl(&d[b][k], 0.5);
			p90[b][k] = xt_pctl(&d[b][k], 0.9);
		}
	printf("%-40s", "program (fast path, 64 B TCP), ns");
	for (int b = 0; b < nb; b++)
		printf(" %6s p50 %6s p90", builds[b].name, builds[b].name);
	printf("\n");
	for (int k = 0; k < B_KINDS; k++) {
		printf("%-40s", what[k]);
		for (int b = 0; b < nb; b++)
			printf(" %10u %10u", p50[b][k], p90[b][k]);
		printf("\n");
	}
	printf("%-40s", "decap, repeated (nested frame)");
	for (int b = 0; b < nb; b++)
		printf(" %10u %10s", dec_rep[b], "");
	printf("\n%-40s %10u (the same frame, 1000 runs per test run: no clock read per run)\n",
	       "floor, repeated", floor_rep_ns);
	printf("BPF statistics (run_time_ns / run_cnt: the program alone, as on live traffic)\n");
	for (int k = 0; k < B_KINDS; k++) {
		printf("%-40s", what[k]);
		for (int b = 0; b < nb; b++)
			printf(" %10u %10s", st[b][k], "");
		printf("\n");
	}
	if (stats_runs)
		printf("warning: BPF run-time statistics were on for %llu of %d rounds "
		       "(kernel.bpf_stats_enabled or a BPF_ENABLE_STATS holder): their clock reads "
		       "are in these times\n", (unsigned long long)stats_runs, n);
	if (nb > 1)
		printf("bench ovl-prog-ab: base_encap_ns=%u base_decap_ns=%u base_learner_ns=%u "
		       "base_floor_ns=%u base_decap_repeat_ns=%u base_encap_stats_ns=%u "
		       "base_decap_stats_ns=%u base_floor_stats_ns=%u\n", p50[1][B_ENCAP],
		       p50[1][B_DECAP], p50[1][B_LEARNER], p50[1][B_FLOOR], dec_rep[1],
		       st[1][B_ENCAP], st[1][B_DECAP], st[1][B_FLOOR]);
	printf("bench ovl-prog: runs=%d encap_ns=%u decap_ns=%u learner_ns=%u floor_ns=%u "
	       "decap_repeat_ns=%u floor_repeat_ns=%u encap_stats_ns=%u decap_stats_ns=%u "
	       "floor_stats_ns=%u stats_on_runs=%llu\n", n, p50[0][B_ENCAP],
	       p50[0][B_DECAP], p50[0][B_LEARNER], p50[0][B_FLOOR], dec_rep[0], floor_rep_ns,
	       st[0][B_ENCAP], st[0][B_DECAP], st[0][B_FLOOR], (unsigned long long)stats_runs);
	goto out;
fail:
	failures++;
out:
	xt_samples_free(&floor_rep);
	for (int b = 0; b < nb; b++)
		for (int k = 0; k < B_KINDS; k++)
			xt_samples_free(&d[b][k]);
}

int main(int argc, char **argv)
{
	struct xm_ovl_cfg cfg = { .epoch = 1, .enabled = 1, .vxlan_ifindex = VX_IFINDEX,
				  .underlay_ifindex = 1, .vxlan_port = 4789, .port_min = 32768,
				  .port_max = 60999, .underlay_mtu = 1500 };
	__u32 zero = 0;

	libbpf_set_print(NULL);
	/* The features as the agent would find them (XMESH_DISABLE_FEATURES applies). */
	if (xm_kfeatures_probe(&kfeatures))
		return 1;
	skel = xm_overlay__open();
	if (skel) {
		skel->rodata->xm_kf_mask = kfeatures;
		if (xm_overlay__load(skel)) {
			xm_overlay__destroy(skel);
			skel = NULL;
		}
	}
	if (!skel) {
		printf("cannot load bpf/overlay.bpf.c: %s\n", strerror(errno));
		return 1;
	}
	bpf_map_update_elem(bpf_map__fd(skel->maps.xm_ovl_cfg), &zero, &cfg, BPF_ANY);
	test_encap();
	test_source_port();
	test_decap();
	test_tcp_flags();
	test_epoch();
	test_template();
	test_ipv6();
	if (argc > 1 && !strcmp(argv[1], "bench")) {
		struct ovl_build builds[2];
		int nb = 1, n = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 20000;

		builds[0] = (struct ovl_build){ 0 };
		builds[1] = (struct ovl_build){ 0 };
		if (argc > 4 && !strcmp(argv[3], "--base")) {
			if (build_of_file(&builds[0], "this", NULL, &cfg) ||
			    build_of_file(&builds[1], "base", argv[4], &cfg))
				failures++;
			nb = 2;
		} else {
			build_of_skel(&builds[0]);
		}
		if (!failures)
			bench(builds, nb, n);
		for (int b = 0; b < nb; b++)
			bpf_object__close(builds[b].obj);
	}
	xm_overlay__destroy(skel);
	printf("%s\n", failures ? "FAILED" : "all cases passed");
	return failures ? 1 : 0;
}
