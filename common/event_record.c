/* event_record: encoder and bounds-checked decoder for fact and raw records (format in the header). */
#include "config.h"

#include "event_record.h"

#include <string.h>

static const char *const type_names[EVENT_TYPE_COUNT] = {
	[EVENT_NONE] = "",
	[EVENT_STATUS_UPDATE] = "status-update",
	[EVENT_CONVERSATION_UPDATE] = "conversation-update",
	[EVENT_END_OF_CALL_REPORT] = "end-of-call-report",
	[EVENT_HANG] = "hang",
	[EVENT_ERROR] = "error",
	[EVENT_SPEECH_UPDATE] = "speech-update",
	[EVENT_TRANSCRIPT] = "transcript",
	[EVENT_UNKNOWN] = "unknown",
};

const char *
event_type_name(enum event_type t)
{
	return (unsigned)t < EVENT_TYPE_COUNT ? type_names[t] : "unknown";
}

enum event_type
event_type_from_name(const char *s, size_t n)
{
	if (n == 0)
		return EVENT_NONE;
	for (int t = EVENT_STATUS_UPDATE; t < EVENT_UNKNOWN; t++)
		if (strlen(type_names[t]) == n && memcmp(type_names[t], s, n) == 0)
			return (enum event_type)t;
	/* Vapi sends final transcripts as `transcript[transcriptType="final"]`. */
	if (n > 10 && memcmp(s, "transcript[", 11) == 0)
		return EVENT_TRANSCRIPT;
	return EVENT_UNKNOWN;
}

/* --- encoding --------------------------------------------------------------------------------- */

static void
put_u8(struct buf *b, uint8_t v)
{
	buf_add(b, &v, 1);
}

static void
put_u16(struct buf *b, uint16_t v)
{
	buf_add(b, &v, 2);
}

static void
put_u32(struct buf *b, uint32_t v)
{
	buf_add(b, &v, 4);
}

static void
put_i64(struct buf *b, int64_t v)
{
	buf_add(b, &v, 8);
}

static void
put_str(struct buf *b, const char *s, size_t n)
{
	if (n > UINT32_MAX - 1) {
		b->failed = true;
		return;
	}
	put_u32(b, (uint32_t)n);
	buf_add(b, s, n);
	put_u8(b, 0);
}

/* Byte offsets of the fixed header fields that may be rewritten after encoding. */
#define FACT_FLAGS_OFF 2
#define FACT_CALL_BASE_OFF 12

void
event_enc_begin(struct event_enc *e, struct buf *b, enum event_type type, uint16_t flags, int64_t ts,
                uint64_t call_base, const char *type_name, size_t type_len, const char *call_id, size_t call_len)
{
	e->b = b;
	e->nitems = 0;
	e->origin = EVENT_ORIGIN_SELF;
	put_u8(b, EVENT_RECORD_VERSION);
	put_u8(b, (uint8_t)type);
	put_u16(b, flags);
	put_i64(b, ts);
	buf_add(b, &call_base, 8);
	put_str(b, type_name, type_len);
	put_str(b, call_id, call_len);
	e->nitems_off = b->len;
	put_u32(b, 0);
}

/* Each item: header with a length patched once the body is written. */
/* On disk a sequence number is stored plus one, so that 0 can mean "none" even for sequence 0. */
static uint64_t
seq_put(uint64_t v)
{
	return v == EVENT_ORIGIN_SELF ? 0 : v + 1;
}

static uint64_t
seq_get(uint64_t v)
{
	return v == 0 ? EVENT_ORIGIN_SELF : v - 1;
}

static size_t
item_begin(struct event_enc *e, enum event_item_kind kind, uint8_t iflags)
{
	put_u8(e->b, (uint8_t)kind);
	put_u8(e->b, iflags);
	put_u16(e->b, 0);
	size_t off = e->b->len;
	put_u32(e->b, 0);
	uint64_t o = seq_put(e->origin);
	buf_add(e->b, &o, 8);
	return off;
}

static void
item_end(struct event_enc *e, size_t len_off)
{
	if (e->b->failed)
		return;
	uint64_t body = e->b->len - len_off - 4 - 8;
	if (body > UINT32_MAX) {
		e->b->failed = true;
		return;
	}
	uint32_t v = (uint32_t)body;
	memcpy(e->b->data + len_off, &v, 4);
	e->nitems++;
}

void
event_enc_status(struct event_enc *e, int64_t ts, const char *status, size_t len, const char *ended_by,
                 const char *reason)
{
	size_t off = item_begin(e, EVENT_ITEM_STATUS, 0);
	put_i64(e->b, ts);
	put_str(e->b, status, len);
	put_str(e->b, ended_by ? ended_by : "", ended_by ? strlen(ended_by) : 0);
	put_str(e->b, reason ? reason : "", reason ? strlen(reason) : 0);
	item_end(e, off);
}

