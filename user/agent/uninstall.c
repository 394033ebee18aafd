// SPDX-License-Identifier: MIT
/*
 * `xmesh-agent uninstall`: take the datapath off the node without losing a
 * byte. First every program that starts something new is detached (sockops:
 * no socket enters the redirect map any more; the LB and overlay hooks), and
 * every pin that live redirected connections do not need is removed. Sockets
 * already in the map keep redirecting until they close: the kernel frees a
 * socket's redirect queue with the map, so bytes handed to a peer and not yet
 * read would be lost if the map went away earlier. When the map is empty, the
 * last pins go. The wait is bounded (--drain-timeout); after it, without
 * --force, the draining pins stay and a later uninstall resumes the wait;
 * with --force they are removed anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "attach.h"
#include "drain.h"
#include "log.h"
#include "pin.h"
#include "monoclock.h"

/* Wait until the redirect map is empty or the timeout passes; returns the sockets left. */
static long drain_wait(const char *pin_root, double timeout_s)
{
	double start = xm_mono_s(), last_report = -1e9, waited;
	long n;

	for (;;) {
		n = xm_redirect_sock_count(pin_root);
		if (n <= 0)
			return n < 0 && n != -ENOENT ? n : 0;
		waited = xm_mono_s() - start;
		if (waited >= timeout_s)
			return n;
		if (waited - last_report >= 5) {
			pr_info("draining: %ld redirected sockets still open (waited %.0f s of %.0f s)",
				n, waited, timeout_s);
			last_report = waited;
		}
		usleep(100 * 1000);
	}
}

int xm_datapath_uninstall(const char *pin_root, double drain_timeout_s, bool force)
{
	int n, m;
	long left;

	/* cls_bpf filters (kernels without TCX) hold their programs without a link. */
	xm_tc_detach_all(pin_root);
	n = xm_pin_root_remove_except(pin_root, xm_drain_keep);
	if (n < 0)
		return n;
	pr_info("removed %d pins: no new connection is redirected, balanced or cached", n);
	left = drain_wait(pin_root, drain_timeout_s);
	if (left < 0)
		return (int)left;
	if (left > 0 && !force) {
		pr_err("%ld redirected sockets are still open after %.0f s; their unread bytes would "
		       "be lost if the redirect map went now. They keep working; run uninstall again "
		       "to wait longer, or add --force to remove the map anyway",
		       left, drain_timeout_s);
		return -EBUSY;
	}
	if (left > 0)
		pr_warn("--force: removing the redirect map with %ld sockets still open; bytes they "
			"have not read yet are lost", left);
	m = xm_pin_root_remove(pin_root);
	return m < 0 ? m : n + m;
}
