// SPDX-License-Identifier: MIT
/*
 * xmeshctl prog: what each xmesh program costs. 'list' reads the kernel's
 * run-time statistics as they are; 'profile' turns them on (BPF_ENABLE_STATS,
 * never the sysctl) for a while or for one command, and reports what every
 * program of the pin root ran in that window: runs and ns per run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "ctl.h"
#include "numparse.h"
#include "progstats.h"
#include "monoclock.h"

#define MAX_PROGS 256

static json_t *prog_json(const struct xm_prog_stat *s)
{
	return json_pack("{s:i, s:s, s:s, s:i, s:I, s:I, s:f, s:I, s:i, s:i, s:i}", "id", s->id,
			 "name", s->name, "type", xm_prog_type_name(s->type), "pins", s->pins,
			 "run_cnt", (json_int_t)s->run_cnt, "run_time_ns",
			 (json_int_t)s->run_time_ns, "ns_per_run", xm_prog_ns_per_run(s),
			 "recursion_misses", (json_int_t)s->recursion_misses, "xlated_insns",
			 s->xlated_insns, "jited_bytes", s->jited_bytes, "verified_insns",
			 s->verified_insns);
}

/*
 * One report, typed: both printers read it (the plain table never reads the
 * JSON back). duration_ns 0: a listing, not a profile window.
 */
struct progs_report {
	const struct xm_prog_stat *progs;
	int n;
	bool stats_on;		/* kernel.bpf_stats_enabled (list) */
	__u64 duration_ns;	/* the profile window */
	int command_exit;	/* profile -- COMMAND */
};

static void progs_plain(const struct progs_report *r)
{
	if (r->duration_ns)
		printf("window:    %.3f s with run-time statistics on\n", r->duration_ns / 1e9);
	else
		printf("bpf stats: %s\n", r->stats_on ?
		       "on (kernel.bpf_stats_enabled=1)" :
		       "off: run counts and times move only while 'xmeshctl prog profile' runs");
	printf("%-6s %-18s %-14s %4s %12s %14s %9s %7s %7s\n", "id", "name", "type", "pins",
	       "runs", "run time (ns)", "ns/run", "xlated", "jited");
	for (int i = 0; i < r->n; i++) {
		const struct xm_prog_stat *s = &r->progs[i];

		printf("%-6u %-18s %-14s %4u %12llu %14llu %9.1f %7u %7u\n", s->id, s->name,
		       xm_prog_type_name(s->type), s->pins, (unsigned long long)s->run_cnt,
		       (unsigned long long)s->run_time_ns, xm_prog_ns_per_run(s),
		       s->xlated_insns, s->jited_bytes);
	}
}

static json_t *progs_json(const struct progs_report *r)
{
	json_t *arr = json_array();

	for (int i = 0; i < r->n; i++)
		json_array_append_new(arr, prog_json(&r->progs[i]));
	if (r->duration_ns)
		return json_pack("{s:I, s:i, s:o}", "duration_ns", (json_int_t)r->duration_ns,
				 "command_exit", r->command_exit, "programs", arr);
	return json_pack("{s:b, s:o}", "bpf_stats_enabled", r->stats_on, "programs", arr);
}

static void progs_print(const struct progs_report *r)
{
	if (xm_out_json)
		xm_out_print_json(progs_json(r));
	else
		progs_plain(r);
}

/* The programs of the pin root into out; count, or -1 after p_err(). */
static int progs_read(struct xm_prog_stat *out)
{
	int n = xm_prog_stats_read(xm_pin_root, out, MAX_PROGS);

	if (n == -ENOENT) {
		p_err("no xmesh datapath at %s: is xmesh-agent running, or is --pin-root right?",
		      xm_pin_root);
		return -1;
	}
	if (n < 0) {
		p_err("read programs at %s: %s%s", xm_pin_root, strerror(-n),
		      n == -EPERM || n == -EACCES ? " (run as root)" : "");
		return -1;
	}
	return n < MAX_PROGS ? n : MAX_PROGS;
}

static int prog_list(int argc, char **argv)
{
	struct xm_prog_stat *s;
	int n;

	NO_MORE_ARGS();
	s = calloc(MAX_PROGS, sizeof(*s));
	if (!s) {
		p_err("out of memory");
		return -1;
	}
	n = progs_read(s);
	if (n < 0) {
		free(s);
		return -1;
	}
	progs_print(&(struct progs_report){ .progs = s, .n = n,
					    .stats_on = xm_bpf_stats_sysctl() == 1 });
	free(s);
	return 0;
}

