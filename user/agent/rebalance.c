// SPDX-License-Identifier: MIT
/* Connection-level rebalancing, the kernel half (rebalance.h, bpf/rebalance.bpf.c). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "kfeatures.h"
#include "log.h"
#include "loop.h"
#include "rebalance.h"
#include "rebalance.skel.h"
#include "sockdiag.h"
#include "monoclock.h"

/* Network namespaces are looked up again this often (s): pods come and go. */
#define XM_REBAL_NETNS_RESCAN_S 2
#define XM_REBAL_MAX_NETNS 4096
/*
 * Retire passes on read events: at most this many per second (each walks the
 * TCP sockets of the namespaces that reported), and after each, again this
 * long (us) later for the reads the client had not finished yet.
 */
#define XM_REBAL_READ_PASSES_PER_S 500
static const long read_again_us[] = { 200, 800 };
/*
 * Over sock_diag the close comes after the iterator's check, outside the
 * socket lock, so a connection is retired there only after this much
 * silence, a far slower backend's too: its first idle moment is when a busy
 * pool writes its next request (test_lb_rebalance_sockdiag's busy pool had
 * requests cut in flight by closes at that moment).
 */
#define XM_REBAL_SOCKDIAG_QUIET_NS (50 * 1000000ULL)
/* The read hook is detached after this many full passes without a backend that wants it. */
#define XM_REBAL_READ_DETACH_PASSES 20
/*
 * Test only: XMESH_TEST_DESTROY_DELAY_MS=N (0..1000) makes the agent wait N ms
 * between a pick and its SOCK_DESTROY, and between a read event and its pass
 * (it stalls the agent's loop meanwhile), as an agent scheduled late would:
 * tests/integration/test_lb_rebalance_hold.sh writes requests inside that
 * window (held, mark-and-hold) and, with N past XM_LB_HOLD_CLOSE_NS, sees the
 * close left out and the held request sent late; test_lb_rebalance.sh's
 * hold_on_read run has its busy pool write the next request before the pass.
 */
#define XM_REBAL_DESTROY_DELAY_ENV "XMESH_TEST_DESTROY_DELAY_MS"
#define XM_REBAL_DESTROY_DELAY_MAX_MS 1000
/*
 * The walks (the tick's pass, the urgent_ms poll, read-event passes) take at
 * most 1/XM_REBAL_WALK_SHARE_INV of the agent's time: after a walk that took
 * t, none starts for (XM_REBAL_WALK_SHARE_INV - 1) x t; a tick's pass due in
 * that time is skipped (the counts stay those of the last pass, no plan that
 * tick), the poll waits, a read event is left to the poll. Each namespace's
 * walk reads the whole TCP hash table the namespace uses (the host's, 262,144
 * buckets here: 3-6 ms a walk), so a walk's cost grows with the namespaces
 * and the table, not with the connections; on a one-vCPU emulated 6.1 guest a
 * walk took 40-160 ms, the tick's pass and the poll took the CPU from the
 * clients and servers they were there to help, and test_lb_rebalance_sockdiag's
 * requests timed out (p50 17 ms -> 3.8 s, 683 timeouts; 282 failed).
 */
#define XM_REBAL_WALK_SHARE_INV 5
/* A shared TCP hash table larger than this is worth a hint (ehash_check()). */
#define XM_REBAL_EHASH_HINT 16384
/*
 * Test only: XMESH_TEST_WALK_DELAY_MS=N (0..1000) makes each namespace's walk
 * N ms longer (it stalls the agent's loop meanwhile), as a slow machine or a
 * large hash table would: test_lb_rebalance.sh checks the walks' share stays
 * bounded.
 */
#define XM_REBAL_WALK_DELAY_ENV "XMESH_TEST_WALK_DELAY_MS"

struct netns_ref {
	dev_t dev;
	ino_t ino;
	int fd;
	bool due; /* a read event from it since its last read pass */
	bool clients; /* the last tick's pass counted balanced client connections in it */
};

/* How chosen connections are closed. */
enum retire_with {
	RETIRE_NONE,     /* counted only */
	RETIRE_BPF,      /* bpf_sock_destroy() in the iterator (Linux >= 6.5) */
	RETIRE_SOCKDIAG, /* the iterator names them, SOCK_DESTROY over sock_diag closes them */
};

