/* api: JSON rendering of views (see api.h). */
#include "config.h"

#include "api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "event_record.h"
#include "json.h"

static void
put_ts(struct buf *b, int64_t ts, bool zero_when_absent)
{
	if (ts == EVENT_TS_NONE)
		buf_adds(b, zero_when_absent ? "0" : "null");
	else
		buf_printf(b, "%" PRId64, ts);
}

static void
put_gen(struct buf *b, uint64_t generation)
{
	buf_printf(b, "\"%016" PRIx64 "\"", generation);
}

bool
api_raw_body(struct buf *b, const struct arena *a, uint64_t seq, struct buf *scratch)
{
	struct arena_rec rec;
	struct event_raw raw;
	if (arena_read(a, ARENA_RAW, seq, &rec, scratch) != ARENA_READ_OK || rec.kind != EVENT_REC_RAW ||
	    event_raw_decode(scratch->data, scratch->len, &raw) < 0 || raw.body_len == 0)
		return false;
	/* A body that needed repair is re-served through the sanitiser so the answer stays valid JSON;
	 * every other body is served byte for byte, big integers included. */
	if (raw.flags & EVENT_RAW_REPAIRED)
		json_write_sanitized(b, raw.body, raw.body_len);
	else
		buf_add(b, raw.body, raw.body_len);
	return true;
}

/* ,"name":"value" when value is set. */
static void
put_opt_str(struct buf *b, const char *name, const char *value)
{
	if (!value)
		return;
	buf_printf(b, ",\"%s\":", name);
	json_write_cstr(b, value);
}

/* The tutorial's shapes (tutorial = true: a missing timestamp is 0, as it stored them) or ours
 * (null, plus sequence numbers and the message's extra members). */
/* after: what changed after this sequence number only (API_ALL: everything). The timeline is sent
 * whole when any pill in it is newer, since a late pill may sort between older ones. */
static void
put_statuses(struct buf *b, const struct view_call *c, bool tutorial, uint64_t after)
{
	buf_adds(b, "\"statuses\":[");
	bool any = after == API_ALL;
	for (size_t i = 0; i < c->nst && !any; i++)
		any = c->st[i].seq > after;
	for (size_t i = 0; any && i < c->nst; i++) {
		buf_adds(b, i ? ",{\"status\":" : "{\"status\":");
		json_write_cstr(b, c->st[i].status);
		buf_adds(b, ",\"timestamp\":");
		put_ts(b, c->st[i].ts, tutorial);
		if (!tutorial) {
			buf_printf(b, ",\"seq\":%" PRIu64, c->st[i].seq);
			put_opt_str(b, "ended_by", c->st[i].ended_by);
			put_opt_str(b, "reason", c->st[i].reason);
		}
		buf_addc(b, '}');
	}
	buf_addc(b, ']');
}

static void
put_messages(struct buf *b, const struct view_call *c, bool tutorial, uint64_t after)
{
	buf_adds(b, "\"messages\":[");
	bool first = true;
	for (size_t i = 0; i < c->nmsg; i++) {
		const struct view_msg *m = &c->msg[i];
		if (after != API_ALL && m->seq <= after && m->upd_seq <= after)
			continue;
		buf_adds(b, first ? "{\"messageId\":" : ",{\"messageId\":");
		first = false;
		json_write_str(b, m->key, m->key_len);
		buf_adds(b, ",\"role\":");
		json_write_cstr(b, m->role);
		buf_adds(b, ",\"text\":");
		json_write_str(b, m->text, m->text_len);
		buf_adds(b, ",\"timestamp\":");
		put_ts(b, m->ts, tutorial);
		if (!tutorial) {
			buf_printf(b, ",\"seq\":%" PRIu64 ",\"updated_seq\":%" PRIu64, m->seq, m->upd_seq);
			/* extra is a JSON object written by ingest; its members join the message's. */
			if (m->extra && m->extra_len > 2 && m->extra[0] == '{' && m->extra[m->extra_len - 1] == '}') {
				buf_addc(b, ',');
				buf_add(b, m->extra + 1, m->extra_len - 2);
			}
		}
		buf_addc(b, '}');
	}
	buf_addc(b, ']');
}

