/* http: listening sockets and reply helpers (see http.h). */
#include "config.h"

#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <event2/keyvalq_struct.h>

#include "http_conn.h"
#include "json.h"
#include "log.h"

void
http_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "unix");
	}
}

void
http_addr_group(unsigned char addr[16])
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(addr, v4mapped, sizeof(v4mapped)) != 0)
		memset(addr + 8, 0, 8);
}

int
http_listen(const struct listen_addr *a, bool *in_use, char *err, size_t errlen)
{
	*in_use = false;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Accepted sockets inherit it: a small reply must not wait for the peer's delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* [::] takes IPv4 clients too, whatever the system's default (net.ipv6.bindv6only) says. */
	int zero = 0;
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
		int e = errno;
		*in_use = e == EADDRINUSE;
		snprintf(err, errlen, "cannot listen on %s: %s", a->text,
		         e == EADDRINUSE ? "address already in use" : strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

const char *
http_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 204: return "No Content";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

void
http_reply(struct evhttp_request *req, int code, struct evbuffer *body)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* libevent 2.1 omits Content-Length for HEAD but still writes the body, which would run
		 * into the next response on a kept-alive connection: send the length, not the body. */
		char len[32];
		snprintf(len, sizeof(len), "%zu", body ? evbuffer_get_length(body) : (size_t)0);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
		evhttp_send_reply(req, code, http_reason(code), NULL);
		return;
	}
	evhttp_send_reply(req, code, http_reason(code), body);
}

static void
add_json_headers(struct evhttp_request *req, const char *ctype)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", ctype);
	if (!evhttp_find_header(h, "Cache-Control"))
		evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

void
http_send(struct evhttp_request *req, int code, const char *ctype, const void *body, size_t len)
{
	add_json_headers(req, ctype);
	struct evbuffer *out = evbuffer_new();
	if (!out) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (len)
		evbuffer_add(out, body, len);
	http_reply(req, code, out);
	evbuffer_free(out);
}

const char *
http_framing_error(struct evhttp_request *req)
{
	struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
	int lengths = 0;
	bool te = false, other_coding = false, digits = true;
	for (struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next) {
		if (evutil_ascii_strcasecmp(h->key, "Content-Length") == 0) {
			lengths++;
			/* libevent takes "+2" or " 2" as 2; a proxy in front may not */
			digits &= h->value[0] != '\0' && strspn(h->value, "0123456789") == strlen(h->value);
		} else if (evutil_ascii_strcasecmp(h->key, "Transfer-Encoding") == 0) {
			/* libevent decodes "chunked" alone; anything else ("gzip, chunked") it would read as
			 * plain bytes */
			other_coding |= te || evutil_ascii_strcasecmp(h->value, "chunked") != 0;
			te = true;
		}
	}
	if (other_coding)
		return "a Transfer-Encoding other than chunked";
	/* Two framings that a proxy in front may read differently from us: the way requests are
	 * smuggled past a tunnel or proxy. */
	if (lengths > 1)
		return "more than one Content-Length header";
	if (lengths && te)
		return "both Content-Length and Transfer-Encoding";
	if (!digits)
		return "a Content-Length that is not digits alone";
	return NULL;
}

void
http_send_json(struct evhttp_request *req, int code, const struct buf *b)
{
	if (b->failed) {
		http_send_error(req, 503, "no_memory", "out of memory while building the answer", NULL);
		return;
	}
	http_send(req, code, HTTP_JSON, b->data, b->len);
}