struct xm_rebalancer {
	struct xm_agent *a;
	struct xm_rebalance *skel;
	struct bpf_link *link;
	enum retire_with how;
	int sockdiag_err;        /* last SOCK_DESTROY error logged (once per kind) */
	int self_ns;             /* the agent thread's own netns, to come back to */
	struct netns_ref *ns;
	unsigned int nns, capns;
	time_t ns_scanned;
	/* Read events (xm_rebal_read): the ring, its hook (attached when first wanted). */
	struct ring_buffer *reads;
	struct bpf_link *read_link;
	bool read_tried;
	unsigned int read_unwanted; /* full passes in a row with no on_read backend */
	int read_tfd;              /* the passes after a read pass */
	unsigned int read_again;   /* which of read_again_us is next */
	__u64 read_window_ns;      /* start of the second read passes are counted in */
	unsigned int read_window_passes;
	struct xm_rebal_retire_stats st;
	long destroy_delay_ms;     /* XM_REBAL_DESTROY_DELAY_ENV (test only) */
	long walk_delay_ms;        /* XM_REBAL_WALK_DELAY_ENV (test only) */
	__u64 walk_first_ns;       /* when the first walk started */
	__u64 walk_free_ns;        /* no walk starts before (XM_REBAL_WALK_SHARE_INV) */
	bool fresh;                /* the tick's pass ran this tick (not skipped) */
	bool ehash_checked;        /* ehash_check() ran */
	unsigned long long picks_stale; /* picks not closed: their mark was too old (lb.h) */
	const char *walk_why;      /* what started the walk under way, for the log */
	__u64 first_read_ns;       /* the oldest read event not yet answered by a pass */
	/* Retired by retire-now passes since the last full pass, per backend id. */
	__u32 carry[XM_LB_MAX_BACKENDS];
	struct xm_rebal_be last[XM_LB_MAX_BACKENDS]; /* the counts, kept across one */
	/* Per backend id: the quota given for the period under way, and the last period's spend. */
	__u32 given[XM_LB_MAX_BACKENDS];
	__u32 spent[XM_LB_MAX_BACKENDS];
	__u32 marked[XM_LB_MAX_BACKENDS];
	unsigned long long quota_errors; /* periods that ended with more quota left than given */
};

/*
 * bpf_sock_destroy where the kernel has it (the agent's feature probe, so
 * XMESH_DISABLE_FEATURES=sock_destroy forces the fallback), else SOCK_DESTROY
 * over sock_diag netlink where the kernel has that, else counting only.
 */
static enum retire_with choose_retire_with(struct xm_agent *a, const char *release)
{
	int err;

	if (xm_kf_has(a->kfeatures, XM_KF_SOCK_DESTROY))
		return RETIRE_BPF;
	err = xm_sockdiag_probe();
	if (!err) {
		pr_info("rebalance: kernel %s has no bpf_sock_destroy (Linux >= 6.5): idle pooled "
			"connections are closed with SOCK_DESTROY over sock_diag netlink", release);
		return RETIRE_SOCKDIAG;
	}
	pr_warn("rebalance: kernel %s has no bpf_sock_destroy (Linux >= 6.5 needed) and "
		"SOCK_DESTROY over sock_diag fails: %s%s: idle pooled connections cannot be "
		"retired; connections held are only counted", release, strerror(-err),
		err == -EOPNOTSUPP ? " (the kernel lacks CONFIG_INET_DIAG_DESTROY)" :
		err == -ENOENT ? " (sock_diag has no TCP handler: load it with `modprobe tcp_diag` "
				 "and restart the agent)" : "");
	return RETIRE_NONE;
}

/* The iterator program the agent runs: destroys, picks, or counts. */
static struct bpf_program *iter_prog(const struct xm_rebalancer *r)
{
	return r->how == RETIRE_BPF	 ? r->skel->progs.xm_rebal_destroy :
	       r->how == RETIRE_SOCKDIAG ? r->skel->progs.xm_rebal_pick :
					   r->skel->progs.xm_rebal_count;
}

/* Open and load the object: the one iterator, and the read hook if reads. */
static int load(struct xm_rebalancer *r, bool reads)
{
	int err;

	xm_rebalance__destroy(r->skel);
	r->skel = xm_rebalance__open();
	if (!r->skel)
		return -errno;
	bpf_program__set_autoload(r->skel->progs.xm_rebal_destroy, false);
	bpf_program__set_autoload(r->skel->progs.xm_rebal_pick, false);
	bpf_program__set_autoload(r->skel->progs.xm_rebal_count, false);
	bpf_program__set_autoload(iter_prog(r), true);
	bpf_program__set_autoload(r->skel->progs.xm_rebal_read, reads);
	err = xm_dp_pin_maps(r->skel->obj, r->a->pin_root);
	/* the ring is this object's own, not shared */
	if (!err)
		err = bpf_map__set_pin_path(r->skel->maps.xm_rebal_events, NULL);
	return err ? err : xm_rebalance__load(r->skel);
}

static void on_reads(struct xm_loop *loop, int fd, uint32_t events, void *arg);
static void on_read_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg);
static int on_read_event(void *ctx, void *data, size_t len);

/*
 * The ring of read events and the timer of the passes after them; the hook
 * is attached when a backend first asks for them (xm_rebalance_allow).
 * Without them, urgent backends are looked at by the urgent_ms poll alone.
 */
