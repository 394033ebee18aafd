/* SPDX-License-Identifier: MIT */
/*
 * How the agent reaches the API server: in-cluster (service account) or a
 * kubeconfig in JSON form (docs/kubernetes.md, "Connecting"), and how a curl
 * handle is set up with it.
 */
#ifndef XMESH_AGENT_K8S_CONN_H
#define XMESH_AGENT_K8S_CONN_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <curl/curl.h>

#define XM_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * Liveness of a connection to the API server (docs/kubernetes.md, "A dead
 * connection"): a connection quiet for KEEPIDLE seconds is probed by TCP
 * keepalive every KEEPINTVL seconds; once nothing (data or probe) was
 * acknowledged for DEAD_MS, the kernel ends it with ETIMEDOUT and every
 * request on it starts again on a new one. A live idle watch answers the
 * probes (its peer's kernel does) and is left alone.
 */
#define XM_K8S_KEEPIDLE_S 5
#define XM_K8S_KEEPINTVL_S 2
#define XM_K8S_DEAD_MS 10000

struct xm_k8s_conn {
	char server[512];          /* "https://host:port" or "http://...", no trailing '/' */
	char *token;               /* bearer token in use; NULL: none */
	char token_file[PATH_MAX]; /* re-read when it changes (rotation); "": none */
	struct stat token_st;      /* of the token file when last read */
	char ca_file[PATH_MAX];
	char cert_file[PATH_MAX], key_file[PATH_MAX];
	unsigned char *ca_data, *cert_data, *key_data; /* decoded *-data fields */
	size_t ca_len, cert_len, key_len;
	bool insecure;             /* insecure-skip-tls-verify */
	char proxy[512];           /* proxy-url as curl takes it; "": none (curl's environment) */
	char source[PATH_MAX + 32]; /* for messages: "kubeconfig FILE" or "in-cluster" */
};

/* A kubeconfig in JSON form; a YAML one gets an error saying how to convert it. */
int xm_k8s_conn_kubeconfig(struct xm_k8s_conn *c, const char *path, char *err, size_t errlen);
/* KUBERNETES_SERVICE_HOST/PORT and the service account's token and CA. */
int xm_k8s_conn_in_cluster(struct xm_k8s_conn *c, char *err, size_t errlen);
/* --k8s-api: "HOST:PORT" (https) or a URL. */
int xm_k8s_conn_set_api(struct xm_k8s_conn *c, const char *api, char *err, size_t errlen);
/* Re-read the token file if it changed since; 1 if the token changed, 0, -errno. */
int xm_k8s_conn_token_refresh(struct xm_k8s_conn *c);
/* TLS and credentials on a handle; hdrs gets the Authorization header (caller frees). */
int xm_k8s_conn_setup(struct xm_k8s_conn *c, CURL *h, struct curl_slist **hdrs);
void xm_k8s_conn_free(struct xm_k8s_conn *c);

#endif
