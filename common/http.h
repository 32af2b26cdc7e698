/* http: helpers shared by the two libevent HTTP servers: listening sockets, JSON replies with the
 * headers every answer carries, and JSON error bodies ({"error": "...", "code": "..."}). */
#ifndef LIVEEVENTS_HTTP_H
#define LIVEEVENTS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>

#include "buf.h"
#include "http_conn.h"
#include "options.h"

#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_ACCEPT_PAUSE_MS 200 /* no accept() for this long after it failed for lack of resources */
#define HTTP_JSON "application/json; charset=utf-8"
#define HTTP_REQUEST_LINE_MAX 8192  /* looked at beyond the header limit when peeking at a head */
#define HTTP_HEAD_PEEK_MAX (64u << 10)
#define HTTP_TIMEOUT_BACKSTOP_S 5
#define HTTP_LOG_NAME_CHARS 40 /* of a header name in a log line */
/* The headers of the answers written straight to a socket (refusals before any handler), as every
 * other answer carries them: nothing to sniff, cache, frame or refer from. */
#define HTTP_CANNED_CSP "default-src 'none'; frame-ancestors 'none'"
#define HTTP_CANNED_HEADERS                                                                              \
	"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"                                    \
	"Content-Security-Policy: " HTTP_CANNED_CSP "\r\nReferrer-Policy: no-referrer\r\n"                   \
	"X-Frame-Options: DENY\r\n" /* libevent's own timeout, this far past ours */

/* Creates a non-blocking listening socket. On failure returns -1 with a one-line reason in err and
 * *in_use set when the address was already taken. */
int http_listen(const struct listen_addr *a, bool *in_use, char *err, size_t errlen);
/* Makes a 16-byte client address (IPv4 as ::ffff:a.b.c.d) the key of its client for the per-address
 * caps: an IPv6 client holds a whole /64 (one host picks any address in it), so its last 64 bits
 * go. */
void http_addr_group(unsigned char addr[16]);
/* Formats a socket address as "ADDR:PORT" or "[ADDR]:PORT". */
void http_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

/* Sends body (may be NULL) with the given status; a HEAD request gets the headers and the length
 * only. Every reply goes through here. */
void http_reply(struct evhttp_request *req, int code, struct evbuffer *body);
/* Non-NULL (a reason) when the request's framing is ambiguous: it must be refused with 400 and the
 * connection closed. */
const char *http_framing_error(struct evhttp_request *req);
/* Sends b as the body with the given status and content type, adding the standard headers. */
void http_send(struct evhttp_request *req, int code, const char *ctype, const void *body, size_t len);
void http_send_json(struct evhttp_request *req, int code, const struct buf *b);
/* Like http_send_json, but hands b's memory to the reply instead of copying it (b is left empty):
 * a full /api/conversations can be tens of megabytes. */
void http_send_json_take(struct evhttp_request *req, int code, struct buf *b);
/* A reply that shares one read-only body among many requests (see query's cached answers). */
struct http_shared;
struct http_shared *http_shared_new(struct buf *b); /* takes b's memory; b is left empty */
void http_shared_unref(struct http_shared *s);
void http_send_shared(struct evhttp_request *req, int code, struct http_shared *s);
size_t http_shared_len(const struct http_shared *s);
/* {"error": message, "code": code} plus optional extra members (a JSON fragment like
 * "\"limit\":123", or NULL). */
void http_send_error(struct evhttp_request *req, int code, const char *code_str, const char *message,
                     const char *extra);
const char *http_reason(int code);
/* Closes the server's listening socket (connections already accepted go on): a worker whose master
 * died frees the port at once, so a new daemon can bind it while this one finishes. */
void http_server_close_listener(void);
/* CLOCK_MONOTONIC ms when the last request bytes arrived on any connection (0: none yet): a
 * request still arriving keeps a stopping worker draining. */
uint64_t http_last_input_ms(void);
/* Requests whose first bytes arrived and whose last have not, on connections still open: a
 * stopping worker waits for them. */
size_t http_requests_in_progress(void);
/* Remote address of the request's connection, as text. */
void http_peer(struct evhttp_request *req, char *out, size_t outlen);

/* Called when a request was refused before any handler saw it: status is the HTTP status, code the
 * "code" of its JSON body ("too_large", "headers_too_large", "timeout"...). */
typedef void (*http_refusal_cb)(int status, const char *code, void *arg);

/* An HTTP server on an already listening socket, with the limits every server here applies:
 * largest body, header block and header count, the time to send a request, the connection caps and
 * idle keep-alive (http_conn.h), every method
 * routed to handler (so a wrong one gets our 405, not libevent's 501), lingering close (so a 413
 * reaches a client still uploading), and JSON answers to the requests libevent refuses itself.
 * what names a request in the log ("webhook"); refused (may be NULL) counts those refusals. */
struct http_server_limits {
	const char *port; /* the port's name in log lines: "webhook", "dashboard" */
	size_t max_body, max_headers;
	unsigned max_header_count; /* more headers than this: 431 */
	unsigned timeout;          /* seconds to send a whole request */
	struct http_conn_limits conn;
	struct http_conn_counters counters;
};
struct evhttp *http_server_new(struct event_base *base, int listen_fd, const struct http_server_limits *lim,
                               void (*handler)(struct evhttp_request *, void *), void *arg, const char *what,
                               http_refusal_cb refused, void *refused_arg);

#endif