static void reads_open(struct xm_rebalancer *r)
{
	int err = 0;

	r->reads = ring_buffer__new(bpf_map__fd(r->skel->maps.xm_rebal_events), on_read_event, r,
				    NULL);
	if (!r->reads)
		err = -errno;
	if (!err)
		err = xm_loop_add(r->a->loop, ring_buffer__epoll_fd(r->reads), EPOLLIN, on_reads, r);
	if (!err) {
		r->read_tfd = xm_loop_timer_add(r->a->loop, on_read_timer, r);
		err = r->read_tfd < 0 ? r->read_tfd : 0;
	}
	if (!err)
		return;
	pr_warn("rebalance: read events: %s: far slower backends are looked at every urgent_ms "
		"only", strerror(-err));
	r->read_tried = true; /* never attach the hook */
}

/* A test knob of N ms in 0..XM_REBAL_DESTROY_DELAY_MAX_MS: *ms, 0 when unset. */
static int test_delay_env(const char *name, const char *what, long *ms)
{
	const char *env = getenv(name);
	char *end;

	*ms = 0;
	if (!env || !*env)
		return 0;
	errno = 0;
	*ms = strtol(env, &end, 10);
	if (errno || *end || *ms < 0 || *ms > XM_REBAL_DESTROY_DELAY_MAX_MS) {
		pr_err("%s=%s: not a whole number of milliseconds in 0..%d (a test knob: %s; "
		       "unset it outside tests)", name, env, XM_REBAL_DESTROY_DELAY_MAX_MS, what);
		*ms = 0;
		return -EINVAL;
	}
	if (*ms)
		pr_warn("%s=%ld: %s (test only)", name, *ms, what);
	return 0;
}

int xm_rebalance_test_env(long *destroy_ms, long *walk_ms)
{
	return test_delay_env(XM_REBAL_DESTROY_DELAY_ENV,
			      "each SOCK_DESTROY waits that long after its pick, each read event's "
			      "pass after the read", destroy_ms) ?:
	       test_delay_env(XM_REBAL_WALK_DELAY_ENV,
			      "each namespace's walk takes that much longer", walk_ms);
}

struct xm_rebalancer *xm_rebalance_open(struct xm_agent *a)
{
	struct xm_rebalancer *r = calloc(1, sizeof(*r));
	struct utsname u = { 0 };
	bool reads;
	int err;

	if (!r)
		return NULL;
	r->a = a;
	r->read_tfd = -1;
	r->self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	uname(&u);
	if (r->self_ns < 0) {
		pr_warn("rebalance: %s: connections held are not counted", strerror(errno));
		goto fail;
	}
	r->how = choose_retire_with(a, u.release);
	if (xm_rebalance_test_env(&r->destroy_delay_ms, &r->walk_delay_ms))
		goto fail;
	/*
	 * Read events only where the iterator destroys under the socket lock:
	 * SOCK_DESTROY comes after the check, and right after a read is when a
	 * busy pool writes its next request (measured: over sock_diag, every
	 * connection retired on a read event had a request in flight by then).
	 */
	reads = r->how == RETIRE_BPF && a->loop;
	err = load(r, reads);
	if (err && reads) {
		pr_warn("rebalance: the read hook (tracepoint tcp_rcv_space_adjust) does not load: %s (kernel "
			"%s): far slower backends are looked at every urgent_ms only",
			strerror(-err), u.release);
		reads = false;
		err = load(r, false);
	}
	if (err) {
		pr_warn("rebalance: load the TCP socket iterator: %s (kernel %s; socket storage "
			"in iterators needs Linux >= 5.11): connections held are not counted",
			strerror(-err), u.release);
		goto fail;
	}
	r->link = bpf_program__attach_iter(iter_prog(r), NULL);
	if (!r->link) {
		pr_warn("rebalance: attach the TCP socket iterator: %s", strerror(errno));
		goto fail;
	}
	if (reads)
		reads_open(r);
	else
		r->read_tried = true;
	return r;
fail:
	xm_rebalance_close(r);
	return NULL;
}

static void netns_forget(struct xm_rebalancer *r)
{
	for (unsigned int i = 0; i < r->nns; i++)
		close(r->ns[i].fd);
	r->nns = 0;
}

