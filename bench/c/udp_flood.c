/*
 * A UDP sender for the tunnel benchmark: sendmmsg() batches of one datagram
 * repeated, for a number of seconds, as fast as the kernel takes them.
 * The same sender drives the driver's path and the bare reference, so the
 * ratio of the two compares the paths, not the generator.
 *
 * usage: udp_flood SRC_IP DST_IP DST_PORT PAYLOAD_BYTES SECONDS
 * prints: the datagrams the kernel accepted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	static char payload[65536];
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	unsigned long long sent = 0;
	double end;
	size_t len;
	int fd, i;

	if (argc != 6) {
		fprintf(stderr, "usage: udp_flood SRC_IP DST_IP DST_PORT PAYLOAD_BYTES SECONDS\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &src.sin_addr);
	inet_pton(AF_INET, argv[2], &dst.sin_addr);
	dst.sin_port = htons((unsigned short)atoi(argv[3]));
	len = (size_t)atoi(argv[4]);
	end = now() + atof(argv[5]);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		perror("udp_flood: socket/bind");
		return 1;
	}
	memset(payload, 0xa5, sizeof(payload));
	iov.iov_base = payload;
	iov.iov_len = len;
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (now() < end) {
		int n = sendmmsg(fd, msgs, BATCH, 0);

		if (n > 0)
			sent += (unsigned long long)n;
		else if (errno != ENOBUFS && errno != EAGAIN)
			break;
	}
	printf("%llu\n", sent);
	return 0;
}
