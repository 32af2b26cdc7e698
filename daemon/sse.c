/* sse: the dashboard port's event stream (see sse.h). */
#include "config.h"

#include "sse.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api.h"
#include "buf.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define SSE_ID_MAX 48 /* "GENERATION-NEXT": 16 hex digits, a dash, 20 decimal digits */

struct sse_client {
	struct sse_hub *h;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char *call; /* the filter, or NULL for every call */
	size_t call_len;
	struct sse_client *prev, *next;
};

struct sse_gone_entry {
	char *id;
	size_t len;
	uint64_t next; /* the view's position when the call left */
};

struct sse_hub {
	struct event_base *base;
	struct event *heartbeat;
	struct sse_client *clients;
	size_t nclients, max_clients, max_backlog;
	struct sse_gone_entry gone[SSE_GONE_KEEP];
	uint64_t ngone; /* departures ever recorded in this generation (the ring keeps the latest) */
	/* Departures are known from this position on: before it (this query process started, or a new
	 * generation began) they were not seen, so a client older than that cannot be told of them. */
	uint64_t gone_known_from;
	bool gone_known_set;
	bool pending_reset;
	uint64_t opened, overflowed, events, refused;
	struct buf ev, data;
	struct log_limit overflow_limit, refused_limit;
};

/* --- clients ------------------------------------------------------------------------------------- */

static void
client_unlink(struct sse_client *c)
{
	struct sse_hub *h = c->h;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nclients--;
	free(c->call);
	free(c);
}

/* The peer went away: libevent has detached the request, which reply_end now frees. */
static void
client_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct sse_client *c = arg;
	evhttp_send_reply_end(c->req);
	client_unlink(c);
}

static size_t
backlog(const struct sse_client *c)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void
send_raw(struct sse_client *c, const char *p, size_t n)
{
	struct evbuffer *eb = evbuffer_new();
	if (!eb)
		return;
	evbuffer_add(eb, p, n);
	evhttp_send_reply_chunk(c->req, eb);
	evbuffer_free(eb);
}

/* Tells the client it fell behind and ends its stream; its last bytes get SSE_DROP_GRACE_MS to
 * leave before the connection is closed. The client reconnects and catches up in one step. */
static void
drop(struct sse_client *c)
{
	struct sse_hub *h = c->h;
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "event: overflow\ndata: {\"limit\":%zu}\n\n", h->max_backlog);
	send_raw(c, msg, (size_t)n);
	h->overflowed++;
	char peer[64];
	http_peer(c->req, peer, sizeof(peer));
	log_limited(&h->overflow_limit, LOG_WARNING,
	            "dropped the event stream of %s: %zu bytes unsent, over the limit of %zu (it will catch up when it "
	            "reconnects)", peer, backlog(c), h->max_backlog);
	evhttp_connection_set_closecb(c->evcon, NULL, NULL);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	struct timeval grace = { SSE_DROP_GRACE_MS / 1000, (SSE_DROP_GRACE_MS % 1000) * 1000 };
	if (bev)
		bufferevent_set_timeouts(bev, NULL, &grace);
	evhttp_send_reply_end(c->req);
	client_unlink(c);
}

/* Sends one event (or comment); false if the client was dropped for its backlog. */
static bool
send_event(struct sse_client *c, const char *p, size_t n)
{
	if (backlog(c) > c->h->max_backlog) {
		drop(c);
		return false;
	}
	send_raw(c, p, n);
	return true;
}

static bool
wants(const struct sse_client *c, const char *id, size_t len)
{
	return !c->call || (c->call_len == len && memcmp(c->call, id, len) == 0);
}

/* --- events -------------------------------------------------------------------------------------- */

/* "id: G-N\nevent: type\ndata: " then data then "\n\n" into h->ev; id_next UINT64_MAX: no id. */
static void
frame(struct sse_hub *h, const char *type, uint64_t generation, uint64_t id_next, const struct buf *data)
{
	buf_reset(&h->ev);
	if (id_next != UINT64_MAX)
		buf_printf(&h->ev, "id: %016" PRIx64 "-%" PRIu64 "\n", generation, id_next);
	buf_printf(&h->ev, "event: %s\ndata: ", type);
	buf_add(&h->ev, data->data, data->len);
	buf_adds(&h->ev, "\n\n");
}

