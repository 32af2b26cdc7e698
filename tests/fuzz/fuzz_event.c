/* fuzz_event: a libFuzzer target over the JSON parser and the event normaliser, driven the way the
 * daemon's writer drives them (daemon/ingest.c, common/store.c): each body is parsed, built into a
 * fact record and a redacted raw body against the writer's view, and the fact is applied to that
 * view, so one input exercises a sequence of events on the same calls (deduplication, stale replays,
 * status order, reports ending calls, calls leaving and coming back). Built and run by scripts/fuzz;
 * tests/fuzz/README.md says how.
 *
 * Input: the first line is the value of a secret request header (x-vapi-secret, or Authorization
 * with "Bearer " in front), so that scrubbing always has something to scrub; the rest is a list of
 * webhook bodies separated by lines that start with "---". Letters after the dashes act on the body
 * just before the line, as the writer would once the arena fills up:
 *   s  re-append that event's call as a snapshot record (store.c's protect_live)
 *   p  let the call with the oldest base leave the arena (store.c's prune), to be resumed later
 * An input without any newline is one body without a secret, so plain JSON documents work as seeds.
 *
 * Every violated invariant aborts, so libFuzzer saves the input:
 *  - json_parse: a failure leaves nothing allocated; a success gives well-formed tokens whose strings
 *    unescape to valid UTF-8 without NUL; re-serialising the document (json_write_token) or
 *    sanitising its text (json_write_sanitized) gives JSON that parses again without repairs.
 *  - event_build returns 0 (-1 means out of memory, which the fuzzer's allocator never reports).
 *  - the fact record decodes and every item in it is well formed; every extracted string is valid
 *    UTF-8 without NUL; report, alert and message extras are JSON objects.
 *  - the raw body, as the API serves it, is valid JSON and valid UTF-8.
 *  - no secret of EVENT_SECRET_MIN_SCRUB bytes or more (the header's, or one the body revealed)
 *    appears in the raw body or in the fact record, except where it overlaps a "[redacted]" marker
 *    (the marker's own bytes are not the sender's).
 *  - the API's JSON for the calls (api_calls, api_call_detail, api_conversation) parses.
 *  - a snapshot changes nothing a reader is shown; a reader replaying the records from the tail
 *    shows exactly what the writer's view shows. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "arena.h"
#include "buf.h"
#include "event.h"
#include "event_record.h"
#include "json.h"
#include "view.h"

/* Limits of one input: more events or a longer secret add run time, not coverage. */
#define FUZZ_MAX_EVENTS 64
#define FUZZ_MAX_SECRET 512
#define FUZZ_SEPARATOR "\n---"
#define FUZZ_SEPARATOR_LEN (sizeof(FUZZ_SEPARATOR) - 1)
#define FUZZ_BEARER "Bearer "
#define FUZZ_BEARER_LEN (sizeof(FUZZ_BEARER) - 1)
#define FUZZ_BOM_LEN 3
/* Re-parsing our own output: the API nests a body's objects a few levels deeper than the body was,
 * so the daemon's limits for bodies do not apply. */
#define FUZZ_REPARSE_DEPTH 4096
#define FUZZ_REPARSE_TOKENS (1u << 30)
/* The clock and generation the writer stamps (fixed, so that runs are reproducible). */
#define FUZZ_NS_PER_SEQ 1000000000ull
#define FUZZ_GENERATION 0x00f0221e0f0221e0ull

#define REDACTED_LEN (sizeof(EVENT_REDACTED) - 1)

static const struct json_limits reparse_limits = { FUZZ_REPARSE_DEPTH, FUZZ_REPARSE_TOKENS };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition, so that libFuzzer keeps the input and shows the stack. */
#define REQUIRE(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                         \
			fprintf(stderr, "fuzz_event: %s:%d: invariant violated: %s: ", __FILE__, __LINE__, \
			        #cond);                                                                    \
			fprintf(stderr, __VA_ARGS__);                                                      \
			fputc('\n', stderr);                                                               \
			abort();                                                                           \
		}                                                                                      \
	} while (0)

