/* query: the dashboard port. It maps the arena read-only (the kernel itself keeps it from writing),
 * follows the committed sequence (woken by ingest's doorbell, with a slow safety poll), keeps a view
 * of every call, and serves the dashboard and the REST API from it. A reset is not done here: it is
 * asked of ingest, the only writer, and answered once ingest has committed it. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's HTTP version: 2.1 has no getter */
#include <event2/keyvalq_struct.h>

#include "api.h"
#include "arena.h"
#include "event_record.h"
#include "follow.h"
#include "http.h"
#include "http_access.h"
#include "http_secret.h"
#include "log.h"
#include "metrics.h"
#include "sse.h"
#include "view.h"
#include "web_assets.h"
#include "worker.h"

#define QUERY_MAX_BODY 4096           /* the dashboard port takes no payloads */
#define QUERY_RESET_REARM_US 1000     /* past the reset deadline when a timer fired early */
#define QUERY_CALLS_PAGE 200          /* calls per page of /api/calls unless ?limit= says otherwise */
#define QUERY_CALLS_PAGE_MAX 1000

/* Headers every dashboard response carries: the page runs no inline code and cannot be framed. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                          "form-action 'self'; frame-ancestors 'none'";

struct pending_reset {
	uint64_t id;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC: from then on ingest refuses it */
	struct evhttp_request *req;
	struct event *timer;
	struct query *q;
	struct pending_reset *next;
};

struct query {
	const struct config *cfg;
	struct worker_loop loop;
	struct event_base *base;
	struct evhttp *http;
	struct arena arena;
	struct view view;
	uint64_t generation;
	struct follow follow;
	struct log_limit corrupt_limit;
	struct buf out, scratch;
	struct event *doorbell_ev, *poll_ev, *ctl_ev;
	struct pending_reset *resets;
	uint64_t next_reset_id;
	/* The full /api/conversations answer for one committed state, shared by every request that
	 * asks for it: a dashboard or script polling it must cost one build, not one per request. */
	struct http_shared *conversations;
	uint64_t conversations_gen, conversations_seq;
	struct sse_hub *sse;
	struct log_limit access_limit;
};

/* --- following the arena -------------------------------------------------------------------------- */

static void
sync_arena(struct query *q)
{
	uint64_t corrupt = q->follow.corrupt, inconsistent = q->follow.inconsistent;
	if (follow_sync(&q->follow, &q->arena, &q->view) < 0)
		log_msg(LOG_ERR, "out of memory following the arena: starting over");
	if (q->follow.inconsistent > inconsistent)
		log_limited(&q->corrupt_limit, LOG_WARNING,
		            "the arena's counters are damaged (tail %" PRIu64 ", head %" PRIu64 "): serving what was read "
		            "before until the writer repairs them",
		            arena_tail(&q->arena, ARENA_FACTS), arena_head(&q->arena, ARENA_FACTS));
	if (q->follow.corrupt > corrupt)
		log_limited(&q->corrupt_limit, LOG_WARNING, "skipped %" PRIu64 " unreadable fact record(s) (the last: seq %" PRIu64 ")",
		            q->follow.corrupt - corrupt, q->follow.last_corrupt);
	q->generation = q->follow.generation;
	sse_flush_reset(q->sse, q->generation, q->follow.cursor);
}

/* follow's observers: the view's changes, as they happen, go to the event streams. */
static void
on_applied(void *arg, uint64_t seq, const struct view_call *c)
{
	struct query *q = arg;
	sse_applied(q->sse, seq, c, q->follow.generation);
}

static void
on_gone(struct view_call *c, void *arg)
{
	struct query *q = arg;
	sse_gone(q->sse, c, q->follow.cursor);
}

static void
on_started_over(void *arg)
{
	struct query *q = arg;
	sse_started_over(q->sse);
}

static void
doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct query *q = arg;
	uint64_t n;
	while (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		;
	sync_arena(q);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sync_arena(arg);
}

/* --- responses ------------------------------------------------------------------------------------ */

static void
add_page_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void
send_buf(struct query *q, struct evhttp_request *req, int code)
{
	add_page_headers(req);
	http_send_json_take(req, code, &q->out);
}

