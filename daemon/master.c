/* master: the supervisor. It creates (or validates) the arena and holds its lock, binds both
 * listening sockets, forks the ingest and query workers, restarts a worker that dies (with back-off
 * and a rate limit) while its listening socket stays open in the kernel, speaks sd_notify, and stops
 * everything on SIGTERM. It never reads or writes records and serves no request, so it has nothing
 * that can crash it (PostgreSQL's postmaster follows the same rule). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "arena.h"
#include "http.h"
#include "http_access.h"
#include "http_secret.h"
#include "log.h"
#include "metrics.h"
#include "master.h"
#include "notify.h"
#include "worker.h"

#define MASTER_STABLE_MS 10000   /* a worker that lived this long restarts with the shortest back-off */
#define MASTER_TICK_MS 500       /* supervision timer: hung workers are found within this */
#define MASTER_WATCHDOG_DIVISOR 4 /* ping systemd this many times per WatchdogSec: one missed ping is not fatal */
#define MASTER_MAX_RESTART_LOG 64

struct child {
	const char *role;
	int (*main)(const struct config *);
	pid_t pid;
	int fds[WORKER_FD_COUNT];  /* what the worker gets, by number; -1 = nothing */
	int status_master_end;     /* master's end of the worker <-> master channel */
	bool ready, ever_ready;
	uint64_t started_ms, last_hb_ms;
	unsigned backoff_ms;
	uint64_t restart_ms[MASTER_MAX_RESTART_LOG];
	unsigned nrestarts;
	struct event *restart_ev, *status_ev;
	struct master *m;
};

struct master {
	const struct config *cfg;
	struct event_base *base;
	struct child child[2];
	int signal_fd;
	bool stopping, notified_ready;
	int exit_code;
	struct event *sig_ev, *tick_ev, *watchdog_ev, *kill_ev;
	pid_t pid;
};

static uint64_t
mono_ms(void)
{
	return worker_monotonic_ns() / 1000000;
}

static void spawn(struct child *c);

/* In the freshly forked worker: the worker's descriptors go to their fixed numbers and everything
 * else is closed, signals return to their defaults, and the worker dies with the master. */
static void
become_worker(struct child *c, pid_t master_pid)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	/* Signals meant for the daemon as a whole (a reload, a user's kill -USR1) are the master's
	 * business: a worker hit by one by mistake stays up. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGALRM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master_pid)
		_exit(1);
	/* Copies above the fixed range first, so that moving one descriptor into place never
	 * overwrites another that is still to be moved. */
	int tmp[WORKER_FD_COUNT];
	for (int i = 0; i < WORKER_FD_COUNT; i++) {
		tmp[i] = c->fds[i] >= 0 ? fcntl(c->fds[i], F_DUPFD, WORKER_FD_COUNT) : -1;
		if (c->fds[i] >= 0 && tmp[i] < 0) {
			log_msg(LOG_ERR, "%s: cannot pass descriptor %d: %s", c->role, i, strerror(errno));
			_exit(1);
		}
	}
	for (int i = 3; i < WORKER_FD_COUNT; i++) {
		if (tmp[i] >= 0) {
			if (dup2(tmp[i], i) < 0)
				_exit(1);
		} else {
			close(i);
		}
	}
	close_range(WORKER_FD_COUNT, ~0u, 0);
	prctl(PR_SET_NAME, c->role);
	log_set_role(c->role);
	worker_restarts = c->nrestarts;
	_exit(c->main(c->m->cfg) == 0 ? 0 : 1);
}

static void
spawn(struct child *c)
{
	struct master *m = c->m;
	c->ready = false;
	pid_t pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "cannot fork %s: %s", c->role, strerror(errno));
		c->pid = 0;
		struct timeval tv = { 1, 0 };
		evtimer_add(c->restart_ev, &tv);
		return;
	}
	if (pid == 0)
		become_worker(c, m->pid);
	c->pid = pid;
	c->started_ms = c->last_hb_ms = mono_ms();
}

static void
restart_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct child *c = arg;
	if (!c->m->stopping)
		spawn(c);
}

