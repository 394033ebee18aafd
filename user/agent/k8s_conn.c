// SPDX-License-Identifier: MIT
/* Connection settings for the API server (k8s_conn.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <jansson.h>
#include <openssl/evp.h>
#include "k8s_conn.h"
#include "log.h"
#include "sys.h"

/* A kubeconfig, token or certificate larger than this is not one. */
#define XM_K8S_FILE_MAX (4u << 20)

#define YAML_HINT                                                                          \
	"the agent reads kubeconfig files in JSON form: convert it with "                   \
	"`kubectl config view --raw --flatten -o json > FILE.json`"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* base64 (kubeconfig's *-data fields) with OpenSSL's decoder. */
static int b64_decode(const char *in, unsigned char **out, size_t *len)
{
	size_t n = strlen(in);
	int got;

	*out = malloc(n / 4 * 3 + 4);
	if (!*out)
		return -ENOMEM;
	got = EVP_DecodeBlock(*out, (const unsigned char *)in, (int)n);
	if (got < 0 || n % 4) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	/* the decoder counts the padding as zero bytes */
	while (n && in[n - 1] == '=') {
		n--;
		got--;
	}
	*len = got;
	return 0;
}

/* obj's string field k, or "" (for messages). */
static const char *jstr(json_t *obj, const char *k)
{
	return json_string_value(json_object_get(obj, k)) ?: "";
}

/* The entry of list `arr` whose "name" is name, its field `inner` (kubeconfig layout). */
static json_t *named(json_t *arr, const char *name, const char *inner)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && name && !strcmp(n, name))
			return json_object_get(v, inner);
	}
	return NULL;
}

/* The API server's base URL, without trailing slashes: requests append "/api/..." to it. */
static void set_server(struct xm_k8s_conn *c, const char *scheme, const char *url)
{
	size_t len;

	snprintf(c->server, sizeof(c->server), "%s%s", scheme, url);
	len = strlen(c->server);
	while (len && c->server[len - 1] == '/')
		c->server[--len] = '\0';
}

/* A path field relative to the kubeconfig's directory, as kubectl resolves it. */
static void set_path(char *dst, size_t len, const char *dir, const char *p)
{
	int n = p[0] == '/' ? snprintf(dst, len, "%s", p) : snprintf(dst, len, "%.*s/%s",
								      (int)(len / 2), dir, p);

	if (n < 0 || (size_t)n >= len)
		dst[0] = '\0'; /* too long: as if absent, and curl then says what is missing */
}

/*
 * The fields of a kubeconfig's cluster and user (client-go's
 * clientcmd/api/v1 Cluster and AuthInfo, all of them): taken (read, or of no
 * effect here, as commented), or refused with what to do instead. A field
 * not listed is refused too: skipped, it could mean other credentials sent,
 * or another name checked, than the kubeconfig asks for.
 */
struct kc_field {
	const char *name;
	const char *refused; /* NULL: taken */
};

static const struct kc_field cluster_fields[] = {
	{ "server" },
	{ "certificate-authority" },
	{ "certificate-authority-data" },
	{ "insecure-skip-tls-verify" },
	{ "proxy-url" },
	{ "disable-compression" }, /* the agent never asks for compressed answers */
	{ "extensions" },          /* for other tools */
	/* libcurl has no option for it: CURLOPT_CONNECT_TO would change the Host header too */
	{ "tls-server-name", "is not supported (the server's certificate is checked against the "
			     "host of \"server\"): give a \"server\" URL whose host is a name in "
			     "the API server's certificate (an /etc/hosts entry can map it to the "
			     "address)" },
	{ NULL },
};

static const struct kc_field user_fields[] = {
	{ "token" },
	{ "tokenFile" },
	{ "client-certificate" },
	{ "client-certificate-data" },
	{ "client-key" },
	{ "client-key-data" },
	{ "extensions" },
	{ "exec", "(credential plugins) is not supported: give a token, tokenFile or a client "
		  "certificate" },
	{ "auth-provider", "is not supported: give a token, tokenFile or a client certificate" },
	{ "username", "(basic authentication) is not supported: give a token, tokenFile or a "
		      "client certificate" },
	{ "password", "(basic authentication) is not supported: give a token, tokenFile or a "
		      "client certificate" },
	{ "as", "(impersonation) is not supported: give the credentials of the identity to "
		"act as" },
	{ "as-uid", "(impersonation) is not supported: give the credentials of the identity to "
		    "act as" },
	{ "as-groups", "(impersonation) is not supported: give the credentials of the identity "
		       "to act as" },
	{ "as-user-extra", "(impersonation) is not supported: give the credentials of the "
			   "identity to act as" },
	{ NULL },
};