/* A validator of the committed state an answer was made from; a client that already has it gets
 * 304 and no body. */
/* Whether an If-None-Match value ("*", or a list of tags, weak ones W/-prefixed) names etag: a
 * weak comparison, as RFC 9110 asks of If-None-Match. */
static bool
etag_listed(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

static bool
not_modified(struct query *q, struct evhttp_request *req, uint64_t seq)
{
	char etag[48];
	snprintf(etag, sizeof(etag), "\"%016" PRIx64 "-%" PRIu64 "\"", q->generation, seq);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "ETag", etag);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	if (!inm || !etag_listed(inm, etag))
		return false;
	add_page_headers(req);
	http_reply(req, 304, NULL);
	return true;
}

/* Reads ?name=N into *v (left as it is when absent); answers 400 and returns false when N is not a
 * decimal integer within [min, max]. */
static bool
query_u64(struct evhttp_request *req, const char *name, uint64_t min, uint64_t max, uint64_t *v)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	if (!qs)
		return true;
	struct evkeyvalq params;
	bool ok = evhttp_parse_query_str(qs, &params) == 0;
	const char *s = ok ? evhttp_find_header(&params, name) : NULL;
	if (ok && s) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(s, &end, 10);
		ok = s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 && n >= min && n <= max;
		if (ok)
			*v = n;
	}
	evhttp_clear_headers(&params);
	if (!ok) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the query parameter %s must be an integer from %" PRIu64 " to %" PRIu64, name,
		         min, max);
		add_page_headers(req);
		http_send_error(req, 400, "bad_query", msg, NULL);
	}
	return ok;
}

static bool
method_is(struct evhttp_request *req, enum evhttp_cmd_type a, const char *allow)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd == a || (a == EVHTTP_REQ_GET && cmd == EVHTTP_REQ_HEAD))
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	add_page_headers(req);
	http_send_error(req, 405, "method_not_allowed", "method not allowed here", NULL);
	return false;
}

static void
serve_asset(struct evhttp_request *req, const struct web_asset *a)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	add_page_headers(req);
	evhttp_add_header(h, "ETag", a->etag);
	const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	evhttp_add_header(h, "Content-Type", a->type);
	/* Revalidate each time: a new daemon may carry a new dashboard. */
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (inm && strcmp(inm, a->etag) == 0) {
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	struct evbuffer *out = evbuffer_new();
	if (!out) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_reference(out, a->data, a->len, NULL, NULL);
	http_reply(req, 200, out);
	evbuffer_free(out);
}

/* Decodes the percent-encoded id after prefix; NULL if the path is not prefix + one segment. */
static char *
path_id(const char *path, const char *prefix, size_t *len)
{
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) != 0 || path[n] == '\0' || strchr(path + n, '/'))
		return NULL;
	return evhttp_uridecode(path + n, 0, len);
}

/* --- reset, carried out by ingest ------------------------------------------------------------------- */

static void
pending_remove(struct query *q, struct pending_reset *p)
{
	for (struct pending_reset **pp = &q->resets; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	event_free(p->timer);
	free(p);
}

static void
reset_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pending_reset *p = arg;
	struct query *q = p->q;
	/* libevent's timers run on a coarse clock and may fire a few milliseconds early: the 503 must
	 * not come before the deadline, or ingest could still carry out what we called failed. */
	uint64_t now = worker_monotonic_ns();
	if (now <= p->deadline_ns) {
		uint64_t us = (p->deadline_ns - now) / 1000 + QUERY_RESET_REARM_US;
		struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
		evtimer_add(p->timer, &tv);
		return;
	}
	log_msg(LOG_ERR, "reset not confirmed by ingest within %u ms: answered 503", q->cfg->reset_timeout_ms);
	add_page_headers(p->req);
	http_send_error(p->req, 503, "writer_unavailable",
	                "the writer (ingest) did not confirm the reset; nothing was cleared, try again", NULL);
	pending_remove(q, p);
}