/* {"next":N,"replace":B,"summary":{...},"detail":{...}}, the detail holding what changed after
 * `after`; or, when the call's history began after that (a new call, or one whose history started
 * over when it came back after leaving the arena), its whole state with replace true: a client
 * must drop what it held of the call, not merge into it. */
static void
call_data(struct sse_hub *h, const struct view_call *c, uint64_t generation, uint64_t next, uint64_t after)
{
	bool replace = after == API_ALL || c->first_seq > after;
	if (replace)
		after = API_ALL;
	buf_reset(&h->data);
	buf_printf(&h->data, "{\"next\":%" PRIu64 ",\"replace\":%s,\"summary\":", next, replace ? "true" : "false");
	api_call_summary(&h->data, c);
	buf_adds(&h->data, ",\"detail\":");
	api_call_delta(&h->data, c, generation, next, after);
	buf_addc(&h->data, '}');
}

static void
position_data(struct sse_hub *h, uint64_t generation, uint64_t next, const char *reason, long calls)
{
	buf_reset(&h->data);
	buf_printf(&h->data, "{\"generation\":\"%016" PRIx64 "\",\"next\":%" PRIu64, generation, next);
	if (reason)
		buf_printf(&h->data, ",\"reason\":\"%s\"", reason);
	if (calls >= 0)
		buf_printf(&h->data, ",\"calls\":%ld", calls);
	buf_addc(&h->data, '}');
}

static void
gone_data(struct sse_hub *h, const char *id, size_t len)
{
	buf_reset(&h->data);
	buf_adds(&h->data, "{\"id\":");
	json_write_str(&h->data, id, len);
	buf_addc(&h->data, '}');
}

/* Sends h->ev to every client that wants call id (NULL: every client). */
static void
broadcast(struct sse_hub *h, const char *id, size_t len)
{
	if (h->ev.failed)
		return;
	for (struct sse_client *c = h->clients, *next; c; c = next) {
		next = c->next;
		if ((!id || wants(c, id, len)) && send_event(c, h->ev.data, h->ev.len))
			h->events++;
	}
}

void
sse_applied(struct sse_hub *h, uint64_t seq, const struct view_call *c, uint64_t generation)
{
	/* Only facts that change what a call shows; during a rebuild, the reset says it all. */
	if (!h || !h->clients || h->pending_reset || !c || c->changed_seq != seq)
		return;
	call_data(h, c, generation, seq + 1, seq == 0 ? API_ALL : seq - 1);
	frame(h, "call", generation, seq + 1, &h->data);
	broadcast(h, c->id, c->id_len);
}

void
sse_gone(struct sse_hub *h, const struct view_call *c, uint64_t next)
{
	if (!h || h->pending_reset)
		return;
	struct sse_gone_entry *g = &h->gone[h->ngone % SSE_GONE_KEEP];
	free(g->id);
	g->id = malloc(c->id_len + 1);
	if (g->id) {
		memcpy(g->id, c->id, c->id_len + 1);
		g->len = c->id_len;
		g->next = next;
	}
	h->ngone++;
	if (!h->clients)
		return;
	gone_data(h, c->id, c->id_len);
	frame(h, "gone", 0, UINT64_MAX, &h->data);
	broadcast(h, c->id, c->id_len);
}

static void
forget_gone(struct sse_hub *h)
{
	for (size_t i = 0; i < SSE_GONE_KEEP; i++) {
		free(h->gone[i].id);
		h->gone[i].id = NULL;
	}
	h->ngone = 0;
}

void
sse_started_over(struct sse_hub *h)
{
	if (h)
		h->pending_reset = true;
}

void
sse_flush_reset(struct sse_hub *h, uint64_t generation, uint64_t next)
{
	if (!h || !h->pending_reset)
		return;
	h->pending_reset = false;
	forget_gone(h);
	h->gone_known_from = next;
	h->gone_known_set = true;
	position_data(h, generation, next, "generation", -1);
	frame(h, "reset", generation, next, &h->data);
	broadcast(h, NULL, 0);
}

static void
heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sse_hub *h = arg;
	static const char ping[] = ": ping\n\n";
	for (struct sse_client *c = h->clients, *next; c; c = next) {
		next = c->next;
		send_event(c, ping, sizeof(ping) - 1);
	}
}

/* --- opening a stream ---------------------------------------------------------------------------- */

