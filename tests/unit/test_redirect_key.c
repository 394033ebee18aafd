// SPDX-License-Identifier: MIT
/*
 * Unit tests: the redirect key (include/xmesh/redirect.h) and the pins an
 * uninstall keeps while it drains (user/lib/drain.c, user/lib/pin.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <xmesh/redirect.h>
#include "drain.h"
#include "pin.h"

static struct xm_sock_key key(const char *l, int lport, const char *r, int rport, __u32 iss,
			      __u32 irs)
{
	struct xm_sock_key k;

	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	inet_pton(AF_INET, l, &k.local.ip[0]);
	inet_pton(AF_INET, r, &k.remote.ip[0]);
	k.local_port = lport;
	k.remote_port = rport;
	k.local_isn = iss;
	k.remote_isn = irs;
	return k;
}

/* The client's stored peer key is byte for byte the server socket's own key. */
static void client_and_server_keys_meet(void **state)
{
	struct xm_sock_key client = key("10.0.0.1", 40000, "10.0.0.2", 80, 1000, 5000);
	struct xm_sock_key server = key("10.0.0.2", 80, "10.0.0.1", 40000, 5000, 1000);
	struct xm_sock_key peer, back;

	xm_sock_key_peer(&client, &peer);
	assert_memory_equal(&peer, &server, sizeof(peer));
	xm_sock_key_peer(&peer, &back);
	assert_memory_equal(&back, &client, sizeof(back));
}

/* A socket of an older connection with the same tuple is not the peer. */
static void older_incarnation_never_meets(void **state)
{
	struct xm_sock_key client = key("127.0.0.1", 40001, "127.0.0.1", 7400, 77, 88);
	struct xm_sock_key old_server = key("127.0.0.1", 7400, "127.0.0.1", 40001, 11, 22);
	struct xm_sock_key half_old = key("127.0.0.1", 7400, "127.0.0.1", 40001, 88, 22);
	struct xm_sock_key peer;

	xm_sock_key_peer(&client, &peer);
	assert_memory_not_equal(&peer, &old_server, sizeof(peer));
	assert_memory_not_equal(&peer, &half_old, sizeof(peer));
}

static void touch(const char *root, const char *rel)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static int exists(const char *root, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return access(path, F_OK) == 0;
}

/* While draining only sk_msg, the redirect map, meta and stats stay. */
static void drain_keeps_only_what_redirects(void **state)
{
	char root[] = "/tmp/xm-unit-drain-XXXXXX", sub[600];
	static const char *const all[] = { "links/sk_msg", "links/sockops", "links/lb_connect4",
					   "maps/xm_socks", "maps/xm_meta", "maps/xm_stats",
					   "maps/xm_lb_svc", "maps/xm_sock", "progs/ovl" };

	assert_non_null(mkdtemp(root));
	for (const char *d = "links\0maps\0progs\0"; *d; d += strlen(d) + 1) {
		snprintf(sub, sizeof(sub), "%s/%s", root, d);
		assert_int_equal(mkdir(sub, 0700), 0);
	}
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		touch(root, all[i]);
	assert_int_equal(xm_pin_root_remove_except(root, xm_drain_keep), 5);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		int kept = 0;

		for (const char *const *k = xm_drain_keep; *k; k++)
			kept |= !strcmp(*k, all[i]);
		assert_int_equal(exists(root, all[i]), kept);
	}
	assert_false(exists(root, "progs"));
	assert_int_equal(xm_pin_root_remove(root), 4);
	assert_false(exists(root, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(client_and_server_keys_meet),
		cmocka_unit_test(older_incarnation_never_meets),
		cmocka_unit_test(drain_keeps_only_what_redirects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
