/* ingest: the webhook port and the only process that writes the arena. Each POST /webhook is read
 * within limits, parsed and validated, turned into a fact record (what it changed) and a raw record
 * (the body, secrets redacted), committed, and only then answered 200: an acknowledged event is in
 * the arena. Nothing else is served here but GET /healthz: the dashboard and the transcripts are
 * never reachable through the tunnel that exposes this port. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "arena.h"
#include "event.h"
#include "store.h"
#include "event_log.h"
#include "http.h"
#include "http_access.h"
#include "http_inflate.h"
#include "http_rate.h"
#include "http_secret.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "view.h"
#include "worker.h"

/* On SIGTERM, ingest stops accepting connections at once but still answers the webhooks already on
 * their way: it stops once no request bytes have arrived for INGEST_DRAIN_QUIET_MS (a request
 * half sent keeps it waiting), or after INGEST_DRAIN_MAX_MS at most. An event the platform sent
 * just before a restart is otherwise reset with the connection and never sent again. */
#define INGEST_EVICTION_LOG_MS 60000 /* at most one "arena full" line per minute */
#define RAW_META_SLACK 4096 /* a raw record's metadata beyond the request headers themselves */
#define INGEST_DRAIN_QUIET_MS 150
#define INGEST_DRAIN_MAX_MS 2000
#define INGEST_ORPHAN_DRAIN_MS 300 /* ...or this, when the master is gone: it holds the arena's lock
                                    * for a new daemon that may be starting */
#define INGEST_DRAIN_CHECK_MS 50

/* Request headers whose values are kept in the raw record. Every other header's value is stored as
 * "[redacted]": the platform sends its configured custom headers (credentials, usually) on every
 * request, and only some bodies echo which ones they are. */
static const char *const plain_headers[] = {
	"host",           "user-agent",      "content-type",      "content-length", "content-encoding",
	"transfer-encoding", "accept",       "accept-encoding",   "connection",     "expect",
	"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip",    "forwarded",
	"via",            "traceparent",     "x-request-id",
};

struct ingest {
	const struct config *cfg;
	struct worker_loop loop;
	struct event_base *base;
	struct evhttp *http;
	struct arena arena;
	struct store store;
	struct json_limits lim;
	struct buf meta, line;
	struct event *doorbell_ev, *ctl_ev, *drain_ev;
	struct log_limit refusal_limit;
	size_t max_body; /* --max-body, lowered to what the raw ring holds */
	uint64_t last_request_ms, stop_ms; /* CLOCK_MONOTONIC; stop_ms != 0 once SIGTERM arrived */
	uint64_t drain_max_ms;
	uint64_t evicted_logged[ARENA_RINGS], eviction_log_ms[ARENA_RINGS];
	bool doorbell_pending;
	/* --webhook-secret-file: the secrets, and when the file was last looked at */
	struct http_secrets secrets;
	bool auth, secrets_reload_failed;
	struct event *secrets_ev;
	struct log_limit auth_limit;
	struct buf inflated; /* a gzip or deflate body, inflated */
	struct http_rate rate; /* --webhook-rate, per client address */
	char dashboard_token[HTTP_TOKEN_MAX + 1];
	struct log_limit rate_limit;
};

/* --- arena ------------------------------------------------------------------------------------- */

static void
doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ingest *g = arg;
	g->doorbell_pending = false;
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: query has plenty to read already. */
	ssize_t w = write(WORKER_FD_DOORBELL, &one, sizeof(one));
	(void)w;
}

/* Rings query's doorbell once per loop iteration however many events were committed. */
static void
ring_doorbell(struct ingest *g)
{
	if (!g->doorbell_pending) {
		g->doorbell_pending = true;
		event_active(g->doorbell_ev, 0, 0);
	}
}

/* --- the webhook ---------------------------------------------------------------------------------- */

