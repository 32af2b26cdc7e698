/* worker: the control-channel helpers both workers and the master use (see worker.h). */
#include "config.h"

#include "worker.h"

#include "http.h"
#include "http_access.h"
#include "metrics.h"
#include "options.h"
#include "http_secret.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

unsigned worker_restarts;
struct metrics_shared *worker_metrics;
struct http_secrets worker_secrets;
struct http_access worker_access;

void
worker_http_limits(const struct config *cfg, int w, size_t max_body, struct http_server_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->port = w == METRICS_INGEST ? "webhook" : "dashboard";
	lim->max_body = max_body;
	lim->max_headers = cfg->max_headers;
	lim->max_header_count = cfg->max_header_count;
	lim->timeout = cfg->request_timeout;
	lim->conn.max = cfg->max_connections;
	lim->conn.max_client = cfg->max_client_connections;
	lim->conn.keepalive_ms = cfg->keepalive_timeout * 1000u;
	if (worker_metrics) {
		lim->counters.open = &worker_metrics->conn_open[w];
		lim->counters.refused = &worker_metrics->conn_refused[w];
		lim->counters.evicted = &worker_metrics->conn_evicted[w];
		lim->counters.idle_closed = &worker_metrics->conn_idle_closed[w];
	}
}

uint64_t
worker_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
worker_send(int fd, const struct ctl_msg *m)
{
	ssize_t n = send(fd, m, sizeof(*m), MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

int
worker_recv(int fd, struct ctl_msg *m)
{
	ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? WORKER_RECV_NONE : WORKER_RECV_CLOSED;
	if (n == 0)
		return WORKER_RECV_CLOSED; /* end of file: a message is never empty */
	if (n != (ssize_t)sizeof(*m) || m->magic != CTL_MAGIC)
		return WORKER_RECV_BAD;
	return WORKER_RECV_OK;
}

static void
heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker_loop *w = arg;
	if (w->on_heartbeat)
		w->on_heartbeat(w->arg);
	struct ctl_msg m = { .magic = CTL_MAGIC, .type = CTL_HEARTBEAT, .pid = (uint32_t)getpid() };
	worker_send(WORKER_FD_MASTER, &m);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct worker_loop *w = arg;
	if (w->on_stop)
		w->on_stop(w->arg);
	else
		event_base_loopexit(w->base, NULL);
}

int
worker_loop_init(struct worker_loop *w, void (*on_heartbeat)(void *), void (*on_stop)(void *), void *arg)
{
	signal(SIGPIPE, SIG_IGN);
	w->on_heartbeat = on_heartbeat;
	w->on_stop = on_stop;
	w->arg = arg;
	w->base = event_base_new();
	if (!w->base)
		return -1;
	w->hb = event_new(w->base, -1, EV_PERSIST, heartbeat_cb, w);
	w->term = evsignal_new(w->base, SIGTERM, stop_cb, w);
	w->intr = evsignal_new(w->base, SIGINT, stop_cb, w);
	if (!w->hb || !w->term || !w->intr)
		return -1;
	struct timeval hb = { WORKER_HEARTBEAT_MS / 1000, (WORKER_HEARTBEAT_MS % 1000) * 1000 };
	event_add(w->hb, &hb);
	event_add(w->term, NULL);
	event_add(w->intr, NULL);
	return 0;
}

void
worker_loop_run(struct worker_loop *w)
{
	struct ctl_msg ready = { .magic = CTL_MAGIC, .type = CTL_READY, .pid = (uint32_t)getpid() };
	worker_send(WORKER_FD_MASTER, &ready);
	event_base_dispatch(w->base);
}

void
worker_loop_free(struct worker_loop *w)
{
	if (w->hb)
		event_free(w->hb);
	if (w->term)
		event_free(w->term);
	if (w->intr)
		event_free(w->intr);
	if (w->base)
		event_base_free(w->base);
}
