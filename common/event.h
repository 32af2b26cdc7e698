/* event: turns one parsed webhook body into the fact record that says what it changed, plus the raw
 * body with its secrets redacted. It reads the call's current state from the writer's view to decide
 * what is new (messages unioned by key, a stale full-history replay adds nothing), so the facts ring
 * holds each message once however many times the platform resends the history.
 *
 * Shapes understood (webhooks.md): Interactly (status at message.call.status, messages at
 * message.messages with messageId/role/text/timestamp), its legacy shape (message.status,
 * message.call.messages, ISO timestamps) and Vapi-style senders (message.status, messages with
 * message/time and role "bot", no ids).
 *
 * Secrets: values under secret-like keys anywhere in the body (assistantServer.secret, Authorization,
 * ...) and every value of assistantServer.headers are replaced by "[redacted]" before anything is
 * stored or logged; every other occurrence of those values, and of the secrets the request carried in
 * its headers, is scrubbed from the raw body and from every extracted text. */
#ifndef LIVEEVENTS_EVENT_H
#define LIVEEVENTS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event_record.h"
#include "json.h"
#include "view.h"

#define EVENT_MAX_CALL_ID 512     /* longer ids are not ids: the event is kept unattributed */
#define EVENT_MAX_TYPE_NAME 128
#define EVENT_MAX_STATUS 128      /* longer status strings are cut (at a character boundary) */
#define EVENT_MAX_ROLE 64
#define EVENT_MAX_REASON 256     /* who ended a call and why, as a status-update tells it */
#define EVENT_MAX_KEY 512
#define EVENT_MAX_CUSTOMER 256
#define EVENT_MAX_SECRETS 32      /* secret values remembered per request for scrubbing */
#define EVENT_SECRET_MIN_SCRUB 8  /* shorter values are redacted where they stand, not scrubbed
                                   * elsewhere: scrubbing "yes" would destroy transcripts */
#define EVENT_REDACTED "[redacted]"
#define EVENT_LOG_TEXT_MAX 512    /* bytes of the first new message kept for the log line */

/* Earliest and latest plausible event times (epoch ms): 2000-01-01 and 2100-01-01. Anything
 * outside, after unit detection, is treated as absent rather than shown as 1970 or 5138. */
#define EVENT_TS_MIN 946684800000LL
#define EVENT_TS_MAX 4102444800000LL

struct event_secrets {
	int n;
	char *v[EVENT_MAX_SECRETS];
	size_t len[EVENT_MAX_SECRETS];
};

/* What the event was, for the log line and the counters. */
struct event_result {
	enum event_type type;
	uint16_t flags;      /* EVENT_F_* */
	int64_t ts;
	char type_name[EVENT_MAX_TYPE_NAME + 1];
	char call_id[EVENT_MAX_CALL_ID + 1];
	char status[EVENT_MAX_STATUS + 1];
	unsigned new_msgs, upd_msgs;
	char role[EVENT_MAX_ROLE + 1];   /* role of the last new message */
	char text[EVENT_LOG_TEXT_MAX + 1]; /* its text, cut at a character boundary */
	char detail[160];                /* alert or report detail for the log */
	unsigned repairs;                /* strings repaired in the body */
};

/* Scratch space reused from one event to the next (no allocation on the hot path once warm). */
struct event_builder {
	uint8_t *mark;
	size_t mark_cap;
	struct buf tmp, tmp2;
	struct buf scrub, scrub_str, scrub_out; /* scratch of the scrubbers only */
	void *seen; /* per-event key set */
	size_t seen_cap;
};

void event_builder_init(struct event_builder *eb);
void event_builder_free(struct event_builder *eb);

void event_secrets_add(struct event_secrets *s, const char *v, size_t n);
void event_secrets_clear(struct event_secrets *s);

/* Builds the fact record into fact and the redacted body into body_out.
 * orig is the body as received after any byte-order mark (same length and offsets as doc->text).
 * v is the writer's view (may be NULL: everything is new). sec may be NULL; it is extended with the
 * secret values found in the body. Returns 0, or -1 when out of memory. */
int event_build(struct event_builder *eb, const struct json_doc *doc, const char *orig, const struct view *v,
                struct event_secrets *sec, struct buf *fact, struct buf *body_out, struct event_result *res);

/* Encodes call c's whole state as a snapshot record whose own sequence number will be self_seq
 * (it becomes the call's new base). Readers applying it replace the call's state with it. */
int event_snapshot(struct buf *b, const struct view_call *c, uint64_t self_seq);

/* Reads a timestamp token: a number in seconds, milliseconds (possibly fractional), microseconds or
 * nanoseconds since the epoch, a string of digits, or an ISO-8601 string. False when absent or
 * implausible (outside [EVENT_TS_MIN, EVENT_TS_MAX]). */
bool event_time_ms(const struct json_doc *doc, int tok, int64_t *ms);
bool event_time_from_number(double v, int64_t *ms);
bool event_time_from_iso(const char *s, size_t n, int64_t *ms);

#endif