/* obj's fields against the table: 0, or -EINVAL with the first field refused named in err. */
static int check_fields(json_t *obj, const struct kc_field *fields, const char *path,
			const char *where, char *err, size_t errlen)
{
	const struct kc_field *f;
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char taken[400] = "";
		size_t n = 0;

		/* what kubectl leaves out when empty is absent, whatever wrote it */
		if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
			continue;
		for (f = fields; f->name && strcmp(f->name, key); f++)
			;
		if (f->name && !f->refused)
			continue;
		if (f->name)
			return fail(err, errlen, -EINVAL, "--kubeconfig %s: %s: \"%s\" %s", path,
				    where, key, f->refused);
		for (f = fields; f->name; f++)
			if (!f->refused && n < sizeof(taken))
				n += snprintf(taken + n, sizeof(taken) - n, "%s%s", n ? ", " : "",
					      f->name);
		return fail(err, errlen, -EINVAL, "--kubeconfig %s: %s: unknown field \"%s\" (it "
			    "takes %s)", path, where, key, taken);
	}
	return 0;
}

/*
 * proxy-url, as client-go takes it: http, https or socks5 (client-go's
 * socks5 hands the host name to the proxy: curl's socks5h).
 */
static int set_proxy(struct xm_k8s_conn *c, const char *url, const char *path, char *err,
		     size_t errlen)
{
	static const char *const schemes[] = { "http://", "https://", "socks5://", NULL };
	const char *const *sc;
	int n;

	for (sc = schemes; *sc && strncmp(url, *sc, strlen(*sc)); sc++)
		;
	if (!*sc || !url[strlen(*sc)])
		return fail(err, errlen, -EINVAL, "--kubeconfig %s: proxy-url \"%s\": give "
			    "http://, https:// or socks5:// and the proxy's HOST:PORT", path, url);
	if (!strcmp(*sc, "socks5://"))
		n = snprintf(c->proxy, sizeof(c->proxy), "socks5h://%s", url + strlen(*sc));
	else
		n = snprintf(c->proxy, sizeof(c->proxy), "%s", url);
	if (n >= (int)sizeof(c->proxy))
		return fail(err, errlen, -EINVAL, "--kubeconfig %s: proxy-url is longer than %zu "
			    "characters", path, sizeof(c->proxy) - 1);
	return 0;
}

