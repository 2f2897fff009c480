/*
 * lwiphost: a TCP host built on lwIP (Debian's liblwip, the stack of many embedded devices), a
 * third TCP implementation for tcpstate's lab. It speaks the same stdin/stdout protocol as
 * internal/netstackhost (see its main.go), so the lab drives both the same way.
 *
 *   PRECONFIGURED_TAPIF=lw0 lwiphost -addr 192.0.2.2/24 -gw 192.0.2.1
 *
 * lwIP's unix port (tapif) reads and writes Ethernet frames on the TAP device named by
 * PRECONFIGURED_TAPIF; the lab bridges that TAP device with the namespace's veth. IPv4 only:
 * lwIP learns IPv6 routers from router advertisements only, and the lab sends none.
 *
 * Build: cc -O2 -I/usr/include/lwip -o lwiphost lwiphost.c -llwip  (package liblwip-dev)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#include <arpa/inet.h>

#include <lwip/tcpip.h>
#include <lwip/sockets.h>
#include <lwip/tcp.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/netif.h>
#include <netif/tapif.h>

#define MAXID 256

struct ep {
	int fd;          /* lwIP socket, -1 once closed */
	int listener;
	int dialed, seen_estab, linger0;
	struct sockaddr_in local, peer;
};

static struct ep eps[MAXID];
static struct netif nif;
static volatile int ready;

static void init_done(void *arg) { (void)arg; ready = 1; }

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_ap(const char *s, struct sockaddr_in *sa) {
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon - s >= (int)sizeof host) return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static const char *ap_str(const struct sockaddr_in *sa, char *buf, int wildport) {
	char a[32];
	inet_ntop(AF_INET, &sa->sin_addr, a, sizeof a);
	if (wildport) sprintf(buf, "%s:*", a);
	else sprintf(buf, "%s:%d", a, ntohs(sa->sin_port));
	return buf;
}

/* ss's name of an lwIP pcb state (enum tcp_state, lwip/tcpbase.h). */
static const char *ss_name(enum tcp_state s) {
	switch (s) {
	case LISTEN: return "LISTEN";
	case SYN_SENT: return "SYN-SENT";
	case SYN_RCVD: return "SYN-RECV";
	case ESTABLISHED: return "ESTAB";
	case FIN_WAIT_1: return "FIN-WAIT-1";
	case FIN_WAIT_2: return "FIN-WAIT-2";
	case CLOSE_WAIT: return "CLOSE-WAIT";
	case CLOSING: return "CLOSING";
	case LAST_ACK: return "LAST-ACK";
	case TIME_WAIT: return "TIME-WAIT";
	default: return "CLOSE";
	}
}

static int match(struct tcp_pcb *p, const struct ep *e) {
	return ip_2_ip4(&p->local_ip)->addr == e->local.sin_addr.s_addr && p->local_port == ntohs(e->local.sin_port) &&
	       ip_2_ip4(&p->remote_ip)->addr == e->peer.sin_addr.s_addr && p->remote_port == ntohs(e->peer.sin_port);
}

/* state: the pcb of the endpoint's 4-tuple (or its listener), found in lwIP's own lists. */
static const char *state(const struct ep *e) {
	const char *st = "CLOSE";
	struct tcp_pcb *p;
	LOCK_TCPIP_CORE();
	if (e->listener) {
		struct tcp_pcb_listen *l;
		for (l = tcp_listen_pcbs.listen_pcbs; l; l = l->next)
			if (l->local_port == ntohs(e->local.sin_port)) st = "LISTEN";
	} else {
		for (p = tcp_active_pcbs; p; p = p->next)
			if (match(p, e)) st = ss_name(p->state);
		for (p = tcp_tw_pcbs; p; p = p->next)
			if (match(p, e)) st = ss_name(p->state);
	}
	UNLOCK_TCPIP_CORE();
	return st;
}

static void ss(void) {
	char a[64], b[64];
	struct tcp_pcb *p;
	struct tcp_pcb_listen *l;
	printf("State      Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n");
	LOCK_TCPIP_CORE();
	for (l = tcp_listen_pcbs.listen_pcbs; l; l = l->next) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(l->local_port)};
		sa.sin_addr.s_addr = ip_2_ip4(&l->local_ip)->addr;
		ap_str(&sa, a, 0);
		sa.sin_addr.s_addr = 0;
		printf("%-10s 0      0      %s %s\n", "LISTEN", a, ap_str(&sa, b, 1));
	}
	struct tcp_pcb *lists[2] = {tcp_active_pcbs, tcp_tw_pcbs};
	for (int i = 0; i < 2; i++)
		for (p = lists[i]; p; p = p->next) {
			if (p->state == CLOSED) continue;
			struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons(p->local_port)};
			struct sockaddr_in ra = {.sin_family = AF_INET, .sin_port = htons(p->remote_port)};
			la.sin_addr.s_addr = ip_2_ip4(&p->local_ip)->addr;
			ra.sin_addr.s_addr = ip_2_ip4(&p->remote_ip)->addr;
			printf("%-10s 0      0      %s %s\n", ss_name(p->state), ap_str(&la, a, 0), ap_str(&ra, b, 0));
		}
	UNLOCK_TCPIP_CORE();
	printf("end\n");
}

