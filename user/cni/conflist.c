// SPDX-License-Identifier: MIT
/*
 * `xmesh-cni conflist`: chain xmesh-cni into the node's CNI configuration and
 * take it out again. Used by the DaemonSet's installer containers and by hand
 * on plain hosts.
 *
 * The runtime uses the first file of the CNI config dir in lexical order
 * (.conflist, .conf or .json). `add` appends our plugin to that file's
 * "plugins" (or replaces an older entry of ours in place), leaving every other
 * byte of meaning alone; running it again changes nothing. A single-plugin
 * .conf/.json is turned into a .conflist of the same base name, the original
 * kept aside as NAME.xmesh-orig (not a config extension, so the runtime
 * ignores it) and put back by `remove`. Files are replaced atomically.
 *
 * `add --watch` stays and re-applies whenever the dir changes: primary
 * plugins (Antrea among them) rewrite their file when their agent restarts.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "cni.h"
#include "log.h"

#define CONVERTED_KEY "xmesh.io/converted-from"
#define ORIG_SUFFIX ".xmesh-orig"
#define PLUGIN_TYPE "xmesh-cni"

struct conflist_opts {
	const char *dir;
	const char *file;
	json_t *plugin;
	bool dry_run;
	bool watch;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xmesh-cni conflist add    [--dir DIR] [--file FILE] [--plugin JSON | --plugin-file F]\n"
		"                                 [--dry-run] [--watch]\n"
		"       xmesh-cni conflist remove [--dir DIR] [--file FILE] [--dry-run]\n"
		"       xmesh-cni conflist show   [--dir DIR] [--file FILE]\n"
		"\n"
		"  --dir DIR       CNI config dir (default /etc/cni/net.d)\n"
		"  --file FILE     the config to edit (default: the one the runtime uses, the\n"
		"                  first .conflist/.conf/.json of DIR in lexical order)\n"
		"  --plugin JSON   our entry (default {\"type\":\"xmesh-cni\"}); its \"type\" must be\n"
		"                  \"xmesh-cni\"\n"
		"  --plugin-file F our entry, read from file F\n"
		"  --dry-run       print the result instead of writing it\n"
		"  --watch         after adding, re-apply whenever DIR changes (until SIGTERM)\n"
		"  --help          this text\n");
}

static bool has_ext(const char *name, const char *ext)
{
	size_t n = strlen(name), m = strlen(ext);

	return n > m && !strcmp(name + n - m, ext);
}

static bool is_config_name(const char *name)
{
	return name[0] != '.' &&
	       (has_ext(name, ".conflist") || has_ext(name, ".conf") || has_ext(name, ".json"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The file the runtime picks: first config file of dir in lexical order. */
static int primary_file(const char *dir, char *path, size_t len)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int err = -ENOENT;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!is_config_name(de->d_name))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));

			if (!nn)
				break;
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n) {
		qsort(names, n, sizeof(*names), cmp_names);
		err = snprintf(path, len, "%s/%s", dir, names[0]) >= (int)len ? -ENAMETOOLONG : 0;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return err;
}

