// SPDX-License-Identifier: MIT
/*
 * Pods that exist before the agent (fail-open, see docs/cni.md).
 *
 * Source of truth: the records xmesh-cni writes for every attachment, before
 * it touches any map and whether or not a datapath exists, under
 * <state dir>/<network>/<container id>:<ifname>.json. At start, once the maps
 * exist, the agent replays every record of its pin root: so a pod created
 * while the agent was down, or before it was ever installed on a node where
 * the plugin already ran, is registered all the same, and nothing depends
 * on which of the two starts first.
 *
 * The state dir lock makes the replay and a concurrent ADD/DEL exclusive: an
 * ADD either finished before (its record is replayed) or runs after (it sees
 * the maps and registers itself); a DEL cannot remove a record while it is
 * being replayed.
 *
 * A record is replayed only if its netns still exists with the same cookie
 * (the path may have been reused by a newer pod), and never takes an address
 * that another owner holds now. Stale records stay for DEL/GC to remove.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "cni_state.h"
#include "discover.h"
#include "log.h"
#include "sys.h"

struct replay {
	const struct xm_agent *a;
	__u64 self_netns;
	int pods, endpoints, stale, failed;
};

static int replay_one(const char *path, const struct xm_cni_state *s, void *arg)
{
	struct replay *r = arg;
	__u64 cookie;
	int n, err;

	if (!s) {
		pr_warn("discover: %s is not a readable record: skipped", path);
		r->failed++;
		return 0;
	}
	if (strcmp(s->pin_root, r->a->pin_root))
		return 0; /* another datapath's pod */
	err = xm_netns_cookie_of_path(s->netns, &cookie);
	if (err || cookie != s->netns_cookie) {
		pr_info("discover: %s (%s): netns %s is %s: stale record left for DEL/GC",
			s->container_id, s->network, s->netns, err ? "gone" : "another pod's now");
		r->stale++;
		return 0;
	}
	n = xm_cni_register(s, XM_CNI_PUT_KEEP);
	if (n < 0) {
		pr_warn("discover: %s: registering endpoints: %s", s->container_id, strerror(-n));
		r->failed++;
		return 0;
	}
	/* Per-pod programs live on the host veth, which is in the plugin's netns. */
	if (s->host_ifindex && s->host_netns_cookie == r->self_netns) {
		err = xm_cni_pod_attach(s);
		if (err)
			pr_warn("discover: %s: per-pod programs on %s: %s", s->container_id,
				s->host_ifname, strerror(-err));
	} else if (s->host_ifindex) {
		pr_debug("discover: %s: host veth %s is in another netns than the agent: per-pod "
			 "programs left to the plugin", s->container_id, s->host_ifname);
	}
	pr_debug("discover: %s (%s): %d endpoint%s", s->container_id, s->network, n,
		 n == 1 ? "" : "s");
	r->pods++;
	r->endpoints += n;
	return 0;
}

int xm_discover_pods(struct xm_agent *a)
{
	const char *dir = getenv(XM_CNI_STATE_DIR_ENV);
	struct replay r = { .a = a };
	int lock, err;

	if (!dir || !*dir)
		dir = XM_CNI_STATE_DIR_DEFAULT;
	if (access(dir, F_OK)) {
		pr_info("discover: no xmesh-cni records in %s (no pod added through the plugin yet)",
			dir);
		return 0;
	}
	if (xm_netns_cookie_self(&r.self_netns))
		r.self_netns = 0;
	lock = xm_cni_lock(dir);
	if (lock < 0) {
		pr_warn("discover: cannot lock %s: %s: existing pods are not registered",
			dir, strerror(-lock));
		return 0;
	}
	err = xm_cni_state_foreach(dir, NULL, replay_one, &r);
	close(lock);
	if (err)
		pr_warn("discover: reading %s: %s", dir, strerror(-err));
	pr_info("discover: registered %d existing pod%s (%d endpoint%s) from %s; %d stale, "
		"%d failed", r.pods, r.pods == 1 ? "" : "s", r.endpoints,
		r.endpoints == 1 ? "" : "s", dir, r.stale, r.failed);
	return r.pods;
}
