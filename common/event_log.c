/* event_log: one-line descriptions of fact records (see event_log.h). */
#include "config.h"

#include "event_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"

#define LOG_DETAIL_CHARS 40

static void
put_time(struct buf *b, int64_t ms, uint64_t time_ns)
{
	if (ms == EVENT_TS_NONE)
		ms = (int64_t)(time_ns / 1000000);
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char when[16];
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	buf_printf(b, "[%s.%03d] ", when, (int)(ms % 1000));
}

/* A member of a small JSON object written by ingest (an error's type, a report's rating). */
static void
put_member(struct buf *b, const struct event_str *json, const char *key, size_t max_chars)
{
	struct json_doc d;
	if (!json->len || json_parse(&d, json->p, json->len, NULL) != JSON_OK)
		return;
	size_t n;
	char *v = json_strdup(&d, json_obj_get(&d, 0, key), &n, NULL);
	if (v)
		log_text(b, v, n, max_chars);
	free(v);
	json_free(&d);
}

void
event_describe(struct buf *b, const struct event_fact *f, uint64_t time_ns)
{
	event_describe_text(b, f, time_ns, LOG_TEXT_CHARS);
}

size_t
event_log_text_chars(enum log_text_mode m)
{
	return m == LOG_TEXT_NONE ? EVENT_LOG_TEXT_HIDDEN : m == LOG_TEXT_FULL ? EVENT_LOG_TEXT_ALL : LOG_TEXT_CHARS;
}

void
event_describe_text(struct buf *b, const struct event_fact *f, uint64_t time_ns, size_t text_chars)
{
	put_time(b, f->ts, time_ns);
	if (f->flags & EVENT_F_UNATTRIBUTED) {
		buf_adds(b, "\xE2\x84\xB9\xEF\xB8\x8F  no call id: ");
		if (f->type_name.len)
			log_text(b, f->type_name.p, f->type_name.len, LOG_DETAIL_CHARS);
		else
			buf_adds(b, "event without a type");
		buf_adds(b, " kept raw (unattributed)");
		goto flags;
	}
	log_text(b, f->call_id.p, f->call_id.len, EVENT_LOG_SHORT_ID);
	buf_addc(b, ' ');
	/* What the event changed: its status, its alert or report, and its latest message. */
	struct event_item it, last_msg = { 0 };
	size_t cur = 0;
	unsigned msgs = 0;
	bool said = false;
	while (event_fact_next(f, &cur, &it) == 1) {
		switch (it.kind) {
		case EVENT_ITEM_STATUS:
		{
			/* Upper case, as the tutorial printed it; through log_text like every payload string, so a
			 * status cannot forge a log line or carry terminal escapes. */
			buf_adds(b, "\xF0\x9F\x93\x9E \xE2\x86\x92 "); /* 📞 → */
			size_t from = b->len;
			log_text(b, it.a.p, it.a.len, EVENT_LOG_STATUS_MAX);
			for (size_t i = from; i < b->len; i++)
				if (b->data[i] >= 'a' && b->data[i] <= 'z')
					b->data[i] = (char)(b->data[i] - 32);
			said = true;
			break;
		}
		case EVENT_ITEM_ALERT:
			if (it.alert_type == EVENT_ALERT_HANG) {
				buf_adds(b, "\xE2\x8F\xB3 hang: assistant not responding");
			} else {
				struct buf type = BUF_INIT, code = BUF_INIT;
				if (text_chars != EVENT_LOG_TEXT_HIDDEN) { /* free text the sender wrote */
					put_member(&type, &it.a, "type", LOG_DETAIL_CHARS);
					put_member(&code, &it.a, "code", LOG_DETAIL_CHARS);
				}
				buf_adds(b, "\xE2\x9D\x8C error ");
				buf_add(b, type.data, type.len);
				if (type.len && code.len)
					buf_addc(b, '/');
				buf_add(b, code.data, code.len);
				buf_free(&type);
				buf_free(&code);
			}
			said = true;
			break;
		case EVENT_ITEM_REPORT: {
			struct buf rating = BUF_INIT;
			if (text_chars != EVENT_LOG_TEXT_HIDDEN) /* the evaluation can be a sentence about the caller */
				put_member(&rating, &it.a, "successEvaluation", LOG_DETAIL_CHARS);
			buf_adds(b, "\xF0\x9F\x93\x8B end-of-call report");
			if (rating.len) {
				buf_adds(b, " (");
				buf_add(b, rating.data, rating.len);
				buf_addc(b, ')');
			}
			buf_free(&rating);
			said = true;
			break;
		}
		case EVENT_ITEM_MESSAGE:
			msgs++;
			/* the latest message that says something */
			if (it.c.len || !last_msg.kind)
				last_msg = it;
			break;
		default:
			break;
		}
	}
	if (msgs) {
		buf_adds(b, said ? "; \xF0\x9F\x92\xAC " : "\xF0\x9F\x92\xAC "); /* 💬 */
		log_text(b, last_msg.b.p, last_msg.b.len, EVENT_LOG_ROLE_MAX);
		buf_adds(b, ": ");
		if (text_chars == EVENT_LOG_TEXT_HIDDEN)
			buf_printf(b, "(%zu bytes of text)", (size_t)last_msg.c.len);
		else
			log_text(b, last_msg.c.p, last_msg.c.len, text_chars);
		if (msgs > 1)
			buf_printf(b, " (+%u more)", msgs - 1);
	} else if (!said) {
		if (f->type == EVENT_CONVERSATION_UPDATE) {
			buf_adds(b, "\xF0\x9F\x92\xAC no new messages");
		} else {
			buf_adds(b, "\xE2\x84\xB9\xEF\xB8\x8F  ");
			if (f->type_name.len)
				log_text(b, f->type_name.p, f->type_name.len, LOG_DETAIL_CHARS);
			else
				buf_adds(b, "(no type)");
			/* A type we interpret that changed nothing repeated what the call already had. */
			buf_adds(b, f->type == EVENT_UNKNOWN ? " (not interpreted, kept raw)"
			            : f->type == EVENT_STATUS_UPDATE || f->type == EVENT_HANG || f->type == EVENT_ERROR ||
			                      f->type == EVENT_END_OF_CALL_REPORT
			                    ? ": nothing new (a repeat), kept raw"
			                    : " (kept raw)");
		}
	}
flags:
	if (f->flags & EVENT_F_REPAIRED)
		buf_adds(b, " [broken text repaired]");
}