/* --- JSON oracles ------------------------------------------------------------------------------- */

/* Text we produced (or the API serves) must be JSON a reader accepts as it is. */
static void
require_json(const char *what, const char *s, size_t n, bool object_only)
{
	struct json_doc d;
	enum json_status st = json_parse(&d, s, n, &reparse_limits);
	REQUIRE(st == JSON_OK || (!object_only && st == JSON_ERR_NOT_OBJECT), "%s does not parse (%s at %zu): %.*s",
	        what, json_errcode(st), d.err_offset, (int)(n > 400 ? 400 : n), s);
	REQUIRE(st != JSON_OK || d.repairs == 0, "%s holds %u broken strings", what, d.repairs);
	REQUIRE(json_utf8_valid(s, n), "%s is not valid UTF-8", what);
	json_free(&d);
}

/* A string we extracted, whole or cut to a limit: what the log, the view and the API carry. */
static void
require_text(const char *what, const char *s, size_t n)
{
	REQUIRE(json_utf8_valid(s, n), "%s is not valid UTF-8: %.*s", what, (int)(n > 200 ? 200 : n), s);
	REQUIRE(memchr(s, '\0', n) == NULL, "%s holds a NUL byte", what);
}

/* The parser's own invariants on one document, and that what it writes back is JSON again. */
static void
check_doc(const struct json_doc *d, const char *body, size_t len, struct buf *out, struct buf *again)
{
	REQUIRE(d->ntok >= 1 && d->tok[0].type == JSMN_OBJECT, "root is not an object");
	REQUIRE(d->len + (d->bom ? FUZZ_BOM_LEN : 0) == len, "document length %zu of %zu", d->len, len);
	for (int i = 0; i < d->ntok; i++) {
		const jsmntok_t *t = &d->tok[i];
		REQUIRE(t->start >= 0 && t->start <= t->end && (size_t)t->end <= d->len, "token %d spans %d..%d", i,
		        t->start, t->end);
		REQUIRE(d->next[i] > i && d->next[i] <= d->ntok, "next[%d] = %d of %d", i, d->next[i], d->ntok);
		REQUIRE(i == 0 || (t->parent >= 0 && t->parent < i), "token %d has parent %d", i, t->parent);
		if (t->type == JSMN_STRING) {
			size_t n;
			char *s = json_strdup(d, i, &n, NULL);
			REQUIRE(s != NULL, "json_strdup failed");
			require_text("an unescaped string", s, n);
			REQUIRE(strlen(s) == n, "unescaped length");
			REQUIRE(json_str_eq(d, i, s), "a string differs from its own unescaped value");
			free(s);
		} else if (json_is_number(d, i)) {
			int64_t iv;
			double dv;
			(void)json_get_i64(d, i, &iv);
			(void)json_get_double(d, i, &dv);
		}
	}

	/* Re-serialised: JSON without broken strings, and a fixed point of parse-and-write. */
	buf_reset(out);
	json_write_token(out, d, 0);
	REQUIRE(!out->failed, "json_write_token failed");
	require_json("json_write_token output", out->data, out->len, true);
	struct json_doc d2;
	REQUIRE(json_parse(&d2, out->data, out->len, &reparse_limits) == JSON_OK, "rewritten document");
	REQUIRE(d2.ntok == d->ntok, "rewriting changed the token count %d -> %d", d->ntok, d2.ntok);
	buf_reset(again);
	json_write_token(again, &d2, 0);
	REQUIRE(again->len == out->len && memcmp(again->data, out->data, out->len) == 0,
	        "json_write_token is not a fixed point");
	json_free(&d2);

	/* Sanitised: the same document with its strings repaired. */
	buf_reset(out);
	json_write_sanitized(out, body, len);
	REQUIRE(!out->failed, "json_write_sanitized failed");
	require_json("json_write_sanitized output", out->data, out->len, true);
	REQUIRE(json_parse(&d2, out->data, out->len, &reparse_limits) == JSON_OK, "sanitised document");
	REQUIRE(d2.ntok == d->ntok, "sanitising changed the token count %d -> %d", d->ntok, d2.ntok);
	json_free(&d2);
}