void xm_rebalance_close(struct xm_rebalancer *r)
{
	if (!r)
		return;
	if (r->quota_errors)
		pr_err("rebalance: %llu periods ended with more quota left than given (a bug)",
		       r->quota_errors);
	if (r->picks_stale)
		pr_info("rebalance: %llu picked connections left open: the close came more than "
			"%llu ms after the pick, when the hold may have ended (a request could be "
			"on its way)", r->picks_stale, XM_LB_HOLD_CLOSE_NS / 1000000);
	if (r->st.tick_passes)
		pr_info("rebalance: %llu ticks' passes, %.0f us each on average over %.1f network "
			"namespaces (a namespace's walk reads the whole TCP hash table it uses), "
			"%llu urgent_ms passes over %.1f (the namespaces with client connections); "
			"these walks took %.1f %% of the time since the "
			"first (at most 1/%d: %llu ticks' passes skipped, %llu poll waits made "
			"longer than urgent_ms)", r->st.tick_passes,
			r->st.tick_ns / 1e3 / r->st.tick_passes,
			(double)r->st.tick_netns / r->st.tick_passes, r->st.poll_passes,
			r->st.poll_passes ? (double)r->st.poll_netns / r->st.poll_passes : 0,
			r->st.walk_span_ns ? 100.0 * r->st.walk_ns / r->st.walk_span_ns : 0,
			XM_REBAL_WALK_SHARE_INV, r->st.tick_skipped, r->st.poll_stretched);
	if (r->st.read_events || r->st.poll_retired)
		pr_info("rebalance: far slower backends: %llu connections retired on %llu read "
			"events (%llu passes, %llu passes over the limit of %d/s; from a read to "
			"its pass %.0f us on average, %.0f us at most), %llu by the urgent_ms poll "
			"(%llu passes)", r->st.read_retired, r->st.read_events,
			r->st.read_passes, r->st.read_limited, XM_REBAL_READ_PASSES_PER_S,
			r->st.read_lag_n ? r->st.read_lag_ns / 1e3 / r->st.read_lag_n : 0,
			r->st.read_lag_max_ns / 1e3, r->st.poll_retired, r->st.poll_passes);
	if (r->reads)
		xm_loop_del(r->a->loop, ring_buffer__epoll_fd(r->reads));
	ring_buffer__free(r->reads);
	if (r->read_tfd >= 0) {
		xm_loop_del(r->a->loop, r->read_tfd);
		close(r->read_tfd);
	}
	bpf_link__destroy(r->read_link);
	netns_forget(r);
	free(r->ns);
	bpf_link__destroy(r->link);
	xm_rebalance__destroy(r->skel);
	if (r->self_ns >= 0)
		close(r->self_ns);
	free(r);
}

bool xm_rebalance_can_retire(const struct xm_rebalancer *r)
{
	return r && r->how != RETIRE_NONE;
}

static void netns_add(struct xm_rebalancer *r, pid_t pid)
{
	char path[64];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (stat(path, &st))
		return;
	for (unsigned int i = 0; i < r->nns; i++)
		if (r->ns[i].dev == st.st_dev && r->ns[i].ino == st.st_ino)
			return;
	if (r->nns == r->capns) {
		unsigned int cap = r->capns ? r->capns * 2 : 16;
		struct netns_ref *n;

		if (cap > XM_REBAL_MAX_NETNS || !(n = realloc(r->ns, cap * sizeof(*n))))
			return;
		r->ns = n;
		r->capns = cap;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	r->ns[r->nns++] = (struct netns_ref){ .dev = st.st_dev, .ino = st.st_ino, .fd = fd };
}

/* Every process of the cgroup dir and its descendants: its netns. */
static void netns_scan_cgroup(struct xm_rebalancer *r, int dfd, unsigned int depth)
{
	struct dirent *e;
	DIR *d;
	FILE *f;
	int pfd;
	long pid;

	pfd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (pfd >= 0 && (f = fdopen(pfd, "r"))) {
		while (fscanf(f, "%ld", &pid) == 1)
			netns_add(r, (pid_t)pid);
		fclose(f);
	} else if (pfd >= 0) {
		close(pfd);
	}
	if (depth >= 32 || !(d = fdopendir(dup(dfd))))
		return;
	while ((e = readdir(d))) {
		int cfd;

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		cfd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cfd < 0)
			continue;
		netns_scan_cgroup(r, cfd, depth + 1);
		close(cfd);
	}
	closedir(d);
}

