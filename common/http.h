/* http: helpers shared by the two libevent HTTP servers: listening sockets, JSON replies with the
 * headers every answer carries, and JSON error bodies ({"error": "...", "code": "..."}). */
#ifndef LIVEEVENTS_HTTP_H
#define LIVEEVENTS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>

#include "buf.h"
#include "options.h"

#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_JSON "application/json; charset=utf-8"

/* Creates a non-blocking listening socket. On failure returns -1 with a one-line reason in err and
 * *in_use set when the address was already taken. */
int http_listen(const struct listen_addr *a, bool *in_use, char *err, size_t errlen);
/* Formats a socket address as "ADDR:PORT" or "[ADDR]:PORT". */
void http_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

/* Sends b as the body with the given status and content type, adding the standard headers. */
void http_send(struct evhttp_request *req, int code, const char *ctype, const void *body, size_t len);
void http_send_json(struct evhttp_request *req, int code, const struct buf *b);
/* {"error": message, "code": code} plus optional extra members (a JSON fragment like
 * "\"limit\":123", or NULL). */
void http_send_error(struct evhttp_request *req, int code, const char *code_str, const char *message,
                     const char *extra);
const char *http_reason(int code);
/* Remote address of the request's connection, as text. */
void http_peer(struct evhttp_request *req, char *out, size_t outlen);

/* Called when libevent refused a request before any handler saw it (code 413 or 400); fd is the
 * client's socket, for its address. */
typedef void (*http_refusal_cb)(int code, int fd, void *arg);
/* libevent 2.1 answers a body over the limit, an oversized header block or an unparsable request
 * with its own HTML page, before any handler runs (evhttp_set_errorcb exists only in 2.2). This
 * recognises those pages as they are queued on a connection and replaces them with our JSON error,
 * and reports each one through cb so it can be logged and counted. Call once per evhttp. */
void http_json_refusals(struct evhttp *http, size_t max_body, http_refusal_cb cb, void *arg);

#endif