static void
check_ready(struct master *m)
{
	if (m->notified_ready || !m->child[0].ready || !m->child[1].ready)
		return;
	m->notified_ready = true;
	notify_send("READY=1\nSTATUS=webhooks on %s, dashboard on %s\nMAINPID=%d", m->cfg->webhook.text,
	            m->cfg->dashboard.text, (int)m->pid);
	log_msg(LOG_NOTICE, "ready: webhooks on http://%s/webhook, dashboard on http://%s/", m->cfg->webhook.text,
	        m->cfg->dashboard.text);
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct child *c = arg;
	struct ctl_msg msg;
	int rc;
	while ((rc = worker_recv(fd, &msg)) == WORKER_RECV_OK) {
		/* Messages written by a worker that has since died may still be queued: only the current
		 * worker's count. */
		if (msg.pid != (uint32_t)c->pid)
			continue;
		c->last_hb_ms = mono_ms();
		if (msg.type == CTL_READY) {
			bool again = c->ever_ready;
			c->ready = c->ever_ready = true;
			if (again) {
				log_msg(LOG_NOTICE, "%s (pid %d) is serving again", c->role, (int)c->pid);
				struct master *m = c->m;
				if (m->child[0].ready && m->child[1].ready)
					notify_send("STATUS=webhooks on %s, dashboard on %s", m->cfg->webhook.text,
					            m->cfg->dashboard.text);
			}
			check_ready(c->m);
		}
	}
}

static void
stop_children(struct master *m, int sig)
{
	for (int i = 0; i < 2; i++)
		if (m->child[i].pid > 0)
			kill(m->child[i].pid, sig);
}

static void
kill_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	log_msg(LOG_WARNING, "workers did not stop within %u ms: killing them", m->cfg->stop_timeout_ms);
	stop_children(m, SIGKILL);
}

static void
begin_stop(struct master *m, int code)
{
	if (m->stopping)
		return;
	m->stopping = true;
	m->exit_code = code;
	notify_send("STOPPING=1");
	for (int i = 0; i < 2; i++) {
		evtimer_del(m->child[i].restart_ev);
		/* New connections are refused from now on (the workers close their copies too) rather
		 * than accepted into a backlog that is reset when we exit: a sender learns at once. */
		if (m->child[i].fds[WORKER_FD_LISTEN] >= 0) {
			close(m->child[i].fds[WORKER_FD_LISTEN]);
			m->child[i].fds[WORKER_FD_LISTEN] = -1;
		}
	}
	stop_children(m, SIGTERM);
	struct timeval tv = { m->cfg->stop_timeout_ms / 1000, (m->cfg->stop_timeout_ms % 1000) * 1000 };
	evtimer_add(m->kill_ev, &tv);
	if (m->child[0].pid <= 0 && m->child[1].pid <= 0)
		event_base_loopexit(m->base, NULL);
}

/* Back-off doubles while a worker keeps dying young; a rate limit turns a crash loop into an exit
 * so that systemd's Restart= policy (and a human) takes over. */
static void
schedule_restart(struct master *m, struct child *c)
{
	uint64_t now = mono_ms();
	const struct config *cfg = m->cfg;
	if (now - c->started_ms >= MASTER_STABLE_MS || c->backoff_ms == 0)
		c->backoff_ms = cfg->restart_backoff_ms;
	else
		c->backoff_ms = c->backoff_ms * 2 > cfg->restart_backoff_max_ms ? cfg->restart_backoff_max_ms
		                                                                  : c->backoff_ms * 2;
	unsigned limit = cfg->restart_limit < MASTER_MAX_RESTART_LOG ? cfg->restart_limit : MASTER_MAX_RESTART_LOG;
	if (limit) {
		uint64_t oldest = c->restart_ms[c->nrestarts % limit];
		if (c->nrestarts >= limit && now - oldest < (uint64_t)cfg->restart_interval * 1000) {
			log_msg(LOG_ERR, "%s was restarted %u times within %u s and died again: giving up, stopping the daemon",
			        c->role, limit, cfg->restart_interval);
			begin_stop(m, 1);
			return;
		}
		c->restart_ms[c->nrestarts % limit] = now;
	}
	log_msg(LOG_NOTICE, "restarting %s in %u ms", c->role, c->backoff_ms);
	c->nrestarts++;
	atomic_fetch_add_explicit(&worker_metrics->restarts[c == &m->child[0] ? METRICS_INGEST : METRICS_QUERY], 1,
	                          memory_order_relaxed);
	notify_send("STATUS=restarting %s (restart %u)", c->role, c->nrestarts);
	struct timeval tv = { c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000 };
	evtimer_add(c->restart_ev, &tv);
}