/* ,"ended":...,"report":...,"alerts":[...]: the same in our detail and in the tutorial's shape, which
 * keeps its own fields and gains these. */
static void
put_outcome(struct buf *b, const struct view_call *c, uint64_t after)
{
	buf_printf(b, ",\"ended\":%s", c->ended ? "true" : "false");
	/* In a delta, a report that did not change is left out (null would say there is none). */
	if (after == API_ALL || (c->report && c->report_seq > after)) {
		buf_adds(b, ",\"report\":");
		buf_adds(b, c->report ? c->report : "null");
	}
	buf_adds(b, ",\"alerts\":[");
	bool first = true;
	for (size_t i = 0; i < c->nalert; i++) {
		const struct view_alert *al = &c->alert[i];
		if (after != API_ALL && al->seq <= after)
			continue;
		buf_adds(b, first ? "" : ",");
		first = false;
		buf_printf(b, "{\"type\":\"%s\",\"timestamp\":", al->type == EVENT_ALERT_HANG ? "hang" : "error");
		put_ts(b, al->ts, false);
		buf_printf(b, ",\"seq\":%" PRIu64, al->seq);
		if (al->details && al->details[0] == '{') {
			buf_adds(b, ",\"error\":");
			buf_adds(b, al->details);
		}
		buf_addc(b, '}');
	}
	buf_addc(b, ']');
}

void
api_conversation(struct buf *b, const struct view_call *c, const struct arena *a, struct buf *scratch)
{
	buf_addc(b, '{');
	put_statuses(b, c, true, API_ALL);
	buf_addc(b, ',');
	put_messages(b, c, true, API_ALL);
	buf_adds(b, ",\"events\":[");
	bool first = true;
	for (size_t i = 0; i < c->nraw; i++) {
		size_t mark = b->len;
		if (!first)
			buf_addc(b, ',');
		if (api_raw_body(b, a, c->raw[i], scratch))
			first = false;
		else
			b->len = mark; /* aged out of the raw ring */
	}
	buf_addc(b, ']');
	put_outcome(b, c, API_ALL);
	buf_addc(b, '}');
}

/* The view's calls in a malloc'd array sorted by cmp (NULL when there are none, or no memory). */
static const struct view_call **
sorted_calls(const struct view *v, int (*cmp)(const void *, const void *))
{
	const struct view_call **order = v->ncalls ? malloc(v->ncalls * sizeof(*order)) : NULL;
	if (!order)
		return NULL;
	for (size_t i = 0; i < v->ncalls; i++)
		order[i] = v->calls[i];
	qsort(order, v->ncalls, sizeof(*order), cmp);
	return order;
}

static int
by_first_seen(const void *pa, const void *pb)
{
	const struct view_call *x = *(const struct view_call *const *)pa, *y = *(const struct view_call *const *)pb;
	return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq ? 1 : 0;
}

void
api_conversations(struct buf *b, const struct view *v, const struct arena *a, struct buf *scratch)
{
	/* In the order the calls first appeared, as the tutorial's dictionary kept them. */
	const struct view_call **order = sorted_calls(v, by_first_seen);
	if (v->ncalls && !order) {
		b->failed = true;
		return;
	}
	buf_adds(b, "{\"conversations\":{");
	for (size_t i = 0; i < v->ncalls; i++) {
		if (i)
			buf_addc(b, ',');
		json_write_str(b, order[i]->id, order[i]->id_len);
		buf_addc(b, ':');
		api_conversation(b, order[i], a, scratch);
	}
	buf_adds(b, "}}");
	free(order);
}