int xm_k8s_conn_kubeconfig(struct xm_k8s_conn *c, const char *path, char *err, size_t errlen)
{
	json_t *root, *ctx, *cluster, *user;
	const char *cur, *s;
	char *text, dir[PATH_MAX], tmp[PATH_MAX], where[160];
	json_error_t je;
	size_t len;
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->source, sizeof(c->source), "kubeconfig %s", path);
	r = xm_read_regular_file(path, XM_K8S_FILE_MAX, &text, &len);
	if (r)
		return fail(err, errlen, r, "--kubeconfig %s: %s", path, strerror(-r));
	root = json_loadb(text, len, 0, &je);
	s = text + strspn(text, " \t\r\n");
	if (!root && *s != '{' && *s != '[') {
		free(text);
		return fail(err, errlen, -EINVAL, "--kubeconfig %s looks like YAML: %s", path,
			    YAML_HINT);
	}
	free(text);
	if (!root)
		return fail(err, errlen, -EINVAL, "--kubeconfig %s:%d:%d: %s", path, je.line,
			    je.column, je.text);
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(dir, sizeof(dir), "%s", dirname(tmp));
	cur = json_string_value(json_object_get(root, "current-context"));
	ctx = named(json_object_get(root, "contexts"), cur, "context");
	if (!ctx && json_array_size(json_object_get(root, "contexts")) == 1)
		ctx = json_object_get(json_array_get(json_object_get(root, "contexts"), 0), "context");
	cluster = named(json_object_get(root, "clusters"),
			json_string_value(json_object_get(ctx, "cluster")), "cluster");
	user = named(json_object_get(root, "users"), json_string_value(json_object_get(ctx, "user")),
		     "user");
	r = -EINVAL;
	if (!ctx) {
		fail(err, errlen, r, "--kubeconfig %s: no context \"%s\" (set current-context)", path,
		     cur ?: "");
		goto out;
	}
	s = json_string_value(json_object_get(ctx, "user"));
	if (s && *s && !user) {
		fail(err, errlen, r, "--kubeconfig %s: the context's user \"%s\" is not in users[] "
		     "(the API would see no credentials)", path, s);
		goto out;
	}
	if (!cluster || !(s = json_string_value(json_object_get(cluster, "server")))) {
		fail(err, errlen, r, "--kubeconfig %s: the context's cluster has no \"server\"", path);
		goto out;
	}
	snprintf(where, sizeof(where), "cluster \"%s\"", jstr(ctx, "cluster"));
	if (check_fields(cluster, cluster_fields, path, where, err, errlen))
		goto out;
	snprintf(where, sizeof(where), "user \"%s\"", jstr(ctx, "user"));
	if (check_fields(user, user_fields, path, where, err, errlen))
		goto out;
	set_server(c, "", s);
	if ((s = json_string_value(json_object_get(cluster, "proxy-url"))) && *s &&
	    set_proxy(c, s, path, err, errlen))
		goto out;
	c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
	if ((s = json_string_value(json_object_get(cluster, "certificate-authority-data"))) &&
	    b64_decode(s, &c->ca_data, &c->ca_len)) {
		fail(err, errlen, r, "--kubeconfig %s: certificate-authority-data is not base64", path);
		goto out;
	}
	if ((s = json_string_value(json_object_get(cluster, "certificate-authority"))))
		set_path(c->ca_file, sizeof(c->ca_file), dir, s);
	if ((s = json_string_value(json_object_get(user, "tokenFile"))) && *s)
		set_path(c->token_file, sizeof(c->token_file), dir, s);
	/*
	 * Both: client-go's rule, the token file's last read value is sent and
	 * the token only while the file was never read; the file must be read
	 * here (below), so the token is never sent.
	 */
	if ((s = json_string_value(json_object_get(user, "token"))) && *s) {
		if (c->token_file[0])
			pr_info("k8s: --kubeconfig %s: the user has token and tokenFile: the token "
				"file's is sent (as client-go does), the token is not used", path);
		else
			c->token = strdup(s);
	}
	if ((s = json_string_value(json_object_get(user, "client-certificate"))))
		set_path(c->cert_file, sizeof(c->cert_file), dir, s);
	if ((s = json_string_value(json_object_get(user, "client-key"))))
		set_path(c->key_file, sizeof(c->key_file), dir, s);
	if (((s = json_string_value(json_object_get(user, "client-certificate-data"))) &&
	     b64_decode(s, &c->cert_data, &c->cert_len)) ||
	    ((s = json_string_value(json_object_get(user, "client-key-data"))) &&
	     b64_decode(s, &c->key_data, &c->key_len))) {
		fail(err, errlen, r, "--kubeconfig %s: client-*-data is not base64", path);
		goto out;
	}
	if (c->token_file[0] && xm_k8s_conn_token_refresh(c) < 0) {
		fail(err, errlen, r, "--kubeconfig %s: tokenFile %s: %s", path, c->token_file,
		     strerror(errno));
		goto out;
	}
	r = 0;
out:
	json_decref(root);
	if (r)
		xm_k8s_conn_free(c);
	return r;
}