static json_t *load(const char *path)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (!j)
		pr_err("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	else if (!json_is_object(j)) {
		pr_err("%s: not a JSON object", path);
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Write j to path atomically, keeping path's mode (0644 for a new file). */
static int store(const char *path, json_t *j)
{
	char tmp[PATH_MAX], *slash;
	struct stat st;
	mode_t mode = 0644;
	int fd, err = 0;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	/* A dot name without a config extension: the runtime never reads it half-written. */
	slash = strrchr(path, '/');
	if (snprintf(tmp, sizeof(tmp), "%.*s/.%s.xmesh-tmp", slash ? (int)(slash - path) : 1,
		     slash ? path : ".", slash ? slash + 1 : path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (json_dumpfd(j, fd, JSON_INDENT(2)) || write(fd, "\n", 1) != 1)
		err = -EIO;
	if (!err && fchmod(fd, mode))
		err = -errno;
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static bool is_ours(json_t *plugin)
{
	return json_is_string(json_object_get(plugin, "type")) &&
	       !strcmp(json_string_value(json_object_get(plugin, "type")), PLUGIN_TYPE);
}

/* cniVersion of a config we may chain into: 0.3.0 or later, one we speak. */
static int check_version(const char *path, json_t *conf)
{
	const char *v = json_string_value(json_object_get(conf, "cniVersion"));
	unsigned int n;

	if (!v) {
		pr_err("%s has no cniVersion: runtimes reject it; not touching it", path);
		return -EINVAL;
	}
	if (xm_cni_version_parse(v, &n) || !xm_cni_version_supported(n)) {
		pr_err("%s has cniVersion %s: xmesh-cni cannot be chained there (it needs 0.3.0 "
		       "or later: chaining and prevResult came with 0.3.0); not touching it", path, v);
		return -ENOTSUP;
	}
	return 0;
}

/*
 * Make plugin the one entry of ours, last in the list (it needs the final
 * result of everything before it). Returns 1 if the list changed.
 */
static int merge_plugin(json_t *plugins, json_t *plugin)
{
	size_t i, n = json_array_size(plugins), ours = 0;
	json_t *p;

	json_array_foreach(plugins, i, p)
		ours += is_ours(p);
	if (ours == 1 && n && json_equal(json_array_get(plugins, n - 1), plugin))
		return 0;
	for (i = 0; i < json_array_size(plugins);) {
		if (is_ours(json_array_get(plugins, i)))
			json_array_remove(plugins, i);
		else
			i++;
	}
	json_array_append(plugins, plugin);
	return 1;
}

/* NAME.conf -> NAME.conflist */
static int conflist_name(const char *path, char *out, size_t len)
{
	const char *dot = strrchr(path, '.');

	if (!dot || snprintf(out, len, "%.*s.conflist", (int)(dot - path), path) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static int do_add_once(const struct conflist_opts *o, bool quiet)
{
	char path[PATH_MAX], target[PATH_MAX], orig[PATH_MAX + 16];
	json_t *conf, *plugins, *list = NULL;
	int err, changed;
	const char *slash;

	if (o->file)
		err = snprintf(path, sizeof(path), "%s", o->file) >= (int)sizeof(path) ?
			      -ENAMETOOLONG : 0;
	else
		err = primary_file(o->dir, path, sizeof(path));
	if (err) {
		pr_err("no CNI config in %s (%s): install the primary CNI plugin first",
		       o->dir, strerror(-err));
		return err;
	}
	conf = load(path);
	if (!conf)
		return -EINVAL;
	err = check_version(path, conf);
	if (err)
		goto out;
	plugins = json_object_get(conf, "plugins");
	snprintf(target, sizeof(target), "%s", path);
	if (plugins) {
		if (!json_is_array(plugins) || !json_array_size(plugins)) {
			pr_err("%s: \"plugins\" is not a non-empty array", path);
			err = -EINVAL;
			goto out;
		}
		list = json_incref(conf);
	} else {
		/* A single plugin config: wrap it into a list of the same name. */
		json_t *inner = json_deep_copy(conf);

		if (!json_is_string(json_object_get(conf, "type")) ||
		    !json_is_string(json_object_get(conf, "name"))) {
			pr_err("%s: neither \"plugins\" nor \"type\" and \"name\": not a CNI config",
			       path);
			err = -EINVAL;
			json_decref(inner);
			goto out;
		}
		json_object_del(inner, "cniVersion");
		json_object_del(inner, "name");
		slash = strrchr(path, '/');
		list = json_pack("{s:O, s:O, s:[o], s:s}", "cniVersion",
				 json_object_get(conf, "cniVersion"), "name",
				 json_object_get(conf, "name"), "plugins",
				 inner, CONVERTED_KEY, slash ? slash + 1 : path);
		err = conflist_name(path, target, sizeof(target));
		if (err || !list)
			goto out;
	}
	changed = merge_plugin(json_object_get(list, "plugins"), o->plugin);
	if (o->dry_run) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		goto out;
	}
	if (!changed && !strcmp(target, path)) {
		if (!quiet)
			pr_info("%s: xmesh-cni already chained, nothing to do", path);
		goto out;
	}
	err = store(target, list);
	if (!err && strcmp(target, path)) {
		snprintf(orig, sizeof(orig), "%s" ORIG_SUFFIX, path);
		if (rename(path, orig))
			err = -errno;
	}
	if (err)
		pr_err("writing %s: %s", target, strerror(-err));
	else
		pr_info("%s: xmesh-cni chained after %zu plugin%s", target,
			json_array_size(json_object_get(list, "plugins")) - 1,
			json_array_size(json_object_get(list, "plugins")) == 2 ? "" : "s");
out:
	json_decref(list);
	json_decref(conf);
	return err;
}

static int do_remove(const struct conflist_opts *o)
{
	char path[PATH_MAX], orig[PATH_MAX];
	json_t *conf, *plugins, *p;
	const char *from, *slash;
	int err, removed = 0;
	size_t i;

	if (o->file)
		err = snprintf(path, sizeof(path), "%s", o->file) >= (int)sizeof(path) ?
			      -ENAMETOOLONG : 0;
	else
		err = primary_file(o->dir, path, sizeof(path));
	if (err == -ENOENT) {
		pr_info("no CNI config in %s: nothing to remove", o->dir);
		return 0;
	}
	if (err)
		return err;
	conf = load(path);
	if (!conf)
		return -EINVAL;
	plugins = json_object_get(conf, "plugins");
	for (i = 0; json_is_array(plugins) && i < json_array_size(plugins);) {
		p = json_array_get(plugins, i);
		if (is_ours(p)) {
			json_array_remove(plugins, i);
			removed++;
		} else {
			i++;
		}
	}
	from = json_string_value(json_object_get(conf, CONVERTED_KEY));
	if (from && !strchr(from, '/')) {
		/* We made this list from a single-plugin file: put that file back. */
		slash = strrchr(path, '/');
		snprintf(orig, sizeof(orig), "%.*s%s" ORIG_SUFFIX, slash ? (int)(slash - path + 1) : 0,
			 path, from);
		if (o->dry_run) {
			printf("would restore %.*s and remove %s\n",
			       (int)(strlen(orig) - strlen(ORIG_SUFFIX)), orig, path);
		} else if (access(orig, F_OK) == 0) {
			char restored[PATH_MAX];

			snprintf(restored, sizeof(restored), "%.*s",
				 (int)(strlen(orig) - strlen(ORIG_SUFFIX)), orig);
			err = rename(orig, restored) ? -errno : 0;
			if (!err && strcmp(restored, path) && unlink(path))
				err = -errno;
			if (!err)
				pr_info("%s restored, %s removed", restored, path);
			json_decref(conf);
			return err;
		} else {
			json_object_del(conf, CONVERTED_KEY);
		}
	}
	if (o->dry_run) {
		json_dumpf(conf, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (removed) {
		err = store(path, conf);
		if (!err)
			pr_info("%s: xmesh-cni removed", path);
	} else {
		pr_info("%s: xmesh-cni is not in it, nothing to do", path);
	}
	json_decref(conf);
	return err;
}

static int do_show(const struct conflist_opts *o)
{
	char path[PATH_MAX];
	json_t *conf, *plugins, *p;
	size_t i;
	int err;

	if (o->file)
		snprintf(path, sizeof(path), "%s", o->file);
	else if ((err = primary_file(o->dir, path, sizeof(path)))) {
		pr_err("no CNI config in %s", o->dir);
		return err;
	}
	conf = load(path);
	if (!conf)
		return -EINVAL;
	printf("%s: cniVersion %s, network %s, plugins:", path,
	       json_string_value(json_object_get(conf, "cniVersion")) ?: "?",
	       json_string_value(json_object_get(conf, "name")) ?: "?");
	plugins = json_object_get(conf, "plugins");
	if (!json_is_array(plugins))
		printf(" %s (single plugin config)",
		       json_string_value(json_object_get(conf, "type")) ?: "?");
	json_array_foreach(plugins, i, p)
		printf(" %s", json_string_value(json_object_get(p, "type")) ?: "?");
	printf("\n");
	json_decref(conf);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

/* Re-apply on every change of the dir, after it has been quiet for 200 ms. */
static int watch_loop(const struct conflist_opts *o)
{
	struct sigaction sa = { .sa_handler = on_term };
	char buf[4096];
	int fd, err;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, o->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
						  IN_CREATE | IN_DELETE) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	pr_info("watching %s: xmesh-cni is re-chained whenever the config changes", o->dir);
	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		/* Drain until quiet: a runtime or installer writes in several steps. */
		do {
			if (read(fd, buf, sizeof(buf)) < 0 && errno != EAGAIN && errno != EINTR)
				break;
			pfd.revents = 0;
		} while (!stop && poll(&pfd, 1, 200) > 0);
		if (!stop)
			do_add_once(o, true);
	}
	close(fd);
	/* Leaving the entry in place is deliberate: see docs/install.md (uninstall). */
	pr_info("stopping: xmesh-cni stays chained (use 'xmesh-cni conflist remove' to uninstall)");
	return 0;
}

/* What ADD would refuse in our entry, refused now: not at the first pod of the node. */
static int plugin_check(json_t *plugin)
{
	struct xm_cni_conf *scratch = calloc(1, sizeof(*scratch)); /* ~300 KiB: not the stack */
	struct xm_cni_err e = {};
	int err = scratch ? xm_cni_conf_ours(plugin, scratch, &e, NULL) : -1;

	if (err)
		pr_err("--plugin: %s%s%s", scratch ? e.msg : "out of memory",
		       e.details[0] ? " -- " : "", e.details);
	free(scratch);
	return err;
}

int xm_cni_conflist_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "file", required_argument, NULL, 'f' },
		{ "plugin", required_argument, NULL, 'p' },
		{ "plugin-file", required_argument, NULL, 'P' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "watch", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct conflist_opts o = { .dir = "/etc/cni/net.d" };
	const char *cmd;
	json_error_t jerr;
	int opt, err;

	if (argc < 2 || strcmp(argv[0], "conflist") || !strcmp(argv[1], "help")) {
		usage(argc >= 2 && !strcmp(argv[1], "help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "help") ? 0 : 1;
	}
	cmd = argv[1];
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "d:f:p:P:nwh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.dir = optarg; break;
		case 'f': o.file = optarg; break;
		case 'p':
		case 'P':
			json_decref(o.plugin);
			o.plugin = opt == 'p' ? json_loads(optarg, JSON_REJECT_DUPLICATES, &jerr)
					      : json_load_file(optarg, JSON_REJECT_DUPLICATES, &jerr);
			if (!o.plugin) {
				pr_err("--plugin: %d:%d: %s", jerr.line, jerr.column, jerr.text);
				return 1;
			}
			break;
		case 'n': o.dry_run = true; break;
		case 'w': o.watch = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!o.plugin)
		/* The pod's annotations carry its redirect opt-out (docs/redirect-compat.md). */
		o.plugin = json_pack("{s:s, s:{s:b}}", "type", PLUGIN_TYPE, "capabilities",
				     XM_CNI_CAP_POD_ANNOTATIONS, 1);
	if (!is_ours(o.plugin)) {
		pr_err("--plugin: \"type\" must be \"%s\"", PLUGIN_TYPE);
		return 1;
	}
	if (plugin_check(o.plugin)) {
		json_decref(o.plugin);
		return 1;
	}
	if (!strcmp(cmd, "add")) {
		err = do_add_once(&o, false);
		if (o.watch)
			err = watch_loop(&o); /* a later change may make it work */
	} else if (!strcmp(cmd, "remove")) {
		err = do_remove(&o);
	} else if (!strcmp(cmd, "show")) {
		err = do_show(&o);
	} else {
		pr_err("unknown command '%s'", cmd);
		usage(stderr);
		err = -EINVAL;
	}
	json_decref(o.plugin);
	return err ? 1 : 0;
}
