/* http_conn: connection caps and idle keep-alive (see http_conn.h). */
#include "config.h"

#include "http_conn.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"

/* A refused connection's socket, kept open a moment after libevent let go of it. */
struct conn_linger {
	int fd; /* -1: free */
	struct event *ev;
};

struct conn {
	uint64_t ino; /* the socket's inode: 0 = no connection known on this descriptor */
	uint64_t active_ms; /* accepted, or last request byte or answer */
	unsigned char addr[16];
	bool busy; /* a request read whole and not yet answered (an event stream until it ends) */
	bool refused; /* answered 503 and shut: a request libevent still reads from it is not handled */
	bool served;  /* a request came on it: a client that may send the next one any moment */
};

static struct {
	struct conn *fd; /* indexed by descriptor */
	size_t cap, top, open;
	struct http_conn_limits lim;
	struct http_conn_counters ctr;
	const char *what;
	bool (*in_progress)(int fd);
	void (*fresh)(int fd);
	uint64_t idle_closed; /* in this sweep: one line for them all */
	struct log_limit idle_limit;
	struct bufferevent *pending[HTTP_CONN_PENDING];
	size_t npending;
	struct event *look;
	unsigned sweeps;
	struct log_limit limit;
	struct event_base *base;
	struct conn_linger linger[HTTP_CONN_LINGER_SLOTS];
} conns;

static uint64_t
fd_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint64_t)st.st_ino : 0;
}