int xm_k8s_conn_in_cluster(struct xm_k8s_conn *c, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *sa = getenv("XM_K8S_SA_DIR") ?: XM_K8S_SA_DIR;

	memset(c, 0, sizeof(*c));
	snprintf(c->source, sizeof(c->source), "in-cluster");
	if (!host || !*host)
		return fail(err, errlen, -ENOENT,
			    "--k8s: KUBERNETES_SERVICE_HOST is not set (not in a pod?): give "
			    "--kubeconfig FILE, or --k8s-api HOST:PORT");
	snprintf(c->server, sizeof(c->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port && *port ? port : "443");
	snprintf(c->token_file, sizeof(c->token_file), "%s/token", sa);
	snprintf(c->ca_file, sizeof(c->ca_file), "%s/ca.crt", sa);
	if (xm_k8s_conn_token_refresh(c) < 0)
		return fail(err, errlen, -errno, "--k8s: service account token %s: %s (is "
			    "automountServiceAccountToken off?)", c->token_file, strerror(errno));
	return 0;
}

int xm_k8s_conn_set_api(struct xm_k8s_conn *c, const char *api, char *err, size_t errlen)
{
	if (!*api || strchr(api, ' '))
		return fail(err, errlen, -EINVAL, "--k8s-api %s: give HOST:PORT or a URL", api);
	set_server(c, strstr(api, "://") ? "" : "https://", api);
	return 0;
}

int xm_k8s_conn_token_refresh(struct xm_k8s_conn *c)
{
	struct stat st;
	char *t;
	size_t n;
	int r;

	if (!c->token_file[0])
		return 0;
	if (stat(c->token_file, &st))
		return -errno;
	if (c->token && st.st_ino == c->token_st.st_ino && st.st_size == c->token_st.st_size &&
	    st.st_mtim.tv_sec == c->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_st.st_mtim.tv_nsec)
		return 0;
	r = xm_read_regular_file(c->token_file, XM_K8S_FILE_MAX, &t, &n);
	if (r) {
		errno = -r;
		return r;
	}
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
		t[--n] = '\0';
	c->token_st = st;
	if (c->token && !strcmp(c->token, t)) {
		free(t);
		return 0;
	}
	if (c->token)
		pr_info("k8s: token %s changed: new requests use the new one", c->token_file);
	free(c->token);
	c->token = t;
	return 1;
}

/* A PEM given inline (kubeconfig *-data, decoded) or as a file; neither: curl's default. */
static void pem_opt(CURL *h, CURLoption blob_opt, unsigned char *data, size_t len,
		    CURLoption file_opt, const char *file)
{
	if (data) {
		struct curl_blob b = { data, len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(h, blob_opt, &b);
	} else if (file[0]) {
		curl_easy_setopt(h, file_opt, file);
	}
}

/*
 * Every new TCP connection to the API server: unacknowledged data or
 * keepalive probes end it after XM_K8S_DEAD_MS (TCP_USER_TIMEOUT). Without
 * it a path that went silent (no FIN, no RST) is noticed only when the
 * watch's own timeout expires, minutes later. Not fatal when refused.
 */
static int sockopt_cb(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int ms = XM_K8S_DEAD_MS;
	static bool warned;

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) && !warned) {
		warned = true;
		pr_warn("k8s: TCP_USER_TIMEOUT: %s: a dead connection to the API server is "
			"noticed by TCP keepalive's default probe count only", strerror(errno));
	}
	return CURL_SOCKOPT_OK;
}

int xm_k8s_conn_setup(struct xm_k8s_conn *c, CURL *h, struct curl_slist **hdrs)
{
	char auth[64];
	char *line;

	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (c->token) {
		if (asprintf(&line, "Authorization: Bearer %s", c->token) < 0)
			return -ENOMEM;
		*hdrs = curl_slist_append(*hdrs, line);
		free(line);
	}
	snprintf(auth, sizeof(auth), "xmesh-agent");
	curl_easy_setopt(h, CURLOPT_USERAGENT, auth);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	/*
	 * Kernel-level liveness, not HTTP/2 PING: libcurl 7.88 (Debian 12) sends
	 * a PING only from curl_easy_upkeep(), which serves the easy interface's
	 * own connections, not a multi handle's, and never waits for its answer.
	 */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)XM_K8S_KEEPIDLE_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)XM_K8S_KEEPINTVL_S);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	pem_opt(h, CURLOPT_CAINFO_BLOB, c->ca_data, c->ca_len, CURLOPT_CAINFO, c->ca_file);
	pem_opt(h, CURLOPT_SSLCERT_BLOB, c->cert_data, c->cert_len, CURLOPT_SSLCERT, c->cert_file);
	pem_opt(h, CURLOPT_SSLKEY_BLOB, c->key_data, c->key_len, CURLOPT_SSLKEY, c->key_file);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->proxy[0]) {
		curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
		/* proxy-url is the proxy for the API server, whatever NO_PROXY says (client-go) */
		curl_easy_setopt(h, CURLOPT_NOPROXY, "");
		/* an https proxy: checked as the server is (Go's transport uses one TLS config) */
		pem_opt(h, CURLOPT_PROXY_CAINFO_BLOB, c->ca_data, c->ca_len, CURLOPT_PROXY_CAINFO,
			c->ca_file);
		pem_opt(h, CURLOPT_PROXY_SSLCERT_BLOB, c->cert_data, c->cert_len,
			CURLOPT_PROXY_SSLCERT, c->cert_file);
		pem_opt(h, CURLOPT_PROXY_SSLKEY_BLOB, c->key_data, c->key_len, CURLOPT_PROXY_SSLKEY,
			c->key_file);
		if (c->insecure) {
			curl_easy_setopt(h, CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h, CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
		}
	}
	return 0;
}

void xm_k8s_conn_free(struct xm_k8s_conn *c)
{
	free(c->token);
	free(c->ca_data);
	free(c->cert_data);
	free(c->key_data);
	c->token = NULL;
	c->ca_data = c->cert_data = c->key_data = NULL;
}