static void nonblock(int fd) {
	int on = 1;
	lwip_ioctl(fd, FIONBIO, &on);
}

static char reply[512];

/* run one command; returns 0 and sets reply on success. */
static int run(char **f, int n) {
	int id = n > 1 ? atoi(f[1]) : -1;
	if (id < 0 || id >= MAXID) { sprintf(reply, "bad id"); return -1; }
	struct ep *e = &eps[id];
	reply[0] = 0;
	if (!strcmp(f[0], "listen")) {
		memset(e, 0, sizeof *e);
		if (n < 3 || parse_ap(f[2], &e->local)) { sprintf(reply, "bad address (IPv4 only)"); return -1; }
		e->fd = lwip_socket(AF_INET, SOCK_STREAM, 0);
		int on = 1;
		lwip_setsockopt(e->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (n > 3 && atoi(f[3]) > 0) { int rb = atoi(f[3]); lwip_setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb); }
		if (lwip_bind(e->fd, (struct sockaddr *)&e->local, sizeof e->local) || lwip_listen(e->fd, 128)) {
			sprintf(reply, "bind/listen: %s", strerror(errno)); return -1;
		}
		nonblock(e->fd);
		e->listener = 1;
		return 0;
	}
	if (!strcmp(f[0], "dial")) {
		memset(e, 0, sizeof *e);
		if (n < 3 || parse_ap(f[2], &e->peer)) { sprintf(reply, "bad address (IPv4 only)"); return -1; }
		e->fd = lwip_socket(AF_INET, SOCK_STREAM, 0);
		e->dialed = 1;
		nonblock(e->fd);
		if (lwip_connect(e->fd, (struct sockaddr *)&e->peer, sizeof e->peer) && errno != EINPROGRESS) {
			sprintf(reply, "connect: %s", strerror(errno)); return -1;
		}
		socklen_t l = sizeof e->local;
		lwip_getsockname(e->fd, (struct sockaddr *)&e->local, &l);
		ap_str(&e->local, reply, 0);
		return 0;
	}
	if (!strcmp(f[0], "accept")) {
		struct ep *l = &eps[atoi(f[2])];
		double end = now() + atoi(f[3]) / 1000.0;
		memset(e, 0, sizeof *e);
		for (;;) {
			socklen_t sl = sizeof e->peer;
			int fd = lwip_accept(l->fd, (struct sockaddr *)&e->peer, &sl);
			if (fd >= 0) {
				e->fd = fd;
				nonblock(fd);
				sl = sizeof e->local;
				lwip_getsockname(fd, (struct sockaddr *)&e->local, &sl);
				ap_str(&e->peer, reply, 0);
				return 0;
			}
			if (now() > end) { sprintf(reply, "accept: timeout"); return -1; }
			usleep(500);
		}
	}
	if (!strcmp(f[0], "state")) { sprintf(reply, "%s", state(e)); return 0; }
	if (!strcmp(f[0], "wait")) {
		double end = now() + atoi(f[3]) / 1000.0;
		for (;;) {
			const char *st = state(e);
			char want[128], *tok, *save;
			snprintf(want, sizeof want, "%s", f[2]);
			if (!strcmp(st, "ESTAB")) e->seen_estab = 1;
			for (tok = strtok_r(want, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (!strcmp(tok, st)) { sprintf(reply, "%s", st); return 0; }
			if (now() > end) { sprintf(reply, "still %s: timeout waiting for %s", st, f[2]); return -1; }
			usleep(500);
		}
	}
	if (!strcmp(f[0], "write") || !strcmp(f[0], "writeblocked")) {
		int blocked = !strcmp(f[0], "writeblocked");
		long left = blocked ? -1 : atol(f[2]), total = 0;
		char buf[4096];
		for (int i = 0; i < (int)sizeof buf; i++) buf[i] = 'a' + i % 26;
		double end = now() + 5;
		while (left != 0) {
			int m = lwip_send(e->fd, buf, left < 0 || left > (long)sizeof buf ? sizeof buf : (size_t)left, 0);
			if (m > 0) { total += m; if (left > 0) left -= m; continue; }
			if (errno == EWOULDBLOCK || errno == EAGAIN) {
				if (blocked) break;
				if (now() > end) { sprintf(reply, "write: timeout"); return -1; }
				usleep(500);
				continue;
			}
			sprintf(reply, "write: %s", strerror(errno));
			return -1;
		}
		sprintf(reply, "%ld", total);
		return 0;
	}
	if (!strcmp(f[0], "read") || !strcmp(f[0], "readeof")) {
		int eofmode = !strcmp(f[0], "readeof");
		long want = eofmode ? -1 : atol(f[2]), got = 0;
		double end = now() + atoi(f[eofmode ? 2 : 3]) / 1000.0;
		char buf[4096];
		for (;;) {
			if (!eofmode && got >= want) break;
			int m = lwip_recv(e->fd, buf, sizeof buf, 0);
			if (m > 0) { got += m; continue; }
			if (m == 0) {
				if (eofmode) break;
				sprintf(reply, "EOF after %ld of %ld bytes", got, want);
				return -1;
			}
			if (errno != EWOULDBLOCK && errno != EAGAIN) { sprintf(reply, "read: %s", strerror(errno)); return -1; }
			if (now() > end) { sprintf(reply, "read: timeout"); return -1; }
			usleep(500);
		}
		sprintf(reply, "%ld", got);
		return 0;
	}
	if (!strcmp(f[0], "shutdown")) return lwip_shutdown(e->fd, SHUT_WR) ? (sprintf(reply, "shutdown: %s", strerror(errno)), -1) : 0;
	if (!strcmp(f[0], "close")) {
		if (e->linger0) {
			/* lwIP answers close() under SO_LINGER {1, 0} with a FIN when nothing is
			 * unsent (seen in the lab: the peer went to CLOSE_WAIT); an lwIP application
			 * that means to reset calls tcp_abort(), as this does. */
			struct tcp_pcb *p, *hit = NULL;
			LOCK_TCPIP_CORE();
			for (p = tcp_active_pcbs; p; p = p->next)
				if (match(p, e)) hit = p;
			if (hit) tcp_abort(hit);
			UNLOCK_TCPIP_CORE();
		}
		lwip_close(e->fd);
		e->fd = -1;
		return 0;
	}
	if (!strcmp(f[0], "linger0")) {
		struct linger lg = {1, 0};
		e->linger0 = 1;
		return lwip_setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) ? (sprintf(reply, "SO_LINGER: %s", strerror(errno)), -1) : 0;
	}
	if (!strcmp(f[0], "rcvbuf")) {
		int rb = atoi(f[2]);
		lwip_setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
		return 0;
	}
	if (!strcmp(f[0], "lasterror")) {
		int v = 0;
		socklen_t l = sizeof v;
		if (e->fd >= 0) lwip_getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &v, &l);
		/* lwIP reports a refused connect() as ECONNRESET (err_to_errno(ERR_RST)): a RST
		 * before the connection was ever established is a refusal. */
		if (v == ECONNRESET && e->dialed && !e->seen_estab) v = ECONNREFUSED;
		sprintf(reply, "%s", v == 0 ? "none" : v == ECONNREFUSED ? "refused" : v == ECONNRESET ? "reset" : "other");
		return 0;
	}
	sprintf(reply, "unknown command %s", f[0]);
	return -1;
}

