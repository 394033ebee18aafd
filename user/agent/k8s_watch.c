// SPDX-License-Identifier: MIT
/*
 * List + watch over libcurl's multi interface, driven by the agent's epoll
 * loop: curl tells which sockets to wait for (sock_cb) and when to call it
 * back (timer_cb); nothing here blocks. A list arrives in pages into a
 * staging set that replaces the view (k8s.c) only when complete; a watch is a
 * stream of newline-separated JSON events applied to the view as they come.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "agent.h"
#include "k8s.h"
#include "log.h"
#include "monoclock.h"

static void check_done(struct xm_k8s *k);

/* ---- curl multi on the event loop ---- */

static void on_sock(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_k8s *k = arg;
	int flags = (events & EPOLLIN ? CURL_CSELECT_IN : 0) |
		    (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
		    (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
	int running;

	curl_multi_socket_action(k->multi, fd, flags, &running);
	check_done(k);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct xm_k8s *k = userp;
	uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

	if (what == CURL_POLL_REMOVE) {
		xm_loop_del(k->a->loop, s);
		curl_multi_assign(k->multi, s, NULL);
		return 0;
	}
	if (!socketp) {
		if (xm_loop_add(k->a->loop, s, ev, on_sock, k)) {
			pr_err("k8s: event loop full: cannot wait for the API server's socket");
			return -1;
		}
		curl_multi_assign(k->multi, s, k);
		return 0;
	}
	return xm_loop_mod(k->a->loop, s, ev) ? -1 : 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct xm_k8s *k = userp;

	/* 0 means "now": the loop calls back at once; -1 means no timeout */
	return xm_loop_timer_arm(k->curl_tfd, timeout_ms < 0 ? 0 : timeout_ms ?: 1) ? -1 : 0;
}

static void on_curl_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_k8s *k = arg;
	int running;

	xm_loop_timer_arm(fd, 0);
	if (!k->multi)
		return;
	curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(k);
}

/* The multi handle holds the connections to the API server (one, HTTP/2). */
static int http_multi_new(struct xm_k8s *k)
{
	k->multi = curl_multi_init();
	if (!k->multi)
		return -ENOMEM;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	return 0;
}

int xm_k8s_http_init(struct xm_k8s *k)
{
	k->curl_tfd = xm_loop_timer_add(k->a->loop, on_curl_timer, k);
	if (k->curl_tfd < 0)
		return k->curl_tfd;
	return http_multi_new(k);
}

void xm_k8s_http_free(struct xm_k8s *k)
{
	if (k->multi)
		curl_multi_cleanup(k->multi);
	k->multi = NULL;
	if (k->curl_tfd >= 0) {
		xm_loop_del(k->a->loop, k->curl_tfd);
		close(k->curl_tfd);
	}
	k->curl_tfd = -1;
}

/* ---- one resource ---- */

static void res_stop_request(struct xm_k8s_res *r)
{
	if (r->h) {
		curl_multi_remove_handle(r->k->multi, r->h);
		curl_easy_cleanup(r->h);
	}
	curl_slist_free_all(r->hdrs);
	r->h = NULL;
	r->hdrs = NULL;
}

static int buf_add(struct xm_k8s_res *r, const char *p, size_t n, size_t max)
{
	if (r->len + n + 1 > max)
		return -E2BIG;
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 65536;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		b = realloc(r->buf, cap);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

/* "namespace/name" of an API object, or NULL. */
static const char *obj_key(json_t *o, char *buf, size_t len)
{
	json_t *md = json_object_get(o, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));

	if (!name)
		return NULL;
	snprintf(buf, len, "%s/%s", ns ?: "", name);
	return buf;
}

static void set_rv(struct xm_k8s_res *r, json_t *o)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(o, "metadata"), "resourceVersion"));

	if (rv)
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
}

