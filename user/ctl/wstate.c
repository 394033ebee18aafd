// SPDX-License-Identifier: MIT
/*
 * The weighting loop's published state (include/xmesh/weight.h), as the CLI
 * shows it: `backend list` adds it to each row, `top` is built on it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xmesh/weight.h>
#include "ctl.h"
#include "pin.h"

int ctl_wstate_open(void)
{
	return xm_map_open(xm_pin_root, "xm_lb_wstate");
}

int ctl_wloop_read(struct xm_lb_wloop *out)
{
	__u32 zero = 0;
	int fd = xm_map_open(xm_pin_root, "xm_lb_wloop"), err = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, out))
		err = -errno;
	close(fd);
	return err;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *us_ms(__u32 us)
{
	return us == XM_WEIGHT_UNSET ? json_null() : json_real(us / 1e3);
}

json_t *ctl_wstate_json(int fd, __u32 id)
{
	struct xm_lb_wstate s;

	if (fd < 0 || bpf_map_lookup_elem(fd, &id, &s) || !s.updated_ns)
		return NULL;
	s.algo[sizeof(s.algo) - 1] = 0;
	return json_pack("{s:s, s:f, s:o, s:o, s:o, s:o, s:f, s:f, s:f, s:i, s:o, s:b}",
			 "algorithm", s.algo, "age_s", mono_s() - s.updated_ns / 1e9, "p99_ms",
			 us_ms(s.p99_us), "l_est_ms", us_ms(s.l_est_us), "tick_p50_ms",
			 us_ms(s.tick_p50_us), "tick_p99_ms", us_ms(s.tick_p99_us), "success_rate",
			 s.success_ppm / 1e6, "rps", s.rps_milli / 1e3, "in_flight",
			 s.inflight_milli / 1e3, "in_flight_now", (int)s.inflight_now, "weight",
			 s.weight_ppm == XM_WEIGHT_UNSET ? json_null() : json_real(s.weight_ppm / 1e6),
			 "live", !!(s.flags & XM_WSTATE_F_LIVE));
}
