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

/* The settings both ends share (from tests/lib/loadopt: xm-load traffic, xm-serve traffic). */
struct xt_traffic_opts {
	struct sockaddr_storage to;
	socklen_t to_len;
	size_t req, resp;      /* --size, --answer: bytes each way per connection */
	int conns, rounds;     /* --conns concurrent connections, rounds each */
	int src_port;          /* --bind-port */
	struct xt_xchg x;      /* --seed, --duration: spread */
};

#endif
