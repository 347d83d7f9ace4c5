/*
 * The bare reference of the tunnel benchmark: two TAP interfaces joined by a
 * plain C loop (poll, read one frame, write it to the other TAP), with no
 * driver and no NIC: the same kernel crossings as the driver's TAP path, at
 * the least cost user space can make them.
 *
 * usage: tap_bridge TAP_A TAP_B     (creates both, prints "ready", bridges until SIGTERM)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int tap(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static unsigned char frame[65536];
	struct pollfd p[2];
	int i;

	if (argc != 3) {
		fprintf(stderr, "usage: tap_bridge TAP_A TAP_B\n");
		return 2;
	}
	p[0].fd = tap(argv[1]);
	p[1].fd = tap(argv[2]);
	if (p[0].fd < 0 || p[1].fd < 0) {
		perror("tap_bridge: TUNSETIFF");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);
	p[0].events = p[1].events = POLLIN;
	while (!stop) {
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < 2; i++) {
			int budget = 64;

			while (budget--) {
				ssize_t n = read(p[i].fd, frame, sizeof(frame));

				if (n < 0)
					break;
				if (write(p[1 - i].fd, frame, (size_t)n) < 0 && errno != EINVAL && errno != EIO)
					break;
			}
		}
	}
	return 0;
}