static void
reap(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = NULL;
		for (int i = 0; i < 2; i++)
			if (m->child[i].pid == pid)
				c = &m->child[i];
		if (!c)
			continue;
		c->pid = 0;
		c->ready = false;
		if (m->stopping) {
			if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				log_msg(LOG_WARNING, "%s exited with status %d while stopping", c->role, WEXITSTATUS(status));
		} else if (WIFSIGNALED(status)) {
			log_msg(LOG_ERR, "%s (pid %d) was killed by signal %d (%s)", c->role, (int)pid, WTERMSIG(status),
			        strsignal(WTERMSIG(status)));
		} else {
			log_msg(LOG_ERR, "%s (pid %d) exited with status %d", c->role, (int)pid, WEXITSTATUS(status));
		}
		if (!m->stopping)
			schedule_restart(m, c);
	}
	if (m->stopping && m->child[0].pid <= 0 && m->child[1].pid <= 0)
		event_base_loopexit(m->base, NULL);
}

static void
signal_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct master *m = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(m);
			break;
		case SIGTERM:
		case SIGINT:
			log_msg(LOG_NOTICE, "%s: stopping", strsignal((int)si.ssi_signo));
			begin_stop(m, m->exit_code);
			break;
		case SIGHUP:
			log_msg(LOG_NOTICE, "SIGHUP: nothing to reload (all settings are command-line options)");
			notify_send("READY=1");
			break;
		default:
			/* a stray kill -USR1 must not take the daemon down, and leaves a trace */
			log_msg(LOG_NOTICE, "%s from pid %u: ignored", strsignal((int)si.ssi_signo), si.ssi_pid);
			break;
		}
	}
}

static bool
healthy(const struct child *c, uint64_t now)
{
	return c->pid > 0 && c->ready && now - c->last_hb_ms < WORKER_HUNG_MS;
}

/* A worker that stops reporting is killed and restarted here, with its listening socket kept
 * open, long before systemd's watchdog would restart the whole unit with its ports closed. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	uint64_t now = mono_ms();
	for (int i = 0; i < 2; i++) {
		struct child *c = &m->child[i];
		uint64_t limit = c->ready ? WORKER_HUNG_MS : WORKER_STARTUP_GRACE_MS;
		if (!m->stopping && c->pid > 0 && now - c->last_hb_ms > limit) {
			log_msg(LOG_ERR, "%s (pid %d) has not reported for %llu ms: killing it", c->role, (int)c->pid,
			        (unsigned long long)(now - c->last_hb_ms));
			kill(c->pid, SIGKILL);
			c->last_hb_ms = now;
		}
	}
	/* The last good secrets, for an ingest that starts while the file is unusable (ingest itself
	 * logs what is wrong with it). */
	const char *path = m->cfg->webhook_secret_file;
	if (path[0] && http_secrets_changed(&worker_secrets, path) == 1) {
		char err[256];
		(void)http_secrets_load(&worker_secrets, path, err, sizeof(err));
	}
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	uint64_t now = mono_ms();
	/* The watchdog vouches for the whole daemon, not just for a live master. */
	if (healthy(&m->child[0], now) && healthy(&m->child[1], now)) {
		notify_send("WATCHDOG=1");
		return;
	}
	for (int i = 0; i < 2; i++)
		if (!healthy(&m->child[i], now))
			log_msg(LOG_WARNING, "watchdog not fed: %s is %s", m->child[i].role,
			        m->child[i].pid <= 0 ? "being restarted" : !m->child[i].ready ? "starting" : "not reporting");
}

static int
make_pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

/* The first IPv4 address of an interface that is up and not loopback, as text ("" if none). */
static void
lan_address(char *out, size_t outlen)
{
	struct ifaddrs *ifs;
	out[0] = '\0';
	if (getifaddrs(&ifs) < 0)
		return;
	for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK))
			inet_ntop(AF_INET, &((const struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)outlen);
	freeifaddrs(ifs);
}

/* The dashboard's access: its token (read, or made at the first start), the names it answers to,
 * and the URL to open, logged once at every start as Jupyter does: the one log line that carries
 * the token, so the journal or the terminal of scripts/run tells a new user where to go. */