int main(int argc, char **argv) {
	const char *addr = NULL, *gw = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-addr")) addr = argv[i + 1];
		else if (!strcmp(argv[i], "-gw")) gw = argv[i + 1];
	}
	if (!addr || !getenv("PRECONFIGURED_TAPIF")) {
		fprintf(stderr, "usage: PRECONFIGURED_TAPIF=TAP lwiphost -addr 192.0.2.2/24 [-gw 192.0.2.1]\n");
		return 2;
	}
	char a[64];
	snprintf(a, sizeof a, "%s", addr);
	char *slash = strchr(a, '/');
	int bits = slash ? atoi(slash + 1) : 32;
	if (slash) *slash = 0;
	ip4_addr_t ip, mask, gwa;
	if (!ip4addr_aton(a, &ip) || (gw && !ip4addr_aton(gw, &gwa))) {
		fprintf(stderr, "lwiphost: bad -addr or -gw (IPv4 only)\n");
		return 2;
	}
	if (!gw) ip4_addr_set_zero(&gwa);
	ip4_addr_set_u32(&mask, bits ? htonl(~0u << (32 - bits)) : 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tcpip_init(init_done, NULL);
	while (!ready) usleep(1000);
	LOCK_TCPIP_CORE();
	netif_add(&nif, &ip, &mask, &gwa, NULL, tapif_init, tcpip_input);
	netif_set_default(&nif);
	netif_set_up(&nif);
	netif_set_link_up(&nif);
	UNLOCK_TCPIP_CORE();
	char line[512];
	while (fgets(line, sizeof line, stdin)) {
		char *f[8];
		int n = 0;
		for (char *tok = strtok(line, " \t\n"); tok && n < 8; tok = strtok(NULL, " \t\n")) f[n++] = tok;
		if (n == 0) continue;
		if (!strcmp(f[0], "quit")) { printf("ok\n"); break; }
		if (!strcmp(f[0], "ss")) { ss(); continue; }
		if (run(f, n) == 0) printf("ok %s\n", reply);
		else printf("err %s\n", reply);
	}
	return 0;
}