static void netns_refresh(struct xm_rebalancer *r)
{
	time_t now = time(NULL);
	int dfd;

	if (r->nns && now - r->ns_scanned < XM_REBAL_NETNS_RESCAN_S)
		return;
	r->ns_scanned = now;
	netns_forget(r);
	dfd = open(r->a->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	netns_scan_cgroup(r, dfd, 0);
	close(dfd);
}

/*
 * One line per retired connection (debug): which client socket, its backend,
 * which pass found it. With the client's per-request log (xm-load --csv: its
 * port, send and answer times) a request that fails can be matched to a
 * retirement, or shown to have none (scripts/bench/l3_report.py).
 */
static void log_retired(const struct xm_rebalancer *r, const struct xm_rebal_pick *p)
{
	char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";

	if (xm_log_threshold < XM_LOG_DEBUG)
		return;
	inet_ntop(p->family, p->saddr, src, sizeof(src));
	inet_ntop(p->family, p->daddr, dst, sizeof(dst));
	pr_debug("rebalance: retired %s:%u -> %s:%u (backend id %u, cookie %llu) by %s",
		 src, p->sport, dst, ntohs(p->dport), p->backend, (unsigned long long)p->cookie,
		 r->walk_why);
}

/*
 * Is a pick's mark still fresh enough to close its socket? Its payload is held
 * only for XM_LB_HOLD_NS after the pick (lb.h); past XM_LB_HOLD_CLOSE_NS a
 * request may be on its way to the backend, and the close would cut it.
 */
static bool pick_fresh(const struct xm_rebal_pick *p)
{
	return xm_lb_mark_fresh(p->mark, xm_mono_ns(), XM_LB_HOLD_CLOSE_NS);
}

/*
 * Close a connection the iterator chose; on failure it was not retired after
 * all (the iterator counted it so), and it stays counted as idle.
 */
static void retire_picked(struct xm_rebalancer *r, struct mnl_socket *nl, int nl_err,
			  const struct xm_rebal_pick *p)
{
	struct xm_rebal_be *be = &r->skel->bss->xm_rebal_be[p->backend < XM_LB_MAX_BACKENDS ?
								 p->backend : 0];
	int err;

	if (r->destroy_delay_ms)
		usleep((useconds_t)r->destroy_delay_ms * 1000);
	if (!pick_fresh(p))
		err = -ETIME;
	else
		err = nl ? xm_sockdiag_destroy(nl, p) : nl_err;
	if (!err) {
		log_retired(r, p);
		return;
	}
	if (be->retired)
		be->retired--;
	be->failed++;
	be->idle++;
	if (err == -ETIME) {
		r->picks_stale++;
		pr_debug("rebalance: left open %u -> backend id %u (cookie %llu): picked more than "
			 "%llu ms ago", p->sport, p->backend, (unsigned long long)p->cookie,
			 XM_LB_HOLD_CLOSE_NS / 1000000);
		return;
	}
	/* -ENOENT / -ESTALE: the client closed it meanwhile; anything else is worth a line. */
	if (err != -ENOENT && err != -ESTALE && err != r->sockdiag_err)
		pr_warn("rebalance: SOCK_DESTROY over sock_diag: %s", strerror(-err));
	r->sockdiag_err = err;
}

/*
 * A TCP iterator walks the sockets of the network namespace of the thread
 * that creates its file: enter each namespace for bpf_iter_create() only
 * (and, to close what it picks, for the sock_diag socket: netlink acts in
 * the namespace it was opened in), then come back; the walk (read) happens
 * from here. The pick variant's output is whole xm_rebal_pick records,
 * which a read() may split.
 *
 * A read() returns once the walk has written as many bytes as it asked for,
 * or at the end of the walk: the whole host's TCP hash table, every bucket,
 * for every namespace. So the pick variant reads one record at a time, and
 * each close follows its pick at once rather than after the rest of the walk
 * (under qemu's emulation on a loaded machine that walk took longer than
 * XM_LB_HOLD_CLOSE_NS, and every pick was left open as stale).
 */
/*
 * Once, from inside a pod's namespace: does it share the host's TCP hash
 * table? Then every walk reads all of the host's buckets, whatever the pod
 * holds (262,144 here: 2.4-3.8 ms a walk, against 44 us for a namespace with
 * a table of 1,024 of its own; docs/benchmarks.md). The kernel gives a new
 * namespace its own table when net.ipv4.tcp_child_ehash_entries is set where
 * it is created (Linux >= 6.1): say so once.
 */
static void ehash_check(struct xm_rebalancer *r)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_ehash_entries", "re");
	long n = 0;

	r->ehash_checked = true;
	if (!f)
		return; /* before Linux 6.1: every namespace shares the host's table */
	if (fscanf(f, "%ld", &n) != 1)
		n = 0;
	fclose(f);
	if (n < -XM_REBAL_EHASH_HINT)
		pr_info("rebalance: the pods' network namespaces share the host's TCP hash table "
			"(%ld buckets): each walk of a namespace's connections reads all of it; "
			"`sysctl -w net.ipv4.tcp_child_ehash_entries=1024` on the node gives each "
			"pod created afterwards a table of its own (a walk ~50x cheaper)", -n);
}