static void
reject(struct ingest *g, struct evhttp_request *req, int code, const char *code_str, const char *msg,
       const char *extra)
{
	char peer[64];
	http_peer(req, peer, sizeof(peer));
	arena_count(&g->arena, ARENA_C_REJECTED, 1);
	metrics_reject(worker_metrics, metrics_reason_of(code_str));
	log_limited(&g->refusal_limit, LOG_WARNING, "refused a webhook from %s: %d %s", peer, code, msg);
	http_send_error(req, code, code_str, msg, extra);
}

static bool
header_is_plain(const char *name)
{
	for (size_t i = 0; i < sizeof(plain_headers) / sizeof(plain_headers[0]); i++)
		if (strcasecmp(name, plain_headers[i]) == 0)
			return true;
	return false;
}

/* The raw record's metadata: who sent it and with which headers (credentials redacted). */
static void
build_meta(struct ingest *g, struct evhttp_request *req, const struct event_secrets *sec)
{
	struct buf *b = &g->meta;
	char peer[64];
	buf_reset(b);
	http_peer(req, peer, sizeof(peer));
	buf_printf(b, "{\"received\":%" PRIu64 ",\"remote\":", arena_now_ns() / 1000000);
	json_write_cstr(b, peer);
	buf_adds(b, ",\"headers\":{");
	struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
	bool first = true;
	for (struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next) {
		bool secret = !header_is_plain(h->key);
		for (int i = 0; !secret && sec && i < sec->n; i++)
			if (sec->len[i] >= EVENT_SECRET_MIN_SCRUB && strstr(h->value, sec->v[i]))
				secret = true;
		if (!first)
			buf_addc(b, ',');
		first = false;
		json_write_cstr(b, h->key);
		buf_addc(b, ':');
		json_write_cstr(b, secret ? EVENT_REDACTED : h->value);
	}
	buf_adds(b, "}}");
}

/* The arena is bounded: what leaves when it is full must be visible (once a minute per kind). */
static void
note_evictions(struct ingest *g)
{
	uint64_t now = worker_monotonic_ns() / 1000000;
	uint64_t n[ARENA_RINGS] = { arena_counter_get(&g->arena, ARENA_C_CALLS_EVICTED),
		                    atomic_load_explicit(&g->arena.ctl->ring[ARENA_RAW].evicted, memory_order_relaxed) };
	for (int r = 0; r < ARENA_RINGS; r++) {
		if (n[r] == g->evicted_logged[r] ||
		    (g->eviction_log_ms[r] && now - g->eviction_log_ms[r] < INGEST_EVICTION_LOG_MS))
			continue;
		if (r == ARENA_FACTS)
			log_msg(LOG_NOTICE, "arena full: %" PRIu64 " ended or idle calls have left so far, oldest first, "
			                    "each whole (live calls are kept: %" PRIu64 " snapshots)",
			        n[r], arena_counter_get(&g->arena, ARENA_C_SNAPSHOTS));
		else
			log_msg(LOG_NOTICE, "raw ring full: %" PRIu64 " oldest raw bodies overwritten so far (their facts are kept)",
			        n[r]);
		g->evicted_logged[r] = n[r];
		g->eviction_log_ms[r] = now;
	}
}

static void
refused_early(int status, const char *code, void *arg)
{
	(void)status;
	struct ingest *g = arg;
	arena_count(&g->arena, ARENA_C_REJECTED, 1);
	/* the server's own refusals: a limit, or a request it could not read */
	metrics_reject(worker_metrics, metrics_reason_of(code));
}

/* The value a header carries as a credential: Authorization's without its scheme. */
static const char *
credential(const struct evkeyval *h)
{
	const char *v = h->value;
	if (strcasecmp(h->key, "authorization") == 0 && strncasecmp(v, "Bearer ", 7) == 0)
		v += 7;
	return v;
}

/* Every value the body must not repeat: the configured secrets, and the request's credentials and
 * custom headers (the platform sends the assistant's custom headers, and some bodies echo them). */