/* Parses "GENERATION-NEXT"; false if it is not one. */
static bool
parse_id(const char *s, uint64_t *gen, uint64_t *next)
{
	char *end;
	if (!s || strlen(s) > SSE_ID_MAX)
		return false;
	const char *dash = strchr(s, '-');
	if (!dash || dash - s != 16)
		return false;
	for (const char *p = s; p < dash; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	*gen = strtoull(s, NULL, 16);
	if (dash[1] < '0' || dash[1] > '9')
		return false;
	*next = strtoull(dash + 1, &end, 10);
	return *end == '\0';
}

/* Sends what a client holding everything before `from` missed: departures, then each changed call
 * (oldest change first) with what changed since. Returns the number of calls sent; CATCH_FORGOTTEN
 * if a departure it missed is no longer remembered; CATCH_TOO_MUCH if what it missed is more than
 * a client may hold unsent (it is sent in one go, before the connection can drain): the client
 * starts over from the REST API instead. */
#define CATCH_FORGOTTEN (-1)
#define CATCH_TOO_MUCH (-3)
static long
catch_up(struct sse_hub *h, struct sse_client *cl, const struct view *v, uint64_t generation, uint64_t next,
         uint64_t from, uint64_t tail)
{
	/* Calls may have left unseen before this process knew (an arena that never dropped a fact has
	 * lost no call). */
	if (tail > 0 && (!h->gone_known_set || from < h->gone_known_from))
		return CATCH_FORGOTTEN;
	size_t bytes = 0;
	uint64_t kept = h->ngone < SSE_GONE_KEEP ? h->ngone : SSE_GONE_KEEP;
	uint64_t first = h->ngone - kept;
	if (first > 0 && h->gone[first % SSE_GONE_KEEP].next > from)
		return CATCH_FORGOTTEN; /* departures before the oldest remembered may concern this client */
	for (uint64_t i = first; i < h->ngone; i++) {
		const struct sse_gone_entry *g = &h->gone[i % SSE_GONE_KEEP];
		if (!g->id || g->next < from || !wants(cl, g->id, g->len))
			continue;
		gone_data(h, g->id, g->len);
		frame(h, "gone", 0, UINT64_MAX, &h->data);
		if ((bytes += h->ev.len) > h->max_backlog)
			return CATCH_TOO_MUCH;
		send_raw(cl, h->ev.data, h->ev.len);
	}
	/* The calls changed since, oldest change first: the activity list read backwards. */
	const struct view_call *c = v->act_newest, *oldest = NULL;
	while (c && c->changed_seq >= from) {
		oldest = c;
		c = c->act_older;
	}
	long sent = 0;
	for (c = oldest; c; c = c->act_newer) {
		if (!wants(cl, c->id, c->id_len))
			continue;
		/* No id: the client has everything before `from` until the catch-up is complete. */
		call_data(h, c, generation, next, from == 0 ? API_ALL : from - 1);
		frame(h, "call", 0, UINT64_MAX, &h->data);
		if (h->ev.failed || (bytes += h->ev.len) > h->max_backlog)
			return CATCH_TOO_MUCH;
		send_raw(cl, h->ev.data, h->ev.len);
		sent++;
	}
	return sent;
}

void
sse_open(struct sse_hub *h, struct evhttp_request *req, const struct view *v, uint64_t generation, uint64_t next,
         uint64_t tail)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* what a GET would start with, and the end: a HEAD holds no stream open */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/event-stream; charset=utf-8");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store, no-transform");
		http_reply(req, 200, NULL);
		return;
	}
	if (h->nclients >= h->max_clients) {
		char extra[48];
		snprintf(extra, sizeof(extra), "\"limit\":%zu", h->max_clients);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
		http_send_error(req, 503, "too_many_streams", "too many event streams are open", extra);
		h->refused++;
		char peer[64];
		http_peer(req, peer, sizeof(peer));
		log_limited(&h->refused_limit, LOG_WARNING,
		            "refused an event stream from %s: 503, --stream-clients %zu are open", peer, h->max_clients);
		return;
	}
	/* ?call=ID follows one call. */
	char *call = NULL;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	if (query) {
		struct evkeyvalq params;
		if (evhttp_parse_query_str(query, &params) < 0) {
			http_send_error(req, 400, "bad_query", "the query string could not be read", NULL);
			return;
		}
		const char *want = evhttp_find_header(&params, "call");
		if (want && want[0] && !(call = strdup(want))) {
			evhttp_clear_headers(&params);
			http_send_error(req, 503, "out_of_memory", "out of memory", NULL);
			return;
		}
		evhttp_clear_headers(&params);
	}
	struct sse_client *cl = calloc(1, sizeof(*cl));
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!cl || !evcon) {
		free(cl);
		free(call);
		http_send_error(req, 503, "out_of_memory", "out of memory", NULL);
		return;
	}
	*cl = (struct sse_client){ .h = h, .req = req, .evcon = evcon, .call = call, .call_len = call ? strlen(call) : 0 };

	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Content-Type", "text/event-stream; charset=utf-8");
	/* Proxies must pass each event on as it comes: not cached, transformed, compressed or buffered. */
	evhttp_add_header(out, "Cache-Control", "no-store, no-transform");
	evhttp_add_header(out, "X-Accel-Buffering", "no");
	evhttp_add_header(out, "Connection", "close");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(evcon, client_closed, cl);
	/* No read timeout (a stream is quiet by nature); a peer that accepts nothing is dropped. */
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	struct timeval wt = { SSE_WRITE_TIMEOUT_S, 0 };
	if (bev)
		bufferevent_set_timeouts(bev, NULL, &wt);
	cl->next = h->clients;
	if (h->clients)
		h->clients->prev = cl;
	h->clients = cl;
	h->nclients++;
	h->opened++;

	char retry[32];
	int rn = snprintf(retry, sizeof(retry), "retry: %d\n\n", SSE_RETRY_MS);
	send_raw(cl, retry, (size_t)rn);

	const char *last = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
	uint64_t lgen, lnext;
	const char *reason = NULL;
	if (!last || !last[0]) {
		position_data(h, generation, next, NULL, -1);
		frame(h, "hello", generation, next, &h->data);
		send_event(cl, h->ev.data, h->ev.len);
		return;
	}
	if (!parse_id(last, &lgen, &lnext))
		reason = "unreadable";
	else if (lgen != generation)
		reason = "generation";
	else if (lnext > next)
		reason = "ahead";
	else if (lnext < tail)
		reason = "evicted";
	long n = reason ? CATCH_FORGOTTEN : catch_up(h, cl, v, generation, next, lnext, tail);
	if (n == CATCH_FORGOTTEN && !reason)
		reason = "evicted";
	else if (n == CATCH_TOO_MUCH)
		reason = "too_far_behind";
	if (n < 0) {
		position_data(h, generation, next, reason, -1);
		frame(h, "reset", generation, next, &h->data);
	} else {
		position_data(h, generation, next, NULL, n);
		frame(h, "synced", generation, next, &h->data);
	}
	send_event(cl, h->ev.data, h->ev.len);
}

