/* http_conn: the connections a server holds, and the caps on them. A port takes at most
 * --max-connections at once, and one client address at most --max-client-connections of them, so
 * that one client (or a few) opening connections and sending nothing, or a byte at a time, cannot
 * take every connection from the others. When a new connection would pass a cap, the oldest idle
 * connection in its way is closed to make room (idle: no request arriving, none being answered, no
 * event stream; nothing is lost by closing it, as nginx does with its keep-alive connections); when
 * none is idle, the new connection is answered 503 and closed. An idle connection is also closed
 * after --keepalive-timeout. Caps hit are logged once per interval and counted.
 *
 * libevent 2.1 tells nobody when it accepts a connection or frees one, so a connection is learned
 * of from the bufferevent evhttp asks us for (its descriptor is set just after, and read here in the
 * same turn of the loop), and its end from its descriptor's socket inode (the way the request
 * deadlines in http.c tell a reused descriptor from the one they timed). */
#ifndef LIVEEVENTS_HTTP_CONN_H
#define LIVEEVENTS_HTTP_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#define HTTP_CONN_PENDING 256    /* connections accepted in one turn of the loop, waiting to be looked at */
#define HTTP_CONN_CHECK_SWEEPS 4 /* every this many sweeps, the table is checked for connections gone */
#define HTTP_CONN_LINGER_SLOTS 64 /* refused connections kept open at once so their 503 is read */
#define HTTP_CONN_LINGER_MS 1000
#define HTTP_CONN_SPARE_MS 5000 /* a connection that carried a request this recently is not closed to make room */

/* Where the caps' counts go (any may be NULL): the shared metrics of the worker that serves the port. */
struct http_conn_counters {
	_Atomic uint64_t *open;        /* a gauge */
	_Atomic uint64_t *refused;     /* answered 503: a cap was reached and nothing was idle */
	_Atomic uint64_t *evicted;     /* idle connections closed to make room */
	_Atomic uint64_t *idle_closed; /* idle past --keepalive-timeout */
};

struct http_conn_limits {
	unsigned max;          /* per port; 0 = no cap */
	unsigned max_client;   /* per client address; 0 = no cap */
	unsigned keepalive_ms; /* 0 = idle connections are left to libevent's timeout */
};

/* Sets the caps up for the process's one server; in_progress(fd) tells whether a request is
 * arriving on fd, and fresh(fd) is told of each new connection before its first byte is read. -1
 * when out of memory. port names the port in the log ("webhook"). */
int http_conn_init(struct event_base *base, size_t fd_cap, const struct http_conn_limits *lim,
                   const struct http_conn_counters *ctr, const char *port, bool (*in_progress)(int fd),
                   void (*fresh)(int fd));
/* evhttp made bev for a connection it just accepted. */
void http_conn_accepted(struct bufferevent *bev);
/* Request bytes arrived on fd at now_ms. */
void http_conn_active(int fd, uint64_t now_ms);
/* A request on fd was read whole and is being answered (busy), or its answer went out. */
void http_conn_busy(int fd, bool busy, uint64_t now_ms);
/* Closes what was idle too long and forgets what has gone; run by the request sweep. */
void http_conn_sweep(uint64_t now_ms);
/* Whether fd's connection was refused: what libevent still reads from it (the request a client sent
 * at once) must not be handled. */
bool http_conn_refused(int fd);
/* Open connections (as last known). */
size_t http_conn_open(void);

#endif