static void
collect_header_secrets(struct ingest *g, struct evhttp_request *req, struct event_secrets *sec)
{
	for (int i = 0; g->auth && i < g->secrets.n; i++)
		event_secrets_add(sec, g->secrets.v[i], g->secrets.len[i]);
	if (g->dashboard_token[0])
		event_secrets_add(sec, g->dashboard_token, strlen(g->dashboard_token));
	struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
	for (struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next)
		if (!header_is_plain(h->key)) {
			const char *v = credential(h);
			event_secrets_add(sec, v, strlen(v));
		}
}

/* True when the request carries one of the configured secrets (or none is configured). Every
 * candidate header is compared, so the time taken does not tell which one was tried. */
static bool
authorized(struct ingest *g, struct evhttp_request *req)
{
	if (!g->auth)
		return true;
	bool ok = false;
	struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
	for (struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next)
		if (strcasecmp(h->key, "x-interactly-secret") == 0 || strcasecmp(h->key, "x-vapi-secret") == 0 ||
		    (strcasecmp(h->key, "authorization") == 0 && strncasecmp(h->value, "Bearer ", 7) == 0)) {
			const char *v = credential(h);
			ok |= http_secrets_match(&g->secrets, v, strlen(v));
		}
	return ok;
}

/* Re-reads the secrets file when it changed: a rotation takes effect within a second. A file that
 * became unusable keeps the secrets already loaded (refusing every webhook would lose them all). */
static void
recheck_secrets(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ingest *g = arg;
	const char *path = g->cfg->webhook_secret_file;
	int changed = http_secrets_changed(&g->secrets, path);
	if (changed == 0)
		return;
	char err[256];
	if (changed < 0) {
		snprintf(err, sizeof(err), "--webhook-secret-file %.200s is gone", path);
	} else if (http_secrets_load(&g->secrets, path, err, sizeof(err)) == 0) {
		log_msg(LOG_NOTICE, "webhook secrets re-read from %s: %d accepted", path, g->secrets.n);
		g->secrets_reload_failed = false;
		return;
	}
	if (!g->secrets_reload_failed)
		log_msg(LOG_WARNING, "%s; the %d secret(s) read before stay in force", err, g->secrets.n);
	g->secrets_reload_failed = true;
}

