// SPDX-License-Identifier: MIT
/*
 * Parsing the network configuration on stdin. Strict about what we use
 * (types, syntax of addresses and names), silent about what we do not:
 * runtimes add fields (runtimeConfig, args, capabilities) that are not ours.
 * One exception: a field that is one of ours misspelt (own_typo()).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "conf.h"
#include "log.h"

/*
 * 0.3.x is in the list because Antrea's conflist still says 0.3.0: a plugin
 * that refused it would fail every pod of the node. The 0.3.x result format
 * is the 0.4.0 one; only CHECK (0.4.0) and GC/STATUS (1.1.0) need more.
 */
const char *const xm_cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL };

void xm_cni_err_set(struct xm_cni_err *e, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	snprintf(e->details, sizeof(e->details), "%s", details ?: "");
}

int xm_cni_version_parse(const char *s, unsigned int *v)
{
	unsigned int a, b, c;
	int n = 0;

	if (sscanf(s, "%3u.%3u.%3u%n", &a, &b, &c, &n) != 3 || s[n] || a > 255 || b > 255 ||
	    c > 255)
		return -EINVAL;
	*v = XM_CNI_V(a, b, c);
	return 0;
}

bool xm_cni_version_supported(unsigned int v)
{
	for (int i = 0; xm_cni_versions[i]; i++) {
		unsigned int s;

		if (!xm_cni_version_parse(xm_cni_versions[i], &s) && s == v)
			return true;
	}
	return false;
}

/* Optional string member: absent is fine (dst keeps its value), another type is not. */
static int opt_str(json_t *obj, const char *key, char *dst, size_t len, struct xm_cni_err *e)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "\"%s\" must be a string", key);
		return -1;
	}
	if (json_string_length(v) >= len || strlen(json_string_value(v)) != json_string_length(v)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "\"%s\" is too long or holds a NUL", key);
		return -1;
	}
	strcpy(dst, json_string_value(v));
	return 0;
}

static int req_str(json_t *obj, const char *key, char *dst, size_t len, struct xm_cni_err *e)
{
	if (!json_object_get(obj, key)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "\"%s\" is missing", key);
		return -1;
	}
	return opt_str(obj, key, dst, len, e);
}

static int mac_parse(const char *s, __u8 *mac)
{
	unsigned int b[6];
	int n = 0;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) !=
		    6 ||
	    s[n])
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

static int parse_ifaces(struct xm_cni_conf *c, json_t *arr, struct xm_cni_err *e)
{
	json_t *it;
	size_t i;

	if (!json_is_array(arr)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "prevResult.interfaces must be an array");
		return -1;
	}
	json_array_foreach(arr, i, it) {
		struct xm_cni_iface spare, *f = &c->ifaces[c->n_ifaces];
		char mac[80] = ""; /* room for a 20-byte (InfiniBand) MAC, to name it in the error */

		if (c->n_ifaces == XM_CNI_MAX_IFACES) {
			memset(&spare, 0, sizeof(spare)); /* checked, not kept */
			f = &spare;
		}

		if (!json_is_object(it)) {
			xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL,
				       "prevResult.interfaces[%zu] must be an object", i);
			return -1;
		}
		if (req_str(it, "name", f->name, sizeof(f->name), e) ||
		    opt_str(it, "sandbox", f->sandbox, sizeof(f->sandbox), e) ||
		    opt_str(it, "mac", mac, sizeof(mac), e))
			return -1;
		if (mac[0]) {
			if (mac_parse(mac, f->mac)) {
				xm_cni_err_set(e, XM_CNI_E_CONFIG,
					       "xmesh-cni handles Ethernet (veth) interfaces only",
					       "prevResult.interfaces[%zu].mac '%s' is not a 6-byte "
					       "Ethernet MAC address (aa:bb:cc:dd:ee:ff)", i, mac);
				return -1;
			}
			f->has_mac = true;
		}
		if (f == &spare)
			c->dropped_ifaces++;
		else
			c->n_ifaces++;
	}
	return 0;
}

