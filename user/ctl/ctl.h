/* SPDX-License-Identifier: MIT */
/*
 * xmeshctl internals, bpftool style: one file per object, each do_<object>()
 * dispatches with cmd_select() over a { name, handler } table. Commands match
 * by unambiguous prefix. Handlers return 0, or -1 after p_err() (exit 1).
 */
#ifndef XMESH_CTL_H
#define XMESH_CTL_H

#include <stdbool.h>
#include <jansson.h>
#include <linux/types.h>
#include "out.h"

extern const char *xm_pin_root;

struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
};

/* Run the command argv[0] names; with no argument, the first entry of cmds. */
int cmd_select(const struct cmd *cmds, int argc, char **argv, int (*help)(int argc, char **argv));
bool is_prefix(const char *pfx, const char *str);
/* Help text: to stderr, or {"help": TEXT} on stdout in JSON mode. */
void ctl_help(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define NEXT_ARG() ({ argc--; argv++; })
#define REQ_ARGS(n)                                                         \
	({                                                                  \
		if (argc < (n)) {                                           \
			p_err("'%s' needs %d more argument%s; see 'help'",  \
			      argv[-1] ? argv[-1] : "", (n) - argc, (n) - argc > 1 ? "s" : ""); \
			return -1;                                          \
		}                                                           \
	})
#define NO_MORE_ARGS()                                                      \
	({                                                                  \
		if (argc > 0) {                                             \
			p_err("what is '%s'? see 'help'", *argv);          \
			return -1;                                          \
		}                                                           \
	})

/* Open a pinned map or say, in the error, that the datapath is not there. */
int ctl_map_open(const char *name);
/* The netns cookie of a netns path, or -1 after p_err() saying what to give. */
int ctl_netns_cookie(const char *path, __u64 *cookie);
/*
 * Typed rows of a listing: both printers, plain and JSON, are fed from them
 * (never the plain one from the JSON by key name).
 */
struct ctl_rows {
	void *v;
	size_t n, cap, size; /* size: of one row, set before the first push */
};
/* A zeroed new row, or NULL (out of memory, after p_err()). */
void *ctl_rows_push(struct ctl_rows *r);
void ctl_rows_free(struct ctl_rows *r);
#define CTL_ROWS(type) ((struct ctl_rows){ .size = sizeof(type) })

int do_status(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_endpoint(int argc, char **argv);
int do_sock(int argc, char **argv);
int do_service(int argc, char **argv);
int do_backend(int argc, char **argv);
int do_cache(int argc, char **argv);
int do_top(int argc, char **argv);
int do_prog(int argc, char **argv);

/*
 * The weighting loop's published state (wstate.c; include/xmesh/weight.h),
 * as typed rows in display units: latencies in ms (< 0: none yet), ratios
 * 0..1. Printers, plain and JSON, are both fed from these.
 */
struct xm_lb_wloop;
struct ctl_wview {
	char algorithm[16];
	double age_s, p99_ms, l_est_ms, tick_p50_ms, tick_p99_ms;
	double success_rate, rps, in_flight, weight; /* weight < 0: none computed */
	int in_flight_now;
	bool live;
};
int ctl_wstate_open(void);
/* false when the loop has not written this backend (or there is no loop). */
bool ctl_wview_read(int fd, unsigned int backend_id, struct ctl_wview *v);
json_t *ctl_wview_json(const struct ctl_wview *v);
int ctl_wloop_read(struct xm_lb_wloop *out);
/* A latency in ms for a table: "850us", "12.5ms", "1.20s"; "-" when < 0. */
void ctl_fmt_ms(char *buf, size_t len, double ms);
/* Connection-level rebalancing per backend (rstate.c), as a typed row. */
struct ctl_rview {
	bool enabled, can_retire;
	__u64 held, idle, retired;
	double retired_per_s;
};
int ctl_rstate_open(void);
/* false when the agent never counted this backend's connections (or fd < 0). */
bool ctl_rview_read(int fd, unsigned int backend_id, struct ctl_rview *v);
json_t *ctl_rview_json(const struct ctl_rview *v);
/* The CONNS and RET/S columns of backend list and top. */
void ctl_rview_fmt(const struct ctl_rview *v, char *conns, char *ret, size_t len);

/* LB objects (service.c, agentsock.c). */
struct xm_lb_maps;
struct xm_lb_svc_key;
int ctl_lb_open(struct xm_lb_maps *m);
int ctl_svc_key_arg(const char *s, struct xm_lb_svc_key *key);
/* Send req (consumed) to the agent's control socket; 0, or -1 after p_err(). */
int ctl_agent_request(json_t *req);
/* Whether the pin root's agent accepts connections on its control socket. */
bool ctl_agent_reachable(void);

#endif
