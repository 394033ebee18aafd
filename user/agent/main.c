// SPDX-License-Identifier: MIT
/*
 * xmesh-agent: loads and pins the datapath for one node, then keeps it in
 * line with its configuration until SIGTERM/SIGINT. Stopping the agent leaves
 * the datapath running; `xmesh-agent uninstall` removes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <net/if.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "version.h"
#include "agent.h"
#include "discover.h"
#include "k8s.h"
#include "lbconfig.h"
#include "weighting.h"
#include "log.h"
#include "numparse.h"
#include "pin.h"
#include "sys.h"

#define XM_MIN_KERNEL (5 * 65536 + 15 * 256)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xmesh-agent --cgroup PATH [--pin-root DIR] [--config FILE]\n"
		"                   [--metrics ADDR:PORT] [--log-level error|warn|info|debug]\n"
		"                   [--netns PATH] [--overlay-dev IFNAME [--overlay-vxlan IFNAME]\n"
		"                   [--overlay-max-flows N]] [--lb-udp-max N]\n"
		"                   [--k8s | --kubeconfig FILE] [--k8s-api HOST:PORT]\n"
		"                   [--node-name NAME] [--k8s-watch-timeout S]\n"
		"       xmesh-agent uninstall --cgroup PATH [--pin-root DIR]\n"
		"                   [--drain-timeout SECONDS] [--force]\n"
		"       xmesh-agent --version | --help\n"
		"\n"
		"  --cgroup PATH     cgroup v2 directory whose sockets xmesh serves (required;\n"
		"                    the agent never picks the root cgroup on its own)\n"
		"  --pin-root DIR    bpffs directory for maps and links (default %s)\n"
		"  --config FILE     JSON configuration, reloaded on SIGHUP and on change\n"
		"  --metrics A:P     serve Prometheus metrics on this address\n"
		"  --netns PATH      join this network namespace first (the node's, when the\n"
		"                    agent is started from outside it; e.g. /var/run/netns/X)\n"
		"  --overlay-dev IF  enable the overlay cache on underlay device IF\n"
		"  --overlay-vxlan IF  the VXLAN device it caches (default: the first found)\n"
		"  --overlay-max-flows N  size of each flow cache map, TCP/IPv4 and the others\n"
		"                    (LRU; default 65536; a new size takes effect after\n"
		"                    'xmesh-agent uninstall')\n"
		"  --lb-udp-max N    size of the LB's UDP reverse-translation LRU (default\n"
		"                    262144; a new size takes effect after 'xmesh-agent uninstall')\n"
		"  --k8s             take services from the API server, in-cluster config\n"
		"                    (service account token and CA, KUBERNETES_SERVICE_HOST)\n"
		"  --kubeconfig FILE the same with a kubeconfig in JSON form (a YAML one is\n"
		"                    refused with the command that converts it)\n"
		"  --k8s-api A       API server HOST:PORT (https) or URL, overriding the config\n"
		"  --node-name NAME  this node's name (default $NODE_NAME, then the hostname)\n"
		"  --k8s-watch-timeout S  watches are renewed after S seconds (default 300)\n"
		"  --drain-timeout S (uninstall) wait at most S seconds (default 60) for\n"
		"                    redirected connections to close before the last pins go\n"
		"  --force           (uninstall) after the wait, remove the redirect map even\n"
		"                    with connections open (their unread bytes are lost)\n",
		XM_PIN_ROOT_DEFAULT);
}

/* Refuse early, with what to do, when the host cannot run the datapath. */
static int check_host(void)
{
	unsigned int kv = xm_kernel_version();

	if (geteuid() != 0) {
		pr_err("must run as root (loading BPF programs needs CAP_BPF, CAP_NET_ADMIN and "
		       "CAP_SYS_ADMIN): try sudo");
		return -EPERM;
	}
	if (kv && kv < XM_MIN_KERNEL) {
		pr_err("kernel %u.%u is too old: xmesh needs Linux >= 5.15 (netns cookies in "
		       "sockops and sk_msg)", kv >> 16, (kv >> 8) & 0xff);
		return -EOPNOTSUPP;
	}
	if (!xm_have_btf()) {
		pr_err("/sys/kernel/btf/vmlinux is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y "
		       "for CO-RE programs");
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * The whole agent moves into the node's netns: netlink, interface indexes
 * and tc attachments are then the node's, while bpffs and cgroup2 stay the
 * host's (only the network namespace changes, not the mounts).
 */
static int join_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		pr_err("--netns %s: %s", path, strerror(-err));
	return err;
}

static int open_cgroup(struct xm_agent *a, const char *path)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64) };
	char mnt[PATH_MAX];
	int mount_id, err;

	if (!realpath(path, a->cgroup_path)) {
		err = -errno;
		pr_err("--cgroup %s: %s", path, strerror(errno));
		return err;
	}
	err = xm_cgroup_check(a->cgroup_path);
	if (err) {
		if (xm_cgroup2_mount(mnt, sizeof(mnt)))
			snprintf(mnt, sizeof(mnt), "(no cgroup2 mount found in /proc/mounts)");
		pr_err("--cgroup %s is not a cgroup v2 directory (cgroup2 is mounted at %s)",
		       a->cgroup_path, mnt);
		return err;
	}
	a->cgroup_fd = open(a->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->cgroup_fd < 0)
		return -errno;
	/* On cgroup2 the file handle is the cgroup id, as bpf_link_info reports it. */
	if (name_to_handle_at(AT_FDCWD, a->cgroup_path, &h.fh, &mount_id, 0) == 0)
		memcpy(&a->cgroup_id, h.fh.f_handle, sizeof(a->cgroup_id));
	return 0;
}