static void
reset_request(struct query *q, struct evhttp_request *req)
{
	struct pending_reset *p = calloc(1, sizeof(*p));
	if (!p) {
		http_send_error(req, 503, "no_memory", "out of memory", NULL);
		return;
	}
	p->id = ++q->next_reset_id;
	p->req = req;
	p->q = q;
	p->timer = evtimer_new(q->base, reset_timeout_cb, p);
	p->deadline_ns = worker_monotonic_ns() + (uint64_t)q->cfg->reset_timeout_ms * 1000000u;
	struct ctl_msg m = { .magic = CTL_MAGIC, .type = CTL_RESET_REQ, .id = p->id, .pid = (uint32_t)getpid(),
	                     .deadline_ns = p->deadline_ns };
	if (!p->timer || worker_send(WORKER_FD_PEER, &m) < 0) {
		log_msg(LOG_ERR, "cannot reach ingest for a reset: %s", strerror(errno));
		add_page_headers(req);
		http_send_error(req, 503, "writer_unavailable", "the writer (ingest) cannot be reached; nothing was cleared",
		                NULL);
		if (p->timer)
			event_free(p->timer);
		free(p);
		return;
	}
	p->next = q->resets;
	q->resets = p;
	struct timeval tv = { q->cfg->reset_timeout_ms / 1000, (q->cfg->reset_timeout_ms % 1000) * 1000 };
	evtimer_add(p->timer, &tv);
}

static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct query *q = arg;
	struct ctl_msg m;
	int rc;
	while ((rc = worker_recv(fd, &m)) != WORKER_RECV_NONE) {
		if (rc == WORKER_RECV_CLOSED) {
			log_msg(LOG_ERR, "the master is gone: stopping");
			event_del(q->ctl_ev);
			event_base_loopexit(q->base, NULL);
			return;
		}
		if (rc == WORKER_RECV_BAD || m.type != CTL_RESET_DONE)
			continue;
		struct pending_reset *p = q->resets;
		while (p && p->id != m.id)
			p = p->next;
		if (!p)
			continue; /* answered 503 already, or asked by a previous query process */
		sync_arena(q);
		buf_reset(&q->out);
		buf_adds(&q->out, "{\"message\":\"All events cleared\"}");
		send_buf(q, p->req, 200);
		pending_remove(q, p);
	}
}

/* --- access (http_access.h) ----------------------------------------------------------------------- */

/* What a browser without the token gets instead of the dashboard: no data, and where to find the URL.
 * No inline script or style: the same CSP as the dashboard. */
#define SIGNIN_PAGE_HEAD                                                                                 \
	"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"                               \
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"                           \
	"<title>liveevents: open the dashboard URL</title>\n<link rel=\"icon\" href=\"/favicon.svg\">\n"         \
	"<link rel=\"stylesheet\" href=\"/app.css\">\n</head>\n<body>\n"                                         \
	"<main id=\"auth-needed\" class=\"auth-needed\">\n<h1>liveevents</h1>\n"
#define SIGNIN_PAGE_BODY                                                                                 \
	"<p>Open the dashboard URL with its token, as the daemon logged it when it started:</p>\n"              \
	"<pre>journalctl -u liveevents | grep token</pre>\n"                                                    \
	"<p>or look in the terminal that runs <code>scripts/run</code>. Once you have opened it, this browser "   \
	"stays signed in for 30 days.</p>\n</main>\n</body>\n</html>\n"
static const char signin_page[] = SIGNIN_PAGE_HEAD SIGNIN_PAGE_BODY;
/* After a URL with a wrong token (redirected here, so that it leaves the address bar and history). */
#define SIGNIN_WRONG_QUERY "signin=wrong-token"
static const char signin_wrong_page[] =
	SIGNIN_PAGE_HEAD "<p class=\"auth-wrong\">The token in the URL you opened is not this dashboard's: it may be "
	"mistyped, or from before the token file was deleted and a new token made.</p>\n" SIGNIN_PAGE_BODY;

static const char *
in_header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* Logs a refused request (once per interval, never with its query string, which may hold a token)
 * and counts it. */