static int walk_netns(struct xm_rebalancer *r, int nsfd)
{
	union {
		struct xm_rebal_pick p[16];
		char b[16 * sizeof(struct xm_rebal_pick)];
	} buf;
	struct mnl_socket *nl = NULL;
	size_t have = 0;
	ssize_t n;
	int ifd, nl_err = 0;

	if (r->walk_delay_ms)
		usleep((useconds_t)r->walk_delay_ms * 1000);
	if (setns(nsfd, CLONE_NEWNET))
		return -errno;
	if (!r->ehash_checked)
		ehash_check(r);
	ifd = bpf_iter_create(bpf_link__fd(r->link));
	if (ifd >= 0 && r->how == RETIRE_SOCKDIAG && !(nl = xm_sockdiag_open()))
		nl_err = -errno;
	if (setns(r->self_ns, CLONE_NEWNET)) {
		/* Cannot happen with CAP_SYS_ADMIN; a wrong netns would be worse than exiting. */
		pr_err("rebalance: cannot return to the agent's network namespace: %s",
		       strerror(errno));
		abort();
	}
	if (ifd < 0)
		return -errno;
	while ((n = read(ifd, buf.b + have, (r->how == RETIRE_SOCKDIAG ? sizeof(buf.p[0]) :
					      sizeof(buf)) - have)) > 0) {
		size_t whole;

		have += (size_t)n;
		whole = have / sizeof(buf.p[0]);
		for (size_t i = 0; i < whole; i++)
			if (r->how == RETIRE_SOCKDIAG)
				retire_picked(r, nl, nl_err, &buf.p[i]);
			else
				log_retired(r, &buf.p[i]);
		have -= whole * sizeof(buf.p[0]);
		memmove(buf.b, buf.b + whole * sizeof(buf.p[0]), have);
	}
	xm_sockdiag_close(nl);
	close(ifd);
	return 0;
}

/*
 * The hook sees every TCP read of the host: once no backend has wanted it for
 * XM_REBAL_READ_DETACH_PASSES ticks, detach it (reads_watch attaches it again).
 */
static void reads_unwatch_idle(struct xm_rebalancer *r, bool wanted)
{
	if (!r->read_link || wanted) {
		r->read_unwanted = 0;
		return;
	}
	if (++r->read_unwanted < XM_REBAL_READ_DETACH_PASSES)
		return;
	bpf_link__destroy(r->read_link);
	r->read_link = NULL;
	r->read_tried = false;
	r->read_unwanted = 0;
	pr_debug("rebalance: read hook detached: no far slower backend for %d ticks",
		 XM_REBAL_READ_DETACH_PASSES);
}

/* What a pass counts, as a retire-only pass must leave it (quota and marks are not counts). */
static void counts_copy(struct xm_rebal_be *to, const struct xm_rebal_be *from)
{
	to->held = from->held;
	to->idle = from->idle;
	to->retired = from->retired;
	to->failed = from->failed;
	to->oldest_req_ns = from->oldest_req_ns;
}

/*
 * End backend id's period: take what is left of its quota, with the read
 * hook's marks, in one exchange (rebalance.h), so that a unit the hook takes
 * at this moment is in this period or the next, never in both or neither.
 */
static void period_end(struct xm_rebalancer *r, __u32 id)
{
	union xm_rebal_quota_word w = { 0 };

	/* no quota given: none to take, no mark (most backends; skip the locked exchange) */
	if (r->given[id])
		w.word = __atomic_exchange_n((__u64 *)&r->skel->bss->xm_rebal_be[id].quota, 0,
					     __ATOMIC_SEQ_CST);
	if (w.quota > r->given[id]) {
		/* a unit taken below zero wraps: the bound of issue 13 would not hold */
		if (!r->quota_errors++)
			pr_err("rebalance: backend id %u: %u units of quota left of %u given: the "
			       "quota accounting is broken (a bug: please report it with this "
			       "line); connections may have been retired beyond the bounds",
			       id, w.quota, r->given[id]);
		w.quota = r->given[id];
	}
	r->spent[id] = r->given[id] - w.quota;
	r->marked[id] = w.marked;
	r->given[id] = 0;
}

/* A walk (tick's pass or poll) from t0 to now: none starts again for a while. */
static void walk_done(struct xm_rebalancer *r, __u64 t0)
{
	__u64 t1 = xm_mono_ns();

	if (!r->walk_first_ns)
		r->walk_first_ns = t0;
	r->walk_free_ns = t1 + (t1 - t0) * (XM_REBAL_WALK_SHARE_INV - 1);
	r->st.walk_ns += t1 - t0;
	r->st.walk_span_ns = r->walk_free_ns - r->walk_first_ns;
}

bool xm_rebalance_fresh(const struct xm_rebalancer *r)
{
	return r->fresh;
}

/* Client connections counted so far in this pass (a sum over ~100 KB: us, a walk is ms). */
static unsigned long long held_sum(const struct xm_rebalancer *r)
{
	const struct xm_rebal_be *be = r->skel->bss->xm_rebal_be;
	unsigned long long held = 0;

	for (__u32 id = 0; id < XM_LB_MAX_BACKENDS; id++)
		held += be[id].held;
	return held;
}