static void
webhook(struct ingest *g, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reject(g, req, 405, "method_not_allowed", "use POST to deliver a webhook", NULL);
		return;
	}
	/* A page in a LAN user's browser can POST here too (a "simple" request needs no CORS consent)
	 * and fake calls on the dashboard. Browsers mark such requests (Origin on every POST, and
	 * Sec-Fetch-Site); servers do not. Not Sec-Fetch-Mode: Node's fetch sends it too. With a secret
	 * configured the secret decides: no page knows it. */
	struct evkeyvalq *in_h = evhttp_request_get_input_headers(req);
	if (!g->auth && (evhttp_find_header(in_h, "Origin") || evhttp_find_header(in_h, "Sec-Fetch-Site"))) {
		reject(g, req, 403, "browser_request",
		       "a web browser sent this (Origin or Sec-Fetch-Site): webhooks come from the platform's servers; "
		       "configure --webhook-secret-file to accept senders that must look like browsers",
		       NULL);
		return;
	}
	if (!authorized(g, req)) {
		char peer[64];
		http_peer(req, peer, sizeof(peer));
		arena_count(&g->arena, ARENA_C_REJECTED, 1);
		arena_count(&g->arena, ARENA_C_UNAUTHORIZED, 1);
		metrics_reject(worker_metrics, METRICS_R_UNAUTHORIZED);
		log_limited(&g->auth_limit, LOG_WARNING, "refused a webhook from %s: 401 missing or wrong secret", peer);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
		http_send_error(req, 401, "unauthorized",
		                "the webhook secret is missing or wrong (send it as x-interactly-secret or "
		                "Authorization: Bearer)",
		                NULL);
		return;
	}
	const char *enc_name = NULL;
	int encodings = 0; /* two Content-Encoding lines are a list, as "gzip, gzip" is */
	for (struct evkeyval *h = evhttp_request_get_input_headers(req)->tqh_first; h; h = h->next.tqe_next)
		if (evutil_ascii_strcasecmp(h->key, "Content-Encoding") == 0 && encodings++ == 0)
			enc_name = h->value;
	enum http_encoding enc = encodings > 1 ? HTTP_ENC_UNKNOWN : http_encoding_parse(enc_name);
	if (enc == HTTP_ENC_UNKNOWN) {
		reject(g, req, 415, "unsupported_encoding", "unsupported Content-Encoding: send identity, gzip or deflate",
		       NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0) {
		reject(g, req, 400, "empty", "the body is empty: expected a JSON object", NULL);
		return;
	}
	const char *body = (const char *)evbuffer_pullup(in, -1);
	if (!body) {
		reject(g, req, 503, "no_memory", "out of memory reading the body", NULL);
		return;
	}
	if (enc != HTTP_ENC_IDENTITY) {
		/* The inflated body is held to the same limit as a plain one: it is what gets stored. */
		enum http_inflate_status is = http_inflate(enc, body, len, g->max_body, &g->inflated);
		if (is != HTTP_INFLATE_OK) {
			char extra[64];
			snprintf(extra, sizeof(extra), "\"limit\":%zu", g->max_body);
			if (is == HTTP_INFLATE_TOO_LARGE)
				reject(g, req, 413, "too_large_inflated", "the body, once inflated, is larger than the limit", extra);
			else if (is == HTTP_INFLATE_NOMEM)
				reject(g, req, 503, "no_memory", "out of memory inflating the body", NULL);
			else
				reject(g, req, 400, "bad_encoding",
				       enc == HTTP_ENC_GZIP ? "the body is not valid gzip" : "the body is not valid deflate", NULL);
			buf_reset(&g->inflated);
			return;
		}
		body = g->inflated.data ? g->inflated.data : "";
		len = g->inflated.len;
		if (len == 0) {
			reject(g, req, 400, "empty", "the body is empty once inflated: expected a JSON object", NULL);
			return;
		}
	}
	struct json_doc doc;
	enum json_status js = json_parse(&doc, body, len, &g->lim);
	if (js != JSON_OK) {
		char extra[64];
		snprintf(extra, sizeof(extra), "\"offset\":%zu", doc.err_offset);
		char msg[160];
		snprintf(msg, sizeof(msg), "%s (at byte %zu)", json_strerror(js), doc.err_offset);
		if (js == JSON_ERR_NOMEM)
			reject(g, req, 503, json_errcode(js), msg, extra);
		else
			reject(g, req, 400, json_errcode(js), msg, extra);
		return;
	}
	const char *orig = body + (doc.bom ? 3 : 0);
	bool bom = doc.bom;
	struct event_secrets sec = { 0 };
	collect_header_secrets(g, req, &sec);
	/* The raw record's metadata is redacted with the secrets the body reveals too. */
	struct event_result r;
	uint64_t now = arena_now_ns();
	uint8_t raw_flags = (uint8_t)((doc.repairs ? EVENT_RAW_REPAIRED : 0) | (bom ? EVENT_RAW_BOM : 0) |
	                              (enc != HTTP_ENC_IDENTITY ? EVENT_RAW_INFLATED : 0));
	enum store_status st = store_prepare(&g->store, &doc, orig, &sec, &r);
	if (st == STORE_OK) {
		build_meta(g, req, &sec);
		st = g->meta.failed ? STORE_NOMEM
		                    : store_commit(&g->store, &doc, orig, &sec, g->meta.data, g->meta.len, raw_flags, now, &r);
	}
	json_free(&doc);
	event_secrets_clear(&sec);
	if (st == STORE_NOMEM) {
		reject(g, req, 503, "no_memory", "out of memory storing the event", NULL);
		return;
	}
	if (st == STORE_TOO_LARGE) {
		char extra[64];
		snprintf(extra, sizeof(extra), "\"limit\":%" PRIu64, g->arena.ring[ARENA_FACTS].max_record);
		reject(g, req, 413, "too_large_for_arena", "the event is too large for the arena's facts ring", extra);
		return;
	}
	note_evictions(g);
	ring_doorbell(g);
	static const char ok[] = "{\"status\":\"ok\"}";
	http_send(req, 200, HTTP_JSON, ok, sizeof(ok) - 1);
	/* The log line is made from the committed record, as liveeventsctl tail makes it. */
	struct event_fact f;
	if (event_fact_decode(g->store.fact.data, g->store.fact.len, &f) == 0) {
		buf_reset(&g->line);
		event_describe_text(&g->line, &f, g->store.fact_time_ns, event_log_text_chars(g->cfg->log_text));
		log_msg(LOG_INFO, "%s", buf_cstr(&g->line));
	}
}