static void
access_refused(struct query *q, struct evhttp_request *req, enum metrics_access why, int code, const char *what)
{
	char peer[64];
	http_peer(req, peer, sizeof(peer));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct buf p = BUF_INIT;
	const char *tok = worker_access.token;
	size_t toklen = worker_access.token_len;
	log_text_redacted(&p, path ? path : "?", path ? strlen(path) : 1, LOG_PATH_CHARS, &tok, &toklen, 1);
	log_limited(&q->access_limit, LOG_WARNING, "refused a dashboard request from %s for %s: %d %s", peer,
	            buf_cstr(&p), code, what);
	buf_free(&p);
	if (worker_metrics)
		atomic_fetch_add_explicit(&worker_metrics->access_refused[why], 1, memory_order_relaxed);
}

/* Every Cookie header of the request joined with "; " (a client may send several), in out; NULL
 * when there is none. */
static const char *
cookies(struct evhttp_request *req, struct buf *out)
{
	buf_reset(out);
	for (struct evkeyval *h = evhttp_request_get_input_headers(req)->tqh_first; h; h = h->next.tqe_next)
		if (evutil_ascii_strcasecmp(h->key, "Cookie") == 0) {
			if (out->len)
				buf_adds(out, "; ");
			buf_adds(out, h->value);
		}
	return out->len && !out->failed ? buf_cstr(out) : NULL;
}

/* The ?token= of the page's URL, copied into out; NULL when absent. */
static const char *
url_token(struct evhttp_request *req, char *out, size_t outlen)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	if (!qs)
		return NULL;
	struct evkeyvalq params;
	const char *v = NULL;
	if (evhttp_parse_query_str(qs, &params) == 0) {
		const char *t = evhttp_find_header(&params, "token");
		if (t) {
			snprintf(out, outlen, "%s", t);
			v = out;
		}
		evhttp_clear_headers(&params);
	}
	return v;
}

/* Whether the request may go on; when not, it has been answered. page: the dashboard's HTML, which
 * takes the token from its URL and answers a browser without one with the sign-in notice. */
/* The Host check alone: what a DNS-rebound page must never get an answer to. */
static bool
access_ok_host(struct query *q, struct evhttp_request *req)
{
	/* One Host, as HTTP/1.1 demands (which one a proxy in front took is anyone's guess), and a
	 * request line naming a host (absolute form) names one answered to as well. */
	int hosts = 0;
	for (struct evkeyval *h = evhttp_request_get_input_headers(req)->tqh_first; h; h = h->next.tqe_next)
		hosts += evutil_ascii_strcasecmp(h->key, "Host") == 0;
	if (hosts > 1 || (hosts == 0 && (req->major > 1 || (req->major == 1 && req->minor >= 1)))) {
		add_page_headers(req);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		http_send_error(req, 400, "bad_host", hosts ? "more than one Host header" : "an HTTP/1.1 request needs a Host",
		                NULL);
		access_refused(q, req, METRICS_A_BAD_HOST, 400, "no Host, or more than one");
		return false;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *uri_host = uri ? evhttp_uri_get_host(uri) : NULL;
	const char *host = uri_host && *uri_host ? uri_host : in_header(req, "Host");
	if (http_access_host_ok(&worker_access, host) && uri_host && *uri_host)
		host = in_header(req, "Host"); /* the request line's host is answered to: the Host must be too */
	if (!http_access_host_ok(&worker_access, host)) {
		char msg[HTTP_HOST_MAX + 160];
		snprintf(msg, sizeof(msg),
		         "this dashboard does not answer to the Host '%.64s': open it by its address, or start the daemon "
		         "with --allowed-host NAME",
		         host);
		add_page_headers(req);
		http_send_error(req, 421, "host_not_allowed", msg, NULL);
		access_refused(q, req, METRICS_A_HOST_NOT_ALLOWED, 421, "Host not answered to (DNS rebinding?)");
		return false;
	}
	return true;
}

static bool
access_ok(struct query *q, struct evhttp_request *req, bool page, enum http_credential *cred_out)
{
	const struct http_access *a = &worker_access;
	const char *host = in_header(req, "Host");
	if (!access_ok_host(q, req))
		return false;
	char tok[HTTP_TOKEN_MAX + 2];
	const char *qt = page ? url_token(req, tok, sizeof(tok)) : NULL;
	enum http_credential cred = http_access_credential(a, in_header(req, "Authorization"), cookies(req, &q->scratch), qt);
	explicit_bzero(tok, sizeof(tok));
	*cred_out = cred;
	if (cred == HTTP_CRED_NONE || cred == HTTP_CRED_BAD) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		add_page_headers(req);
		bool sent_on = page && qt && cred == HTTP_CRED_BAD;
		if (sent_on) {
			/* not a page whose address bar, history and bookmarks keep a wrong (perhaps nearly
			 * right) token */
			evhttp_add_header(h, "Cache-Control", "no-store");
			evhttp_add_header(h, "Location", "./?" SIGNIN_WRONG_QUERY);
			http_send(req, 303, "text/plain; charset=utf-8", "", 0);
		} else if (page) {
			const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
			const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
			bool wrong = query && strcmp(query, SIGNIN_WRONG_QUERY) == 0;
			evhttp_add_header(h, "Cache-Control", "no-store");
			http_send(req, 401, "text/html; charset=utf-8", wrong ? signin_wrong_page : signin_page,
			          wrong ? sizeof(signin_wrong_page) - 1 : sizeof(signin_page) - 1);
		} else {
			evhttp_add_header(h, "WWW-Authenticate",
			                  cred == HTTP_CRED_BAD ? "Bearer realm=\"liveevents\", error=\"invalid_token\""
			                                        : "Bearer realm=\"liveevents\"");
			http_send_error(req, 401, "unauthorized",
			                cred == HTTP_CRED_BAD
			                        ? "the dashboard token is wrong: open the dashboard URL from the daemon's log again"
			                        : "the dashboard needs its token: open the dashboard URL from the daemon's log, "
			                          "or send Authorization: Bearer TOKEN",
			                NULL);
		}
		access_refused(q, req, METRICS_A_UNAUTHORIZED, sent_on ? 303 : 401,
		               cred == HTTP_CRED_BAD ? "wrong token" : "no token");
		return false;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && !http_access_origin_ok(cred, in_header(req, "Origin"), host)) {
		add_page_headers(req);
		http_send_error(req, 403, "cross_origin",
		                "a request that changes something must come from this dashboard's own page (its Origin) "
		                "or carry Authorization: Bearer TOKEN",
		                NULL);
		access_refused(q, req, METRICS_A_CROSS_ORIGIN, 403, "state-changing request from another origin");
		return false;
	}
	return true;
}