void
event_enc_message(struct event_enc *e, const struct event_msg_item *m)
{
	size_t off = item_begin(e, EVENT_ITEM_MESSAGE, m->iflags);
	put_i64(e->b, m->ts);
	put_i64(e->b, m->evt_ts);
	uint64_t u = seq_put(m->updated);
	buf_add(e->b, &u, 8);
	put_str(e->b, m->key, m->key_len);
	put_str(e->b, m->role, m->role_len);
	put_str(e->b, m->text, m->text_len);
	put_str(e->b, m->extra ? m->extra : "", m->extra ? m->extra_len : 0);
	item_end(e, off);
}

void
event_enc_rawrefs(struct event_enc *e, const uint64_t *seqs, uint32_t n)
{
	size_t off = item_begin(e, EVENT_ITEM_RAWREFS, 0);
	put_u32(e->b, n);
	buf_add(e->b, seqs, (size_t)n * 8);
	item_end(e, off);
}

void
event_enc_callmeta(struct event_enc *e, uint8_t iflags, uint64_t first_seq, uint64_t first_ns, uint64_t changed_seq,
                   uint64_t changed_ns)
{
	size_t off = item_begin(e, EVENT_ITEM_CALLMETA, iflags);
	uint64_t v[4] = { first_seq, first_ns, changed_seq, changed_ns };
	buf_add(e->b, v, sizeof(v));
	item_end(e, off);
}

void
event_enc_callinfo(struct event_enc *e, const char *customer, size_t len)
{
	size_t off = item_begin(e, EVENT_ITEM_CALLINFO, 0);
	put_str(e->b, customer, len);
	item_end(e, off);
}

void
event_enc_report(struct event_enc *e, const char *json, size_t len, int64_t ts)
{
	size_t off = item_begin(e, EVENT_ITEM_REPORT, 0);
	put_str(e->b, json, len);
	put_i64(e->b, ts);
	item_end(e, off);
}

void
event_enc_alert(struct event_enc *e, enum event_alert_type type, int64_t ts, const char *json, size_t len)
{
	size_t off = item_begin(e, EVENT_ITEM_ALERT, 0);
	put_u8(e->b, (uint8_t)type);
	put_i64(e->b, ts);
	put_str(e->b, json, len);
	item_end(e, off);
}

bool
event_enc_end(struct event_enc *e)
{
	if (e->b->failed)
		return false;
	memcpy(e->b->data + e->nitems_off, &e->nitems, 4);
	return true;
}

void
event_enc_set_flags(struct buf *b, uint16_t flags)
{
	if (b->len >= FACT_FLAGS_OFF + 2)
		memcpy(b->data + FACT_FLAGS_OFF, &flags, 2);
}

void
event_enc_set_call_base(struct buf *b, uint64_t call_base)
{
	if (b->len >= FACT_CALL_BASE_OFF + 8)
		memcpy(b->data + FACT_CALL_BASE_OFF, &call_base, 8);
}

uint64_t
event_item_ref(const struct event_item *it, uint32_t i)
{
	uint64_t v = UINT64_MAX;
	if (i < it->nrefs)
		memcpy(&v, it->refs + (size_t)i * 8, 8);
	return v;
}

void
event_raw_encode(struct buf *b, uint8_t flags, const char *meta, size_t meta_len)
{
	put_u8(b, EVENT_RECORD_VERSION);
	put_u8(b, flags);
	put_u16(b, 0);
	put_u32(b, (uint32_t)meta_len);
	buf_add(b, meta, meta_len);
}

/* --- decoding --------------------------------------------------------------------------------- */

struct cur {
	const unsigned char *p, *end;
	bool bad;
};

static bool
need(struct cur *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return false;
	}
	return true;
}

static uint8_t
get_u8(struct cur *c)
{
	if (!need(c, 1))
		return 0;
	return *c->p++;
}

static uint16_t
get_u16(struct cur *c)
{
	uint16_t v = 0;
	if (need(c, 2)) {
		memcpy(&v, c->p, 2);
		c->p += 2;
	}
	return v;
}

static uint32_t
get_u32(struct cur *c)
{
	uint32_t v = 0;
	if (need(c, 4)) {
		memcpy(&v, c->p, 4);
		c->p += 4;
	}
	return v;
}

static uint64_t
get_u64(struct cur *c)
{
	uint64_t v = 0;
	if (need(c, 8)) {
		memcpy(&v, c->p, 8);
		c->p += 8;
	}
	return v;
}