static volatile sig_atomic_t profile_stop;

static void on_stop(int sig)
{
	profile_stop = 1;
}

/* Run argv to its end with stdout on stderr (ours carries the report). */
static int run_command(char **argv)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "Error: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* after -= before, program by program (by id; a program new in the window counts whole). */
static void progs_delta(struct xm_prog_stat *after, int na, const struct xm_prog_stat *before,
			int nb)
{
	for (int i = 0; i < na; i++) {
		for (int j = 0; j < nb; j++) {
			if (before[j].id != after[i].id)
				continue;
			after[i].run_cnt -= before[j].run_cnt;
			after[i].run_time_ns -= before[j].run_time_ns;
			after[i].recursion_misses -= before[j].recursion_misses;
			break;
		}
	}
}

static int prog_profile(int argc, char **argv)
{
	struct xm_prog_stat *before = NULL, *after = NULL;
	int nb, na, hold = -1, ret = -1, rc = 0;
	double secs = 0;
	__u64 t0, t1;

	if (argc > 0 && !strcmp(argv[0], "--")) {
		NEXT_ARG();
		REQ_ARGS(1);
	} else if (argc > 0) {
		/* finite and bounded: "nan" or "inf" made the window's end undefined */
		if (xm_number_parse(argv[0], 0, 1e9, &secs) || secs == 0) {
			p_err("profile takes SECONDS (a number > 0) or -- COMMAND [ARGS], not '%s'",
			      argv[0]);
			return -1;
		}
		NEXT_ARG();
		NO_MORE_ARGS();
	}
	before = calloc(MAX_PROGS, sizeof(*before));
	after = calloc(MAX_PROGS, sizeof(*after));
	if (!before || !after) {
		p_err("out of memory");
		goto out;
	}
	hold = xm_bpf_stats_hold();
	if (hold < 0) {
		p_err("cannot turn on BPF run-time statistics: %s%s", strerror(-hold),
		      hold == -EPERM ? " (run as root)" :
		      hold == -EINVAL ? " -- kernel older than 5.8?" : "");
		goto out;
	}
	nb = progs_read(before);
	if (nb < 0)
		goto out;
	t0 = xm_mono_ns();
	if (argc > 0) {
		rc = run_command(argv);
		if (rc < 0) {
			p_err("cannot run %s: %s", argv[0], strerror(-rc));
			goto out;
		}
	} else {
		struct sigaction sa = { .sa_handler = on_stop };
		__u64 end = t0 + (__u64)(secs * 1e9);

		/* without SECONDS: until SIGINT or SIGTERM */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		while (!profile_stop && (secs == 0 || xm_mono_ns() < end))
			usleep(secs == 0 ? 100000 : 10000);
	}
	t1 = xm_mono_ns();
	na = progs_read(after);
	if (na < 0)
		goto out;
	progs_delta(after, na, before, nb);
	/* a window of 0 ns cannot be told from a listing: report at least 1 */
	progs_print(&(struct progs_report){ .progs = after, .n = na,
					    .duration_ns = t1 > t0 ? t1 - t0 : 1,
					    .command_exit = rc });
	ret = 0;
	if (rc) {
		p_err("%s exited with %d", argv[0], rc);
		ret = -1;
	}
out:
	if (hold >= 0)
		close(hold);
	free(before);
	free(after);
	return ret;
}

static int prog_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl prog { list | profile [SECONDS] | profile -- COMMAND [ARGS] }\n"
		"  list      every xmesh program of the pin root: runs, run time, ns per run\n"
		"            (moving only while BPF run-time statistics are on), size\n"
		"  profile   turn the statistics on (BPF_ENABLE_STATS, the sysctl is left\n"
		"            alone) for SECONDS (> 0), until Ctrl-C, or while COMMAND runs (its\n"
		"            output goes to stderr), then report what each program ran in\n"
		"            that window. The statistics add two clock reads per run.\n");
	return 0;
}

int do_prog(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", prog_list },
		{ "profile", prog_profile },
		{ "help", prog_help },
		{}
	};

	return cmd_select(cmds, argc, argv, prog_help);
}