static void
free_taken(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

void
http_send_json_take(struct evhttp_request *req, int code, struct buf *b)
{
	if (b->failed || b->len == 0) {
		http_send_json(req, code, b);
		return;
	}
	add_json_headers(req, HTTP_JSON);
	struct evbuffer *out = evbuffer_new();
	if (!out || evbuffer_add_reference(out, b->data, b->len, free_taken, NULL) < 0) {
		if (out)
			evbuffer_free(out);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	b->data = NULL;
	b->len = b->cap = 0;
	http_reply(req, code, out);
	evbuffer_free(out);
}

struct http_shared {
	char *data;
	size_t len;
	unsigned refs;
};

struct http_shared *
http_shared_new(struct buf *b)
{
	struct http_shared *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->data = b->data;
	s->len = b->len;
	s->refs = 1;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void
http_shared_unref(struct http_shared *s)
{
	if (s && --s->refs == 0) {
		free(s->data);
		free(s);
	}
}

size_t
http_shared_len(const struct http_shared *s)
{
	return s->len;
}

static void
shared_done(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	http_shared_unref(arg);
}

void
http_send_shared(struct evhttp_request *req, int code, struct http_shared *s)
{
	add_json_headers(req, HTTP_JSON);
	struct evbuffer *out = evbuffer_new();
	s->refs++;
	if (!out || evbuffer_add_reference(out, s->data, s->len, shared_done, s) < 0) {
		s->refs--;
		if (out)
			evbuffer_free(out);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	http_reply(req, code, out);
	evbuffer_free(out);
}

void
http_send_error(struct evhttp_request *req, int code, const char *code_str, const char *message,
                const char *extra)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"error\":");
	json_write_cstr(&b, message);
	buf_adds(&b, ",\"code\":");
	json_write_cstr(&b, code_str);
	if (extra) {
		buf_addc(&b, ',');
		buf_adds(&b, extra);
	}
	buf_addc(&b, '}');
	if (code == 405) {
		/* The one header a 405 must carry; callers set it, this only guards against a forgotten one. */
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		if (!evhttp_find_header(h, "Allow"))
			evhttp_add_header(h, "Allow", "GET");
	}
	http_send(req, code, HTTP_JSON, b.data, b.len);
	buf_free(&b);
}

void
http_peer(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	const struct sockaddr *sa = con ? evhttp_connection_get_addr(con) : NULL;
	if (sa)
		http_addr_text(sa, out, outlen);
	else
		snprintf(out, outlen, "?");
}

/* --- libevent's own refusals ---------------------------------------------------------------------- */

/* The body evhttp_send_error() queues, and how far back its header block can start. */
#define LIBEVENT_PAGE_MARKER "<HTML><HEAD>\n<TITLE>"
#define LIBEVENT_PAGE_HEADERS_MAX 1024

/* One server per worker process, so the refusal settings are process-wide. */
static struct {
	size_t max_body, max_headers;
	unsigned max_header_count;
	const char *what;
	http_refusal_cb cb;
	void *arg;
	bool rewriting;
	struct log_limit limit;
} refusals;

/* The code an answer of libevent's own status carries in its JSON body. */
static const char *
refusal_code(int code)
{
	switch (code) {
	case 413: return "too_large";
	case 414: return "uri_too_long";
	case 431: return "headers_too_large";
	case 501: return "method_not_implemented";
	default: return "bad_request";
	}
}

static void
refusal_body(struct buf *b, int code)
{
	if (code == 414 || code == 431) {
		char msg[112];
		snprintf(msg, sizeof(msg), "the request %s is larger than the limit of %zu bytes",
		         code == 414 ? "line" : "header block", refusals.max_headers);
		buf_adds(b, "{\"error\":");
		json_write_cstr(b, msg);
		buf_printf(b, ",\"code\":\"%s\",\"limit\":%zu}", refusal_code(code), refusals.max_headers);
	} else if (code == 413) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the body is larger than the limit of %zu bytes", refusals.max_body);
		buf_adds(b, "{\"error\":");
		json_write_cstr(b, msg);
		buf_printf(b, ",\"code\":\"too_large\",\"limit\":%zu}", refusals.max_body);
	} else if (code == 501) {
		buf_adds(b, "{\"error\":\"this method is not supported\",\"code\":\"method_not_implemented\"}");
	} else {
		buf_adds(b, "{\"error\":\"the request could not be read: malformed, or its request line or headers "
		            "are too large\",\"code\":\"bad_request\"}");
	}
}

#define HTTP_EARLY_SLOTS 64 /* connections answered early whose libevent 413 is still to come */

static int head_refusal(int fd);

static struct bufferevent *answered_early[HTTP_EARLY_SLOTS];
static unsigned answered_next;

/* True if bev was answered early; forgets it (a later connection may get its address). */
static bool
forget_answered_early(const struct bufferevent *bev)
{
	bool found = false;
	for (unsigned i = 0; i < HTTP_EARLY_SLOTS; i++)
		if (answered_early[i] == bev) {
			answered_early[i] = NULL;
			found = true;
		}
	return found;
}

static void
output_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	static const char marker[] = LIBEVENT_PAGE_MARKER;
	char head[sizeof(marker) - 1];
	struct evbuffer_ptr p;
	if (refusals.rewriting || info->n_added < sizeof(head) ||
	    evbuffer_ptr_set(out, &p, info->orig_size, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(out, &p, head, sizeof(head)) != (ev_ssize_t)sizeof(head) ||
	    memcmp(head, marker, sizeof(head)) != 0)
		return;
	/* The page's header block is the last response start before the body. */
	size_t from = info->orig_size > LIBEVENT_PAGE_HEADERS_MAX ? info->orig_size - LIBEVENT_PAGE_HEADERS_MAX : 0;
	struct evbuffer_ptr s, end;
	evbuffer_ptr_set(out, &s, from, EVBUFFER_PTR_SET);
	evbuffer_ptr_set(out, &end, info->orig_size, EVBUFFER_PTR_SET);
	ev_ssize_t start = -1;
	for (;;) {
		struct evbuffer_ptr f = evbuffer_search_range(out, "HTTP/1.", 7, &s, &end);
		if (f.pos < 0)
			break;
		start = f.pos;
		evbuffer_ptr_set(out, &s, (size_t)f.pos + 1, EVBUFFER_PTR_SET);
	}
	char status[13] = "";
	if (start < 0 || evbuffer_ptr_set(out, &s, (size_t)start, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(out, &s, status, 12) != 12)
		return;
	int code = atoi(status + 9);
	if (code == 400)
		code = head_refusal(bufferevent_getfd((struct bufferevent *)arg));
	/* A connection answered early: what libevent queues now goes nowhere (the socket is
	 * half-closed), and the refusal was logged and counted then. */
	bool early = forget_answered_early(arg);
	struct buf body = BUF_INIT;
	refusal_body(&body, code);
	refusals.rewriting = true;
	struct evbuffer *keep = evbuffer_new();
	if (keep && !body.failed) {
		/* Earlier responses still queued on this connection stay as they are. */
		evbuffer_remove_buffer(out, keep, (size_t)start);
		evbuffer_drain(out, evbuffer_get_length(out));
		evbuffer_add_buffer(out, keep);
		evbuffer_add_printf(out,
		                    "HTTP/1.1 %d %s\r\nContent-Type: " HTTP_JSON "\r\nContent-Length: %zu\r\n"
		                    HTTP_CANNED_HEADERS "Connection: close\r\n\r\n",
		                    code, http_reason(code), body.len);
		evbuffer_add(out, body.data, body.len);
	}
	if (keep)
		evbuffer_free(keep);
	refusals.rewriting = false;
	buf_free(&body);
	if (early)
		return;
	/* An event the platform never resends is gone: it must at least be visible. */
	char peer[64] = "?";
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = bufferevent_getfd((struct bufferevent *)arg);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
		http_addr_text((struct sockaddr *)&ss, peer, sizeof(peer));
	if (code == 413)
		log_limited(&refusals.limit, LOG_WARNING, "refused a %s from %s: 413 body larger than %zu bytes",
		            refusals.what, peer, refusals.max_body);
	else if (code == 501)
		log_limited(&refusals.limit, LOG_WARNING, "refused a %s from %s: 501 method not supported", refusals.what,
		            peer);
	else if (code == 414 || code == 431)
		log_limited(&refusals.limit, LOG_WARNING, "refused a %s from %s: %d %s over --max-headers %zu bytes",
		            refusals.what, peer, code, code == 414 ? "request line" : "header block", refusals.max_headers);
	else
		log_limited(&refusals.limit, LOG_WARNING,
		            "refused a %s from %s: %d malformed request, or request line or headers over %zu bytes",
		            refusals.what, peer, code, refusals.max_headers);
	if (refusals.cb)
		refusals.cb(code, refusal_code(code), refusals.arg);
}

/* --- a body announced too large, refused before it is sent ----------------------------------------- */

/* libevent's lingering close reads a body announced over the limit to its end before it answers
 * 413, however large the announcement: a sender of "Content-Length: 64 GiB" would be read for as
 * long as it sends. Like nginx, we answer as soon as the head has arrived, half-close the
 * connection so the answer is not lost to a reset, and let libevent discard what still comes.
 * The head is looked at in the connection's input buffer before libevent parses it (evbuffer
 * callbacks run first); a head that arrives in several pieces is parsed by libevent piecemeal and
 * falls back to its own, later 413. */

/* The value of header name in the head p[0..n) (lines after the request line), or NULL. */
static const char *
head_value(const char *p, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = p + n, *line = memchr(p, '\n', n);
	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		line = eol;
	}
	return NULL;
}

static void
answer_early(struct bufferevent *bev, uint64_t announced, bool chunked)
{
	int fd = bufferevent_getfd(bev);
	/* An earlier answer still queued would be overtaken: leave this one to libevent. */
	if (fd < 0 || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	struct buf body = BUF_INIT, msg = BUF_INIT;
	refusal_body(&body, 413);
	buf_printf(&msg,
	           "HTTP/1.1 413 %s\r\nContent-Type: " HTTP_JSON "\r\nContent-Length: %zu\r\n" HTTP_CANNED_HEADERS
	           "Connection: close\r\n\r\n",
	           http_reason(413), body.len);
	buf_add(&msg, body.data, body.len);
	ssize_t w = msg.failed ? -1 : send(fd, msg.data, msg.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	bool sent = w == (ssize_t)msg.len;
	buf_free(&body);
	buf_free(&msg);
	if (!sent)
		return; /* a fresh connection's send buffer takes 300 bytes; if not, libevent answers later */
	shutdown(fd, SHUT_WR);
	answered_early[answered_next++ % HTTP_EARLY_SLOTS] = bev;
	char peer[64] = "?";
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
		http_addr_text((struct sockaddr *)&ss, peer, sizeof(peer));
	log_limited(&refusals.limit, LOG_WARNING,
	            "refused a %s from %s: 413 %s %s%llu bytes%s, the limit is %zu (answered before %s was sent)",
	            refusals.what, peer, chunked ? "chunked body announcing" : "body of",
	            announced == UINT64_MAX ? "at least " : "", (unsigned long long)announced,
	            chunked ? " so far" : " announced", refusals.max_body, chunked ? "the rest" : "it");
	if (refusals.cb)
		refusals.cb(413, refusal_code(413), refusals.arg);
}

/* A chunked body is counted here too, as its bytes arrive: libevent's lingering close would read it
 * to its end before answering. The chunk framing is followed just enough to count data bytes, for
 * a bounded number of connections at once (a new head on the same connection starts over; an
 * entry whose connection went away is reused). Bytes libevent cannot read it refuses itself. */
#define HTTP_CHUNK_TRACK 64
#define HTTP_CHUNK_LINE_MAX 32 /* a chunk size line is read this far: hex digits, then extensions */

enum chunk_phase { CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, CHUNK_DONE };

struct chunk_track {
	const struct bufferevent *bev;
	enum chunk_phase phase;
	uint64_t data;      /* body bytes so far */
	uint64_t left;      /* of the current chunk's data, or of its CRLF */
	char line[HTTP_CHUNK_LINE_MAX];
	size_t line_len;
};

static struct chunk_track chunk_tracks[HTTP_CHUNK_TRACK];
static unsigned chunk_next;

static struct chunk_track *
chunk_find(const struct bufferevent *bev, bool create)
{
	for (unsigned i = 0; i < HTTP_CHUNK_TRACK; i++)
		if (chunk_tracks[i].bev == bev)
			return &chunk_tracks[i];
	if (!create)
		return NULL;
	struct chunk_track *t = &chunk_tracks[chunk_next++ % HTTP_CHUNK_TRACK];
	memset(t, 0, sizeof(*t));
	t->bev = bev;
	return t;
}

/* Follows p[0..n) of a chunked body; answers 413 at once when the data passes the limit. */
static void
chunk_feed(struct chunk_track *t, struct bufferevent *bev, const char *p, size_t n)
{
	const char *end = p + n;
	while (p < end && t->phase != CHUNK_DONE) {
		if (t->phase == CHUNK_DATA || t->phase == CHUNK_CRLF) {
			size_t k = (size_t)(end - p) < t->left ? (size_t)(end - p) : (size_t)t->left;
			p += k;
			t->left -= k;
			if (t->left == 0 && t->phase == CHUNK_DATA) {
				t->phase = CHUNK_CRLF;
				t->left = 2;
			} else if (t->left == 0) {
				t->phase = CHUNK_SIZE;
			}
			continue;
		}
		char c = *p++;
		if (c != '\n') {
			if (t->line_len < sizeof(t->line))
				t->line[t->line_len++] = c;
			continue;
		}
		uint64_t size = 0;
		size_t i = 0;
		for (; i < t->line_len; i++) {
			char h = t->line[i];
			int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
			if (d < 0)
				break;
			size = size > (UINT64_MAX >> 4) ? UINT64_MAX : (size << 4) | (uint64_t)d;
		}
		t->line_len = 0;
		if (i == 0 || size == 0) {
			t->phase = CHUNK_DONE; /* the last chunk, or not chunk framing: libevent judges */
			break;
		}
		/* The size is known before its data: a chunk that would pass the limit is refused now. */
		t->data = size > UINT64_MAX - t->data ? UINT64_MAX : t->data + size;
		if (t->data > refusals.max_body) {
			t->phase = CHUNK_DONE;
			answer_early(bev, t->data, true);
			break;
		}
		t->phase = CHUNK_DATA;
		t->left = size;
	}
}

/* Hands the bytes of in from offset off to its end to feed, a piece at a time, for as long as it
 * returns true (the buffer is not drained: libevent reads it next). */
static void
feed_from(struct evbuffer *in, size_t off, bool (*feed)(void *arg, const char *p, size_t n), void *arg)
{
	char tmp[4096];
	struct evbuffer_ptr ptr;
	size_t len = evbuffer_get_length(in);
	while (off < len) {
		if (evbuffer_ptr_set(in, &ptr, off, EVBUFFER_PTR_SET) < 0)
			return;
		size_t want = len - off < sizeof(tmp) ? len - off : sizeof(tmp);
		ev_ssize_t got = evbuffer_copyout_from(in, &ptr, tmp, want);
		if (got <= 0)
			return;
		off += (size_t)got;
		if (!feed(arg, tmp, (size_t)got))
			return;
	}
}

struct chunk_feeding {
	struct chunk_track *t;
	struct bufferevent *bev;
};

static bool
chunk_feed_piece(void *arg, const char *p, size_t n)
{
	struct chunk_feeding *f = arg;
	chunk_feed(f->t, f->bev, p, n);
	return f->t->phase != CHUNK_DONE;
}

/* Feeds the bytes from offset off to the end of in to the connection's chunk tracker. */
static void
chunk_feed_buffer(struct chunk_track *t, struct bufferevent *bev, struct evbuffer *in, size_t off)
{
	struct chunk_feeding f = { t, bev };
	if (t->phase != CHUNK_DONE)
		feed_from(in, off, chunk_feed_piece, &f);
}

/* --- a deadline for the whole request ---------------------------------------------------------- */

/* libevent's timeouts are per read: a client that sends a byte every few seconds keeps a request
 * open for ever, and enough of them take every connection. Each request here must be complete
 * within --request-timeout of its first byte, as nginx's client_header_timeout and
 * client_body_timeout together, or it gets 408 and its connection is closed. The requests under
 * way are tracked by socket descriptor, with the socket's inode, so that a descriptor closed and
 * reused by a new connection is never mistaken for the old one. */
#define HTTP_SWEEP_MS 250       /* how often deadlines are checked */
#define HTTP_MAX_FDS (1u << 20) /* descriptors tracked at most (the usual hard limit) */

enum head_phase { HEAD_LINE, HEAD_FIELDS, HEAD_DONE };

struct pending_req {
	uint64_t ino;      /* the socket's inode: 0 = no request under way on this descriptor */
	uint64_t start_ms; /* when its first byte arrived */
	/* How far its head has come, so that libevent's one 400 for every head it cannot read can be
	 * told apart: a head over --max-headers is 431, a request line over it 414. Bytes are counted
	 * up to just past the limit, no further. */
	uint32_t head_len, line_len;
	uint8_t phase;    /* enum head_phase */
	uint8_t at_start; /* 1: the last byte ended a line; 2: and a CR followed it */
};

static struct {
	struct pending_req *fd; /* indexed by descriptor */
	size_t cap, active;
	size_t top; /* one past the highest descriptor ever tracked: scans stop there, not at cap */
	uint64_t deadline_ms;
	struct event *sweep;
	struct log_limit limit;
} deadlines;

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
socket_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The first bytes of a request arrived on fd. */
static void
deadline_start(int fd, uint64_t now)
{
	if (fd < 0 || (size_t)fd >= deadlines.cap || !deadlines.deadline_ms)
		return;
	struct pending_req *p = &deadlines.fd[fd];
	if (p->ino)
		return; /* the same request goes on (the sweep tells a reused descriptor by its inode) */
	uint64_t ino = socket_ino(fd); /* once a request, not once a read */
	deadlines.active++;
	if ((size_t)fd >= deadlines.top)
		deadlines.top = (size_t)fd + 1;
	p->ino = ino ? ino : 1;
	p->start_ms = now;
	p->head_len = p->line_len = 0;
	p->phase = HEAD_LINE;
	p->at_start = 0;
}

/* Whether the head of the request on fd is still coming, and still worth counting. */
static bool
head_following(int fd)
{
	const struct pending_req *p = &deadlines.fd[fd];
	return p->phase != HEAD_DONE && p->head_len <= refusals.max_headers;
}

/* Follows the head of the request on fd through b[0..n), the bytes that just arrived: an empty
 * line ends it (LF or CRLF, as libevent reads lines). */
static void
head_feed(int fd, const char *b, size_t n)
{
	struct pending_req *p = &deadlines.fd[fd];
	for (size_t i = 0; i < n && head_following(fd); i++) {
		char c = b[i];
		p->head_len++;
		if (p->phase == HEAD_LINE) {
			if (c == '\n') {
				p->phase = HEAD_FIELDS;
				p->line_len = p->head_len;
				p->at_start = 1;
			}
		} else if (c == '\n') {
			if (p->at_start)
				p->phase = HEAD_DONE;
			p->at_start = 1;
		} else {
			p->at_start = c == '\r' && p->at_start == 1 ? 2 : 0;
		}
	}
}

static bool
head_feed_piece(void *arg, const char *p, size_t n)
{
	int fd = *(const int *)arg;
	head_feed(fd, p, n);
	return head_following(fd);
}

/* Feeds the bytes just added to in, if the request on fd is still in its head. */
static void
head_feed_buffer(int fd, struct evbuffer *in, size_t added)
{
	if (fd < 0 || (size_t)fd >= deadlines.cap || !deadlines.fd[fd].ino || !head_following(fd))
		return;
	size_t len = evbuffer_get_length(in);
	feed_from(in, added <= len ? len - added : 0, head_feed_piece, &fd);
}

/* What libevent's 400 for the request on fd means: 414 or 431 when its head went past the limit,
 * else 400 (malformed). */
static int
head_refusal(int fd)
{
	if (fd < 0 || (size_t)fd >= deadlines.cap || !deadlines.fd[fd].ino)
		return 400;
	const struct pending_req *p = &deadlines.fd[fd];
	if (p->line_len > refusals.max_headers || (p->phase == HEAD_LINE && p->head_len > refusals.max_headers))
		return 414;
	return p->head_len > refusals.max_headers ? 431 : 400;
}

/* A new connection on fd: a request left unfinished by the connection that had the descriptor
 * before is over (its deadline must not be inherited, nor make the new one look busy). */
static void
deadline_forget(int fd)
{
	if (fd >= 0 && (size_t)fd < deadlines.cap && deadlines.fd[fd].ino) {
		deadlines.fd[fd].ino = 0;
		deadlines.active--;
	}
}

/* The request on fd was read whole: it is the handler's now. */
static void
deadline_done(int fd)
{
	if (fd < 0 || (size_t)fd >= deadlines.cap || !deadlines.fd[fd].ino)
		return;
	deadlines.fd[fd].ino = 0;
	deadlines.active--;
}

size_t
http_requests_in_progress(void)
{
	size_t n = 0;
	for (size_t fd = 0; deadlines.active && fd < deadlines.top; fd++) {
		struct pending_req *p = &deadlines.fd[fd];
		if (!p->ino)
			continue;
		if (socket_ino((int)fd) == p->ino) {
			n++;
		} else { /* the connection went away: nothing will complete */
			p->ino = 0;
			deadlines.active--;
		}
	}
	return n;
}

static void
sweep_cb(evutil_socket_t unused, short what, void *arg)
{
	(void)unused;
	(void)what;
	(void)arg;
	uint64_t now = mono_ms();
	http_conn_sweep(now);
	for (size_t fd = 0; deadlines.active && fd < deadlines.top; fd++) {
		struct pending_req *p = &deadlines.fd[fd];
		if (!p->ino || now - p->start_ms < deadlines.deadline_ms)
			continue;
		uint64_t want = p->ino;
		p->ino = 0;
		deadlines.active--;
		if (socket_ino((int)fd) != want)
			continue; /* closed meanwhile, perhaps reused: not the connection that was late */
		struct buf body = BUF_INIT, msg = BUF_INIT;
		buf_printf(&body, "{\"error\":\"the request was not complete within %llu s\",\"code\":\"timeout\"}",
		           (unsigned long long)(deadlines.deadline_ms / 1000));
		buf_printf(&msg,
		           "HTTP/1.1 408 Request Timeout\r\nContent-Type: " HTTP_JSON "\r\nContent-Length: %zu\r\n"
		           HTTP_CANNED_HEADERS "Connection: close\r\n\r\n",
		           body.len);
		buf_add(&msg, body.data, body.len);
		if (!msg.failed) {
			ssize_t w = send((int)fd, msg.data, msg.len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
		}
		buf_free(&body);
		buf_free(&msg);
		/* libevent sees the end of the stream and frees the connection itself */
		shutdown((int)fd, SHUT_RDWR);
		char peer[64] = "?";
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		if (getpeername((int)fd, (struct sockaddr *)&ss, &sslen) == 0)
			http_addr_text((struct sockaddr *)&ss, peer, sizeof(peer));
		log_limited(&deadlines.limit, LOG_WARNING,
		            "refused a %s from %s: 408 not complete within --request-timeout %llu s; connection closed",
		            refusals.what, peer, (unsigned long long)(deadlines.deadline_ms / 1000));
		if (refusals.cb)
			refusals.cb(408, "timeout", refusals.arg);
	}
}

static uint64_t last_input_ms;

uint64_t
http_last_input_ms(void)
{
	return last_input_ms;
}

static void
input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	static char head[HTTP_HEAD_PEEK_MAX];
	if (!info->n_added)
		return;
	last_input_ms = mono_ms();
	deadline_start(bufferevent_getfd(arg), last_input_ms);
	head_feed_buffer(bufferevent_getfd(arg), in, info->n_added);
	http_conn_active(bufferevent_getfd(arg), last_input_ms);
	/* Only a buffer that starts with a request line can hold a head; body bytes never do here
	 * (a JSON body starts with "{", a chunk with its size). */
	char start[8];
	if (evbuffer_copyout(in, start, sizeof(start)) != (ev_ssize_t)sizeof(start) ||
	    (memcmp(start, "POST /", 6) != 0 && memcmp(start, "PUT /", 5) != 0 && memcmp(start, "PATCH /", 7) != 0 &&
	     memcmp(start, "DELETE /", 8) != 0)) {
		struct chunk_track *t = chunk_find(arg, false);
		size_t len = evbuffer_get_length(in);
		if (t && t->phase != CHUNK_DONE && info->n_added <= len)
			chunk_feed_buffer(t, arg, in, len - info->n_added);
		return;
	}
	size_t len = evbuffer_get_length(in);
	size_t n = len < sizeof(head) ? len : sizeof(head);
	if (n > refusals.max_headers + HTTP_REQUEST_LINE_MAX)
		n = refusals.max_headers + HTTP_REQUEST_LINE_MAX;
	ev_ssize_t got = evbuffer_copyout(in, head, n);
	if (got <= 0)
		return;
	char *eoh = memmem(head, (size_t)got, "\r\n\r\n", 4);
	if (!eoh)
		return;
	size_t hn = (size_t)(eoh - head) + 2, vl;
	struct chunk_track *old = chunk_find(arg, false);
	if (old)
		old->phase = CHUNK_DONE; /* a new request on this connection */
	const char *te = head_value(head, hn, "transfer-encoding", &vl);
	if (te) {
		if (vl == 7 && strncasecmp(te, "chunked", 7) == 0) {
			struct chunk_track *t = chunk_find(arg, true);
			memset(t, 0, sizeof(*t));
			t->bev = arg;
			chunk_feed_buffer(t, arg, in, hn + 2);
		}
		return;
	}
	const char *v = head_value(head, hn, "content-length", &vl);
	if (!v || vl == 0)
		return;
	uint64_t announced = 0;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '9')
			return; /* libevent refuses it as malformed */
		/* beyond 2^64 is beyond any limit (and beyond what libevent reads: it would wait) */
		uint64_t d = (uint64_t)(v[i] - '0');
		announced = announced > (UINT64_MAX - d) / 10 ? UINT64_MAX : announced * 10 + d;
	}
	if (announced > refusals.max_body)
		answer_early(arg, announced, false);
}

static struct bufferevent *
new_connection_bev(struct event_base *base, void *arg)
{
	(void)arg;
	/* the same options evhttp uses when it makes the bufferevent itself */
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
	if (bev) {
		forget_answered_early(bev);
		struct chunk_track *t = chunk_find(bev, false);
		if (t)
			t->bev = NULL; /* a connection that went away left it */
		evbuffer_add_cb(bufferevent_get_output(bev), output_cb, bev);
		evbuffer_add_cb(bufferevent_get_input(bev), input_cb, bev);
		http_conn_accepted(bev);
	}
	return bev;
}

/* accept() failing for lack of descriptors or memory leaves the listening socket readable, and
 * libevent would retry at once, forever: pause accepting instead; the connections wait in the
 * kernel's backlog and are served when descriptors are free again. */
static struct {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evconnlistener *listener;
	struct event *resume;
	struct log_limit limit;
} accepting;

void
http_server_close_listener(void)
{
	if (!accepting.bound)
		return;
	if (accepting.resume)
		evtimer_del(accepting.resume);
	evhttp_del_accept_socket(accepting.http, accepting.bound);
	accepting.bound = NULL;
	accepting.listener = NULL;
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	evconnlistener_enable(accepting.listener);
}

static void
accept_error(struct evconnlistener *l, void *arg)
{
	(void)arg;
	int e = EVUTIL_SOCKET_ERROR();
	evconnlistener_disable(l);
	struct timeval tv = { 0, HTTP_ACCEPT_PAUSE_MS * 1000 };
	evtimer_add(accepting.resume, &tv);
	log_limited(&accepting.limit, LOG_ERR, "cannot accept connections (%s): pausing for %d ms", strerror(e),
	            HTTP_ACCEPT_PAUSE_MS);
}

static void
libevent_log(int severity, const char *msg)
{
	static struct log_limit limit;
	int prio = severity >= EVENT_LOG_ERR ? LOG_ERR : severity == EVENT_LOG_WARN ? LOG_WARNING : LOG_DEBUG;
	if (prio != LOG_DEBUG)
		log_limited(&limit, prio, "libevent: %s", msg);
}

static struct {
	void (*handler)(struct evhttp_request *, void *);
	void *arg;
} user;

static bool
request_in_progress(int fd)
{
	return fd >= 0 && (size_t)fd < deadlines.cap && deadlines.fd[fd].ino != 0;
}

/* The request's answer is out: its connection is idle again. */
static void
answered(struct evhttp_request *req, void *arg)
{
	(void)req;
	http_conn_busy((int)(intptr_t)arg, false, mono_ms());
}

/* A refusal before any handler: the connection closes, and the answer carries the headers the
 * canned ones do. */
static void
closing_refusal_headers(struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Connection", "close");
	evhttp_add_header(out, "Content-Security-Policy", HTTP_CANNED_CSP);
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
}

/* Past --max-header-count: libevent bounds the header block's bytes, not how many headers it holds. */
static bool
too_many_headers(struct evhttp_request *req)
{
	unsigned n = 0;
	for (struct evkeyval *h = evhttp_request_get_input_headers(req)->tqh_first; h; h = h->next.tqe_next)
		n++;
	if (n <= refusals.max_header_count)
		return false;
	char msg[96], extra[32], peer[64];
	snprintf(msg, sizeof(msg), "the request has %u headers; the limit is %u", n, refusals.max_header_count);
	snprintf(extra, sizeof(extra), "\"limit\":%u", refusals.max_header_count);
	closing_refusal_headers(req);
	http_send_error(req, 431, "too_many_headers", msg, extra);
	http_peer(req, peer, sizeof(peer));
	log_limited(&refusals.limit, LOG_WARNING, "refused a %s from %s: 431 %u headers, over --max-header-count %u",
	            refusals.what, peer, n, refusals.max_header_count);
	if (refusals.cb)
		refusals.cb(431, "too_many_headers", refusals.arg);
	return true;
}

/* A header name must be a token (RFC 9110 5.1): "Content-Length : 5" is not Content-Length to
 * libevent, which reads no body and takes the body's bytes for the next request, while a proxy in
 * front may have read it as the length. Such a request is refused whole, and its connection closed. */
static bool
bad_header_name(struct evhttp_request *req)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	const char *bad = NULL;
	for (struct evkeyval *h = evhttp_request_get_input_headers(req)->tqh_first; h && !bad; h = h->next.tqe_next) {
		if (!h->key[0])
			bad = h->key;
		for (const char *c = h->key; *c && !bad; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			      strchr(tchar, *c)))
				bad = h->key;
	}
	if (!bad)
		return false;
	char peer[64];
	struct buf name = BUF_INIT;
	log_text(&name, bad, strlen(bad), HTTP_LOG_NAME_CHARS);
	closing_refusal_headers(req);
	http_send_error(req, 400, "bad_request",
	                "a header name holds a character names cannot have (a space before the colon?)", NULL);
	http_peer(req, peer, sizeof(peer));
	log_limited(&refusals.limit, LOG_WARNING, "refused a %s from %s: 400 header name '%s' is not a token", refusals.what,
	            peer, buf_cstr(&name));
	buf_free(&name);
	if (refusals.cb)
		refusals.cb(400, "bad_request", refusals.arg);
	return true;
}

