// SPDX-License-Identifier: MIT
/* Requests to the agent's control socket (protocol: user/agent/services.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "ctl.h"
#include "pin.h"

/* A connected socket to the pin root's agent, or -1 (with an error printed unless quiet). */
static int agent_connect(bool quiet)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	int fd;

	/* The socket is keyed by the canonical pin root: a missing one has no agent. */
	if (access(xm_pin_root, F_OK)) {
		if (!quiet)
			p_err("pin root %s: %s (is --pin-root right?)", xm_pin_root, strerror(errno));
		return -1;
	}
	if (xm_run_path(path, sizeof(path), xm_pin_root, "sock") ||
	    strlen(path) >= sizeof(sun.sun_path)) {
		if (!quiet)
			p_err("control socket path for %s is too long", xm_pin_root);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		if (!quiet)
			p_err("cannot reach xmesh-agent at %s: %s (changes need a running agent)",
			      path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

bool ctl_agent_reachable(void)
{
	int fd = agent_connect(true);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int ctl_agent_request(json_t *req)
{
	char buf[65536];
	json_error_t je;
	json_t *rep;
	size_t len = 0;
	char *out;
	int fd, ret = -1;

	if (!req) {
		p_err("cannot build the request (a value JSON cannot hold?)");
		return -1;
	}
	fd = agent_connect(false);
	if (fd < 0)
		goto done;
	out = json_dumps(req, JSON_COMPACT);
	if (!out || send(fd, out, strlen(out), MSG_NOSIGNAL) < 0 ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		p_err("send to the agent: %s", strerror(errno));
		free(out);
		close(fd);
		goto done;
	}
	free(out);
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	rep = json_loads(buf, 0, &je);
	if (!rep) {
		p_err("the agent's answer is not JSON: %s", je.text);
		goto done;
	}
	if (json_object_get(rep, "error")) {
		p_err("%s", json_string_value(json_object_get(rep, "error")));
	} else {
		ret = 0;
		if (xm_out_json)
			xm_out_print_json(json_incref(rep));
	}
	json_decref(rep);
done:
	json_decref(req);
	return ret;
}
