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
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "version.h"
#include "agent.h"
#include "discover.h"
#include "weighting.h"
#include "log.h"
#include "pin.h"
#include "sys.h"

#define XM_MIN_KERNEL (5 * 65536 + 15 * 256)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xmesh-agent --cgroup PATH [--pin-root DIR] [--config FILE]\n"
		"                   [--metrics ADDR:PORT] [--log-level error|warn|info|debug]\n"
		"                   [--netns PATH] [--overlay-dev IFNAME [--overlay-vxlan IFNAME]\n"
		"                   [--overlay-max-flows N]]\n"
		"       xmesh-agent uninstall --cgroup PATH [--pin-root DIR]\n"
		"                   [--drain-timeout SECONDS] [--force]\n"
		"       xmesh-agent --version\n"
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
		"  --overlay-max-flows N  size of the flow cache (LRU; default 65536)\n"
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

/* One agent per pin root: a second one would fight over the same maps. */
static int take_lock(struct xm_agent *a)
{
	char path[PATH_MAX], pid[32];
	int err;

	err = xm_run_path(path, sizeof(path), a->pin_root, "lock");
	if (err)
		return err;
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (a->lock_fd < 0)
		return -errno;
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = pread(a->lock_fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pr_err("another xmesh-agent (pid %s) runs on pin root %s: stop it first",
		       strtok(pid, "\n") ?: "?", a->pin_root);
		return -EBUSY;
	}
	if (ftruncate(a->lock_fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", getpid());

		if (pwrite(a->lock_fd, pid, n, 0) != n)
			pr_debug("could not write pid to %s", path);
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

static int run(struct xm_agent *a)
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
	if (!err && a->metrics_addr)
		err = xm_metrics_start(a);
	if (!err)
		err = xm_loop_run(a->loop);
	xm_metrics_stop(a);
	xm_services_stop(a);
	xm_weighting_stop(a);
	close(sfd);
	xm_loop_free(a->loop);
	a->loop = NULL;
	return err;
}

static int do_uninstall(struct xm_agent *a, double drain_timeout_s, bool force)
{
	int n;

	if (!xm_pin_root_in_use(a->pin_root) && access(a->pin_root, F_OK)) {
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
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'K' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct xm_agent a = { .cgroup_fd = -1, .lock_fd = -1 };
	const char *cgroup = NULL, *pin_root = XM_PIN_ROOT_DEFAULT;
	bool uninstall = false, force = false;
	double drain_timeout_s = 60;
	int opt, err;

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
		case 'F': a.overlay_max_flows = strtoul(optarg, NULL, 0); break;
		case 'D': drain_timeout_s = strtod(optarg, NULL); break;
		case 'K': force = true; break;
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
	xm_log_setup_libbpf();
	if (snprintf(a.pin_root, sizeof(a.pin_root), "%s", pin_root) >= (int)sizeof(a.pin_root) ||
	    pin_root[0] != '/') {
		pr_err("--pin-root %s: give an absolute path below a bpffs mount", pin_root);
		return 1;
	}
	if (!cgroup) {
		pr_err("--cgroup PATH is required (the node's cgroup2 root, or a test's own cgroup)");
		return 1;
	}
	if (check_host())
		return 1;
	if (a.netns_path && join_netns(a.netns_path))
		return 1;
	if (open_cgroup(&a, cgroup))
		return 1;
	err = take_lock(&a);
	if (err) {
		if (err != -EBUSY)
			pr_err("lock for %s: %s", a.pin_root, strerror(-err));
		return 1;
	}
	if (uninstall)
		return do_uninstall(&a, drain_timeout_s, force) ? 1 : 0;

	if (xm_cgroup_is_root(a.cgroup_path))
		pr_warn("attaching to the root cgroup %s: every process of the host is served",
			a.cgroup_path);
	err = xm_pin_root_prepare(a.pin_root);
	if (err) {
		pr_err("pin root %s: %s (is bpffs mountable here?)", a.pin_root, strerror(-err));
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
		err = run(&a);
	}
	xm_datapath_close(&a);
	close(a.cgroup_fd);
	return err ? 1 : 0;
}