/* The page opened with its token: the token becomes a cookie only this origin's own requests carry
 * (SameSite=Strict), out of reach of scripts (HttpOnly). The page itself is served, not a redirect: a
 * Strict cookie is not sent on a redirect that a link on another site started, which would leave
 * the user at the sign-in notice. The page then drops the token from the address bar. */
static void
set_cookie(struct evhttp_request *req)
{
	const struct http_access *a = &worker_access;
	char c[sizeof(a->cookie) + HTTP_TOKEN_MAX + 96];
	snprintf(c, sizeof(c), "%.31s=%.256s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict", a->cookie, a->token,
	         HTTP_COOKIE_MAX_AGE);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
	explicit_bzero(c, sizeof(c));
}

/* --- routes --------------------------------------------------------------------------------------- */

static void route(struct query *q, struct evhttp_request *req);

static void
request_cb(struct evhttp_request *req, void *arg)
{
	uint64_t t0 = worker_monotonic_ns();
	route(arg, req);
	metrics_observe(&worker_metrics->api, (worker_monotonic_ns() - t0) / 1000);
}

static void
route(struct query *q, struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path)
		path = "";
	const char *framing = http_framing_error(req);
	if (framing) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		add_page_headers(req);
		http_send_error(req, 400, "ambiguous_framing", framing, NULL);
		return;
	}
	const struct web_asset *asset = web_asset_find(path);
	bool page = asset && (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0);
	enum http_credential cred = HTTP_CRED_NONE;
	if (strcmp(path, "/healthz") == 0) {
		/* Open to monitors, as health checks are; only the token's holders learn how much is stored. */
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		buf_reset(&q->out);
		enum http_credential c = http_access_credential(&worker_access, in_header(req, "Authorization"),
		                                                cookies(req, &q->scratch), NULL);
		if (c == HTTP_CRED_NONE || c == HTTP_CRED_BAD) {
			buf_adds(&q->out, "{\"status\":\"ok\",\"role\":\"query\"}");
		} else {
			sync_arena(q);
			buf_printf(&q->out, "{\"status\":\"ok\",\"role\":\"query\",\"generation\":\"%016" PRIx64 "\",\"seq\":%" PRIu64
			                    ",\"calls\":%zu}", q->generation, arena_head(&q->arena, ARENA_FACTS), q->view.ncalls);
		}
		send_buf(q, req, 200);
		return;
	}
	/* The dashboard's code and style are the same for everyone and hold no data: the sign-in notice
	 * uses them too. */
	if (asset && !page) {
		if (!access_ok_host(q, req))
			return;
		if (method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			serve_asset(req, asset);
		return;
	}
	if (!access_ok(q, req, page, &cred))
		return;
	if (asset) {
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		if (cred == HTTP_CRED_QUERY)
			set_cookie(req);
		serve_asset(req, asset);
		return;
	}
	/* Answer from the latest committed state, even if the doorbell is still on its way. */
	sync_arena(q);
	buf_reset(&q->out);
	uint64_t seq = arena_head(&q->arena, ARENA_FACTS);
	size_t idlen;
	char *id;
	if (strcmp(path, "/api/conversations") == 0) {
		enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
		if (cmd == EVHTTP_REQ_DELETE) {
			reset_request(q, req);
			return;
		}
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD, DELETE"))
			return;
		if (!q->conversations || q->conversations_gen != q->generation || q->conversations_seq != seq) {
			api_conversations(&q->out, &q->view, &q->arena, &q->scratch);
			struct http_shared *built = q->out.failed ? NULL : http_shared_new(&q->out);
			if (!built) {
				send_buf(q, req, 200); /* answers the out-of-memory error */
				return;
			}
			http_shared_unref(q->conversations);
			q->conversations = built;
			q->conversations_gen = q->generation;
			q->conversations_seq = seq;
		}
		add_page_headers(req);
		http_send_shared(req, 200, q->conversations);
	} else if ((id = path_id(path, "/api/conversations/", &idlen))) {
		const struct view_call *c = view_find(&q->view, id, idlen);
		free(id);
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		if (!c) {
			add_page_headers(req);
			/* The tutorial's exact body. */
			static const char nf[] = "{\"error\":\"Not found\"}";
			http_send(req, 404, HTTP_JSON, nf, sizeof(nf) - 1);
			return;
		}
		api_conversation(&q->out, c, &q->arena, &q->scratch);
		send_buf(q, req, 200);
	} else if (strcmp(path, "/metrics") == 0) {
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		uint64_t opened, overflowed, events, refused;
		sse_hub_stats(q->sse, &opened, &overflowed, &events, &refused);
		struct metrics_query mq = { .view = &q->view, .stream_clients = sse_hub_clients(q->sse),
			                    .stream_opened = opened, .stream_overflowed = overflowed, .stream_events = events,
			                    .stream_refused = refused };
		metrics_render(&q->out, worker_metrics, &q->arena, &mq);
		if (q->out.failed) {
			send_buf(q, req, 200); /* answers the out-of-memory error */
			return;
		}
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
		http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", q->out.data, q->out.len);
	} else if (strcmp(path, "/api/stream") == 0) {
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		add_page_headers(req);
		sse_open(q->sse, req, &q->view, q->generation, q->follow.cursor, arena_tail(&q->arena, ARENA_FACTS));
	} else if (strcmp(path, "/api/calls") == 0) {
		uint64_t limit = QUERY_CALLS_PAGE, before = UINT64_MAX;
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD") ||
		    !query_u64(req, "limit", 1, QUERY_CALLS_PAGE_MAX, &limit) ||
		    !query_u64(req, "before", 0, UINT64_MAX, &before) || not_modified(q, req, seq))
			return;
		api_calls(&q->out, &q->view, q->generation, seq, (size_t)limit, before);
		send_buf(q, req, 200);
	} else if ((id = path_id(path, "/api/calls/", &idlen))) {
		const struct view_call *c = view_find(&q->view, id, idlen);
		free(id);
		if (!method_is(req, EVHTTP_REQ_GET, "GET, HEAD"))
			return;
		if (!c) {
			add_page_headers(req);
			http_send_error(req, 404, "not_found", "call not found", NULL);
			return;
		}
		uint64_t after = API_ALL;
		if (!query_u64(req, "after", 0, UINT64_MAX - 1, &after) || not_modified(q, req, c->changed_seq))
			return;
		api_call_delta(&q->out, c, q->generation, seq, after);
		send_buf(q, req, 200);
	} else {
		add_page_headers(req);
		http_send_error(req, 404, "not_found", "not found", NULL);
	}
}