/* One watch event; false ends the watch (r->why says why). */
static bool watch_event(struct xm_k8s_res *r, const char *line, size_t len)
{
	json_t *ev, *obj;
	const char *type;
	char key[XM_K8S_ID_LEN];
	json_error_t je;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return true;
	ev = json_loadb(line, len, 0, &je);
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	if (!ev || !type || !json_is_object(obj)) {
		snprintf(r->why, sizeof(r->why), "the API server sent a bad event (%s%s)",
			 ev ? "no type or object" : "not JSON: ", ev ? "" : je.text);
		json_decref(ev);
		return false;
	}
	r->events++;
	if (!strcmp(type, "ERROR")) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));

		r->relist = code == 410;
		snprintf(r->why, sizeof(r->why), "watch ended by the API server: %lld %s",
			 (long long)code, msg ?: "");
		json_decref(ev);
		return false;
	}
	set_rv(r, obj);
	if (!strcmp(type, "BOOKMARK")) {
		json_decref(ev);
		return true;
	}
	if (obj_key(obj, key, sizeof(key))) {
		/* with its time, the start of an apply's latency (scripts/bench/k8s.sh) */
		pr_debug("k8s: %s %s %s rv %s", r->kind, type, key, r->rv);
		if (!strcmp(type, "DELETED") || !strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
			xm_k8s_object(r->k, r, obj, !strcmp(type, "DELETED"));
	}
	json_decref(ev);
	return true;
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct xm_k8s_res *r = arg;
	size_t len = sz * n, off = 0;
	long code = 0;
	char *nl;
	int err;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	if (r->listing || code != 200) {
		err = buf_add(r, p, len, code == 200 ? XM_K8S_MAX_BODY : 65536);
		if (err == -E2BIG && code != 200)
			return len; /* an error body: its start is enough */
		if (err)
			snprintf(r->why, sizeof(r->why), "list page larger than %u MB",
				 XM_K8S_MAX_BODY >> 20);
		return err ? 0 : len;
	}
	if (buf_add(r, p, len, XM_K8S_MAX_LINE + len)) {
		snprintf(r->why, sizeof(r->why), "out of memory for a watch event");
		return 0;
	}
	while ((nl = memchr(r->buf + off, '\n', r->len - off))) {
		if (!watch_event(r, r->buf + off, nl - (r->buf + off)))
			return 0;
		off = nl - r->buf + 1;
	}
	memmove(r->buf, r->buf + off, r->len - off);
	r->len -= off;
	if (r->len > XM_K8S_MAX_LINE) {
		snprintf(r->why, sizeof(r->why), "a watch event longer than %u MB",
			 XM_K8S_MAX_LINE >> 20);
		return 0;
	}
	return len;
}

static int res_request(struct xm_k8s_res *r, bool list)
{
	struct xm_k8s *k = r->k;
	char url[4096], *cont = NULL;
	CURL *h;
	int err;

	if (xm_k8s_conn_token_refresh(&k->conn) < 0)
		pr_warn("k8s: token file %s: %s: using the previous token", k->conn.token_file,
			strerror(errno));
	if (list && !r->watch) {
		snprintf(url, sizeof(url), "%s%s", k->conn.server, r->path);
	} else if (list) {
		if (r->cont)
			cont = curl_easy_escape(NULL, r->cont, 0);
		snprintf(url, sizeof(url), "%s%s?limit=%u%s%s", k->conn.server, r->path, XM_K8S_PAGE,
			 cont ? "&continue=" : "", cont ?: "");
		curl_free(cont);
	} else {
		snprintf(url, sizeof(url),
			 "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u",
			 k->conn.server, r->path, r->rv, k->watch_timeout_s);
	}
	if (!k->multi && http_multi_new(k))
		return -ENOMEM;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	r->h = h;
	r->listing = list;
	r->len = 0;
	r->why[0] = '\0';
	r->relist = false;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	r->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (list) {
		/* a list that stops moving for 30 s is given up */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	} else {
		/* the server ends a watch after timeoutSeconds: past that, it hangs */
		curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)k->watch_timeout_s + 5);
	}
	err = xm_k8s_conn_setup(&k->conn, h, &r->hdrs);
	if (!err && curl_multi_add_handle(k->multi, h) != CURLM_OK)
		err = -ENOMEM;
	if (err)
		res_stop_request(r);
	pr_debug("k8s: GET %s", url);
	return err;
}

static void res_backoff(struct xm_k8s_res *r, long retry_after_s, bool list_next);
static void res_list(struct xm_k8s_res *r);

/*
 * A request timed out: the connection under it may be dead without either
 * kernel knowing (a server that hangs, a path that went silent: no FIN, no
 * RST). curl then ends only the HTTP/2 stream and keeps the connection, so
 * the retry would be multiplexed onto it and hang again, for good. Dropping
 * the multi handle closes every connection it holds; the other requests,
 * most likely on the same connection, start again on a new one (a watch
 * from its resourceVersion, a list page from its continue token).
 */
static void http_reconnect(struct xm_k8s *k)
{
	struct xm_k8s_res *all[] = { &k->svc, &k->eps, &k->node };
	enum { N = sizeof(all) / sizeof(all[0]) };
	bool running[N], list[N];
	unsigned int i;

	for (i = 0; i < N; i++) {
		running[i] = all[i]->h;
		list[i] = all[i]->listing;
		res_stop_request(all[i]);
	}
	curl_multi_cleanup(k->multi);
	k->multi = NULL; /* the next request makes a new one */
	for (i = 0; i < N; i++)
		if (running[i] && res_request(all[i], list[i]))
			res_backoff(all[i], 0, list[i]);
}

