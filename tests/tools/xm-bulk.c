// SPDX-License-Identifier: MIT
/*
 * xm-bulk: a bulk stream over loopback TCP, plain or redirected by the
 * minimal sockmap program bpf/sockmap_bulk.bpf.c (no xmesh involved), to show
 * the kernel's missing backpressure on redirected data and what a fallback
 * budget does about it.
 *
 *   xm-bulk queue MODE             the receiver never reads; the sender writes
 *                                  64 KiB at a time without blocking until the
 *                                  kernel refuses (EAGAIN), 1 s passed, or the
 *                                  cap (64 MiB) is reached: how much a sender
 *                                  can queue ahead of its reader
 *   xm-bulk stream MODE SECS CPUS [verify]
 *                                  sender and reader at full speed for SECS
 *                                  seconds, sender on the first CPU of CPUS
 *                                  ("0,0": both on CPU 0; "0,1"): Gbit/s;
 *                                  verify: every 8-byte word of the stream is
 *                                  its index, and the reader checks each byte
 *                                  (order across the budget's switch to TCP)
 * MODE := tcp | redirect | budget=BYTES (redirect the first BYTES, then TCP)
 *       | demote=BYTES (redirect the first BYTES, then take the sender out of
 *         the map: plain TCP again, what xmesh does to a one-way bulk sender)
 * Prints one line of key=value.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lib/clock.h"
#include "sockmap_bulk.skel.h"

#define CHUNK (64 * 1024)
#define QUEUE_CAP (64ull << 20)

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void die(const char *what)
{
	fprintf(stderr, "xm-bulk: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A connected loopback pair: *snd (client) and *rcv (accepted). */