static int parse_ips(struct xm_cni_conf *c, json_t *arr, struct xm_cni_err *e)
{
	json_t *it;
	size_t i;

	if (!json_is_array(arr)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "prevResult.ips must be an array");
		return -1;
	}
	json_array_foreach(arr, i, it) {
		struct xm_cni_res_ip spare, *r = &c->ips[c->n_ips];
		char cidr[XM_ADDR_STRLEN + 8] = "", *slash, *end;
		json_t *idx;
		long plen;

		if (c->n_ips == XM_CNI_MAX_RESULT_IPS)
			r = &spare; /* checked, not kept */

		if (!json_is_object(it)) {
			xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "prevResult.ips[%zu] must be an object",
				       i);
			return -1;
		}
		if (req_str(it, "address", cidr, sizeof(cidr), e))
			return -1;
		slash = strchr(cidr, '/');
		if (slash)
			*slash = '\0';
		errno = 0;
		plen = slash ? strtol(slash + 1, &end, 10) : -1;
		if (!slash || errno || end == slash + 1 || *end ||
		    xm_addr_parse(cidr, &r->ip.family, &r->ip.addr) || plen < 0 ||
		    plen > (r->ip.family == AF_INET ? 32 : 128)) {
			if (slash)
				*slash = '/';
			xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL,
				       "prevResult.ips[%zu].address '%s' %s", i, cidr,
				       !slash ? "has no prefix length: CNI results give ADDRESS/PREFIX, "
						"e.g. 10.0.0.5/24"
					      : "is not an ADDRESS/PREFIX (IPv4 /0-32, IPv6 /0-128)");
			return -1;
		}
		r->ip.prefix_len = plen;
		r->iface = -1;
		idx = json_object_get(it, "interface");
		if (idx) {
			if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
			    json_integer_value(idx) >= (json_int_t)(c->n_ifaces + c->dropped_ifaces)) {
				xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL,
					       "prevResult.ips[%zu].interface is not an index into "
					       "prevResult.interfaces", i);
				return -1;
			}
			r->iface = json_integer_value(idx) < (json_int_t)c->n_ifaces ?
					   (int)json_integer_value(idx) : -2;
		}
		if (r == &spare)
			c->dropped_ips++;
		else
			c->n_ips++;
	}
	return 0;
}

static int parse_prev_result(struct xm_cni_conf *c, struct xm_cni_err *e)
{
	json_t *pr = c->prev_result, *v;

	if (!json_is_object(pr)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "prevResult must be an object");
		return -1;
	}
	v = json_object_get(pr, "interfaces");
	if (v && parse_ifaces(c, v, e))
		return -1;
	v = json_object_get(pr, "ips");
	if (v && parse_ips(c, v, e))
		return -1;
	return 0;
}

static int parse_valid(struct xm_cni_conf *c, json_t *arr, struct xm_cni_err *e)
{
	json_t *it;
	size_t i;

	if (!json_is_array(arr)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "cni.dev/valid-attachments must be an array");
		return -1;
	}
	c->has_valid = true;
	if (json_array_size(arr) == 0)
		return 0;
	c->valid = calloc(json_array_size(arr), sizeof(*c->valid));
	if (!c->valid) {
		xm_cni_err_set(e, XM_CNI_E_IO, NULL, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, it) {
		struct xm_cni_attachment *a = &c->valid[c->n_valid];

		if (!json_is_object(it) ||
		    req_str(it, "containerID", a->container_id, sizeof(a->container_id), e) ||
		    opt_str(it, "ifname", a->ifname, sizeof(a->ifname), e)) {
			if (!json_is_object(it))
				xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL,
					       "cni.dev/valid-attachments[%zu] must be an object", i);
			return -1;
		}
		c->n_valid++;
	}
	return 0;
}

/* Our fields. Others are ignored, but not one that is ours misspelt (see own_typo()). */
static const char *const own_fields[] = { "pinRoot", "stateDir", "logFile", "logLevel" };
#define OWN_FIELDS "pinRoot, stateDir, logFile, logLevel"

/* Equal but for case, '_' and '-': "pinroot", "pin_root" and "PinRoot" all mean pinRoot. */
static bool same_folded(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

/*
 * A key that is one of ours misspelt: ignoring it as "not ours" would run the
 * plugin silently with the default pin root or state dir, another agent's.
 */
static int own_typo(json_t *obj, struct xm_cni_err *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		for (size_t i = 0; i < sizeof(own_fields) / sizeof(own_fields[0]); i++) {
			if (strcmp(key, own_fields[i]) && same_folded(key, own_fields[i])) {
				xm_cni_err_set(e, XM_CNI_E_FIELD, "xmesh-cni's fields: " OWN_FIELDS,
					       "unsupported field \"%.64s\": did you mean \"%s\"?", key,
					       own_fields[i]);
				return -1;
			}
		}
	}
	return 0;
}

int xm_cni_conf_ours(json_t *obj, struct xm_cni_conf *c, struct xm_cni_err *e,
		     struct xm_cni_err *later)
{
	enum xm_log_level lvl;

