/* worker: what the master hands to its two workers, and the messages they exchange.
 *
 * A worker is forked from the master (no exec) and finds its descriptors at fixed numbers, like
 * systemd's LISTEN_FDS: everything else is closed right after fork, so a worker holds exactly what
 * its role needs (query never has a writable arena descriptor). Messages travel over SOCK_SEQPACKET
 * socketpairs created by the master, which keeps both ends open across worker restarts: a restarted
 * worker inherits the same channel and no message boundary is ever lost. */
#ifndef LIVEEVENTS_WORKER_H
#define LIVEEVENTS_WORKER_H

#include <stdint.h>

#include "options.h"

#define WORKER_FD_LISTEN 3   /* the listening socket of the worker's port */
#define WORKER_FD_ARENA 4    /* ingest: read-write; query: read-only */
#define WORKER_FD_DOORBELL 5 /* eventfd: ingest rings it after each commit, query waits on it */
#define WORKER_FD_PEER 6     /* query <-> ingest control channel (reset requests) */
#define WORKER_FD_MASTER 7   /* worker <-> master: ready and heartbeats */
#define WORKER_FD_COUNT 8

#define WORKER_HEARTBEAT_MS 1000   /* workers report this often ... */
#define WORKER_HUNG_MS 5000        /* ... and are killed and restarted when silent this long */
#define WORKER_STARTUP_GRACE_MS 60000 /* a worker still rebuilding its view before its first report */
#define WORKER_SAFETY_POLL_MS 1000 /* query re-checks the arena this often even without a doorbell */

#define CTL_MAGIC 0x4c56434cu /* "LVCL" */

enum ctl_type {
	CTL_READY = 1,      /* worker -> master: listening and serving */
	CTL_HEARTBEAT = 2,  /* worker -> master */
	CTL_RESET_REQ = 3,  /* query -> ingest: clear everything */
	CTL_RESET_DONE = 4, /* ingest -> query: committed */
};

struct ctl_msg {
	uint32_t magic;
	uint32_t type;
	uint64_t id;          /* matches a reply to its request */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC: a request found after this is stale and ignored */
	uint64_t generation;  /* RESET_DONE: the new generation */
	int32_t status;       /* 0 = done */
	uint32_t pid;
};

/* What both workers' event loops share: the heartbeat to the master, SIGTERM/SIGINT, and the ready
 * message once they serve. */
struct event_base;
struct event;
struct worker_loop {
	struct event_base *base;
	struct event *hb, *term, *intr;
	void (*on_heartbeat)(void *arg); /* may be NULL */
	void (*on_stop)(void *arg);      /* may be NULL: the loop simply ends */
	void *arg;
};
int worker_loop_init(struct worker_loop *w, void (*on_heartbeat)(void *), void (*on_stop)(void *), void *arg);
/* Reports ready to the master, then runs until the loop is ended. */
void worker_loop_run(struct worker_loop *w);
void worker_loop_free(struct worker_loop *w);

/* How many times the master restarted this worker's role before this start (0 at the daemon's start):
 * warnings about the configuration are worth saying once, not at every restart. */
extern unsigned worker_restarts;
/* The counters the three processes share (metrics.h), mapped by the master before it forks. */
struct metrics_shared;
extern struct metrics_shared *worker_metrics;
/* The webhook secrets as the master last read them (it re-reads the file as ingest does): a new
 * ingest whose file became unusable starts with these rather than refusing to start, which would
 * stop every webhook. Query wipes its inherited copy at once. */
struct http_secrets;
extern struct http_secrets worker_secrets;
/* The dashboard's token and allowed Host names, set by the master before it forks; ingest wipes
 * its copy. */
struct http_access;
extern struct http_access worker_access;

/* The limits a worker's HTTP server applies (options.h), counted in the worker's metrics. */
struct http_server_limits;
void worker_http_limits(const struct config *cfg, int metrics_worker, size_t max_body, struct http_server_limits *lim);

int ingest_main(const struct config *cfg);
int query_main(const struct config *cfg);
/* Sends one message; 0 or -1 (the channel is non-blocking). */
int worker_send(int fd, const struct ctl_msg *m);
/* Receives one message: WORKER_RECV_OK with *m filled, WORKER_RECV_NONE when nothing is pending,
 * WORKER_RECV_BAD for a malformed message (skip it), WORKER_RECV_CLOSED when every other end of the
 * channel is closed (the master, which holds them all, is gone). */
enum worker_recv_result { WORKER_RECV_NONE = 0, WORKER_RECV_OK = 1, WORKER_RECV_BAD = -1, WORKER_RECV_CLOSED = -2 };
int worker_recv(int fd, struct ctl_msg *m);
uint64_t worker_monotonic_ns(void);

#endif