static int
setup_access(const struct config *cfg)
{
	struct http_access *a = &worker_access;
	memset(a, 0, sizeof(*a));
	char err[512], hostport[CONFIG_MAX_ADDR + 8];
	unsigned port = ntohs(cfg->dashboard.ss.ss_family == AF_INET6
	                              ? ((const struct sockaddr_in6 *)&cfg->dashboard.ss)->sin6_port
	                              : ((const struct sockaddr_in *)&cfg->dashboard.ss)->sin_port);
	snprintf(a->cookie, sizeof(a->cookie), "liveevents_%u", port);
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
		a->hostname[0] = '\0';
	for (int i = 0; i < cfg->nallowed_hosts; i++) {
		if (strcmp(cfg->allowed_hosts[i], "*") == 0)
			a->any_host = true;
		else
			snprintf(a->allowed[a->nallowed++], sizeof(a->allowed[0]), "%s", cfg->allowed_hosts[i]);
	}
	/* Where to point a browser: a wildcard address is reached by this machine's name. */
	bool wildcard = false;
	if (cfg->dashboard.ss.ss_family == AF_INET)
		wildcard = ((const struct sockaddr_in *)&cfg->dashboard.ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	else if (cfg->dashboard.ss.ss_family == AF_INET6)
		wildcard = IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&cfg->dashboard.ss)->sin6_addr);
	/* Where to point a browser. A wildcard address is reached by one of this machine's addresses
	 * (a bare host name often does not resolve on the LAN), else by its name. */
	char lan[INET6_ADDRSTRLEN] = "";
	if (wildcard)
		lan_address(lan, sizeof(lan));
	if (wildcard && lan[0])
		snprintf(hostport, sizeof(hostport), "%s:%u", lan, port);
	else if (wildcard && a->hostname[0])
		snprintf(hostport, sizeof(hostport), "%s:%u", a->hostname, port);
	else
		http_addr_text((const struct sockaddr *)&cfg->dashboard.ss, hostport, sizeof(hostport));
	if (cfg->no_auth) {
		if (cfg->insecure_no_auth && !options_is_loopback(&cfg->dashboard))
			log_msg(LOG_WARNING, "--insecure-no-auth: anyone who can reach %s can read every transcript and clear them",
			        cfg->dashboard.text);
		log_msg(LOG_NOTICE, "dashboard: http://%s/ (no token: %s)", hostport,
		        cfg->insecure_no_auth ? "--insecure-no-auth" : "--no-auth");
		return 0;
	}
	a->auth = true;
	bool created, loose;
	if (http_token_load(cfg->dashboard_token_file, a->token, sizeof(a->token), &created, &loose, err, sizeof(err)) <
	    0) {
		log_msg(LOG_ERR, "%s", err);
		return -1;
	}
	a->token_len = strlen(a->token);
	if (loose)
		log_msg(LOG_WARNING, "the dashboard token file %s is readable by other users: chmod 600 it",
		        cfg->dashboard_token_file);
	if (wildcard)
		log_msg(LOG_NOTICE, "dashboard: open http://%s/?token=%s (the same ?token= works with http://%s:%u/ and, "
		                    "on this machine, http://127.0.0.1:%u/)",
		        hostport, a->token, a->hostname[0] ? a->hostname : "localhost", port, port);
	else
		log_msg(LOG_NOTICE, "dashboard: open http://%s/?token=%s", hostport, a->token);
	log_msg(LOG_INFO, "dashboard token %s %s (delete it and restart to revoke every browser and script)",
	        created ? "made and kept in" : "read from", cfg->dashboard_token_file);
	return 0;
}