/*
 * One agent per pin root: a second one would fight over the same maps. The
 * lock file is removed at exit; a lock taken on a file that another agent
 * removed meanwhile is no lock, so take it again on the file now there.
 */
static int take_lock(struct xm_agent *a)
{
	char path[PATH_MAX], pid[32];
	struct stat held, now;
	int err;

	err = xm_run_path(path, sizeof(path), a->pin_root, "lock");
	if (!err)
		err = xm_run_dir_prepare();
	if (err)
		return err;
	for (;;) {
		a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (a->lock_fd < 0)
			return -errno;
		if (flock(a->lock_fd, LOCK_EX | LOCK_NB)) {
			ssize_t n = pread(a->lock_fd, pid, sizeof(pid) - 1, 0);

			pid[n > 0 ? n : 0] = '\0';
			pr_err("another xmesh-agent (pid %s) runs on pin root %s: stop it first",
			       strtok(pid, "\n") ?: "?", a->pin_root);
			close(a->lock_fd);
			a->lock_fd = -1;
			return -EBUSY;
		}
		if (!fstat(a->lock_fd, &held) && !stat(path, &now) && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev)
			break;
		close(a->lock_fd);
	}
	if (ftruncate(a->lock_fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", getpid());

		if (pwrite(a->lock_fd, pid, n, 0) != n)
			pr_debug("could not write pid to %s", path);
	}
	return 0;
}

/* Remove the lock file while still holding it, then the run dir if it is empty. */
static void release_lock(struct xm_agent *a)
{
	char path[PATH_MAX];

	if (a->lock_fd < 0)
		return;
	if (!xm_run_path(path, sizeof(path), a->pin_root, "lock"))
		unlink(path);
	close(a->lock_fd);
	a->lock_fd = -1;
	xm_run_dir_release();
}

/* A number flag: the whole of arg a number in [min, max] (numparse.h says why). */
static int flag_number(const char *flag, const char *arg, double min, double max, double *out)
{
	if (xm_number_parse(arg, min, max, out)) {
		pr_err("--%s %s: give a number from %g to %g", flag, arg, min, max);
		return -EINVAL;
	}
	return 0;
}

static int flag_uint(const char *flag, const char *arg, unsigned int min, unsigned int max,
		     unsigned int *out)
{
	if (xm_uint_parse(arg, min, max, out)) {
		pr_err("--%s %s: give a whole number from %u to %u", flag, arg, min, max);
		return -EINVAL;
	}
	return 0;
}

/*
 * Check what can be checked before anything is attached, so that a bad
 * flag never leaves a half-started datapath behind.
 */
static int check_args(struct xm_agent *a)
{
	struct sockaddr_storage ss;

	if (a->metrics_addr && xm_metrics_addr_parse(a->metrics_addr, &ss))
		return -EINVAL;
	if (a->overlay_dev && !if_nametoindex(a->overlay_dev)) {
		pr_err("--overlay-dev %s: no such interface%s", a->overlay_dev,
		       a->netns_path ? " in that netns" : " (the node's netns: --netns PATH?)");
		return -ENODEV;
	}
	return 0;
}

static void on_signal(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		pr_info("SIGHUP: reloading the config");
		xm_services_reload(arg);
		return;
	}
	pr_info("%s: stopping; the datapath stays in place",
		si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	xm_loop_stop(loop);
}

/* *started: the loop ran (every module started); false: start failed. */
static int run(struct xm_agent *a, bool *started)
{
	sigset_t mask;
	int sfd, err;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (!a->loop)
		a->loop = xm_loop_new();
	if (sfd < 0 || !a->loop)
		return -errno ?: -ENOMEM;
	err = xm_loop_add(a->loop, sfd, EPOLLIN, on_signal, a);
	if (!err)
		err = xm_weighting_start(a);
	if (!err)
		err = xm_services_start(a);
	if (!err)
		err = xm_k8s_start(a);
	if (!err && a->metrics_addr)
		err = xm_metrics_start(a);
	if (!err) {
		*started = true;
		err = xm_loop_run(a->loop);
	}
	xm_metrics_stop(a);
	xm_k8s_stop(a);
	xm_services_stop(a);
	xm_weighting_stop(a);
	close(sfd);
	xm_loop_free(a->loop);
	a->loop = NULL;
	return err;
}

/* We hold the pin root's lock: a control socket there is a dead agent's. */
static void remove_stale_socket(struct xm_agent *a)
{
	char path[PATH_MAX];

	if (!xm_run_path(path, sizeof(path), a->pin_root, "sock") && unlink(path) == 0)
		pr_info("removed the stale control socket %s", path);
}

static int do_uninstall(struct xm_agent *a, double drain_timeout_s, bool force)
{
	char path[PATH_MAX];
	int n;

	if (!xm_pin_root_in_use(a->pin_root) && access(a->pin_root, F_OK)) {
		remove_stale_socket(a);
		pr_info("nothing installed at %s", a->pin_root);
		return 0;
	}
	n = xm_datapath_uninstall(a->pin_root, drain_timeout_s, force);
	if (n == -EBUSY)
		return n; /* still draining: said why */
	if (n < 0) {
		pr_err("uninstall %s: %s", a->pin_root, strerror(-n));
		return n;
	}
	remove_stale_socket(a);
	/* what `xmeshctl service list` shows of the sources: nothing is left to show */
	if (!xm_run_path(path, sizeof(path), a->pin_root, "services.json"))
		unlink(path);
	pr_info("removed %d pins under %s: every xmesh program is detached", n, a->pin_root);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "pin-root", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'f' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "netns", required_argument, NULL, 'n' },
		{ "overlay-dev", required_argument, NULL, 'O' },
		{ "overlay-vxlan", required_argument, NULL, 'X' },
		{ "overlay-max-flows", required_argument, NULL, 'F' },
		{ "lb-udp-max", required_argument, NULL, 'L' },
		{ "k8s", no_argument, NULL, 'K' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "k8s-api", required_argument, NULL, 'A' },
		{ "node-name", required_argument, NULL, 'N' },
		{ "k8s-watch-timeout", required_argument, NULL, 'T' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'Z' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct xm_agent a = { .cgroup_fd = -1, .lock_fd = -1,
			      .lb_probes_clientless_s = XM_LB_PROBES_CLIENTLESS_S };
	const char *cgroup = NULL, *pin_root = XM_PIN_ROOT_DEFAULT;
	bool uninstall = false, fresh, existed, started = false, force = false;
	bool k8s_in_cluster = false, drain_given = false;
	double drain_timeout_s = 60;
	int opt, err;

	/* A client that closes early must cost an EPIPE, never the agent (exit 141). */
	signal(SIGPIPE, SIG_IGN);

	if (argc > 1 && !strcmp(argv[1], "uninstall")) {
		uninstall = true;
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, "c:r:f:m:l:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': cgroup = optarg; break;
		case 'r': pin_root = optarg; break;
		case 'f': a.config_path = optarg; break;
		case 'm': a.metrics_addr = optarg; break;
		case 'n': a.netns_path = optarg; break;
		case 'O': a.overlay_dev = optarg; break;
		case 'X': a.overlay_vxlan = optarg; break;
		case 'F':
			if (flag_uint("overlay-max-flows", optarg, 1, 1U << 26, &a.overlay_max_flows))
				return 1;
			break;
		case 'L':
			if (flag_uint("lb-udp-max", optarg, 1, 1U << 26, &a.lb_udp_max))
				return 1;
			break;
		case 'K': a.k8s_enabled = k8s_in_cluster = true; break;
		case 'k': a.kubeconfig = optarg; a.k8s_enabled = true; break;
		case 'A': a.k8s_api = optarg; break;
		case 'N': a.node_name = optarg; break;
		case 'T':
			if (flag_uint("k8s-watch-timeout", optarg, 1, 86400, &a.k8s_watch_timeout))
				return 1;
			break;
		case 'D':
			if (flag_number("drain-timeout", optarg, 0, 86400, &drain_timeout_s))
				return 1;
			drain_given = true;
			break;
		case 'Z': force = true; break;
		case 'l':
			if (xm_log_parse_level(optarg, &xm_log_threshold)) {
				pr_err("--log-level %s: use error, warn, info or debug", optarg);
				return 1;
			}
			break;
		case 'V': printf("xmesh-agent %s (datapath ABI %d)\n", XM_VERSION, XM_ABI_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	/* Flags that only mean something with another are refused without it, not ignored. */
	if (k8s_in_cluster && a.kubeconfig) {
		pr_err("--k8s and --kubeconfig: give one (--k8s: in a pod, with its service "
		       "account; --kubeconfig FILE: outside the cluster)");
		return 1;
	}
	if (!uninstall && !a.k8s_enabled && (a.k8s_api || a.node_name || a.k8s_watch_timeout)) {
		pr_err("--%s needs --k8s or --kubeconfig FILE (Kubernetes mode)",
		       a.k8s_api ? "k8s-api" : a.node_name ? "node-name" : "k8s-watch-timeout");
		return 1;
	}
	if (!uninstall && !a.overlay_dev && (a.overlay_vxlan || a.overlay_max_flows)) {
		pr_err("--%s needs --overlay-dev IF (the underlay device the overlay cache "
		       "attaches to); without it there is no overlay cache",
		       a.overlay_vxlan ? "overlay-vxlan" : "overlay-max-flows");
		return 1;
	}
	if (!uninstall && (force || drain_given)) {
		pr_err("--%s belongs to 'xmesh-agent uninstall' (a running agent never drains): "
		       "xmesh-agent uninstall --cgroup PATH [--drain-timeout S] [--force]",
		       force ? "force" : "drain-timeout");
		return 1;
	}
	xm_log_setup_libbpf();
	if (pin_root[0] != '/') {
		pr_err("--pin-root %s: give an absolute path below a bpffs mount", pin_root);
		return 1;
	}
	if (!cgroup) {
		pr_err("--cgroup PATH is required (the node's cgroup2 root, or a test's own cgroup)");
		return 1;
	}
	if (check_host())
		return 1;
	/* Canonical: the lock and the socket are keyed by it (one agent per pin root). */
	err = xm_path_canonical(pin_root, a.pin_root, sizeof(a.pin_root));
	if (err || !strcmp(a.pin_root, "/")) {
		pr_err("--pin-root %s: %s", pin_root,
		       err ? strerror(-err) : "give a directory below a bpffs mount");
		return 1;
	}
	if (a.netns_path && join_netns(a.netns_path))
		return 1;
	if (!uninstall && check_args(&a))
		return 1;
	if (open_cgroup(&a, cgroup))
		return 1;
	err = take_lock(&a);
	if (err) {
		if (err != -EBUSY)
			pr_err("lock for %s: %s", a.pin_root, strerror(-err));
		return 1;
	}
	if (uninstall) {
		err = do_uninstall(&a, drain_timeout_s, force);
		release_lock(&a);
		return err ? 1 : 0;
	}

	if (xm_cgroup_is_root(a.cgroup_path))
		pr_warn("attaching to the root cgroup %s: every process of the host is served",
			a.cgroup_path);
	existed = access(a.pin_root, F_OK) == 0;
	fresh = !xm_pin_root_in_use(a.pin_root);
	err = xm_pin_root_prepare(a.pin_root);
	if (err) {
		pr_err("pin root %s: %s%s", a.pin_root, strerror(-err),
		       err == -ENOTEMPTY ? " (not bpffs, and mounting bpffs there would hide its "
					   "files: choose a new or empty directory)"
					 : " (bpffs is mounted only at the pin root itself: mount "
					   "bpffs on its parent first, e.g. mount -t bpf bpf "
					   "/sys/fs/bpf, or choose a --pin-root on bpffs)");
		release_lock(&a);
		return 1;
	}
	/* Modules may register fds (netlink, timers) while they load. */
	a.loop = xm_loop_new();
	if (!a.loop) {
		pr_err("event loop: %s", strerror(errno));
		return 1;
	}
	err = xm_datapath_load(&a);
	if (!err) {
		xm_discover_pods(&a);
		pr_info("datapath ready: pin root %s, cgroup %s", a.pin_root, a.cgroup_path);
		err = run(&a, &started);
	}
	xm_datapath_close(&a);
	if (err && !started && fresh) {
		/* Nothing was here before this start: leave nothing behind either. */
		/* a fresh start redirected nothing yet: no connection to wait for */
		int n = xm_datapath_uninstall(a.pin_root, 0, true);

		if (n < 0)
			pr_err("rolling back %s: %s", a.pin_root, strerror(-n));
		else
			pr_info("start failed: rolled back (%d pins removed)", n);
		if (existed)
			mkdir(a.pin_root, 0700);
	}
	release_lock(&a);
	close(a.cgroup_fd);
	return err ? 1 : 0;
}
