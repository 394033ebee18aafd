// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "kfeatures.h"
#include "log.h"
#include "pin.h"

const struct xm_kfeature_desc xm_kfeatures[XM_KF_COUNT] = {
	[XM_KF_SOCKOPS_NETNS_COOKIE] = { "sockops_netns_cookie", "5.15",
					 "socket redirection is off (it needs the netns cookie)" },
	[XM_KF_SET_RETVAL] = { "set_retval", "5.18",
			       "connect() to a service without backends fails with EPERM, "
			       "not ECONNREFUSED" },
	[XM_KF_ADJ_ROOM_DECAP_L3] = { "adj_room_decap_l3", "6.3",
				      "IPv6 pod traffic over the IPv4 overlay is not decapsulated "
				      "by the cache (it takes the kernel's VXLAN path)" },
	[XM_KF_SOCK_DESTROY] = { "sock_destroy", "6.5",
				 "rebalancing closes idle pooled connections with SOCK_DESTROY over "
				 "sock_diag netlink (CONFIG_INET_DIAG_DESTROY) instead" },
	[XM_KF_TCX] = { "tcx", "6.6",
			"tc programs attached as clsact/cls_bpf filters (adopted by handle on restart)" },
	[XM_KF_SOCKMAP_LINK] = { "sockmap_link", "6.10",
				 "sk_msg attached to the sockmap without a link (held by the pinned map)" },
	/* Debian's 6.1 lacks them in its BTF; where they are is a matter of the build. */
	[XM_KF_TCP_FASTOPEN_BTF] = { "tcp_fastopen_btf", "6.1 with tcp_sock bitfields in BTF",
				     "Fast Open connections are told from their handshake "
				     "counters (SYN payload), not from tcp_sock" },
	/* In the kernel since 5.10, and still refused (EPERM) by some builds. */
	[XM_KF_SOCKMAP_ITER] = { "sockmap_iter", "5.10, where the build allows it",
				 "one-way bulk senders between pods stay redirected (no demotion "
				 "to TCP after 4 MiB: no TCP backpressure for them)" },
	[XM_KF_SOCK_RECV_TP] = { "sock_recv_tp", "6.3",
				 "the redirect_recv_* counters stay 0: reads on redirected sockets "
				 "that differ from TCP are not counted (docs/redirect-compat.md)" },
};

/* An enumerator of that name in any enum of the kernel's BTF. */
static bool btf_has_enum_value(const struct btf *btf, const char *name)
{
	__u32 n = btf__type_cnt(btf);

	for (__u32 id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);

		if (btf_is_enum(t)) {
			const struct btf_enum *e = btf_enum(t);

			for (int i = 0; i < btf_vlen(t); i++)
				if (!strcmp(btf__name_by_offset(btf, e[i].name_off), name))
					return true;
		} else if (btf_is_enum64(t)) {
			const struct btf_enum64 *e = btf_enum64(t);

			for (int i = 0; i < btf_vlen(t); i++)
				if (!strcmp(btf__name_by_offset(btf, e[i].name_off), name))
					return true;
		}
	}
	return false;
}

/* Does struct name in the kernel's BTF have a member of this name (bitfields too)? */
static bool btf_has_member(const struct btf *btf, const char *name, const char *member)
{
	__s32 id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	const struct btf_type *t;
	const struct btf_member *m;

	if (id < 0)
		return false;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, m[i].name_off), member))
			return true;
	return false;
}

static bool helper_ok(enum bpf_prog_type type, enum bpf_func_id id)
{
	return libbpf_probe_bpf_helper(type, id, NULL) == 1;
}

/*
 * Does an iterator over a sockmap load? The only way to know: some kernel
 * builds have bpf_iter_sockmap in their BTF and refuse the program with
 * EPERM (seen on a 6.18 build that loads every other iterator). A two-
 * instruction program, attached to nothing.
 */
static bool sockmap_iter_ok(const struct btf *btf)
{
	const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	__s32 id = btf__find_by_name_kind(btf, "bpf_iter_sockmap", BTF_KIND_FUNC);
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_ITER);
	int fd;

	if (id <= 0)
		return false;
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "xm_probe_iter", "GPL", ret0, 2, &opts);
	if (fd < 0) {
		pr_debug("kernel: an iterator over a sockmap does not load: %s", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

static int disable_from_env(__u32 *mask)
{
	const char *env = getenv("XMESH_DISABLE_FEATURES");
	char *list, *tok, *save = NULL;
	int err = 0;

	if (!env || !*env)
		return 0;
	list = strdup(env);
	if (!list)
		return -ENOMEM;
	for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int f;

		for (f = 0; f < XM_KF_COUNT && strcmp(xm_kfeatures[f].name, tok); f++)
			;
		if (f == XM_KF_COUNT) {
			pr_err("XMESH_DISABLE_FEATURES: unknown feature '%s' (see xmeshctl status)",
			       tok);
			err = -EINVAL;
			break;
		}
		*mask &= ~(1U << f);
	}
	free(list);
	return err;
}

int xm_kfeatures_probe(__u32 *mask)
{
	struct btf *btf;
	__u32 m = XM_KF_VALID;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno;
	if (helper_ok(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie) &&
	    helper_ok(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_get_netns_cookie))
		m |= 1U << XM_KF_SOCKOPS_NETNS_COOKIE;
	if (helper_ok(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval))
		m |= 1U << XM_KF_SET_RETVAL;
	if (btf_has_enum_value(btf, "BPF_F_ADJ_ROOM_DECAP_L3_IPV6"))
		m |= 1U << XM_KF_ADJ_ROOM_DECAP_L3;
	if (btf__find_by_name_kind(btf, "bpf_sock_destroy", BTF_KIND_FUNC) > 0)
		m |= 1U << XM_KF_SOCK_DESTROY;
	if (btf_has_enum_value(btf, "BPF_TCX_INGRESS"))
		m |= 1U << XM_KF_TCX;
	if (btf_has_enum_value(btf, "BPF_LINK_TYPE_SOCKMAP"))
		m |= 1U << XM_KF_SOCKMAP_LINK;
	if (btf_has_member(btf, "tcp_sock", "syn_data") &&
	    btf_has_member(btf, "tcp_sock", "fastopen_rsk"))
		m |= 1U << XM_KF_TCP_FASTOPEN_BTF;
	if (sockmap_iter_ok(btf))
		m |= 1U << XM_KF_SOCKMAP_ITER;
	/* a BTF tracepoint's target is resolved at load: absent, the program would fail the module */
	if (btf__find_by_name_kind(btf, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0)
		m |= 1U << XM_KF_SOCK_RECV_TP;
	btf__free(btf);
	*mask = m;
	return disable_from_env(mask);
}

int xm_kfeatures_of_pin_root(const char *pin_root, __u32 *mask)
{
	struct xm_meta meta;
	int err = xm_meta_read(pin_root, &meta);

	if (err)
		return err;
	if (meta.magic != XM_META_MAGIC || !(meta.kfeatures & XM_KF_VALID))
		return -ENODATA;
	*mask = meta.kfeatures;
	return 0;
}
