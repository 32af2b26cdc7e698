/* event_record: the payload formats of arena records and their codec. The arena stores bytes; this
 * module gives them meaning. Decoding trusts nothing: every length is checked against the payload,
 * so a torn or corrupted record is rejected instead of misread.
 *
 * FACT record (facts ring, kind EVENT_REC_FACT): one per accepted webhook event, holding only what
 * the event changed (new messages, a status, a report, an alert), so the ring stays compact; or a
 * SNAPSHOT of one call (flag EVENT_F_SNAPSHOT), the call's whole state re-appended by the writer
 * before the call's oldest record would be overwritten (log cleaning: live calls stay whole).
 *   u8  version (EVENT_RECORD_VERSION)   u8 event type (enum event_type)   u16 flags (EVENT_F_*)
 *   i64 event timestamp, epoch ms (EVENT_TS_NONE when the event carried none)
 *   u64 call base: the sequence number from which this call's history is complete (its first
 *       fact, or its latest snapshot). A reader that no longer has that record (it was overwritten)
 *       must not show the call at all: calls are shown whole or not at all.
 *   str type name as sent              str call id ("" when the event named no call)
 *   u32 item count, then items:  u8 item kind, u8 item flags, u16 0, u32 body length,
 *                                u64 origin + 1 (the fact that first carried it; 0 = this record), body
 *     ITEM_STATUS   i64 ts, str status, then (absent in records of earlier writers, read as "")
 *                   str ended by (callEndTriggerBy), str reason (endedReason or phoneCallStatusReason)
 *     ITEM_MESSAGE  i64 ts, i64 ts of the event that set its text, u64 fact that last changed it + 1
 *                   (0 = its origin), str key, str role, str text, str extra (JSON object text or "")
 *     ITEM_CALLINFO str customer (caller number or web caller name)
 *     ITEM_REPORT   str report (JSON object text), then (absent in records of earlier writers, read
 *                   as EVENT_TS_NONE) i64 ts of the event that carried it
 *     ITEM_ALERT    u8 alert type (EVENT_ALERT_*), i64 ts, str details (JSON object text or "")
 *     ITEM_RAWREFS  u32 n, u64 × n: the raw records of the call's events (snapshots)
 *     ITEM_CALLMETA u64 first seq, u64 first ns, u64 changed seq, u64 changed ns (snapshots: the
 *                   call's activity, which a snapshot itself is not)
 *   where str = u32 length, the bytes, one NUL byte (not counted in the length).
 *   Unknown item kinds are skipped by readers, so items can be added without a new version.
 *
 * RAW record (raw ring, kind EVENT_REC_RAW): the body as received, secrets redacted.
 *   u8 version   u8 flags (EVENT_RAW_*)   u16 0   u32 meta length
 *   meta: JSON object text {"remote":..,"headers":{..}} (redacted), then the body bytes to the end.
 */
#ifndef LIVEEVENTS_EVENT_RECORD_H
#define LIVEEVENTS_EVENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EVENT_RECORD_VERSION 1
#define EVENT_TS_NONE INT64_MIN
#define EVENT_ORIGIN_SELF UINT64_MAX /* an item's origin: the record that holds it */

enum event_rec_kind { EVENT_REC_FACT = 1, EVENT_REC_RAW = 2 };

enum event_type {
	EVENT_NONE = 0,            /* the body had no message.type */
	EVENT_STATUS_UPDATE,
	EVENT_CONVERSATION_UPDATE,
	EVENT_END_OF_CALL_REPORT,
	EVENT_HANG,
	EVENT_ERROR,
	EVENT_SPEECH_UPDATE,       /* Vapi: never changes the transcript */
	EVENT_TRANSCRIPT,          /* Vapi: partial transcripts, never change the transcript */
	EVENT_UNKNOWN,             /* a type we do not interpret: stored raw and counted */
	EVENT_TYPE_COUNT
};

/* fact flags (also copied into the arena slot's flags) */
#define EVENT_F_UNATTRIBUTED 0x0001u /* named no call: kept raw, creates no call */
#define EVENT_F_REPAIRED 0x0002u     /* broken text was repaired */
#define EVENT_F_UNKNOWN_TYPE 0x0004u
#define EVENT_F_RAW 0x0008u          /* a raw record was stored (slot ref names it) */
#define EVENT_F_SNAPSHOT 0x0010u     /* a call's whole state, not an event */
#define EVENT_F_RESUMED 0x0020u      /* starts a call whose earlier history left the arena */
#define EVENT_F_WAS_ENDED 0x0040u    /* ...and which had ended: it stays ended */

/* raw flags */
#define EVENT_RAW_REPAIRED 0x01u /* the body holds broken text: serve it through json_write_sanitized */
#define EVENT_RAW_BOM 0x02u      /* a byte-order mark was removed */
#define EVENT_RAW_INFLATED 0x04u /* sent gzip- or deflate-encoded: the body kept is the inflated one */