/* --- secrets ------------------------------------------------------------------------------------ */

/* Whether s[0..n) holds secret sec where it does not overlap a redaction marker. Every marker that
 * overlaps an occurrence lies wholly within REDACTED_LEN - 1 bytes either side of it. */
static bool
leaks(const char *s, size_t n, const char *sec, size_t slen)
{
	for (const char *p = s, *end = s + n; (p = memmem(p, (size_t)(end - p), sec, slen)) != NULL; p++) {
		size_t at = (size_t)(p - s);
		size_t from = at >= REDACTED_LEN - 1 ? at - (REDACTED_LEN - 1) : 0;
		size_t to = n - (at + slen) >= REDACTED_LEN - 1 ? at + slen + REDACTED_LEN - 1 : n;
		if (memmem(s + from, to - from, EVENT_REDACTED, REDACTED_LEN) == NULL)
			return true;
	}
	return false;
}

/* Whether a secret can stand byte for byte inside a JSON string's raw text (event.c's json_safe). */
static bool
raw_safe(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

/* The secrets the scrubber promises to remove everywhere: long enough (EVENT_SECRET_MIN_SCRUB).
 * In raw JSON text (raw set) only those that could stand there byte for byte are looked for: the
 * others would match JSON syntax, not a value; require_no_secret_json finds them in the strings. */
static void
check_secrets(const char *what, const char *s, size_t n, const struct event_secrets *sec, bool raw)
{
	for (int i = 0; i < sec->n; i++)
		if (sec->len[i] >= EVENT_SECRET_MIN_SCRUB && (!raw || raw_safe(sec->v[i], sec->len[i])))
			REQUIRE(!leaks(s, n, sec->v[i], sec->len[i]), "%s holds secret %d \"%s\": %.*s", what, i, sec->v[i],
			        (int)(n > 300 ? 300 : n), s);
}

static void
require_no_secret(const char *what, const char *s, size_t n, const struct event_secrets *sec)
{
	check_secrets(what, s, n, sec, false);
}

/* The same in JSON text: a secret is found in its strings however they are escaped. */
static void
require_no_secret_json(const char *what, const char *s, size_t n, const struct event_secrets *sec)
{
	struct json_doc d;
	if (json_parse(&d, s, n, &reparse_limits) != JSON_OK)
		return; /* require_json reports it */
	for (int i = 0; i < d.ntok; i++) {
		size_t len;
		char *u;
		if (!json_is_string(&d, i))
			continue;
		const char *raw = d.text + d.tok[i].start;
		size_t raw_len = (size_t)(d.tok[i].end - d.tok[i].start);
		REQUIRE((u = json_strdup(&d, i, &len, NULL)) != NULL, "json_strdup failed");
		for (int k = 0; k < sec->n; k++) {
			REQUIRE(sec->len[k] < EVENT_SECRET_MIN_SCRUB || !leaks(u, len, sec->v[k], sec->len[k]),
			        "%s holds secret %d \"%s\" in string %.*s", what, k, sec->v[k],
			        (int)(raw_len > 300 ? 300 : raw_len), raw);
		}
		free(u);
	}
	json_free(&d);
}

/* --- the fact record ---------------------------------------------------------------------------- */

static void
require_str(const char *what, const struct event_str *s, const struct event_secrets *sec)
{
	REQUIRE(s->p != NULL && s->p[s->len] == '\0', "%s is not NUL-terminated", what);
	require_text(what, s->p, s->len);
	require_no_secret(what, s->p, s->len, sec);
}

/* A JSON object stored as text in an item (report, alert details, message extra). */
static void
require_object(const char *what, const struct event_str *s, bool may_be_empty, const struct event_secrets *sec)
{
	require_str(what, s, sec);
	if (s->len == 0 && may_be_empty)
		return;
	REQUIRE(s->len >= 2 && s->p[0] == '{' && s->p[s->len - 1] == '}', "%s is not an object: %s", what, s->p);
	require_json(what, s->p, s->len, true);
	require_no_secret_json(what, s->p, s->len, sec);
}

/* Decodes a record as every reader does and checks each item; snapshot says which kinds it may hold. */
static void
check_fact(const struct buf *rec, bool snapshot, const struct event_secrets *sec, struct event_fact *f)
{
	REQUIRE(event_fact_decode(rec->data, rec->len, f) == 0, "the fact record does not decode");
	REQUIRE(snapshot == ((f->flags & EVENT_F_SNAPSHOT) != 0), "snapshot flag 0x%x", f->flags);
	require_str("the type name", &f->type_name, sec);
	require_str("the call id", &f->call_id, sec);
	REQUIRE(f->call_id.len <= EVENT_MAX_CALL_ID, "a call id of %u bytes", f->call_id.len);
	REQUIRE((f->call_id.len == 0) == ((f->flags & EVENT_F_UNATTRIBUTED) != 0) || snapshot,
	        "call id \"%s\" with flags 0x%x", f->call_id.p, f->flags);
	size_t cur = 0;
	uint32_t n = 0;
	struct event_item it;
	int rc;
	while ((rc = event_fact_next(f, &cur, &it)) == 1) {
		n++;
		switch (it.kind) {
		case EVENT_ITEM_STATUS:
			require_str("a status", &it.a, sec);
			REQUIRE(it.a.len > 0 && it.a.len <= EVENT_MAX_STATUS, "a status of %u bytes", it.a.len);
			break;
		case EVENT_ITEM_MESSAGE:
			require_str("a message key", &it.a, sec);
			require_str("a message role", &it.b, sec);
			require_str("a message text", &it.c, sec);
			require_object("a message extra", &it.d, true, sec);
			REQUIRE(it.a.len > 0, "a message without a key");
			break;
		case EVENT_ITEM_CALLINFO:
			require_str("a customer", &it.a, sec);
			REQUIRE(it.a.len <= EVENT_MAX_CUSTOMER, "a customer of %u bytes", it.a.len);
			break;
		case EVENT_ITEM_REPORT:
			require_object("a report", &it.a, false, sec);
			break;
		case EVENT_ITEM_ALERT:
			REQUIRE(it.alert_type == EVENT_ALERT_HANG || it.alert_type == EVENT_ALERT_ERROR, "alert type %u",
			        it.alert_type);
			require_object("alert details", &it.a, true, sec);
			break;
		case EVENT_ITEM_RAWREFS:
		case EVENT_ITEM_CALLMETA:
			REQUIRE(snapshot, "item kind %d in an event's fact", it.kind);
			break;
		default:
			REQUIRE(false, "item kind %d", it.kind);
		}
	}
	REQUIRE(rc == 0, "a malformed item after %u", n);
	REQUIRE(n == f->nitems, "%u items decoded of %u", n, f->nitems);
}

/* --- the writer --------------------------------------------------------------------------------- */

/* A call that left the arena, remembered so that its next event resumes it (store.c's gone table). */
struct gone {
	char *id;
	bool ended;
};

struct writer {
	struct view v;
	struct event_builder eb;
	struct buf fact, body, served, raw, snap, out, again, scratch;
	struct buf *records; /* every fact and snapshot record from seq 0, for the replay */
	uint64_t *raw_refs;  /* their raw sequence numbers (ARENA_NO_REF for snapshots) */
	uint64_t seq, tail;  /* the next record's sequence number; the oldest still in the arena */
	struct gone gone[FUZZ_MAX_EVENTS];
	int ngone;
	char secret[FUZZ_MAX_SECRET + 1];
	size_t secret_len;
};

static void
keep_record(struct writer *w, const struct buf *rec, uint64_t raw_ref)
{
	struct buf *k = &w->records[w->seq];
	*k = (struct buf)BUF_INIT;
	buf_add(k, rec->data, rec->len);
	REQUIRE(!k->failed, "out of memory");
	w->raw_refs[w->seq] = raw_ref;
}

/* The secrets every stored state must be free of: the header's only. One that a body revealed may
 * stand in what earlier events stored, scrubbed before anyone knew it. */
static struct event_secrets
header_secrets(const struct writer *w)
{
	struct event_secrets h = { 0 };
	if (w->secret_len) {
		h.n = 1;
		h.v[0] = (char *)w->secret;
		h.len[0] = w->secret_len;
	}
	return h;
}

/* The API's documents for one call, each of which must parse; detail is left in w->out. */
static void
render_call(struct writer *w, const struct view_call *c)
{
	struct event_secrets header = header_secrets(w);
	buf_reset(&w->out);
	api_call_detail(&w->out, c, FUZZ_GENERATION, w->seq);
	REQUIRE(!w->out.failed, "out of memory");
	require_json("api_call_detail", w->out.data, w->out.len, true);
	require_no_secret_json("api_call_detail", w->out.data, w->out.len, &header);
	/* The tutorial's shape, without the raw events: they live in the arena, which this target
	 * replaces by the raw-body checks in post(). */
	struct view_call shape = *c;
	shape.nraw = 0;
	buf_reset(&w->again);
	api_conversation(&w->again, &shape, NULL, &w->scratch);
	REQUIRE(!w->again.failed, "out of memory");
	require_json("api_conversation", w->again.data, w->again.len, true);
}

/* Whether the call with this id left before, forgetting it (it is back); *ended as it left. */
static bool
came_back(struct writer *w, const char *id, bool *ended)
{
	for (int i = 0; i < w->ngone; i++) {
		if (strcmp(w->gone[i].id, id) != 0)
			continue;
		*ended = w->gone[i].ended;
		free(w->gone[i].id);
		w->gone[i] = w->gone[--w->ngone];
		return true;
	}
	return false;
}

static void
call_gone(struct view_call *c, void *arg)
{
	struct writer *w = arg;
	if (w->ngone == FUZZ_MAX_EVENTS)
		return;
	w->gone[w->ngone].id = strdup(c->id);
	REQUIRE(w->gone[w->ngone].id != NULL, "out of memory");
	w->gone[w->ngone++].ended = c->ended;
}

/* One webhook, as ingest and store_commit handle it. */
static void
post(struct writer *w, const char *body, size_t len, const char *opts, size_t nopts)
{
	struct json_doc d;
	enum json_status st = json_parse(&d, body, len, NULL);
	if (st != JSON_OK) {
		REQUIRE(d.tok == NULL && d.owned == NULL && d.err_offset <= len, "a failed parse (%s) left state",
		        json_errcode(st));
		return; /* refused with 400: nothing is stored */
	}
	check_doc(&d, body, len, &w->out, &w->again);

	struct event_secrets sec = { 0 };
	event_secrets_add(&sec, w->secret, w->secret_len);
	const char *orig = body + (d.bom ? FUZZ_BOM_LEN : 0);
	struct event_result res;
	int rc = event_build(&w->eb, &d, orig, &w->v, &sec, &w->fact, &w->body, &res);
	REQUIRE(rc == 0, "event_build returned %d", rc);
	REQUIRE(!w->body.failed && !w->fact.failed, "a failed buffer after success");
	require_text("the log's type name", res.type_name, strlen(res.type_name));
	require_text("the log's status", res.status, strlen(res.status));
	require_text("the log's role", res.role, strlen(res.role));
	require_text("the log's text", res.text, strlen(res.text));
	require_text("the log's detail", res.detail, strlen(res.detail));
	require_no_secret("the log's text", res.text, strlen(res.text), &sec);

	/* The raw body as the API serves it (api_raw_body), and its record. */
	const struct buf *served = &w->body;
	if (d.repairs) {
		buf_reset(&w->served);
		json_write_sanitized(&w->served, w->body.data, w->body.len);
		served = &w->served;
	}
	require_json("the served raw body", served->data, served->len, true);
	check_secrets("the raw body", w->body.data, w->body.len, &sec, true);
	require_no_secret_json("the served raw body", served->data, served->len, &sec);
	static const char meta[] = "{\"headers\":{\"x-vapi-secret\":\"" EVENT_REDACTED "\"}}";
	buf_reset(&w->raw);
	event_raw_encode(&w->raw, d.repairs ? EVENT_RAW_REPAIRED : 0, meta, sizeof(meta) - 1);
	buf_add(&w->raw, w->body.data, w->body.len);
	struct event_raw raw;
	REQUIRE(event_raw_decode(w->raw.data, w->raw.len, &raw) == 0, "the raw record does not decode");
	REQUIRE(raw.body_len == w->body.len && memcmp(raw.body, w->body.data, raw.body_len) == 0, "raw body");

	/* What store_commit adds: the call's base, and whether it comes back after leaving. */
	struct view_call *c = res.call_id[0] ? view_find(&w->v, res.call_id, strlen(res.call_id)) : NULL;
	uint16_t flags = res.flags | EVENT_F_RAW;
	bool ended;
	if (res.call_id[0] && !c && came_back(w, res.call_id, &ended))
		flags |= EVENT_F_RESUMED | (ended ? EVENT_F_WAS_ENDED : 0);
	event_enc_set_flags(&w->fact, flags);
	event_enc_set_call_base(&w->fact, c ? c->base_seq : w->seq);
	struct event_fact f;
	check_fact(&w->fact, false, &sec, &f);
	REQUIRE(strcmp(f.call_id.p, res.call_id) == 0, "the record names call \"%s\", the result \"%s\"", f.call_id.p,
	        res.call_id);
	keep_record(w, &w->fact, w->seq);
	REQUIRE(view_apply(&w->v, w->seq, w->seq * FUZZ_NS_PER_SEQ, w->seq, &f) == 0, "view_apply failed");
	w->seq++;
	json_free(&d);

	c = res.call_id[0] ? view_find(&w->v, res.call_id, strlen(res.call_id)) : NULL;
	if (c)
		render_call(w, c);
	if (c && memchr(opts, 's', nopts)) {
		/* A snapshot replaces the call's state with itself: nothing shown may change. */
		struct buf before = BUF_INIT;
		buf_add(&before, w->out.data, w->out.len);
		struct event_secrets header = header_secrets(w);
		REQUIRE(event_snapshot(&w->snap, c, w->seq) == 0, "event_snapshot failed");
		check_fact(&w->snap, true, &header, &f);
		keep_record(w, &w->snap, ARENA_NO_REF);
		REQUIRE(view_apply(&w->v, w->seq, w->seq * FUZZ_NS_PER_SEQ, ARENA_NO_REF, &f) == 0, "view_apply failed");
		REQUIRE(c->base_seq == w->seq, "the snapshot did not become the call's base");
		w->seq++;
		buf_reset(&w->out);
		api_call_detail(&w->out, c, FUZZ_GENERATION, w->seq - 1);
		REQUIRE(before.len == w->out.len && memcmp(before.data, w->out.data, before.len) == 0,
		        "a snapshot changed call \"%s\":\n before: %.*s\n after:  %.*s", c->id, (int)before.len,
		        before.data, (int)w->out.len, w->out.data);
		buf_free(&before);
	}
	if (memchr(opts, 'p', nopts) && w->v.oldest) {
		/* The oldest call's base is overwritten: it leaves whole, with everything older. */
		w->tail = view_min_base(&w->v) + 1;
		view_prune(&w->v, w->tail, call_gone, w);
		REQUIRE(view_min_base(&w->v) >= w->tail, "a call older than the tail survived");
	}
	event_secrets_clear(&sec);
}

/* A reader started now replays the records from the tail (follow.c): it must show the same, and
 * the call list must be JSON. */
static void
check_replay(struct writer *w)
{
	struct view r;
	struct event_fact f;
	struct buf a = BUF_INIT, b = BUF_INIT;

	view_init(&r);
	for (uint64_t s = w->tail; s < w->seq; s++) {
		REQUIRE(event_fact_decode(w->records[s].data, w->records[s].len, &f) == 0, "record %llu",
		        (unsigned long long)s);
		REQUIRE(view_apply(&r, s, s * FUZZ_NS_PER_SEQ, w->raw_refs[s], &f) == 0, "view_apply failed");
	}
	REQUIRE(r.ncalls == w->v.ncalls, "the reader has %zu calls, the writer %zu", r.ncalls, w->v.ncalls);
	for (size_t i = 0; i < w->v.ncalls; i++) {
		const struct view_call *c = w->v.calls[i], *rc = view_find(&r, c->id, c->id_len);
		REQUIRE(rc != NULL, "the reader lacks call \"%s\"", c->id);
		buf_reset(&a);
		buf_reset(&b);
		api_call_detail(&a, c, FUZZ_GENERATION, w->seq);
		api_call_detail(&b, rc, FUZZ_GENERATION, w->seq);
		REQUIRE(!a.failed && !b.failed, "out of memory");
		REQUIRE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
		        "call \"%s\" differs:\n writer: %.*s\n reader: %.*s", c->id, (int)a.len, a.data, (int)b.len, b.data);
	}
	buf_reset(&a);
	buf_reset(&b);
	api_calls(&a, &w->v, FUZZ_GENERATION, w->seq, SIZE_MAX, UINT64_MAX);
	api_calls(&b, &r, FUZZ_GENERATION, w->seq, SIZE_MAX, UINT64_MAX);
	REQUIRE(!a.failed && !b.failed, "out of memory");
	struct event_secrets header = header_secrets(w);
	require_json("api_calls", a.data, a.len, true);
	require_no_secret_json("api_calls", a.data, a.len, &header);
	REQUIRE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
	        "the call lists differ:\n writer: %.*s\n reader: %.*s", (int)a.len, a.data, (int)b.len, b.data);
	buf_free(&a);
	buf_free(&b);
	view_clear(&r);
}