static int64_t
get_i64(struct cur *c)
{
	int64_t v = 0;
	if (need(c, 8)) {
		memcpy(&v, c->p, 8);
		c->p += 8;
	}
	return v;
}

static struct event_str
get_str(struct cur *c)
{
	struct event_str s = { "", 0 };
	uint32_t n = get_u32(c);
	if (n == UINT32_MAX || !need(c, (size_t)n + 1))
		return s;
	if (c->p[n] != '\0' || memchr(c->p, '\0', n)) {
		c->bad = true;
		return s;
	}
	s.p = (const char *)c->p;
	s.len = n;
	c->p += (size_t)n + 1;
	return s;
}

int
event_fact_decode(const void *payload, size_t len, struct event_fact *f)
{
	struct cur c = { payload, (const unsigned char *)payload + len, false };
	memset(f, 0, sizeof(*f));
	if (get_u8(&c) != EVENT_RECORD_VERSION)
		return -1;
	uint8_t type = get_u8(&c);
	f->flags = get_u16(&c);
	f->ts = get_i64(&c);
	f->call_base = get_u64(&c);
	f->type_name = get_str(&c);
	f->call_id = get_str(&c);
	f->nitems = get_u32(&c);
	if (c.bad || type >= EVENT_TYPE_COUNT)
		return -1;
	f->type = (enum event_type)type;
	f->items = c.p;
	f->end = c.end;
	return 0;
}

int
event_fact_next(const struct event_fact *f, size_t *cursor, struct event_item *it)
{
	for (;;) {
		if (*cursor > (size_t)(f->end - f->items))
			return -1;
		struct cur c = { f->items + *cursor, f->end, false };
		if (c.p == c.end)
			return 0;
		uint8_t kind = get_u8(&c);
		uint8_t iflags = get_u8(&c);
		(void)get_u16(&c);
		uint32_t blen = get_u32(&c);
		uint64_t origin = seq_get(get_u64(&c));
		if (c.bad || !need(&c, blen))
			return -1;
		struct cur body = { c.p, c.p + blen, false };
		*cursor = (size_t)(c.p + blen - f->items);
		memset(it, 0, sizeof(*it));
		it->kind = (enum event_item_kind)kind;
		it->iflags = iflags;
		it->origin = origin;
		it->ts = EVENT_TS_NONE;
		switch (kind) {
		case EVENT_ITEM_STATUS:
			it->ts = get_i64(&body);
			it->a = get_str(&body);
			it->b = it->c = (struct event_str){ "", 0 };
			if (body.p < body.end) {
				it->b = get_str(&body);
				it->c = get_str(&body);
			}
			break;
		case EVENT_ITEM_MESSAGE:
			it->ts = get_i64(&body);
			it->evt_ts = get_i64(&body);
			it->updated = seq_get(get_u64(&body));
			it->a = get_str(&body);
			it->b = get_str(&body);
			it->c = get_str(&body);
			it->d = get_str(&body);
			break;
		case EVENT_ITEM_CALLINFO:
			it->a = get_str(&body);
			break;
		case EVENT_ITEM_REPORT:
			it->a = get_str(&body);
			if (body.p < body.end)
				it->ts = get_i64(&body);
			break;
		case EVENT_ITEM_ALERT:
			it->alert_type = get_u8(&body);
			it->ts = get_i64(&body);
			it->a = get_str(&body);
			break;
		case EVENT_ITEM_RAWREFS:
			it->nrefs = get_u32(&body);
			if (!body.bad && (size_t)(body.end - body.p) / 8 < it->nrefs)
				return -1;
			it->refs = body.p;
			body.p += (size_t)it->nrefs * 8;
			break;
		case EVENT_ITEM_CALLMETA:
			it->first_seq = get_u64(&body);
			it->first_ns = get_u64(&body);
			it->changed_seq = get_u64(&body);
			it->changed_ns = get_u64(&body);
			break;
		default:
			continue; /* a newer writer's item: skip it */
		}
		return body.bad ? -1 : 1;
	}
}

int
event_raw_decode(const void *payload, size_t len, struct event_raw *r)
{
	struct cur c = { payload, (const unsigned char *)payload + len, false };
	memset(r, 0, sizeof(*r));
	if (get_u8(&c) != EVENT_RECORD_VERSION)
		return -1;
	r->flags = get_u8(&c);
	(void)get_u16(&c);
	uint32_t mlen = get_u32(&c);
	if (c.bad || !need(&c, mlen))
		return -1;
	r->meta.p = (const char *)c.p;
	r->meta.len = mlen;
	r->body = (const char *)c.p + mlen;
	r->body_len = (size_t)(c.end - c.p) - mlen;
	return 0;
}