static uint64_t
now_ms(void)
{
	return worker_monotonic_ns() / 1000000;
}

/* --webhook-rate: checked before anything costly (the secret, inflating, parsing). */
static bool
rate_limited(struct ingest *g, struct evhttp_request *req)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	const struct sockaddr *sa = con ? evhttp_connection_get_addr(con) : NULL;
	uint64_t wait_ms = http_rate_take(&g->rate, sa, now_ms());
	if (!wait_ms)
		return false;
	char retry[24], extra[48], peer[64];
	snprintf(retry, sizeof(retry), "%llu", (unsigned long long)((wait_ms + 999) / 1000));
	snprintf(extra, sizeof(extra), "\"limit\":%u", g->cfg->webhook_rate);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", retry);
	http_peer(req, peer, sizeof(peer));
	log_limited(&g->rate_limit, LOG_WARNING, "refused a webhook from %s: 429 over --webhook-rate %u a second",
	            peer, g->cfg->webhook_rate);
	arena_count(&g->arena, ARENA_C_REJECTED, 1);
	metrics_reject(worker_metrics, METRICS_R_RATE_LIMITED);
	http_send_error(req, 429, "rate_limited", "too many webhooks from this address: slow down", extra);
	return true;
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct ingest *g = arg;
	g->last_request_ms = now_ms();
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path)
		path = "";
	const char *framing = http_framing_error(req);
	if (framing) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reject(g, req, 400, "ambiguous_framing", framing, NULL);
		return;
	}
	if (strcmp(path, "/webhook") == 0) {
		/* With a secret, the secret decides and costs little: behind a tunnel every sender has the
		 * tunnel's address, and a flood of unsigned requests must not use up the platform's rate. */
		if (!g->auth && rate_limited(g, req))
			return;
		uint64_t t0 = worker_monotonic_ns();
		webhook(g, req);
		metrics_observe(&worker_metrics->webhook, (worker_monotonic_ns() - t0) / 1000);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
			http_send_error(req, 405, "method_not_allowed", "use GET", NULL);
			return;
		}
		/* Nothing about the stored data: this port may face the internet. */
		static const char ok[] = "{\"status\":\"ok\",\"role\":\"ingest\"}";
		http_send(req, 200, HTTP_JSON, ok, sizeof(ok) - 1);
		return;
	}
	/* Deliberately not the dashboard: this port may be exposed through a public tunnel. Logged,
	 * because a platform pointed at a wrong path loses every event it sends. */
	char peer[64], what[96];
	http_peer(req, peer, sizeof(peer));
	/* a sender may have put a credential in the path it was given */
	const char *sec[HTTP_SECRET_MAX + 1];
	size_t lens[HTTP_SECRET_MAX + 1], ns = 0;
	for (int i = 0; i < g->secrets.n && i < HTTP_SECRET_MAX; i++, ns++) {
		sec[ns] = g->secrets.v[i];
		lens[ns] = g->secrets.len[i];
	}
	sec[ns] = g->dashboard_token;
	lens[ns++] = strlen(g->dashboard_token);
	struct buf p = BUF_INIT;
	log_text_redacted(&p, path, strlen(path), LOG_PATH_CHARS, sec, lens, ns);
	snprintf(what, sizeof(what), "%s", buf_cstr(&p));
	buf_free(&p);
	log_limited(&g->refusal_limit, LOG_WARNING, "refused a request from %s: 404 %s (only POST /webhook is served here)",
	            peer, what);
	arena_count(&g->arena, ARENA_C_REJECTED, 1);
	metrics_reject(worker_metrics, METRICS_R_NOT_FOUND);
	http_send_error(req, 404, "not_found", "not found: this port only accepts POST /webhook", NULL);
}