/* 410: list again, at once unless the last list is so recent that they would loop. */
static void res_relist(struct xm_k8s_res *r)
{
	if (r->listed_ms && xm_mono_ms() - r->listed_ms < 1000)
		res_backoff(r, 0, true);
	else
		res_list(r);
}

static void res_list(struct xm_k8s_res *r)
{
	free(r->cont);
	r->cont = NULL;
	json_decref(r->staging);
	r->staging = json_object();
	if (!r->staging || res_request(r, true))
		pr_err("k8s: %s: cannot start a list: out of memory", r->kind);
}

/* After a failure: wait (exponential, with jitter; Retry-After honoured), then try again. */
static void res_backoff(struct xm_k8s_res *r, long retry_after_s, bool list_next)
{
	long ms = XM_K8S_BACKOFF_MIN_MS << (r->attempt < 8 ? r->attempt : 8);

	if (ms > XM_K8S_BACKOFF_MAX_MS)
		ms = XM_K8S_BACKOFF_MAX_MS;
	ms = ms / 2 + random() % (ms / 2 + 1); /* jitter: agents do not retry in step */
	if (retry_after_s > 0 && retry_after_s * 1000 > ms)
		ms = retry_after_s * 1000;
	r->attempt++;
	r->relist = list_next;
	pr_info("k8s: %s: trying again in %ld ms%s", r->kind, ms,
		r->synced ? "; the tables stay as they are" : "");
	xm_loop_timer_arm(r->tfd, ms);
}

static void on_retry(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_k8s_res *r = arg;

	xm_loop_timer_arm(fd, 0);
	if (r->relist || !r->synced || !r->rv[0])
		res_list(r);
	else if (res_request(r, false))
		res_backoff(r, 0, false);
}

/* A complete list page (200). */
static void list_page(struct xm_k8s_res *r)
{
	json_error_t je;
	json_t *body = json_loadb(r->buf ?: "", r->len, 0, &je), *it;
	const char *cont;
	char key[XM_K8S_ID_LEN];
	size_t i;

	if (!r->watch) {
		unsigned int s = r->k->watch_timeout_s;

		if (!body) {
			pr_warn("k8s: GET %s: not JSON: %s", r->path, je.text);
			res_backoff(r, 0, true);
			return;
		}
		json_decref(r->store);
		r->store = body;
		r->synced = true;
		r->attempt = 0;
		xm_k8s_node_changed(r->k);
		/* not watched (RBAC: get only): read again, a label may change */
		xm_loop_timer_arm(r->tfd, 1000L * (s < XM_K8S_NODE_REFRESH_S ? s : XM_K8S_NODE_REFRESH_S));
		return;
	}
	if (!json_is_array(json_object_get(body, "items"))) {
		pr_warn("k8s: %s: the API server's list is not a list (%s): tables kept", r->kind,
			body ? "no items" : je.text);
		json_decref(body);
		res_backoff(r, 0, true);
		return;
	}
	json_array_foreach(json_object_get(body, "items"), i, it) {
		if (obj_key(it, key, sizeof(key)) && xm_k8s_stage(r, it)) {
			pr_err("k8s: %s: out of memory for the list: tables kept", r->kind);
			json_decref(body);
			res_backoff(r, 0, true);
			return;
		}
	}
	cont = json_string_value(json_object_get(json_object_get(body, "metadata"), "continue"));
	free(r->cont);
	r->cont = cont && *cont ? strdup(cont) : NULL;
	set_rv(r, body);
	json_decref(body);
	if (r->cont) {
		if (res_request(r, true))
			res_backoff(r, 0, true);
		return;
	}
	/* complete: the new view replaces the old one in one step */
	r->attempt = 0;
	r->listed_ms = xm_mono_ms();
	pr_info("k8s: %s listed: %zu objects, resourceVersion %s", r->kind,
		json_object_size(r->staging), r->rv);
	r->synced = true;
	xm_k8s_listed(r->k, r);
	if (res_request(r, false))
		res_backoff(r, 0, false);
}