static void tcp_pair(int *snd, int *rcv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		die("listen on loopback");
	*snd = socket(AF_INET, SOCK_STREAM, 0);
	if (*snd < 0 || connect(*snd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	*rcv = accept(l, NULL, NULL);
	if (*rcv < 0)
		die("accept");
	setsockopt(*snd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
}

/* Redirect snd's sends into rcv (budget 0: everything). */
static struct xm_sockmap_bulk *redirect(int snd, int rcv, __u64 budget)
{
	struct xm_sockmap_bulk *skel = xm_sockmap_bulk__open();
	__u32 k0 = 0, k1 = 1;
	int mfd;

	if (!skel)
		die("open bpf/sockmap_bulk.bpf.c");
	skel->rodata->budget = budget;
	if (xm_sockmap_bulk__load(skel))
		die("load bpf/sockmap_bulk.bpf.c");
	mfd = bpf_map__fd(skel->maps.bulk_socks);
	if (bpf_prog_attach(bpf_program__fd(skel->progs.bulk_msg), mfd, BPF_SK_MSG_VERDICT, 0) ||
	    bpf_map_update_elem(mfd, &k0, &snd, BPF_ANY) ||
	    bpf_map_update_elem(mfd, &k1, &rcv, BPF_ANY))
		die("attach the sk_msg program, insert the sockets");
	return skel;
}

struct xm_sock_bulk_demote {
	struct xm_sockmap_bulk *skel;
	unsigned long long at; /* bytes; 0: never */
	int done;
};

/* Byte at offset off of a verified stream: word off / 8 holds its index (little endian). */
static unsigned char stream_byte(unsigned long long off)
{
	return (unsigned char)((off / 8) >> (off % 8 * 8));
}

static void stream_fill(unsigned char *buf, unsigned long long off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = stream_byte(off + i);
}

struct reader {
	int fd, cpu;
	int verify;
	unsigned long long bytes;
	unsigned long long bad_at; /* first offset that did not match + 1, 0: none */
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = malloc(CHUNK);
	ssize_t n;

	pin_cpu(r->cpu);
	while (buf && (n = read(r->fd, buf, CHUNK)) > 0) {
		for (ssize_t i = 0; r->verify && !r->bad_at && i < n; i++)
			if (buf[i] != stream_byte(r->bytes + i))
				r->bad_at = r->bytes + i + 1;
		r->bytes += n;
	}
	free(buf);
	return NULL;
}

/* demote=BYTES: once the sender has sent that much, it leaves the map (once). */
static void maybe_demote(struct xm_sock_bulk_demote *d, unsigned long long sent)
{
	__u32 k0 = 0;

	if (!d->skel || !d->at || sent < d->at || d->done)
		return;
	d->done = 1;
	if (bpf_map_delete_elem(bpf_map__fd(d->skel->maps.bulk_socks), &k0))
		die("take the sender out of the map");
}

int main(int argc, char **argv)
{
	struct xm_sockmap_bulk *skel = NULL;
	const char *mode = argc > 2 ? argv[2] : "";
	struct xm_sock_bulk_demote demote = {};
	unsigned long long sent = 0;
	__u64 budget = 0;
	char *buf;
	int snd, rcv;

	if (argc < 3 || (strcmp(argv[1], "queue") && strcmp(argv[1], "stream")) ||
	    (!strcmp(argv[1], "stream") && argc < 5) ||
	    (strcmp(mode, "tcp") && strcmp(mode, "redirect") && strncmp(mode, "budget=", 7) &&
	     strncmp(mode, "demote=", 7))) {
		fprintf(stderr, "usage: xm-bulk queue MODE | stream MODE SECS CPU,CPU\n"
				"  MODE := tcp | redirect | budget=BYTES | demote=BYTES\n");
		return 2;
	}
	libbpf_set_print(NULL);
	buf = calloc(1, CHUNK);
	if (!buf)
		die("malloc");
	tcp_pair(&snd, &rcv);
	if (!strncmp(mode, "budget=", 7))
		budget = strtoull(mode + 7, NULL, 0);
	if (!strncmp(mode, "demote=", 7))
		demote.at = strtoull(mode + 7, NULL, 0);
	if (strcmp(mode, "tcp"))
		skel = redirect(snd, rcv, budget);
	demote.skel = skel;

	if (!strcmp(argv[1], "queue")) {
		double t0 = xt_now();
		int inq = 0;

		fcntl(snd, F_SETFL, O_NONBLOCK);
		while (sent < QUEUE_CAP && xt_now() - t0 < 1) {
			ssize_t n = send(snd, buf, CHUNK, 0);

			if (n > 0) {
				sent += n;
				maybe_demote(&demote, sent);
				continue;
			}
			if (errno == EAGAIN)
				break;
			die("send");
		}
		ioctl(rcv, SIOCINQ, &inq);
		printf("mode=%s queued_bytes=%llu capped=%d receiver_inq=%d\n", mode, sent,
		       sent >= QUEUE_CAP, inq);
	} else {
		double secs = atof(argv[3]), t0, t1;
		struct reader r = { .fd = rcv };
		int scpu = 0;
		pthread_t th;

		sscanf(argv[4], "%d,%d", &scpu, &r.cpu);
		r.verify = argc > 5 && !strcmp(argv[5], "verify");
		pin_cpu(scpu);
		pthread_create(&th, NULL, read_all, &r);
		t0 = xt_now();
		while (xt_now() - t0 < secs) {
			ssize_t n;

			if (r.verify)
				stream_fill((unsigned char *)buf, sent, CHUNK);
			n = send(snd, buf, CHUNK, 0);

			if (n < 0)
				die("send");
			sent += n;
			maybe_demote(&demote, sent);
		}
		shutdown(snd, SHUT_WR);
		pthread_join(th, NULL);
		t1 = xt_now();
		printf("mode=%s cpus=%s sent=%llu received=%llu gbps=%.2f", mode, argv[4], sent,
		       r.bytes, r.bytes * 8 / (t1 - t0) / 1e9);
		if (r.verify)
			printf(" in_order=%d first_bad=%lld", !r.bad_at, (long long)r.bad_at - 1);
		if (skel)
			printf(" redirected=%llu", (unsigned long long)skel->bss->redirected);
		printf("\n");
	}
	close(snd);
	close(rcv);
	xm_sockmap_bulk__destroy(skel);
	free(buf);
	return 0;
}