/* A request the server refused before it reached route(): a limit. */
static void
refused_limit(int status, const char *code, void *arg)
{
	(void)status;
	(void)arg;
	enum metrics_reason r = metrics_reason_of(code);
	enum metrics_access why = r == METRICS_R_TIMEOUT             ? METRICS_A_TIMEOUT
	                          : r == METRICS_R_TOO_LARGE         ? METRICS_A_TOO_LARGE
	                          : r == METRICS_R_TOO_MANY_HEADERS  ? METRICS_A_TOO_MANY_HEADERS
	                          : r == METRICS_R_HEADERS_TOO_LARGE ? METRICS_A_HEADERS_TOO_LARGE
	                          : r == METRICS_R_URI_TOO_LONG      ? METRICS_A_URI_TOO_LONG
	                                                             : METRICS_A_BAD_REQUEST;
	if (worker_metrics)
		atomic_fetch_add_explicit(&worker_metrics->access_refused[why], 1, memory_order_relaxed);
}

/* --- lifecycle ------------------------------------------------------------------------------------ */

int
query_main(const struct config *cfg)
{
	static struct query q;
	char err[256];
	q.cfg = cfg;
	http_secrets_clear(&worker_secrets); /* the dashboard side never needs the webhook secrets */
	if (arena_map(&q.arena, WORKER_FD_ARENA, false, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "cannot map the arena: %s", err);
		return 1;
	}
	view_init(&q.view);
	follow_init(&q.follow);
	q.follow.applied = on_applied;
	q.follow.gone = on_gone;
	q.follow.started_over = on_started_over;
	q.follow.arg = &q;
	sync_arena(&q);

	struct http_server_limits lim;
	worker_http_limits(cfg, METRICS_QUERY, QUERY_MAX_BODY, &lim);
	q.http = worker_loop_init(&q.loop, NULL, NULL, &q) == 0
	                 ? http_server_new(q.loop.base, WORKER_FD_LISTEN, &lim, request_cb, &q, "dashboard request",
	                                   refused_limit, &q)
	                 : NULL;
	q.base = q.loop.base;
	q.sse = q.http ? sse_hub_new(q.base, cfg->stream_clients, cfg->stream_backlog, cfg->stream_heartbeat) : NULL;
	sse_hub_known_from(q.sse, q.follow.cursor);
	if (!q.http || !q.sse) {
		log_msg(LOG_ERR, "cannot serve on the dashboard socket");
		return 1;
	}
	q.doorbell_ev = event_new(q.base, WORKER_FD_DOORBELL, EV_READ | EV_PERSIST, doorbell_cb, &q);
	q.poll_ev = event_new(q.base, -1, EV_PERSIST, poll_cb, &q);
	q.ctl_ev = event_new(q.base, WORKER_FD_PEER, EV_READ | EV_PERSIST, ctl_cb, &q);
	struct timeval poll = { WORKER_SAFETY_POLL_MS / 1000, (WORKER_SAFETY_POLL_MS % 1000) * 1000 };
	event_add(q.doorbell_ev, NULL);
	event_add(q.poll_ev, &poll);
	event_add(q.ctl_ev, NULL);
	log_msg(LOG_INFO, "serving the dashboard (%zu calls)", q.view.ncalls);
	worker_loop_run(&q.loop);

	while (q.resets)
		pending_remove(&q, q.resets);
	sse_hub_free(q.sse);
	http_shared_unref(q.conversations);
	evhttp_free(q.http);
	event_free(q.doorbell_ev);
	event_free(q.poll_ev);
	event_free(q.ctl_ev);
	worker_loop_free(&q.loop);
	view_clear(&q.view);
	follow_free(&q.follow);
	arena_unmap(&q.arena);
	buf_free(&q.out);
	buf_free(&q.scratch);
	return 0;
}