static void res_done(struct xm_k8s_res *r, CURLcode rc)
{
	bool list = r->listing;
	curl_off_t retry_after = 0;
	long code = 0;
	const char *what = !r->watch ? "get" : list ? "list" : "watch";

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(r->h, CURLINFO_RETRY_AFTER, &retry_after);
	if (r->why[0]) {
		/* ended from our side (bad data) or by an ERROR event */
		if (r->relist) {
			pr_info("k8s: %s: %s: listing again (the tables stay until the new list "
				"is complete)", r->kind, r->why);
			res_stop_request(r);
			res_relist(r);
		} else {
			pr_warn("k8s: %s %s: %s", r->kind, what, r->why);
			res_stop_request(r);
			res_backoff(r, 0, list);
		}
		return;
	}
	if (rc != CURLE_OK) {
		long os_errno = 0;

		curl_easy_getinfo(r->h, CURLINFO_OS_ERRNO, &os_errno);
		/*
		 * The kernel ended an established connection (TCP_USER_TIMEOUT):
		 * curl closed it, the retry opens another. Through TLS curl puts
		 * the errno in its message only, not always in OS_ERRNO.
		 */
		if ((os_errno == ETIMEDOUT || strstr(r->errbuf, strerror(ETIMEDOUT))) &&
		    rc != CURLE_OPERATION_TIMEDOUT && rc != CURLE_COULDNT_CONNECT)
			pr_warn("k8s: %s %s: the connection to the API server is dead: nothing "
				"acknowledged for %u s (no FIN or RST came): on a new connection",
				r->kind, what, XM_K8S_DEAD_MS / 1000);
		pr_warn("k8s: %s %s: %s%s%s%s%s", r->kind, what, curl_easy_strerror(rc),
			r->errbuf[0] ? " (" : "", r->errbuf, r->errbuf[0] ? ")" : "",
			rc == CURLE_OPERATION_TIMEDOUT && !list ? ": the watch hung"
			: rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE
				? ": check the CA (certificate-authority[-data], or the service "
				  "account's ca.crt)"
				: "");
		res_stop_request(r);
		if (rc == CURLE_OPERATION_TIMEDOUT) {
			pr_info("k8s: %s: the connection to the API server may be dead: "
				"closing it, every request on a new one", r->kind);
			http_reconnect(r->k);
		}
		res_backoff(r, 0, list);
		return;
	}
	if (code == 410) {
		pr_info("k8s: %s %s: 410 Gone: listing again (the tables stay until the new list "
			"is complete)", r->kind, what);
		res_stop_request(r);
		res_relist(r);
		return;
	}
	if (code != 200) {
		json_t *st = json_loadb(r->buf ?: "", r->len, 0, NULL);
		const char *msg = json_string_value(json_object_get(st, "message"));

		pr_warn("k8s: %s %s: HTTP %ld%s%s%s", r->kind, what, code, msg ? ": " : "",
			msg ?: "",
			code == 401 ? " (token refused: it is re-read from its file before the next "
				      "try)"
			: code == 403 ? " (RBAC: the agent needs list/watch on services and "
					"endpointslices, get on nodes)"
				      : "");
		json_decref(st);
		res_stop_request(r);
		res_backoff(r, (long)retry_after, list);
		return;
	}
	res_stop_request(r);
	if (list) {
		list_page(r);
		/* a page is MBs and a watch line small: the buffer is not kept at a page's size */
		if (r->cap > 65536 && !(r->h && r->listing)) {
			free(r->buf);
			r->buf = NULL;
			r->len = r->cap = 0;
		}
		return;
	}
	/* the server ended the watch (timeoutSeconds): renew it from where it was */
	r->attempt = 0;
	if (res_request(r, false))
		res_backoff(r, 0, false);
}

static void check_done(struct xm_k8s *k)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(k->multi, &left))) {
		struct xm_k8s_res *r;
		CURL *h = m->easy_handle;
		CURLcode rc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
		res_done(r, rc);
	}
}

void xm_k8s_res_init(struct xm_k8s *k, struct xm_k8s_res *r, const char *kind, const char *path,
		     bool watch)
{
	memset(r, 0, sizeof(*r));
	r->k = k;
	r->kind = kind;
	r->path = path;
	r->watch = watch;
	r->store = json_object();
	r->tfd = xm_loop_timer_add(k->a->loop, on_retry, r);
}

int xm_k8s_res_start(struct xm_k8s_res *r)
{
	if (r->tfd < 0 || !r->store)
		return r->tfd < 0 ? r->tfd : -ENOMEM;
	res_list(r);
	return 0;
}

void xm_k8s_res_free(struct xm_k8s_res *r)
{
	if (!r->k)
		return;
	res_stop_request(r);
	if (r->tfd >= 0) {
		xm_loop_del(r->k->a->loop, r->tfd);
		close(r->tfd);
	}
	json_decref(r->store);
	json_decref(r->staging);
	free(r->cont);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}