int xm_rebalance_pass(struct xm_rebalancer *r)
{
	struct xm_rebal_be *be = r->skel->bss->xm_rebal_be;
	bool reads_wanted = r->skel->bss->xm_rebal_on_read_any;
	int walked = 0;
	__u64 t0 = xm_mono_ns();

	r->fresh = t0 >= r->walk_free_ns;
	if (!r->fresh) {
		r->st.tick_skipped++;
		return -EAGAIN;
	}
	/*
	 * The tick's period ends with this pass: no read marks from here on (a
	 * hook past this check already takes its unit of the period's quota),
	 * so the marks this pass closes are the period's own.
	 */
	r->skel->bss->xm_rebal_on_read_any = 0;
	for (__u32 id = 0; id < XM_LB_MAX_BACKENDS; id++) {
		counts_copy(&be[id], &(struct xm_rebal_be){ 0 });
		be[id].on_read = 0;
	}
	netns_refresh(r);
	r->walk_why = "the tick's pass";
	for (unsigned int i = 0; i < r->nns; i++) {
		unsigned long long held = held_sum(r);

		if (!walk_netns(r, r->ns[i].fd))
			walked++;
		r->ns[i].clients = held_sum(r) > held;
	}
	r->st.tick_passes++;
	r->st.tick_ns += xm_mono_ns() - t0;
	r->st.tick_netns += (unsigned long long)walked;
	walk_done(r, t0);
	reads_unwatch_idle(r, reads_wanted);
	for (__u32 id = 0; id < XM_LB_MAX_BACKENDS; id++) {
		period_end(r, id);
		be[id].retired += r->carry[id];
		r->carry[id] = 0;
	}
	return walked;
}

/* The silence the iterator asks of a far slower backend's connections. */
static __u64 urgent_quiet_ns(const struct xm_rebalancer *r)
{
	return r->how == RETIRE_SOCKDIAG ? XM_REBAL_SOCKDIAG_QUIET_NS : 0;
}

/*
 * A pass that only retires, over the namespaces of the last full pass (a new
 * pod holds no old connection), or only those a read event came from: up to
 * the quotas left, what it retires counted into the next full pass's
 * `retired`; the counts stay those of the last full pass. Returns the
 * backends that still have quota at the first idle moment (idle_ns 0; over
 * sock_diag, the least silence it allows); *retired: connections it retired.
 */
static unsigned int urgent_left(const struct xm_rebalancer *r)
{
	const struct xm_rebal_be *be = r->skel->bss->xm_rebal_be;
	unsigned int urgent = 0;

	for (__u32 id = 0; id < XM_LB_MAX_BACKENDS; id++)
		urgent += be[id].quota && be[id].idle_ns <= urgent_quiet_ns(r);
	return urgent;
}

static unsigned int retire_walk(struct xm_rebalancer *r, bool only_due, unsigned long long *retired)
{
	struct xm_rebal_be *be = r->skel->bss->xm_rebal_be, *last = r->last;

	r->walk_why = only_due ? "a read-event pass" : "an urgent_ms poll";
	memcpy(last, be, sizeof(r->last));
	for (unsigned int i = 0; i < r->nns; i++) {
		/*
		 * The poll walks only where the tick's pass found client connections:
		 * what it retires is old, and a connection made since was placed by
		 * weights that already avoid the backend (a server pod holds none).
		 */
		if (only_due ? !r->ns[i].due : !r->ns[i].clients)
			continue;
		walk_netns(r, r->ns[i].fd);
		if (!only_due)
			r->st.poll_netns++;
	}
	for (__u32 id = 0; id < XM_LB_MAX_BACKENDS; id++) {
		r->carry[id] += be[id].retired - last[id].retired;
		*retired += be[id].retired - last[id].retired;
		counts_copy(&be[id], &last[id]);
	}
	return urgent_left(r);
}

unsigned int xm_rebalance_retire_now(struct xm_rebalancer *r)
{
	__u64 t0 = xm_mono_ns();
	unsigned int urgent;

	if (t0 < r->walk_free_ns) /* the tick's pass just ran: the next wait says when */
		return urgent_left(r);
	urgent = retire_walk(r, false, &r->st.poll_retired);
	r->st.poll_passes++;
	walk_done(r, t0);
	return urgent;
}

long xm_rebalance_poll_wait_ms(struct xm_rebalancer *r, long urgent_ms)
{
	__u64 now = xm_mono_ns();
	/* rounded up: a wait in whole ms never ends before the walks may start */
	long ms = now < r->walk_free_ns ? (long)((r->walk_free_ns - now + 999999) / 1000000) : 0;

	if (ms > urgent_ms)
		r->st.poll_stretched++;
	return ms > urgent_ms ? ms : urgent_ms;
}