/* --- control channel ------------------------------------------------------------------------------ */

static void stop(void *arg);

static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ingest *g = arg;
	struct ctl_msg m;
	int rc;
	while ((rc = worker_recv(fd, &m)) != WORKER_RECV_NONE) {
		if (rc == WORKER_RECV_CLOSED) {
			/* The master holds the other ends: it is gone, and so must we be. */
			log_msg(LOG_ERR, "the master is gone: stopping");
			event_del(g->ctl_ev);
			http_server_close_listener();
			g->drain_max_ms = INGEST_ORPHAN_DRAIN_MS;
			stop(g);
			return;
		}
		if (rc == WORKER_RECV_BAD || m.type != CTL_RESET_REQ)
			continue;
		if (worker_monotonic_ns() > m.deadline_ns) {
			/* Query has already answered 503 for this one: carrying it out now would surprise. */
			log_msg(LOG_WARNING, "ignored a reset request that expired before it arrived");
			continue;
		}
		store_reset(&g->store);
		ring_doorbell(g);
		uint64_t gen = arena_generation(&g->arena);
		log_msg(LOG_NOTICE, "reset: every call and event cleared and overwritten (generation %016" PRIx64 ")", gen);
		struct ctl_msg reply = { .magic = CTL_MAGIC, .type = CTL_RESET_DONE, .id = m.id, .generation = gen,
		                         .pid = (uint32_t)getpid() };
		if (worker_send(fd, &reply) < 0)
			log_msg(LOG_WARNING, "cannot confirm the reset to query: %s", strerror(errno));
	}
}

static void
heartbeat(void *arg)
{
	struct ingest *g = arg;
	arena_heartbeat(&g->arena);
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ingest *g = arg;
	uint64_t now = now_ms(), input = http_last_input_ms();
	uint64_t last = input > g->last_request_ms ? input : g->last_request_ms;
	/* Quiet is not enough: a sender may pause in the middle of a request. */
	size_t arriving = now - last >= INGEST_DRAIN_QUIET_MS ? http_requests_in_progress() : 1;
	if (arriving == 0) {
		event_base_loopexit(g->base, NULL);
	} else if (now - g->stop_ms >= g->drain_max_ms) {
		arriving = http_requests_in_progress();
		if (arriving)
			log_msg(LOG_WARNING, "stopping with %zu webhook(s) still arriving after %llu ms: their senders see "
			                     "the connection close",
			        arriving, (unsigned long long)(now - g->stop_ms));
		event_base_loopexit(g->base, NULL);
	}
}

static void
stop(void *arg)
{
	struct ingest *g = arg;
	if (g->stop_ms)
		return;
	g->stop_ms = now_ms();
	http_server_close_listener();
	if (!g->drain_max_ms)
		g->drain_max_ms = INGEST_DRAIN_MAX_MS;
	struct timeval tv = { 0, INGEST_DRAIN_CHECK_MS * 1000 };
	event_add(g->drain_ev, &tv);
}