/* The header secret as ingest collects it: a C string, without a line end, "Bearer " removed. */
static void
set_secret(struct writer *w, const char *s, size_t n)
{
	n = strnlen(s, n);
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n >= FUZZ_BEARER_LEN && strncasecmp(s, FUZZ_BEARER, FUZZ_BEARER_LEN) == 0) {
		s += FUZZ_BEARER_LEN;
		n -= FUZZ_BEARER_LEN;
	}
	if (n > FUZZ_MAX_SECRET)
		n = FUZZ_MAX_SECRET;
	memcpy(w->secret, s, n);
	w->secret[n] = '\0';
	w->secret_len = n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl = memchr(p, '\n', size);
	/* each event may be followed by one snapshot */
	static struct buf records[2 * FUZZ_MAX_EVENTS];
	static uint64_t raw_refs[2 * FUZZ_MAX_EVENTS];
	struct writer w = { .records = records, .raw_refs = raw_refs };

	view_init(&w.v);
	event_builder_init(&w.eb);
	if (nl) {
		set_secret(&w, p, (size_t)(nl - p));
		p = nl + 1;
	}
	for (int n = 0; n < FUZZ_MAX_EVENTS && (n == 0 || p < end); n++) {
		const char *sep = memmem(p, (size_t)(end - p), FUZZ_SEPARATOR, FUZZ_SEPARATOR_LEN);
		const char *body_end = sep ? sep : end, *opts = body_end, *opts_end = body_end;
		if (sep) {
			opts = sep + FUZZ_SEPARATOR_LEN;
			opts_end = memchr(opts, '\n', (size_t)(end - opts));
			if (!opts_end)
				opts_end = end;
		}
		/* the body in a buffer of its own, so that ASan sees any read past its end */
		size_t len = (size_t)(body_end - p);
		char *body = malloc(len ? len : 1);
		REQUIRE(body != NULL, "out of memory");
		memcpy(body, p, len);
		post(&w, body, len, opts, (size_t)(opts_end - opts));
		free(body);
		p = opts_end < end ? opts_end + 1 : end;
	}

	check_replay(&w);

	for (uint64_t s = 0; s < w.seq; s++)
		buf_free(&records[s]);
	for (int i = 0; i < w.ngone; i++)
		free(w.gone[i].id);
	view_clear(&w.v);
	event_builder_free(&w.eb);
	buf_free(&w.fact);
	buf_free(&w.body);
	buf_free(&w.served);
	buf_free(&w.raw);
	buf_free(&w.snap);
	buf_free(&w.out);
	buf_free(&w.again);
	buf_free(&w.scratch);
	return 0;
}
