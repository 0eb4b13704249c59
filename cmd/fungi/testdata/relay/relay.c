/*
 * relay PORT HOST TARGETPORT: the least work a TCP forwarder can do, as the
 * floor that TestAccessDaemonsBench reads fungi's figures against. It
 * listens on 127.0.0.1:PORT, and for each connection it accepts it
 * connects to HOST:TARGETPORT and starts a thread per direction that does
 * a blocking read and a write until the end: two system calls per message,
 * no poll, no encryption, no framing, TCP_NODELAY on both sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
	int client, target;
	atomic_int running; /* directions still copying; the last one closes */
};

struct half {
	struct conn *c;
	int from, to;
};

static void *copy(void *arg) {
	struct half *h = arg;
	static __thread char buf[1 << 16];
	for (;;) {
		ssize_t n = read(h->from, buf, sizeof buf);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(h->to, buf + off, n - off);
			if (w < 0 && errno == EINTR) continue;
			if (w <= 0) goto done;
			off += w;
		}
	}
done:
	shutdown(h->to, SHUT_WR);
	if (atomic_fetch_sub(&h->c->running, 1) == 1) {
		close(h->c->client);
		close(h->c->target);
		free(h->c);
	}
	free(h);
	return NULL;
}

static void start(struct conn *c, int from, int to) {
	struct half *h = malloc(sizeof *h);
	h->c = c, h->from = from, h->to = to;
	pthread_t t;
	pthread_create(&t, NULL, copy, h);
	pthread_detach(t);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: relay PORT HOST TARGETPORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in listen_at = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	if (inet_pton(AF_INET, "127.0.0.1", &listen_at.sin_addr) != 1 || inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
		fprintf(stderr, "relay: HOST must be an IPv4 address\n");
		return 2;
	}
	int one = 1, ln = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ln, (struct sockaddr *)&listen_at, sizeof listen_at) != 0 || listen(ln, 1024) != 0) {
		perror("relay: listen");
		return 1;
	}
	for (;;) {
		int client = accept(ln, NULL, NULL);
		if (client < 0) continue;
		int t = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(t, (struct sockaddr *)&target, sizeof target) != 0) {
			close(client);
			close(t);
			continue;
		}
		setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c);
		c->client = client, c->target = t;
		atomic_init(&c->running, 2);
		start(c, client, t);
		start(c, t, client);
	}
}
