/* sse: the dashboard port's event stream, GET /api/stream (Server-Sent Events).
 *
 * Every fact that changes what a call shows becomes one event, sent to every open stream as query
 * applies it: "call" with the call's summary and exactly what that fact changed. An event's id is
 * "GENERATION-NEXT": the arena generation and the next fact sequence number, so a client holding it
 * has everything before NEXT. A client that reconnects with Last-Event-ID gets what it missed, once
 * (one "call" event per changed call, what changed since, then "synced" with the new id); one that
 * asks for another generation, or for facts already overwritten, gets "reset" and starts over from
 * the REST API. A call that left the arena is announced with "gone". Heartbeat comments keep idle
 * streams and proxies alive; a client whose unsent backlog passes the cap is told ("overflow") and
 * dropped alone, and reconnects to catch up. Optional filter: ?call=ID.
 *
 * Event data is one line of JSON:
 *   hello   {"generation","next"}                 a fresh stream (no Last-Event-ID)
 *   call    {"next","replace","summary","detail"}  detail as GET /api/calls/{id}?after=NEXT-1, or
 *                                                  with replace true the call's whole state (a new
 *                                                  call, or one that came back after leaving the
 *                                                  arena): drop what was held of it
 *   gone    {"id"}                                 the call's history was overwritten
 *   synced  {"generation","next","calls"}          the catch-up after a reconnection is complete
 *   reset   {"generation","next","reason"}         start over: another generation ("generation"),
 *                                                  facts or departures no longer held ("evicted"),
 *                                                  more to catch up than a client may hold unsent
 *                                                  ("too_far_behind"), an id not ours ("unreadable",
 *                                                  "ahead")
 *   overflow {"limit"}                             the client fell too far behind: reconnect */
#ifndef LIVEEVENTS_SSE_H
#define LIVEEVENTS_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "view.h"

#define SSE_RETRY_MS 1000           /* the reconnection delay clients are asked to use */
#define SSE_WRITE_TIMEOUT_S 60      /* a client that accepts nothing for this long is dropped */
#define SSE_DROP_GRACE_MS 2000      /* a dropped client's last words get this long to leave */
#define SSE_GONE_KEEP 1024          /* departures remembered for reconnecting clients */

struct sse_hub;
struct event_base;
struct evhttp_request;

/* max_clients: further streams get 503; max_backlog: bytes a client may have unsent; heartbeat_s:
 * a comment this often keeps idle streams (and the proxies between) alive. */
struct sse_hub *sse_hub_new(struct event_base *base, size_t max_clients, size_t max_backlog, unsigned heartbeat_s);
void sse_hub_free(struct sse_hub *h);
/* The view's position when the hub starts following it: departures before it were not seen. */
void sse_hub_known_from(struct sse_hub *h, uint64_t next);
size_t sse_hub_clients(const struct sse_hub *h);
/* Counters for /metrics: streams opened, dropped for their backlog, events sent. */
void sse_hub_stats(const struct sse_hub *h, uint64_t *opened, uint64_t *overflowed, uint64_t *events,
                   uint64_t *refused);

/* Answers GET /api/stream. The view is complete up to next (the follow cursor); tail is the
 * arena's oldest fact. */
void sse_open(struct sse_hub *h, struct evhttp_request *req, const struct view *v, uint64_t generation,
              uint64_t next, uint64_t tail);

/* Called as query's view changes (follow's observers): */
void sse_applied(struct sse_hub *h, uint64_t seq, const struct view_call *c, uint64_t generation);
void sse_gone(struct sse_hub *h, const struct view_call *c, uint64_t next);
/* The view was emptied and rebuilt: every client starts over (sent by sse_flush_reset). */
void sse_started_over(struct sse_hub *h);
/* After a sync: sends the pending reset, if any, with the view's new position. */
void sse_flush_reset(struct sse_hub *h, uint64_t generation, uint64_t next);

#endif