static void read_timer_arm(struct xm_rebalancer *r, long us)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 },
	};

	timerfd_settime(r->read_tfd, 0, &its, NULL);
}

static void reads_done(struct xm_rebalancer *r)
{
	for (unsigned int i = 0; i < r->nns; i++)
		r->ns[i].due = false;
	r->read_again = 0;
	read_timer_arm(r, 0);
}

/*
 * One pass over the namespaces that reported reads, within the passes per
 * second; then again after read_again_us (a read event can come before the
 * client has read everything), unless no urgent quota is left.
 */
static void read_pass(struct xm_rebalancer *r)
{
	__u64 now = xm_mono_ns();

	if (now - r->read_window_ns >= 1000000000ULL) {
		r->read_window_ns = now;
		r->read_window_passes = 0;
	}
	if (r->read_window_passes >= XM_REBAL_READ_PASSES_PER_S) {
		r->st.read_limited++;
		reads_done(r);
		return;
	}
	r->read_window_passes++;
	r->st.read_passes++;
	if (r->first_read_ns && now > r->first_read_ns) {
		__u64 lag = now - r->first_read_ns;

		r->st.read_lag_ns += lag;
		r->st.read_lag_max_ns = lag > r->st.read_lag_max_ns ? lag : r->st.read_lag_max_ns;
		r->st.read_lag_n++;
	}
	r->first_read_ns = 0;
	if (r->destroy_delay_ms && !r->read_again)
		usleep((useconds_t)r->destroy_delay_ms * 1000);
	if (!retire_walk(r, true, &r->st.read_retired) ||
	    r->read_again >= sizeof(read_again_us) / sizeof(read_again_us[0])) {
		reads_done(r);
		return;
	}
	read_timer_arm(r, read_again_us[r->read_again++]);
}

static int on_read_event(void *ctx, void *data, size_t len)
{
	const struct xm_rebal_read_event *e = data;
	struct xm_rebalancer *r = ctx;

	if (len < sizeof(*e))
		return 0;
	r->st.read_events++;
	if (!r->first_read_ns || e->read_ns < r->first_read_ns)
		r->first_read_ns = e->read_ns;
	for (unsigned int i = 0; i < r->nns; i++)
		if (r->ns[i].ino == e->netns_ino)
			r->ns[i].due = true;
	return 0;
}

static void on_reads(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_rebalancer *r = arg;
	unsigned long long before = r->st.read_events;

	ring_buffer__consume(r->reads);
	if (r->st.read_events == before)
		return;
	r->read_again = 0;
	read_pass(r);
}

static void on_read_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	__u64 expirations;

	if (read(fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		read_pass(arg);
}

void xm_rebalance_prefetch(const struct xm_rebalancer *r, __u32 id)
{
	__builtin_prefetch(&r->skel->bss->xm_rebal_be[id < XM_LB_MAX_BACKENDS ? id : 0]);
}

struct xm_rebal_tally xm_rebalance_tally(const struct xm_rebalancer *r, __u32 id)
{
	const struct xm_rebal_be *c;

	id = id < XM_LB_MAX_BACKENDS ? id : 0;
	c = &r->skel->bss->xm_rebal_be[id];
	return (struct xm_rebal_tally){
		.held = c->held,
		.idle = c->idle,
		.retired = c->retired,
		.spent = r->spent[id],
		.marked = r->marked[id],
		.oldest_req_ns = c->oldest_req_ns,
	};
}

/* The read hook, attached the first time a backend asks for read events. */
static bool reads_watch(struct xm_rebalancer *r)
{
	if (r->read_link || r->read_tried)
		return r->read_link;
	r->read_tried = true;
	r->read_link = bpf_program__attach(r->skel->progs.xm_rebal_read);
	if (r->read_link)
		pr_debug("rebalance: read hook attached");
	else
		pr_warn("rebalance: attach the read hook (tracepoint tcp_rcv_space_adjust): %s: far slower "
			"backends are looked at every urgent_ms only", strerror(errno));
	return r->read_link;
}

void xm_rebalance_allow(struct xm_rebalancer *r, __u32 id, __u32 quota, __u64 idle_ns,
			enum xm_rebal_on_read on_read)
{
	struct xm_rebal_be *be;

	if (id >= XM_LB_MAX_BACKENDS)
		return;
	be = &r->skel->bss->xm_rebal_be[id];
	r->given[id] = r->how != RETIRE_NONE ? quota : 0;
	be->quota = r->given[id];
	be->idle_ns = idle_ns > urgent_quiet_ns(r) ? idle_ns : urgent_quiet_ns(r);
	be->on_read = be->quota && on_read && reads_watch(r) ? on_read : XM_REBAL_ON_READ_OFF;
	if (be->on_read)
		r->skel->bss->xm_rebal_on_read_any = 1;
}
