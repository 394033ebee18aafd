// SPDX-License-Identifier: MIT
/*
 * xmesh-cni: a chained CNI plugin (spec 1.0.0 and 1.1.0; 0.3.x and 0.4.0
 * configs accepted). It runs after the primary plugin (Antrea, bridge, ...), tells
 * the xmesh datapath which addresses belong to the new pod, and passes the
 * primary's result on unchanged. It must never be the reason a pod does not
 * start: when the datapath is not there, ADD records the pod for the agent
 * and succeeds (see docs/cni.md, "Fail-open").
 *
 * Invoked with arguments it is a tool instead: `xmesh-cni conflist ...`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "version.h"
#include "cni.h"
#include "log.h"

#define STDIN_MAX (16 << 20)

static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static char *read_all(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t r;

		if (n == cap) {
			char *nb = cap >= STDIN_MAX ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return buf;
}

static void print_error(const char *version, const struct xm_cni_err *e)
{
	json_t *o = json_pack("{s:s, s:i, s:s}", "cniVersion", version, "code", e->code, "msg",
			      e->msg);

	if (o && e->details[0])
		json_object_set_new(o, "details", json_string(e->details));
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT);
		json_decref(o);
	}
	fputc('\n', stdout);
	fflush(stdout);
	pr_err("%s%s%s (code %d)", e->msg, e->details[0] ? ": " : "", e->details, e->code);
}

static void print_versions(const char *version)
{
	json_t *o = json_pack("{s:s, s:[]}", "cniVersion", version, "supportedVersions");

	for (int i = 0; xm_cni_versions[i]; i++)
		json_array_append_new(json_object_get(o, "supportedVersions"),
				      json_string(xm_cni_versions[i]));
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
}

/* VERSION: stdin holds {"cniVersion": ...} or nothing; answer in that version. */
static int do_version(const char *buf, size_t len)
{
	const char *ver = XM_CNI_VERSION_LATEST;
	json_t *j = len ? json_loadb(buf, len, 0, NULL) : NULL;
	json_t *v = json_object_get(j, "cniVersion");
	unsigned int n;

	if (json_is_string(v) && !xm_cni_version_parse(json_string_value(v), &n) &&
	    xm_cni_version_supported(n))
		ver = json_string_value(v);
	print_versions(ver);
	json_decref(j);
	return 0;
}

static FILE *open_log(const struct xm_cni_conf *c)
{
	enum xm_log_level lvl;
	FILE *f;

	if (c->log_level[0] && xm_log_parse_level(c->log_level, &lvl) == 0)
		xm_log_threshold = lvl;
	if (!c->log_file[0])
		return NULL;
	f = fopen(c->log_file, "ae");
	if (!f)
		pr_warn("logFile %s: %s (logging to stderr only)", c->log_file, strerror(errno));
	else
		xm_log_copy_to(f);
	return f;
}

typedef int (*cni_cmd_fn)(const struct xm_cni_env *env, struct xm_cni_conf *c,
			  struct xm_cni_err *e);

static const struct {
	const char *name;
	cni_cmd_fn fn; /* NULL: VERSION, answered before the config is parsed */
} commands[] = {
	{ "ADD", xm_cni_add },	   { "DEL", xm_cni_del },	{ "CHECK", xm_cni_check },
	{ "GC", xm_cni_gc },	   { "STATUS", xm_cni_status }, { "VERSION", NULL },
};

int main(int argc, char **argv)
{
	struct xm_cni_env env = {
		.command = env_get("CNI_COMMAND"),
		.container_id = env_get("CNI_CONTAINERID"),
		.netns = env_get("CNI_NETNS"),
		.ifname = env_get("CNI_IFNAME"),
		.args = env_get("CNI_ARGS"),
		.path = env_get("CNI_PATH"),
	};
	struct xm_cni_err e = {};
	struct xm_cni_conf c;
	const char *version = XM_CNI_VERSION_LATEST;
	size_t len, cmd;
	FILE *logf;
	char *buf;
	int ret;

	if (argc > 1)
		return xm_cni_conflist_main(argc - 1, argv + 1);
	if (!env.command) {
		fprintf(stderr, "xmesh-cni %s: a CNI plugin, run by the container runtime with "
			"CNI_COMMAND set.\nTo edit a CNI conflist: xmesh-cni conflist help\n",
			XM_VERSION);
		xm_cni_err_set(&e, XM_CNI_E_ENV, NULL, "CNI_COMMAND is not set");
		print_error(version, &e);
		return 1;
	}
	/* Before stdin: an unknown command is named as such, whatever the config says. */
	for (cmd = 0; cmd < sizeof(commands) / sizeof(commands[0]); cmd++)
		if (!strcmp(env.command, commands[cmd].name))
			break;
	if (cmd == sizeof(commands) / sizeof(commands[0])) {
		xm_cni_err_set(&e, XM_CNI_E_ENV, "ADD, DEL, CHECK, GC, STATUS or VERSION",
			       "unknown CNI_COMMAND '%.64s'", env.command);
		print_error(version, &e);
		return 1;
	}
	buf = read_all(STDIN_FILENO, &len);
	if (!buf) {
		xm_cni_err_set(&e, XM_CNI_E_IO, strerror(errno ?: EFBIG),
			       "cannot read the network configuration from stdin");
		print_error(version, &e);
		return 1;
	}
	if (!commands[cmd].fn) {
		ret = do_version(buf, len);
		free(buf);
		return ret;
	}
	ret = xm_cni_conf_parse(buf, len, &c, &e);
	free(buf);
	if (ret) {
		print_error(version, &e);
		return 1;
	}
	version = c.cni_version;
	logf = open_log(&c);
	pr_debug("%s container %s ifname %s netns %s", env.command, env.container_id ?: "-",
		 env.ifname ?: "-", env.netns ?: "-");
	ret = commands[cmd].fn(&env, &c, &e);
	if (ret)
		print_error(version, &e);
	fflush(stdout);
	xm_cni_conf_free(&c);
	if (logf) {
		xm_log_copy_to(NULL);
		fclose(logf);
	}
	return ret ? 1 : 0;
}