int
ingest_main(const struct config *cfg)
{
	static struct ingest g;
	char err[256], why[512];
	g.cfg = cfg;
	/* The webhook side needs the dashboard's token only to keep it out of what it stores (a caller
	 * reading the dashboard URL aloud, a body quoting it): the rest of the access settings go. */
	snprintf(g.dashboard_token, sizeof(g.dashboard_token), "%s", worker_access.token);
	explicit_bzero(&worker_access, sizeof(worker_access));
	g.lim.max_depth = cfg->json_max_depth;
	g.lim.max_tokens = cfg->json_max_tokens;
	if (arena_map(&g.arena, WORKER_FD_ARENA, true, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "cannot map the arena: %s", err);
		return 1;
	}
	if (store_open(&g.store, &g.arena, cfg->call_idle_ms, why, sizeof(why)) < 0) {
		log_msg(LOG_ERR, "out of memory opening the store");
		return 1;
	}
	if (why[0])
		log_msg(LOG_WARNING, "arena recovery: %s", why);
	g.evicted_logged[ARENA_FACTS] = arena_counter_get(&g.arena, ARENA_C_CALLS_EVICTED);
	g.evicted_logged[ARENA_RAW] = atomic_load_explicit(&g.arena.ctl->ring[ARENA_RAW].evicted, memory_order_relaxed);

	/* Every accepted body must fit its raw record (DESIGN: every event's raw body is kept). */
	size_t max_body = cfg->max_body;
	uint64_t raw_room = g.arena.ring[ARENA_RAW].max_record - cfg->max_headers - RAW_META_SLACK;
	if (max_body > raw_room) {
		max_body = (size_t)raw_room;
		if (!worker_restarts)
			log_msg(LOG_WARNING, "--max-body lowered to %zu bytes: the largest raw record this arena holds",
			        max_body);
	}
	g.max_body = max_body;
	if (cfg->webhook_secret_file[0]) {
		if (http_secrets_load(&g.secrets, cfg->webhook_secret_file, err, sizeof(err)) < 0) {
			if (worker_secrets.n == 0) {
				log_msg(LOG_ERR, "%s", err);
				return 1;
			}
			/* Refusing to start would stop every webhook: keep what the file last said. */
			g.secrets = worker_secrets;
			g.secrets_reload_failed = true;
			log_msg(LOG_WARNING, "%s; the %d secret(s) read before stay in force", err, g.secrets.n);
		}
		g.auth = true;
	}
	struct http_server_limits lim;
	worker_http_limits(cfg, METRICS_INGEST, max_body, &lim);
	http_rate_init(&g.rate, cfg->webhook_rate, cfg->webhook_burst);
	g.http = worker_loop_init(&g.loop, heartbeat, stop, &g) == 0
	                 ? http_server_new(g.loop.base, WORKER_FD_LISTEN, &lim, request_cb, &g, "webhook", refused_early, &g)
	                 : NULL;
	g.base = g.loop.base;
	if (!g.http) {
		log_msg(LOG_ERR, "cannot serve on the webhook socket");
		return 1;
	}
	g.doorbell_ev = event_new(g.base, -1, 0, doorbell_cb, &g);
	g.ctl_ev = event_new(g.base, WORKER_FD_PEER, EV_READ | EV_PERSIST, ctl_cb, &g);
	g.drain_ev = event_new(g.base, -1, EV_PERSIST, drain_cb, &g);
	event_add(g.ctl_ev, NULL);
	if (g.auth) {
		struct timeval every = { HTTP_SECRET_RECHECK_MS / 1000, (HTTP_SECRET_RECHECK_MS % 1000) * 1000 };
		g.secrets_ev = event_new(g.base, -1, EV_PERSIST, recheck_secrets, &g);
		if (!g.secrets_ev || event_add(g.secrets_ev, &every) < 0) {
			log_msg(LOG_ERR, "cannot watch --webhook-secret-file");
			return 1;
		}
	}
	log_msg(LOG_INFO, "accepting webhooks (%" PRIu64 " records stored, %zu calls)",
	        arena_head(&g.arena, ARENA_FACTS) - arena_tail(&g.arena, ARENA_FACTS), g.store.view.ncalls);
	worker_loop_run(&g.loop);

	/* A clean stop: make a file-backed arena durable before exiting. */
	if (g.arena.file_backed)
		msync(g.arena.base, g.arena.size, MS_SYNC);
	evhttp_free(g.http);
	event_free(g.doorbell_ev);
	event_free(g.ctl_ev);
	event_free(g.drain_ev);
	if (g.secrets_ev)
		event_free(g.secrets_ev);
	worker_loop_free(&g.loop);
	store_close(&g.store);
	arena_unmap(&g.arena);
	http_secrets_clear(&g.secrets);
	explicit_bzero(g.dashboard_token, sizeof(g.dashboard_token));
	buf_free(&g.inflated);
	return 0;
}