void
api_call_summary(struct buf *b, const struct view_call *c)
{
	buf_adds(b, "{\"id\":");
	json_write_str(b, c->id, c->id_len);
	buf_adds(b, ",\"status\":");
	json_write_cstr(b, view_call_status(c));
	buf_printf(b, ",\"ended\":%s,\"resumed\":%s,\"customer\":", c->ended ? "true" : "false",
	           c->resumed ? "true" : "false");
	json_write_cstr(b, c->customer);
	buf_printf(b,
	           ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"first_activity\":%" PRIu64
	           ",\"last_activity\":%" PRIu64 ",\"messages\":%zu,\"alerts\":%zu,\"report\":%s}",
	           c->first_seq, c->changed_seq, c->first_ns / 1000000, c->changed_ns / 1000000, c->nmsg, c->nalert,
	           c->report ? "true" : "false");
}

void
api_calls(struct buf *b, const struct view *v, uint64_t generation, uint64_t seq, size_t limit, uint64_t before)
{
	buf_adds(b, "{\"generation\":");
	put_gen(b, generation);
	buf_printf(b, ",\"seq\":%" PRIu64 ",\"total\":%zu,\"calls\":[", seq, v->ncalls);
	/* Newest activity first, from the view's activity list: a page costs its own length, plus the
	 * calls skipped to reach a later page. */
	const struct view_call *c = v->act_newest;
	while (c && c->changed_seq >= before)
		c = c->act_older;
	size_t n = 0;
	for (; c && n < limit; c = c->act_older, n++) {
		if (n)
			buf_addc(b, ',');
		api_call_summary(b, c);
	}
	buf_adds(b, "],\"next\":");
	/* The cursor of the next page: the calls whose latest change is older than the last shown. */
	if (c && n)
		buf_printf(b, "%" PRIu64, c->act_newer->changed_seq);
	else
		buf_adds(b, "null");
	buf_addc(b, '}');
}

/* A string member of the report (JSON object text written by ingest), malloc'd, or NULL. */
static char *
report_str(const char *report, const char *name)
{
	struct json_doc d;
	if (json_parse(&d, report, strlen(report), NULL) != JSON_OK)
		return NULL;
	int v = json_obj_get(&d, 0, name);
	char *s = json_is_string(&d, v) && d.tok[v].end > d.tok[v].start ? json_strdup(&d, v, NULL, NULL) : NULL;
	json_free(&d);
	return s;
}

void
api_call_delta(struct buf *b, const struct view_call *c, uint64_t generation, uint64_t seq, uint64_t after)
{
	buf_adds(b, "{\"id\":");
	json_write_str(b, c->id, c->id_len);
	buf_adds(b, ",\"generation\":");
	put_gen(b, generation);
	buf_printf(b, ",\"seq\":%" PRIu64 ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"resumed\":%s",
	           seq, c->first_seq, c->changed_seq, c->resumed ? "true" : "false");
	if (after != API_ALL)
		buf_printf(b, ",\"after\":%" PRIu64, after);
	buf_adds(b, ",\"status\":");
	json_write_cstr(b, view_call_status(c));
	buf_adds(b, ",\"customer\":");
	json_write_cstr(b, c->customer);
	/* Who ended the call and why, as its latest terminal status told it. */
	const struct view_status *end = NULL;
	for (size_t i = c->nst; c->ended && !end && i > 0; i--)
		if (view_status_is_terminal(c->st[i - 1].status))
			end = &c->st[i - 1];
	/* ... or, without one, as the report told it (Vapi's reports carry endedReason) */
	char *by = NULL, *why = NULL;
	if ((!end || !end->ended_by || !end->reason) && c->report) {
		by = report_str(c->report, "endedBy");
		why = report_str(c->report, "endedReason");
		if (!why)
			why = report_str(c->report, "endReason");
	}
	buf_adds(b, ",\"ended_by\":");
	json_write_cstr(b, end && end->ended_by ? end->ended_by : by);
	buf_adds(b, ",\"ended_reason\":");
	json_write_cstr(b, end && end->reason ? end->reason : why);
	free(by);
	free(why);
	buf_addc(b, ',');
	put_statuses(b, c, false, after);
	buf_addc(b, ',');
	put_messages(b, c, false, after);
	put_outcome(b, c, after);
	buf_addc(b, '}');
}

void
api_call_detail(struct buf *b, const struct view_call *c, uint64_t generation, uint64_t seq)
{
	api_call_delta(b, c, generation, seq, API_ALL);
}