	snprintf(c->pin_root, sizeof(c->pin_root), "%s", XM_PIN_ROOT_DEFAULT);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", XM_CNI_STATE_DIR_DEFAULT);
	c->log_file[0] = c->log_level[0] = '\0';
	if (opt_str(obj, "pinRoot", c->pin_root, sizeof(c->pin_root), e) ||
	    opt_str(obj, "stateDir", c->state_dir, sizeof(c->state_dir), e) ||
	    opt_str(obj, "logFile", c->log_file, sizeof(c->log_file), e) ||
	    opt_str(obj, "logLevel", c->log_level, sizeof(c->log_level), e))
		return -1;
	if (c->pin_root[0] != '/' || c->state_dir[0] != '/' ||
	    (c->log_file[0] && c->log_file[0] != '/')) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL,
			       "pinRoot, stateDir and logFile must be absolute paths");
		return -1;
	}
	/*
	 * Taken before as if absent (the defaults, no log level), so a config
	 * that has them did work: refused, but into *later when given (DEL).
	 */
	if (!later)
		later = e;
	if (own_typo(obj, later))
		return later == e ? -1 : 0;
	/* An unknown level was dropped at open_log(): the debug lines asked for never came. */
	if (c->log_level[0] && xm_log_parse_level(c->log_level, &lvl)) {
		xm_cni_err_set(later, XM_CNI_E_CONFIG, NULL,
			       "logLevel '%s' is not one of error, warn, info, debug", c->log_level);
		return later == e ? -1 : 0;
	}
	return 0;
}

int xm_cni_conf_parse(const char *buf, size_t len, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	json_error_t jerr;
	json_t *v;

	memset(c, 0, sizeof(*c));
	c->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->root) {
		char where[64];

		snprintf(where, sizeof(where), "stdin:%d:%d", jerr.line, jerr.column);
		xm_cni_err_set(e, XM_CNI_E_DECODE, jerr.text, "failed to decode the network "
			       "configuration at %s", where);
		return -1;
	}
	if (!json_is_object(c->root)) {
		xm_cni_err_set(e, XM_CNI_E_DECODE, NULL, "the network configuration is not a JSON "
			       "object");
		goto fail;
	}
	if (req_str(c->root, "cniVersion", c->cni_version, sizeof(c->cni_version), e))
		goto fail;
	if (xm_cni_version_parse(c->cni_version, &c->version) ||
	    !xm_cni_version_supported(c->version)) {
		xm_cni_err_set(e, XM_CNI_E_VERSION, "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
			       "incompatible CNI version '%s'", c->cni_version);
		goto fail;
	}
	if (req_str(c->root, "name", c->name, sizeof(c->name), e) ||
	    req_str(c->root, "type", c->type, sizeof(c->type), e))
		goto fail;
	if (!xm_cni_valid_network_name(c->name)) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "network name '%s' is not valid "
			       "([A-Za-z0-9][A-Za-z0-9_.-]*)", c->name);
		goto fail;
	}
	if (xm_cni_conf_ours(c->root, c, e, &c->own_err))
		goto fail;
	c->prev_result = json_object_get(c->root, "prevResult");
	if (c->prev_result && parse_prev_result(c, &c->prev_err)) {
		c->n_ifaces = c->n_ips = c->dropped_ifaces = c->dropped_ips = 0;
		if (!c->prev_err.code)
			xm_cni_err_set(&c->prev_err, XM_CNI_E_CONFIG, NULL, "prevResult is not valid");
	}
	v = json_object_get(json_object_get(c->root, "runtimeConfig"), XM_CNI_CAP_POD_ANNOTATIONS);
	if (v) {
		char why[sizeof(c->optout_err.msg)];

		if (xm_cni_optout_parse(v, &c->optout, why, sizeof(why)))
			xm_cni_err_set(&c->optout_err, XM_CNI_E_CONFIG, NULL, "%s", why);
	}
	/* libcni sends both names (the first spec text used the second). */
	v = json_object_get(c->root, "cni.dev/valid-attachments");
	if (!v)
		v = json_object_get(c->root, "cni.dev/attachments");
	if (v && parse_valid(c, v, e))
		goto fail;
	return 0;
fail:
	xm_cni_conf_free(c);
	return -1;
}

void xm_cni_conf_free(struct xm_cni_conf *c)
{
	json_decref(c->root);
	free(c->valid);
	c->root = c->prev_result = NULL;
	c->valid = NULL;
}