enum event_item_kind {
	EVENT_ITEM_STATUS = 1,
	EVENT_ITEM_MESSAGE = 2,
	EVENT_ITEM_CALLINFO = 3,
	EVENT_ITEM_REPORT = 4,
	EVENT_ITEM_ALERT = 5,
	EVENT_ITEM_RAWREFS = 6,
	EVENT_ITEM_CALLMETA = 7,
};

/* message item flags */
#define EVENT_MSG_UPDATE 0x01u /* replaces the text of an already known message */
/* call meta item flags */
#define EVENT_META_RESUMED 0x01u /* the call's earlier history left the arena */
#define EVENT_META_ENDED 0x02u   /* the call has ended (even if what ended it left with that history) */

enum event_alert_type { EVENT_ALERT_HANG = 1, EVENT_ALERT_ERROR = 2 };

struct event_str {
	const char *p; /* NUL-terminated, inside the record */
	uint32_t len;
};

/* --- encoding --------------------------------------------------------------------------------- */

struct event_enc {
	struct buf *b;
	size_t nitems_off;
	uint32_t nitems;
	uint64_t origin; /* of the next items (EVENT_ORIGIN_SELF by default); snapshots set it per item */
};

/* A message as encoded in an item. */
struct event_msg_item {
	uint8_t iflags;
	int64_t ts, evt_ts;
	uint64_t updated; /* EVENT_ORIGIN_SELF: the origin */
	const char *key, *role, *text, *extra;
	size_t key_len, role_len, text_len, extra_len;
};

void event_enc_begin(struct event_enc *e, struct buf *b, enum event_type type, uint16_t flags, int64_t ts,
                     uint64_t call_base, const char *type_name, size_t type_len, const char *call_id, size_t call_len);
/* ended_by and reason may be NULL (none). */
void event_enc_status(struct event_enc *e, int64_t ts, const char *status, size_t len, const char *ended_by,
                      const char *reason);
void event_enc_message(struct event_enc *e, const struct event_msg_item *m);
void event_enc_callinfo(struct event_enc *e, const char *customer, size_t len);
void event_enc_report(struct event_enc *e, const char *json, size_t len, int64_t ts);
void event_enc_alert(struct event_enc *e, enum event_alert_type type, int64_t ts, const char *json, size_t len);
void event_enc_rawrefs(struct event_enc *e, const uint64_t *seqs, uint32_t n);
void event_enc_callmeta(struct event_enc *e, uint8_t iflags, uint64_t first_seq, uint64_t first_ns,
                        uint64_t changed_seq, uint64_t changed_ns);
/* Finishes the record; false if the buffer failed. */
bool event_enc_end(struct event_enc *e);
/* Rewrite fields of a finished record (their byte offsets are fixed). */
void event_enc_set_flags(struct buf *b, uint16_t flags);
void event_enc_set_call_base(struct buf *b, uint64_t call_base);

void event_raw_encode(struct buf *b, uint8_t flags, const char *meta, size_t meta_len);

/* --- decoding --------------------------------------------------------------------------------- */

struct event_fact {
	enum event_type type;
	uint16_t flags;
	int64_t ts;
	uint64_t call_base;
	struct event_str type_name;
	struct event_str call_id;
	uint32_t nitems;
	const unsigned char *items, *end;
};

struct event_item {
	enum event_item_kind kind;
	uint8_t iflags;
	uint64_t origin;  /* EVENT_ORIGIN_SELF: the record being read */
	int64_t ts;
	int64_t evt_ts;   /* MESSAGE */
	uint64_t updated; /* MESSAGE: EVENT_ORIGIN_SELF = its origin */
	struct event_str a, b, c, d; /* STATUS: a=status b=ended by c=reason; MESSAGE: a=key b=role c=text d=extra;
	                              * CALLINFO: a=customer; REPORT: a=json; ALERT: a=json */
	uint8_t alert_type;
	uint32_t nrefs;             /* RAWREFS: count, and the bytes (u64 each, unaligned) */
	const unsigned char *refs;
	uint64_t first_seq, first_ns, changed_seq, changed_ns; /* CALLMETA */
};
/* The i-th sequence number of a RAWREFS item (i < nrefs). */
uint64_t event_item_ref(const struct event_item *it, uint32_t i);

/* 0 on success, -1 when the payload is not a well-formed fact record. */
int event_fact_decode(const void *payload, size_t len, struct event_fact *f);
/* Iterates items: *cursor starts at 0. Returns 1 with *it filled, 0 at the end, -1 on a malformed
 * item (stop iterating). Items of unknown kind are skipped. */
int event_fact_next(const struct event_fact *f, size_t *cursor, struct event_item *it);

struct event_raw {
	uint8_t flags;
	struct event_str meta;
	const char *body;
	size_t body_len;
};
int event_raw_decode(const void *payload, size_t len, struct event_raw *r);

const char *event_type_name(enum event_type t);
/* Maps a type name as sent to our enum (EVENT_UNKNOWN when not one we interpret). */
enum event_type event_type_from_name(const char *s, size_t n);

#endif