static void
count(_Atomic uint64_t *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void
publish_open(void)
{
	if (conns.ctr.open)
		atomic_store_explicit(conns.ctr.open, conns.open, memory_order_relaxed);
}

static void
forget(int fd)
{
	if (conns.fd[fd].ino) {
		conns.fd[fd].ino = 0;
		conns.open--;
	}
}

/* Forgets every connection whose descriptor no longer holds its socket. */
static void
check_all(void)
{
	for (size_t fd = 0; conns.open && fd < conns.top; fd++)
		if (conns.fd[fd].ino && fd_ino((int)fd) != conns.fd[fd].ino)
			forget((int)fd);
	publish_open();
}

/* Nothing arriving, nothing being answered, and nothing unread even in the kernel: a request that
 * just arrived must not meet a closed connection. */
static bool
idle(int fd)
{
	int unread = 0;
	return !conns.fd[fd].busy && !(conns.in_progress && conns.in_progress(fd)) && ioctl(fd, FIONREAD, &unread) == 0 &&
	       unread == 0;
}

/* The connection to close to make room, other than except, of the client addr (NULL: of anyone);
 * -1 if none. First the oldest that never carried a request (what a flood of connections is), then
 * the oldest idle for HTTP_CONN_SPARE_MS: a kept-alive sender between two webhooks may be sending
 * the next at this moment, and a POST that meets a closed connection is lost, not retried. */
static int
victim(const unsigned char *addr, int except, uint64_t now)
{
	int best = -1;
	for (size_t fd = 0; fd < conns.top; fd++) {
		struct conn *c = &conns.fd[fd];
		if (!c->ino || (int)fd == except || (addr && memcmp(c->addr, addr, 16) != 0) || c->refused ||
		    (c->served && now - c->active_ms < HTTP_CONN_SPARE_MS) || !idle((int)fd))
			continue;
		struct conn *b = best >= 0 ? &conns.fd[best] : NULL;
		if (!b || (b->served && !c->served) || (b->served == c->served && c->active_ms < b->active_ms))
			best = (int)fd;
	}
	return best;
}

static void
peer_text(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		http_addr_text((struct sockaddr *)&ss, out, outlen);
	else
		snprintf(out, outlen, "?");
}

/* Closes fd's connection: libevent sees the end of the stream and frees it. */
static void
close_conn(int fd)
{
	shutdown(fd, SHUT_RDWR);
	forget(fd);
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct conn_linger *l = arg;
	char sink[4096];
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	close(l->fd);
	l->fd = -1;
}

/* Closes a refused connection without destroying its answer: the request the client sent at once
 * sits unread, and closing a socket with unread data resets it, which makes the client drop the
 * 503 it has not read yet. libevent lets go of the connection (it reads the end of the stream);
 * a copy of the socket stays open for HTTP_CONN_LINGER_MS, is drained, then closed. */
static void
close_refused(int fd)
{
	struct conn_linger *l = NULL;
	for (size_t i = 0; i < HTTP_CONN_LINGER_SLOTS && !l; i++)
		if (conns.linger[i].fd < 0)
			l = &conns.linger[i];
	int keep = l ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (keep >= 0) {
		struct timeval tv = { HTTP_CONN_LINGER_MS / 1000, (HTTP_CONN_LINGER_MS % 1000) * 1000 };
		l->ev = l->ev ? l->ev : evtimer_new(conns.base, linger_cb, l);
		if (l->ev && event_assign(l->ev, conns.base, keep, EV_TIMEOUT, linger_cb, l) == 0 &&
		    event_add(l->ev, &tv) == 0)
			l->fd = keep;
		else
			close(keep); /* as without a copy: the answer may be lost to a reset */
	}
	shutdown(fd, SHUT_RDWR);
	conns.fd[fd].refused = true; /* known until libevent lets go of it */
}

static void
refuse(int fd, const char *why, unsigned limit)
{
	char peer[64];
	peer_text(fd, peer, sizeof(peer));
	struct buf body = BUF_INIT, msg = BUF_INIT;
	buf_printf(&body, "{\"error\":\"too many connections are open %s (the limit is %u): try again shortly\","
	                  "\"code\":\"too_many_connections\",\"limit\":%u}",
	           why, limit, limit);
	buf_printf(&msg,
	           "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " HTTP_JSON "\r\nContent-Length: %zu\r\n"
	           "Retry-After: 1\r\n" HTTP_CANNED_HEADERS
	           "Connection: close\r\n\r\n",
	           body.len);
	buf_add(&msg, body.data, body.len);
	if (!msg.failed) {
		ssize_t w = send(fd, msg.data, msg.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	buf_free(&body);
	buf_free(&msg);
	close_refused(fd);
	count(conns.ctr.refused, 1);
	log_limited(&conns.limit, LOG_WARNING, "refused a connection from %s on the %s port: 503, %s (limit %u) and none idle",
	            peer, conns.what, why, limit);
}

static void
evict(int fd, const char *why)
{
	char peer[64];
	peer_text(fd, peer, sizeof(peer));
	close_conn(fd);
	count(conns.ctr.evicted, 1);
	log_limited(&conns.limit, LOG_NOTICE, "closed an idle connection from %s on the %s port to make room: %s", peer,
	            conns.what, why);
}

static size_t
client_count(const unsigned char *addr)
{
	size_t n = 0;
	for (size_t fd = 0; fd < conns.top; fd++)
		n += conns.fd[fd].ino && memcmp(conns.fd[fd].addr, addr, 16) == 0;
	return n;
}

/* A new connection on fd: known from now on, and within the caps or refused. */
static void
admit(int fd, uint64_t now)
{
	struct conn *c = &conns.fd[fd];
	forget(fd); /* a connection on this descriptor before has gone */
	if (conns.fresh)
		conns.fresh(fd);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(c, 0, sizeof(*c));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			c->addr[10] = c->addr[11] = 0xff;
			memcpy(c->addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		} else if (ss.ss_family == AF_INET6) {
			memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
			http_addr_group(c->addr);
		}
	}
	c->ino = fd_ino(fd);
	if (!c->ino)
		return;
	c->active_ms = now;
	conns.open++;
	if ((size_t)fd >= conns.top)
		conns.top = (size_t)fd + 1;
	if (conns.lim.max_client && conns.open > conns.lim.max_client &&
	    client_count(c->addr) > conns.lim.max_client) {
		check_all();
		if (conns.fd[fd].ino && client_count(c->addr) > conns.lim.max_client) {
			int v = victim(c->addr, fd, now);
			if (v >= 0) {
				evict(v, "its client is at --max-client-connections");
			} else {
				refuse(fd, "from this address", conns.lim.max_client);
				return;
			}
		}
	}
	if (conns.lim.max && conns.open > conns.lim.max) {
		check_all();
		if (conns.fd[fd].ino && conns.open > conns.lim.max) {
			int v = victim(NULL, fd, now);
			if (v >= 0) {
				evict(v, "the port is at --max-connections");
			} else {
				refuse(fd, "on this port", conns.lim.max);
				return;
			}
		}
	}
	publish_open();
}

/* Runs right after the accepting callback, in the same turn of the loop: evhttp has set each new
 * bufferevent's descriptor by then, and no byte of the connection has been read. */
static void
look_cb(evutil_socket_t unused, short what, void *arg)
{
	(void)unused;
	(void)what;
	(void)arg;
	uint64_t now = 0;
	for (size_t i = 0; i < conns.npending; i++) {
		struct bufferevent *bev = conns.pending[i];
		bufferevent_data_cb readcb = NULL;
		bufferevent_getcb(bev, &readcb, NULL, NULL, NULL);
		int fd = bufferevent_getfd(bev);
		/* readcb gone: evhttp freed the connection already (our reference kept the memory) */
		if (readcb && fd >= 0 && (size_t)fd < conns.cap) {
			if (!now) {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
			}
			admit(fd, now);
		}
		bufferevent_decref(bev);
	}
	conns.npending = 0;
}

int
http_conn_init(struct event_base *base, size_t fd_cap, const struct http_conn_limits *lim,
               const struct http_conn_counters *ctr, const char *what, bool (*in_progress)(int fd),
               void (*fresh)(int fd))
{
	conns.fresh = fresh;
	conns.fd = calloc(fd_cap, sizeof(*conns.fd));
	conns.look = event_new(base, -1, 0, look_cb, NULL);
	if (!conns.fd || !conns.look)
		return -1;
	conns.cap = fd_cap;
	conns.base = base;
	for (size_t i = 0; i < HTTP_CONN_LINGER_SLOTS; i++)
		conns.linger[i].fd = -1;
	conns.lim = *lim;
	if (ctr)
		conns.ctr = *ctr;
	conns.what = what;
	conns.in_progress = in_progress;
	return 0;
}

void
http_conn_accepted(struct bufferevent *bev)
{
	if (!conns.fd)
		return;
	/* More accepted in one turn than the list holds: those before this one have their descriptors
	 * already, so they are looked at now. */
	if (conns.npending == HTTP_CONN_PENDING)
		look_cb(-1, 0, NULL);
	bufferevent_incref(bev);
	conns.pending[conns.npending++] = bev;
	if (conns.npending == 1)
		event_active(conns.look, EV_TIMEOUT, 0); /* a second activation while pending is a no-op */
}

void
http_conn_active(int fd, uint64_t now_ms)
{
	if (fd >= 0 && (size_t)fd < conns.cap && conns.fd[fd].ino)
		conns.fd[fd].active_ms = now_ms;
}

void
http_conn_busy(int fd, bool busy, uint64_t now_ms)
{
	if (fd >= 0 && (size_t)fd < conns.cap && conns.fd[fd].ino) {
		conns.fd[fd].busy = busy;
		conns.fd[fd].served = true;
		conns.fd[fd].active_ms = now_ms;
	}
}

void
http_conn_sweep(uint64_t now_ms)
{
	if (!conns.fd || !conns.open)
		return;
	if (++conns.sweeps % HTTP_CONN_CHECK_SWEEPS == 0)
		check_all();
	if (!conns.lim.keepalive_ms)
		return;
	for (size_t fd = 0; conns.open && fd < conns.top; fd++) {
		struct conn *c = &conns.fd[fd];
		if (!c->ino || now_ms - c->active_ms < conns.lim.keepalive_ms || !idle((int)fd))
			continue;
		if (fd_ino((int)fd) != c->ino) {
			forget((int)fd); /* gone already */
			continue;
		}
		close_conn((int)fd); /* nothing was asked on it: a line per interval, not one each */
		count(conns.ctr.idle_closed, 1);
		conns.idle_closed++;
	}
	if (conns.idle_closed) {
		log_limited(&conns.idle_limit, LOG_INFO, "closed %llu idle connection(s) on the %s port after "
		            "--keepalive-timeout %u s", (unsigned long long)conns.idle_closed, conns.what,
		            conns.lim.keepalive_ms / 1000);
		conns.idle_closed = 0;
	}
	publish_open();
}

bool
http_conn_refused(int fd)
{
	return fd >= 0 && (size_t)fd < conns.cap && conns.fd[fd].ino && conns.fd[fd].refused;
}

size_t
http_conn_open(void)
{
	return conns.open;
}