/* --- the hub ------------------------------------------------------------------------------------- */

struct sse_hub *
sse_hub_new(struct event_base *base, size_t max_clients, size_t max_backlog, unsigned heartbeat_s)
{
	struct sse_hub *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->base = base;
	h->max_clients = max_clients;
	h->max_backlog = max_backlog;
	h->heartbeat = event_new(base, -1, EV_PERSIST, heartbeat_cb, h);
	struct timeval tv = { (time_t)heartbeat_s, 0 };
	if (!h->heartbeat || event_add(h->heartbeat, &tv) < 0) {
		if (h->heartbeat)
			event_free(h->heartbeat);
		free(h);
		return NULL;
	}
	return h;
}

void
sse_hub_free(struct sse_hub *h)
{
	if (!h)
		return;
	while (h->clients) {
		struct sse_client *c = h->clients;
		evhttp_connection_set_closecb(c->evcon, NULL, NULL);
		evhttp_send_reply_end(c->req);
		client_unlink(c);
	}
	forget_gone(h);
	event_free(h->heartbeat);
	buf_free(&h->ev);
	buf_free(&h->data);
	free(h);
}

void
sse_hub_known_from(struct sse_hub *h, uint64_t next)
{
	if (!h)
		return;
	h->gone_known_from = next;
	h->gone_known_set = true;
}

size_t
sse_hub_clients(const struct sse_hub *h)
{
	return h ? h->nclients : 0;
}

void
sse_hub_stats(const struct sse_hub *h, uint64_t *opened, uint64_t *overflowed, uint64_t *events, uint64_t *refused)
{
	*refused = h ? h->refused : 0;
	*opened = h ? h->opened : 0;
	*overflowed = h ? h->overflowed : 0;
	*events = h ? h->events : 0;
}