/* Every complete request passes here first: its deadline is over, and its connection is busy until
 * the answer is out. */
static void
gencb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	int fd = bev ? bufferevent_getfd(bev) : -1;
	deadline_done(fd);
	if (http_conn_refused(fd)) {
		/* answered 503 already; this reply fails on the shut socket and libevent lets go of it */
		http_reply(req, 503, NULL);
		return;
	}
	if (fd >= 0) {
		http_conn_busy(fd, true, mono_ms());
		evhttp_request_set_on_complete_cb(req, answered, (void *)(intptr_t)fd);
	}
	if (too_many_headers(req) || bad_header_name(req))
		return;
	user.handler(req, user.arg);
}

struct evhttp *
http_server_new(struct event_base *base, int listen_fd, const struct http_server_limits *lim,
                void (*handler)(struct evhttp_request *, void *), void *arg, const char *what,
                http_refusal_cb refused, void *refused_arg)
{
	size_t max_body = lim->max_body, max_headers = lim->max_headers;
	unsigned timeout = lim->timeout;
	struct evhttp *http = evhttp_new(base);
	if (!http)
		return NULL;
	evhttp_set_max_body_size(http, (ev_ssize_t)max_body);
	evhttp_set_max_headers_size(http, (ev_ssize_t)max_headers);
	/* libevent's own timeout is per read or write: only a backstop here, past both the request
	 * deadline and --keepalive-timeout, so that those (which log and count) always act first. */
	unsigned keepalive_s = lim->conn.keepalive_ms / 1000;
	evhttp_set_timeout(http, (int)((timeout > keepalive_s ? timeout : keepalive_s) + HTTP_TIMEOUT_BACKSTOP_S));
	evhttp_set_default_content_type(http, HTTP_JSON);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	                                     EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
	user.handler = handler;
	user.arg = arg;
	evhttp_set_gencb(http, gencb, NULL);
	struct rlimit rl;
	deadlines.cap = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < HTTP_MAX_FDS
	                        ? (size_t)rl.rlim_cur
	                        : HTTP_MAX_FDS;
	deadlines.fd = calloc(deadlines.cap, sizeof(*deadlines.fd));
	deadlines.deadline_ms = (uint64_t)timeout * 1000u;
	deadlines.sweep = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
	struct timeval sweep = { 0, HTTP_SWEEP_MS * 1000 };
	if (!deadlines.fd || !deadlines.sweep || event_add(deadlines.sweep, &sweep) < 0) {
		evhttp_free(http);
		return NULL;
	}
	if (http_conn_init(base, deadlines.cap, &lim->conn, &lim->counters, lim->port, request_in_progress,
	                   deadline_forget) < 0) {
		evhttp_free(http);
		return NULL;
	}
	refusals.max_body = max_body;
	refusals.max_headers = max_headers;
	refusals.max_header_count = lim->max_header_count;
	refusals.what = what;
	refusals.cb = refused;
	refusals.arg = refused_arg;
	evhttp_set_bevcb(http, new_connection_bev, NULL);
	event_set_log_callback(libevent_log);
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(http, listen_fd);
	accepting.resume = evtimer_new(base, accept_resume, NULL);
	if (!bound || !accepting.resume) {
		evhttp_free(http);
		return NULL;
	}
	accepting.http = http;
	accepting.bound = bound;
	accepting.listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(accepting.listener, accept_error);
	return http;
}
