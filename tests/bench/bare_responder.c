/* bare_responder: the ingest benchmark's ceiling. A single libevent evhttp process that reads each
 * request's body and answers 200 {"status":"ok"}, and does nothing else: what one evhttp process
 * can do on this machine, to set liveeventsd's ingest figures against (scripts/bench runs it).
 *   bare_responder ADDR PORT */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define BARE_MAX_BODY (4u << 20)    /* largest body read, as liveeventsd's default --max-body */
#define BARE_MAX_HEADERS (16u << 10) /* largest header block, as liveeventsd's default */
#define BARE_TIMEOUT_S 30           /* idle keep-alive, as liveeventsd's default --request-timeout */

static const char ok_body[] = "{\"status\":\"ok\"}";

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = arg;
	/* evhttp has read the whole body (Content-Length or chunked) into the input buffer. */
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	evbuffer_drain(in, evbuffer_get_length(in));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evbuffer_add_reference(out, ok_body, sizeof(ok_body) - 1, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", out);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bare_responder ADDR PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	struct evhttp *http = base ? evhttp_new(base) : NULL;
	struct evbuffer *out = evbuffer_new();
	if (!http || !out) {
		fprintf(stderr, "bare_responder: out of memory\n");
		return 1;
	}
	evhttp_set_max_body_size(http, BARE_MAX_BODY);
	evhttp_set_max_headers_size(http, BARE_MAX_HEADERS);
	evhttp_set_timeout(http, BARE_TIMEOUT_S);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(http, on_request, out);
	if (!evhttp_bind_socket_with_handle(http, argv[1], (ev_uint16_t)atoi(argv[2]))) {
		fprintf(stderr, "bare_responder: cannot listen on %s:%s\n", argv[1], argv[2]);
		return 1;
	}
	event_base_dispatch(base);
	return 0;
}
