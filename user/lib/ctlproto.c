// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "addr.h"
#include "ctlproto.h"
#include "nearname.h"

static const struct {
	const char *name;
	enum xm_ctl_cmd cmd;
	const char *fields; /* the members it takes besides "cmd", for the unknown-field check */
} cmds[] = {
	{ "service-add", XM_CTL_SERVICE_ADD, "service" },
	{ "service-del", XM_CTL_SERVICE_DEL, "service" },
	{ "backend-weight", XM_CTL_BACKEND_WEIGHT, "service, backend, weight" },
	{ "reload", XM_CTL_RELOAD, "" },
};

/* Whether key is "cmd" or one of a comma-separated list of names. */
static bool field_known(const char *key, const char *fields)
{
	size_t n = strlen(key);

	if (!strcmp(key, "cmd"))
		return true;
	for (const char *p = fields; *p; p += strspn(p, ", ")) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, key, n))
			return true;
		p += len;
	}
	return false;
}

/* "; did you mean ...?" for an unknown member: the nearest of "cmd" and fields. */
static const char *field_hint(const char *key, const char *fields, char *buf, size_t len)
{
	char names[128];
	struct xm_nearname near;

	snprintf(names, sizeof(names), "%s", fields);
	xm_nearname_init(&near, key);
	xm_nearname_offer(&near, "cmd");
	for (char *save, *t = strtok_r(names, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		xm_nearname_offer(&near, t);
	return xm_nearname_hint(&near, buf, len);
}

#define KEY_RULE "\"service\" must be \"VIP:PORT\" or \"VIP:PORT/udp\""

static int svc_key(json_t *req, struct xm_lb_svc_key *key)
{
	const char *s = json_string_value(json_object_get(req, "service"));

	return s ? xm_lb_svc_key_parse(s, key) : -EINVAL;
}

static int parse(json_t *req, struct xm_ctl_request *r, char *err, size_t errlen)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd")), *bs, *key;
	char why[1024], hint[96];
	json_t *v;
	size_t i;

	if (!json_is_object(req)) {
		snprintf(err, errlen, "a request is a JSON object");
		return -EINVAL;
	}
	if (!cmd) {
		snprintf(err, errlen, "request needs a \"cmd\"");
		return -EINVAL;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmd, cmds[i].name); i++)
		;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		struct xm_nearname near;
		char known[128] = "";

		xm_nearname_init(&near, cmd);
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			xm_nearname_offer(&near, cmds[i].name);
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
				 i ? ", " : "", cmds[i].name);
		}
		snprintf(err, errlen, "unknown cmd \"%.64s\" (known: %s)%s", cmd, known,
			 xm_nearname_hint(&near, hint, sizeof(hint)));
		return -EINVAL;
	}
	r->cmd = cmds[i].cmd;
	/* A misspelt member ("wieght", "force") must not be dropped as if it were not sent. */
	json_object_foreach(req, key, v) {
		if (!field_known(key, cmds[i].fields)) {
			snprintf(err, errlen, "cmd \"%s\" takes no \"%.64s\"%s%s%s", cmd, key,
				 *cmds[i].fields ? "; it takes: " : "", cmds[i].fields,
				 field_hint(key, cmds[i].fields, hint, sizeof(hint)));
			return -EINVAL;
		}
	}
	switch (r->cmd) {
	case XM_CTL_SERVICE_ADD:
		if (xm_lb_svc_conf_from_json(json_object_get(req, "service"), &r->svc, why,
					     sizeof(why))) {
			snprintf(err, errlen, "service: %s", why);
			return -EINVAL;
		}
		return 0;
	case XM_CTL_SERVICE_DEL:
		if (svc_key(req, &r->key)) {
			snprintf(err, errlen, KEY_RULE);
			return -EINVAL;
		}
		return 0;
	case XM_CTL_BACKEND_WEIGHT:
		bs = json_string_value(json_object_get(req, "backend"));
		if (svc_key(req, &r->key)) {
			snprintf(err, errlen, KEY_RULE);
			return -EINVAL;
		}
		if (!bs || xm_addr_port_parse(bs, &r->be.family, &r->be.addr, &r->be.port)) {
			snprintf(err, errlen, "\"backend\" must be \"ADDR:PORT\" or \"[ADDR6]:PORT\"");
			return -EINVAL;
		}
		if (xm_lb_weight_from_json(json_object_get(req, "weight"), &r->be.weight)) {
			snprintf(err, errlen, XM_LB_WEIGHT_RULE);
			return -EINVAL;
		}
		return 0;
	case XM_CTL_RELOAD:
		return 0;
	}
	return -EINVAL;
}

/* An answer is JSON (UTF-8): what a client sent comes back in it only as printable ASCII. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

int xm_ctl_request_parse(const char *line, size_t len, struct xm_ctl_request *r, char *err,
			 size_t errlen)
{
	const char *nul = memchr(line, '\0', len);
	json_error_t je;
	json_t *req;
	int ret;

	memset(r, 0, sizeof(*r));
	/* jansson would say "end of file expected": name the byte instead */
	if (nul) {
		snprintf(err, errlen, "request holds a NUL byte at offset %zu", (size_t)(nul - line));
		return -EINVAL;
	}
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!req) {
		snprintf(err, errlen, "request is not JSON: %d:%d: %s", je.line, je.column, je.text);
		printable(err);
		return -EINVAL;
	}
	ret = parse(req, r, err, errlen);
	json_decref(req);
	if (ret) {
		printable(err);
		xm_ctl_request_free(r);
	}
	return ret;
}

void xm_ctl_request_free(struct xm_ctl_request *r)
{
	if (r->cmd == XM_CTL_SERVICE_ADD)
		xm_lb_svc_conf_free(&r->svc);
	memset(r, 0, sizeof(*r));
}