int
master_run(const struct config *cfg)
{
	struct master m = { .cfg = cfg, .pid = getpid() };
	char err[512];
	signal(SIGPIPE, SIG_IGN);
	notify_init();
	/* Every open connection is a descriptor: use all the kernel allows us (the soft limit is often
	 * 1024), as nginx's worker_rlimit_nofile does. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* The ports first: a daemon that cannot listen must not leave a new arena behind. */
	bool in_use;
	int wh = http_listen(&cfg->webhook, &in_use, err, sizeof(err));
	if (wh < 0) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	int db = http_listen(&cfg->dashboard, &in_use, err, sizeof(err));
	if (db < 0) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	/* A secrets file that cannot be used must stop the start, not leave every webhook refused. */
	if (cfg->webhook_secret_file[0]) {
		if (http_secrets_load(&worker_secrets, cfg->webhook_secret_file, err, sizeof(err)) < 0) {
			log_msg(LOG_ERR, "%s", err);
			return 1;
		}
		if (worker_secrets.world_readable)
			log_msg(LOG_WARNING, "--webhook-secret-file %s is readable by every user: chmod 600 it",
			        cfg->webhook_secret_file);
		for (int i = 0; i < worker_secrets.n; i++)
			if (worker_secrets.len[i] < HTTP_SECRET_ADVISED_LEN)
				log_msg(LOG_WARNING,
				        "secret %d of --webhook-secret-file %s has %zu characters: a secret that short can be "
				        "guessed; use at least %d random ones (openssl rand -hex 24)",
				        i + 1, cfg->webhook_secret_file, worker_secrets.len[i], HTTP_SECRET_ADVISED_LEN);
		log_msg(LOG_INFO, "webhooks must carry one of the %d secret(s) in %s", worker_secrets.n,
		        cfg->webhook_secret_file);
	}
	int ro_fd = -1;
	int rw_fd = arena_create_or_open(cfg->arena, cfg->arena_size, &ro_fd, err, sizeof(err));
	if (rw_fd < 0) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	if (!(worker_metrics = metrics_shared_new())) {
		log_msg(LOG_ERR, "cannot map the shared counters: %s", strerror(errno));
		return 1;
	}
	atomic_store_explicit(&worker_metrics->started_ns, arena_now_ns(), memory_order_relaxed);
	int doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int peer[2], st_ingest[2], st_query[2];
	if (doorbell < 0 || make_pair(peer) < 0 || make_pair(st_ingest) < 0 || make_pair(st_query) < 0) {
		log_msg(LOG_ERR, "cannot create the worker channels: %s", strerror(errno));
		return 1;
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGALRM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	m.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	m.base = event_base_new();
	if (m.signal_fd < 0 || !m.base) {
		log_msg(LOG_ERR, "cannot set up the event loop: %s", strerror(errno));
		return 1;
	}

	struct child *ing = &m.child[0], *qry = &m.child[1];
	*ing = (struct child){ .role = "ingest", .main = ingest_main, .m = &m };
	*qry = (struct child){ .role = "query", .main = query_main, .m = &m };
	for (int i = 0; i < WORKER_FD_COUNT; i++)
		ing->fds[i] = qry->fds[i] = -1;
	ing->fds[WORKER_FD_LISTEN] = wh;
	ing->fds[WORKER_FD_ARENA] = rw_fd;
	ing->fds[WORKER_FD_DOORBELL] = doorbell;
	ing->fds[WORKER_FD_PEER] = peer[0];
	ing->fds[WORKER_FD_MASTER] = st_ingest[1];
	ing->status_master_end = st_ingest[0];
	qry->fds[WORKER_FD_LISTEN] = db;
	qry->fds[WORKER_FD_ARENA] = ro_fd;
	qry->fds[WORKER_FD_DOORBELL] = doorbell;
	qry->fds[WORKER_FD_PEER] = peer[1];
	qry->fds[WORKER_FD_MASTER] = st_query[1];
	qry->status_master_end = st_query[0];

	m.sig_ev = event_new(m.base, m.signal_fd, EV_READ | EV_PERSIST, signal_cb, &m);
	m.tick_ev = event_new(m.base, -1, EV_PERSIST, tick_cb, &m);
	m.kill_ev = evtimer_new(m.base, kill_cb, &m);
	event_add(m.sig_ev, NULL);
	struct timeval tick = { MASTER_TICK_MS / 1000, (MASTER_TICK_MS % 1000) * 1000 };
	event_add(m.tick_ev, &tick);
	uint64_t wd = notify_watchdog_usec();
	if (wd) {
		m.watchdog_ev = event_new(m.base, -1, EV_PERSIST, watchdog_cb, &m);
		uint64_t every = wd / MASTER_WATCHDOG_DIVISOR;
		struct timeval tv = { (time_t)(every / 1000000), (suseconds_t)(every % 1000000) };
		event_add(m.watchdog_ev, &tv);
	}
	for (int i = 0; i < 2; i++) {
		struct child *c = &m.child[i];
		c->restart_ev = evtimer_new(m.base, restart_cb, c);
		c->status_ev = event_new(m.base, c->status_master_end, EV_READ | EV_PERSIST, status_cb, c);
		event_add(c->status_ev, NULL);
	}
	struct arena_geometry geo;
	arena_geometry(cfg->arena_size, &geo);
	log_msg(LOG_NOTICE, "liveeventsd %s starting: webhooks on %s, dashboard on %s, arena %s (%.1f MiB)",
	        PACKAGE_VERSION, cfg->webhook.text, cfg->dashboard.text, cfg->arena, (double)geo.file_size / (1 << 20));
	if (setup_access(cfg) < 0)
		return 1;
	if (!cfg->webhook_secret_file[0] && !options_is_loopback(&cfg->webhook))
		log_msg(LOG_WARNING, "webhooks are taken from anyone who can reach %s: give the platform a secret and "
		                     "--webhook-secret-file (the README says how)", cfg->webhook.text);
	spawn(ing);
	spawn(qry);
	event_base_dispatch(m.base);

	for (int i = 0; i < 2; i++) {
		event_free(m.child[i].restart_ev);
		event_free(m.child[i].status_ev);
	}
	event_free(m.sig_ev);
	event_free(m.tick_ev);
	event_free(m.kill_ev);
	if (m.watchdog_ev)
		event_free(m.watchdog_ev);
	event_base_free(m.base);
	log_msg(m.exit_code ? LOG_ERR : LOG_NOTICE, "stopped");
	return m.exit_code;
}
