/* SPDX-License-Identifier: MIT */
/*
 * Byte-exact TCP traffic (xm-serve traffic, xm-load traffic). Each
 * connection carries a request client->server and a response server->client.
 * Both sides write at once from a writer thread while the calling thread
 * reads, then half-close (SHUT_WR); the reader checks every byte against a
 * pattern of the seed, the direction and the offset, and that EOF comes right
 * after the last byte. A byte from another connection's stream or out of
 * order fails the check.
 */
#ifndef XT_EXCHANGE_H
#define XT_EXCHANGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

struct xt_xchg {
	unsigned int seed;
	int spread_ms; /* spread each write over this many ms */
	atomic_long bytes_in, bytes_out, spurious_eagain;
};

/*
 * Send send_n bytes of direction send_dir (0: client->server, 1: the
 * answer) while reading and checking recv_n bytes of the other direction;
 * 0 when every byte matched, -1 with the reason on stderr (who: its prefix).
 */
int xt_exchange(struct xt_xchg *x, int fd, int send_dir, size_t send_n, size_t recv_n,
		const char *who);

/* The options both ends take: ADDR PORT [-q N] [-r N] [-c N] [-n N] [-S SEED] [-b SPORT] [-d MS]. */
struct xt_traffic_opts {
	struct sockaddr_storage to;
	socklen_t to_len;
	size_t req, resp;      /* -q, -r: bytes each way per connection */
	int conns, rounds;     /* -c concurrent connections, -n rounds each */
	int src_port;          /* -b */
	struct xt_xchg x;      /* -S seed, -d spread */
};

/* Parse argv (argv[0]: the mode); exits 2 with the usage of tool on error. */
void xt_traffic_args(struct xt_traffic_opts *o, int argc, char **argv, const char *tool);

#endif
