/* check_event: unit tests of the event model: timestamps in every unit and ISO form, the normaliser
 * (deduplication, stale replays, the three body shapes, unattributed and unknown events), secret
 * redaction, the view's ordering and ending rules, and the record codec under truncation. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "event.h"
#include "event_record.h"
#include "hash.h"
#include "json.h"
#include "view.h"
#include "check_util.h"

#define CALL_A "CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d"

static const char *
srcdir(void)
{
	const char *e = getenv("top_srcdir");
	return e && *e ? e : TOP_SRCDIR;
}

static char *
slurp(const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/fixtures/%s", srcdir(), name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p[n] = '\0';
	*len = (size_t)n;
	return p;
}

/* A writer's loop in miniature: parse, build against the view, apply. */
struct harness {
	struct view v;
	struct event_builder eb;
	struct buf fact, body;
	struct event_result res;
	uint64_t seq;
	uint32_t nitems; /* of the last fact */
};

static void
h_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	view_init(&h->v);
	event_builder_init(&h->eb);
}

static void
h_free(struct harness *h)
{
	view_clear(&h->v);
	event_builder_free(&h->eb);
	buf_free(&h->fact);
	buf_free(&h->body);
}

static void
h_post_sec(struct harness *h, const char *body, size_t len, struct event_secrets *sec)
{
	struct json_doc d;
	ck_assert_int_eq(json_parse(&d, body, len, NULL), JSON_OK);
	ck_assert_int_eq(event_build(&h->eb, &d, body + (d.bom ? 3 : 0), &h->v, sec, &h->fact, &h->body, &h->res), 0);
	json_free(&d);
	/* as the writer does: the call's history continues from its base, or starts here */
	const struct view_call *c = view_find(&h->v, h->res.call_id, strlen(h->res.call_id));
	event_enc_set_call_base(&h->fact, c ? c->base_seq : h->seq);
	struct event_fact f;
	ck_assert_int_eq(event_fact_decode(h->fact.data, h->fact.len, &f), 0);
	h->nitems = f.nitems;
	ck_assert_int_eq(view_apply(&h->v, h->seq, 1000 + h->seq, h->seq, &f), 0);
	h->seq++;
}

static void
h_post(struct harness *h, const char *body)
{
	h_post_sec(h, body, strlen(body), NULL);
}

static void
h_post_file(struct harness *h, const char *name)
{
	size_t len;
	char *p = slurp(name, &len);
	h_post_sec(h, p, len, NULL);
	free(p);
}

/* --- timestamps --------------------------------------------------------------------------------- */

START_TEST(test_time_units)
{
	int64_t ms;
	ck_assert(event_time_from_number(1784041330.0, &ms));
	ck_assert_int_eq(ms, 1784041330000LL);
	ck_assert(event_time_from_number(1784041330005.0, &ms));
	ck_assert_int_eq(ms, 1784041330005LL);
	ck_assert(event_time_from_number(1735751624688.724, &ms));
	ck_assert_int_eq(ms, 1735751624689LL);
	ck_assert(event_time_from_number(1784041330005123.0, &ms));
	ck_assert_int_eq(ms, 1784041330005LL);
	ck_assert(event_time_from_number(1784041330005123456.0, &ms));
	ck_assert_int_eq(ms, 1784041330005LL);
	ck_assert(!event_time_from_number(0, &ms));
	ck_assert(!event_time_from_number(-5, &ms));
	ck_assert(!event_time_from_number(5, &ms));
	ck_assert(!event_time_from_number(1e30, &ms));
}
END_TEST

START_TEST(test_time_iso)
{
	int64_t ms;
	ck_assert(event_time_from_iso("2026-07-14T15:02:10.000Z", 24, &ms));
	ck_assert_int_eq(ms, 1784041330000LL);
	ck_assert(event_time_from_iso("2026-07-14T15:02:10.5Z", 22, &ms));
	ck_assert_int_eq(ms, 1784041330500LL);
	ck_assert(event_time_from_iso("2026-07-14T17:02:10+02:00", 25, &ms));
	ck_assert_int_eq(ms, 1784041330000LL);
	ck_assert(event_time_from_iso("2026-07-14T15:02:10", 19, &ms));
	ck_assert_int_eq(ms, 1784041330000LL);
	ck_assert(event_time_from_iso("2026-07-14", 10, &ms));
	ck_assert(!event_time_from_iso("2026-13-14T15:02:10Z", 20, &ms));
	ck_assert(!event_time_from_iso("1970-01-01T00:00:00Z", 20, &ms)); /* implausible: absent */
	ck_assert(!event_time_from_iso("yesterday", 9, &ms));
	ck_assert(!event_time_from_iso("2026-07-14T15:02:10Zjunk", 24, &ms));
	/* through a document: strings of digits count as numbers */
	const char *doc = "{\"a\":\"1784041330005\",\"b\":\"2026-07-14T15:02:10.000Z\",\"c\":true}";
	struct json_doc d;
	ck_assert_int_eq(json_parse(&d, doc, strlen(doc), NULL), JSON_OK);
	ck_assert(event_time_ms(&d, json_obj_get(&d, 0, "a"), &ms));
	ck_assert_int_eq(ms, 1784041330005LL);
	ck_assert(event_time_ms(&d, json_obj_get(&d, 0, "b"), &ms));
	ck_assert(!event_time_ms(&d, json_obj_get(&d, 0, "c"), &ms));
	ck_assert(!event_time_ms(&d, -1, &ms));
	json_free(&d);
}
END_TEST

/* --- the normaliser against the fixtures ------------------------------------------------------------- */

START_TEST(test_call_a_lifecycle)
{
	static const char *const files[] = {
		"01-callA-status-queued.json", "02-callA-status-ongoing.json", "04-callA-conversation-welcome.json",
		"06-callA-conversation-user1.json", "09-callA-conversation-assistant1.json",
		"11-callA-conversation-user2.json", "13-callA-hang.json", "15-callA-conversation-assistant2-delayed.json",
		"18-callA-conversation-user3.json", "20-callA-conversation-assistant3-goodbye.json",
		"21-callA-end-of-call-report.json", "22-callA-status-finished.json",
	};
	struct harness h;
	h_init(&h);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		h_post_file(&h, files[i]);
	struct view_call *c = view_find(&h.v, CALL_A, strlen(CALL_A));
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->nst, 3);
	ck_assert_str_eq(c->st[0].status, "queued");
	ck_assert_str_eq(c->st[1].status, "ongoing");
	ck_assert_str_eq(c->st[2].status, "finished");
	ck_assert_uint_eq(c->nmsg, 7);
	ck_assert_str_eq(c->msg[0].key, "welcome-1");
	ck_assert_str_eq(c->msg[3].text, "It's Morgan Lee, March 3rd, 1988.");
	ck_assert(c->ended);
	ck_assert_ptr_nonnull(c->report);
	ck_assert_ptr_nonnull(strstr(c->report, "\"successEvaluation\":\"Good\""));
	ck_assert_ptr_nonnull(strstr(c->report, "\"endedBy\":\"bot\""));
	ck_assert_uint_eq(c->nalert, 1);
	ck_assert_uint_eq(c->alert[0].type, EVENT_ALERT_HANG);
	ck_assert_str_eq(c->customer, "+15550100101");
	/* the stale replay of file 06 changes nothing */
	size_t nraw = c->nraw;
	h_post_file(&h, "23-callA-conversation-stale-replay.json");
	ck_assert_uint_eq(h.nitems, 0);
	ck_assert_uint_eq(c->nmsg, 7);
	ck_assert_uint_eq(c->nst, 3);
	ck_assert_uint_eq(c->nraw, nraw + 1); /* but the raw event is kept */
	ck_assert_uint_eq(h.res.new_msgs, 0);
	h_free(&h);
}
END_TEST

START_TEST(test_redaction)
{
	struct harness h;
	h_init(&h);
	size_t len;
	char *p = slurp("01-callA-status-queued.json", &len);
	ck_assert_ptr_nonnull(memmem(p, len, "test-secret", 11));
	struct event_secrets sec = { 0 };
	h_post_sec(&h, p, len, &sec);
	ck_assert_ptr_null(memmem(h.body.data, h.body.len, "test-secret", 11));
	ck_assert_ptr_null(memmem(h.body.data, h.body.len, "fake-token-for-tests-only", 25));
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "\"secret\": \"[redacted]\"", 22));
	/* header names stay, values go */
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "\"Authorization\": \"[redacted]\"", 29));
	/* the redacted body is still one valid JSON document */
	struct json_doc d;
	ck_assert_int_eq(json_parse(&d, h.body.data, h.body.len, NULL), JSON_OK);
	json_free(&d);
	/* the secrets found are scrubbed wherever they are echoed later, in the body and in texts */
	ck_assert_int_ge(sec.n, 2);
	const char *echo = "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"X\"},\"note\":\"fake-token-for-tests-only\","
	                   "\"messages\":[{\"messageId\":\"m1\",\"role\":\"user\",\"text\":\"my key is test-secret ok\"}]}}";
	h_post_sec(&h, echo, strlen(echo), &sec);
	ck_assert_ptr_null(memmem(h.body.data, h.body.len, "fake-token", 10));
	struct view_call *c = view_find(&h.v, "X", 1);
	ck_assert_str_eq(c->msg[0].text, "my key is [redacted] ok");
	event_secrets_clear(&sec);
	free(p);
	h_free(&h);
}
END_TEST

/* The JSON document json[0..len) parses, and none of its strings, read as a reader reads them
 * (escapes resolved, broken text repaired), holds secret. */
static void
assert_no_string_holds(const char *json, size_t len, const char *secret)
{
	struct json_doc d;
	ck_assert_int_eq(json_parse(&d, json, len, NULL), JSON_OK);
	for (int i = 0; i < d.ntok; i++) {
		if (!json_is_string(&d, i))
			continue;
		size_t n;
		char *u = json_strdup(&d, i, &n, NULL);
		ck_assert_msg(memmem(u, n, secret, strlen(secret)) == NULL, "string %d holds the secret: %s", i, u);
		free(u);
	}
	json_free(&d);
}

/* Keys that name secrets are found whatever their case and separators; usage counts are not secrets. */
START_TEST(test_secret_key_names)
{
	struct harness h;
	h_init(&h);
	const char *b = "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"K\",\"status\":\"queued\","
	                "\"metadata\":{\"accessToken\":\"v-1\",\"privateKey\":\"v-2\",\"clientSecret\":\"v-3\","
	                "\"webhookSecret\":\"v-4\",\"x-api-key\":\"v-5\",\"token\":\"v-6\",\"Refresh_Token\":\"v-7\","
	                "\"\\u0061piKey\":\"v-8\",\"auth\":\"v-9\",\"passphrase\":\"v-0\",\"promptTokens\":123,\"tokensUsed\":9,\"note\":\"kept\"}}}}";
	h_post(&h, b);
	for (int i = 0; i <= 9; i++) {
		char v[8];
		snprintf(v, sizeof(v), "\"v-%d\"", i);
		ck_assert_msg(memmem(h.body.data, h.body.len, v, strlen(v)) == NULL, "%s is stored", v);
	}
	static const char *const kept[] = { "\"promptTokens\":123", "\"tokensUsed\":9", "\"note\":\"kept\"" };
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		ck_assert_msg(memmem(h.body.data, h.body.len, kept[i], strlen(kept[i])) != NULL, "%s is not kept", kept[i]);
	h_free(&h);
}
END_TEST

/* A secret echoed with JSON escapes is the same secret to every reader of the JSON: it goes too. */
START_TEST(test_escaped_secret_echoes)
{
	struct harness h;
	h_init(&h);
	struct event_secrets sec = { 0 };
	const char *hdr = "s3cr\"et/tok";
	event_secrets_add(&sec, hdr, strlen(hdr));
	const char *b = "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"E\"},"
	                "\"note\":\"a \\u0073\\u0033cr\\\"et\\/tok b\",\"s3cr\\\"et\\/tok\":1,"
	                "\"analysis\":{\"summary\":\"said s3cr\\\"et\\/tok\\n twice: s3cr\\\"et/tok\"},"
	                "\"messages\":[{\"messageId\":\"m1\",\"role\":\"user\",\"text\":\"x \\u0073\\u0033cr\\\"et/tok\"}]}}";
	h_post_sec(&h, b, strlen(b), &sec);
	/* the body stays one JSON document, and none of its strings holds the secret */
	assert_no_string_holds(h.body.data, h.body.len, hdr);
	/* strings without the secret keep their bytes as sent */
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "\"messageId\":\"m1\"", 16));
	struct view_call *c = view_find(&h.v, "E", 1);
	ck_assert_str_eq(c->msg[0].text, "x [redacted]");
	ck_assert_ptr_null(strstr(c->report, "s3cr"));
	ck_assert_ptr_nonnull(strstr(c->report, "said [redacted]\\n twice: [redacted]"));
	event_secrets_clear(&sec);
	h_free(&h);
}
END_TEST

/* Credentials written into URLs leave the stored body and every text; an e-mail address is no URL. */
START_TEST(test_url_credentials)
{
	struct harness h;
	h_init(&h);
	struct event_secrets sec = { 0 };
	const char *b = "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"U\",\"metadata\":{"
	                "\"hook\":\"https://alice:s3cretPassw0rd@example.com/hook?x=1\","
	                "\"repo\":\"https:\\/\\/ghp_abcdefghijkl@github.com\\/x\","
	                "\"list\":[\"amqp://svc:hunter2@mq:5672\"],\"mail\":\"write to a@b.example\","
	                "\"at\":\"https://u:AT@IN-SECRET-5@host/x?m=a@b\"}},"
	                "\"messages\":[{\"messageId\":\"m1\",\"role\":\"user\",\"text\":\"use postgres://bob:pw@db:5432 and "
	                "s3cretPassw0rd\"}]}}";
	h_post_sec(&h, b, strlen(b), &sec);
	static const char *const gone[] = { "s3cretPassw0rd", "ghp_abcdefghijkl", "hunter2", "bob:pw", "IN-SECRET-5" };
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		assert_no_string_holds(h.body.data, h.body.len, gone[i]);
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "https://alice:[redacted]@example.com/hook?x=1", 45));
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "write to a@b.example", 20));
	/* a password holding an unencoded '@' goes whole; an '@' in the query is not the userinfo's */
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "https://u:[redacted]@host/x?m=a@b", 33));
	struct view_call *c = view_find(&h.v, "U", 1);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->msg[0].text, "use postgres[redacted]db:5432 and [redacted]");
	/* a userinfo of digits is a secret too: a number holding them goes whole (found by the fuzz target) */
	const char *d = "{\"message\":{\"type\":\"status-update\",\"note\":\"https://1784041330005@h\","
	                "\"timestamp\":1784041330005123,\"call\":{\"id\":\"U\",\"status\":\"s2\"}}}";
	h_post_sec(&h, d, strlen(d), &sec);
	ck_assert_ptr_null(memmem(h.body.data, h.body.len, "1784041330005", 13));
	ck_assert_ptr_nonnull(memmem(h.body.data, h.body.len, "\"timestamp\":\"[redacted]\"", 24));
	assert_no_string_holds(h.body.data, h.body.len, "1784041330005");
	event_secrets_clear(&sec);
	h_free(&h);
}
END_TEST

/* A secret holding U+FFFD would appear when a string with broken UTF-8 is served repaired: such
 * strings are read as served (found by the fuzz target). */
START_TEST(test_secret_with_replacement_char)
{
	struct harness h;
	h_init(&h);
	struct event_secrets sec = { 0 };
	const char *hdr = "s8\xEF\xBF\xBD\xEF\xBF\xBDxy";
	event_secrets_add(&sec, hdr, strlen(hdr));
	/* broken UTF-8 in one string, raw NUL bytes in another: both are served as U+FFFD */
	static const char b[] = "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"Q\",\"status\":\"queued\","
	                        "\"note\":\"s8\xFF\xFFxy\",\"other\":\"s8\0\0xy\"}}}";
	h_post_sec(&h, b, sizeof(b) - 1, &sec);
	struct buf served = BUF_INIT;
	json_write_sanitized(&served, h.body.data, h.body.len);
	assert_no_string_holds(served.data, served.len, hdr);
	buf_free(&served);
	event_secrets_clear(&sec);
	h_free(&h);
}
END_TEST

/* A secret that matches JSON syntax or a number is replaced inside strings only, and a number equal
 * to it becomes the quoted marker: the body stays JSON (found by the fuzz target). */
START_TEST(test_secret_matching_syntax)
{
	struct harness h;
	h_init(&h);
	struct event_secrets sec = { 0 };
	const char *num = "1784041330123", *syn = "\":{\"id\":";
	event_secrets_add(&sec, num, strlen(num));
	event_secrets_add(&sec, syn, strlen(syn));
	const char *b = "{\"message\":{\"type\":\"status-update\",\"timestamp\":1784041330123,\"call\":{\"id\":\"N\","
	                "\"status\":\"queued\",\"note\":\"at 1784041330123 ok\"}}}";
	h_post_sec(&h, b, strlen(b), &sec);
	assert_no_string_holds(h.body.data, h.body.len, num);
	static const char *const want[] = { "\"timestamp\":\"[redacted]\"", "\"note\":\"at [redacted] ok\"",
		                            "\"call\":{\"id\":\"N\"" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(memmem(h.body.data, h.body.len, want[i], strlen(want[i])) != NULL, "%s not in %.*s", want[i],
		              (int)h.body.len, h.body.data);
	ck_assert_int_eq(h.res.ts, 1784041330123LL); /* what the event says is read before scrubbing */
	event_secrets_clear(&sec);
	h_free(&h);
}
END_TEST

/* A string longer than its limit is cut where a character ends, never inside one. */
START_TEST(test_cut_at_character)
{
	struct harness h;
	h_init(&h);
	char b[1024], status[EVENT_MAX_STATUS + 8];
	/* 'x' then two-byte characters: the limit falls in the middle of one */
	size_t n = 0;
	status[n++] = 'x';
	while (n + 2 <= sizeof(status) - 1) {
		status[n++] = '\xC3';
		status[n++] = '\xA9';
	}
	status[n] = '\0';
	snprintf(b, sizeof(b), "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"U\",\"status\":\"%s\"}}}",
	         status);
	h_post(&h, b);
	size_t got = strlen(h.res.status);
	ck_assert_uint_le(got, EVENT_MAX_STATUS);
	ck_assert_uint_eq(got, EVENT_MAX_STATUS - 1); /* 1 + 2k bytes: the 128th byte would split a character */
	ck_assert(json_utf8_valid(h.res.status, got));
	struct view_call *c = view_find(&h.v, "U", 1);
	ck_assert_uint_eq(c->nst, 1);
	ck_assert(json_utf8_valid(c->st[0].status, strlen(c->st[0].status)));
	h_free(&h);
}
END_TEST

START_TEST(test_short_secret_redacted_in_place_only)
{
	struct harness h;
	h_init(&h);
	struct event_secrets sec = { 0 };
	const char *b = "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"S\"},"
	                "\"assistant\":{\"assistantServer\":{\"secret\":\"yes\",\"headers\":{\"X-Key\":\"k\"}}},"
	                "\"messages\":[{\"messageId\":\"m1\",\"role\":\"user\",\"text\":\"yes\"}]}}";
	h_post_sec(&h, b, strlen(b), &sec);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&h.body), "\"secret\":\"[redacted]\""));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&h.body), "\"X-Key\":\"[redacted]\""));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&h.body), "\"text\":\"yes\""));
	ck_assert_str_eq(view_find(&h.v, "S", 1)->msg[0].text, "yes");
	/* secret-like keys anywhere, any case, any value type */
	const char *b2 = "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"S\",\"status\":\"ongoing\","
	                 "\"metadata\":{\"API_KEY\":12345,\"Password\":[\"a\",\"b\"]}}}}";
	h_post_sec(&h, b2, strlen(b2), &sec);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&h.body), "\"API_KEY\":\"[redacted]\""));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&h.body), "\"Password\":[\"[redacted]\",\"[redacted]\"]"));
	event_secrets_clear(&sec);
	h_free(&h);
}
END_TEST

START_TEST(test_unattributed)
{
	static const char *const bodies[] = {
		"{\"event\":\"call_status\",\"call\":{\"id\":\"campaign-call\"}}",
		"{\"message\":{\"type\":\"status-update\"}}",
		"{\"message\":{\"type\":\"status-update\",\"call\":{}}}",
		"{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"\"}}}",
		"{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":null}}}",
		"{\"message\":\"not an object\"}",
		"{}",
	};
	struct harness h;
	h_init(&h);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		h_post(&h, bodies[i]);
		ck_assert_msg(h.res.flags & EVENT_F_UNATTRIBUTED, "body %zu", i);
		ck_assert_uint_eq(h.nitems, 0);
	}
	ck_assert_uint_eq(h.v.ncalls, 0);
	ck_assert_uint_eq(h.v.unattributed, sizeof(bodies) / sizeof(bodies[0]));
	ck_assert_str_eq(h.res.type_name, "");
	h_post(&h, bodies[0]);
	ck_assert_str_eq(h.res.type_name, "call_status");
	/* a call id too long to be one */
	char *big = malloc(EVENT_MAX_CALL_ID + 100);
	int n = snprintf(big, EVENT_MAX_CALL_ID + 100, "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"");
	memset(big + n, 'x', EVENT_MAX_CALL_ID + 1);
	strcpy(big + n + EVENT_MAX_CALL_ID + 1, "\"}}}");
	h_post(&h, big);
	ck_assert(h.res.flags & EVENT_F_UNATTRIBUTED);
	free(big);
	h_free(&h);
}
END_TEST

START_TEST(test_unknown_type_changes_nothing)
{
	struct harness h;
	h_init(&h);
	h_post_file(&h, "02-callA-status-ongoing.json");
	h_post_file(&h, "80-unknown-event-type.json");
	ck_assert(h.res.flags & EVENT_F_UNKNOWN_TYPE);
	ck_assert_uint_eq(h.nitems, 0);
	struct view_call *c = view_find(&h.v, CALL_A, strlen(CALL_A));
	ck_assert_uint_eq(c->nst, 1);
	ck_assert_uint_eq(c->nmsg, 0);
	h_free(&h);
}
END_TEST

START_TEST(test_status_order_and_terminal)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"timestamp\":1784041330000,\"call\":{\"id\":\"T\",\"status\":\"queued\"}}}");
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"timestamp\":1784041350000,\"call\":{\"id\":\"T\",\"status\":\"finished\"}}}");
	/* a late, older "ongoing" lands where it happened and does not revive the call */
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"timestamp\":1784041340000,\"call\":{\"id\":\"T\",\"status\":\"ongoing\"}}}");
	struct view_call *c = view_find(&h.v, "T", 1);
	ck_assert_str_eq(c->st[0].status, "queued");
	ck_assert_str_eq(c->st[1].status, "ongoing");
	ck_assert_str_eq(c->st[2].status, "finished");
	ck_assert(c->ended);
	ck_assert_str_eq(view_call_status(c), "finished");
	/* equal timestamps keep arrival order; a missing one goes last */
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"timestamp\":1784041350000,\"call\":{\"id\":\"T\",\"status\":\"x1\"}}}");
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"T\",\"status\":\"x2\"}}}");
	ck_assert_str_eq(c->st[3].status, "x1");
	ck_assert_str_eq(c->st[4].status, "x2");
	ck_assert(c->ended);
	/* legacy shape: status at message.status */
	h_post(&h, "{\"message\":{\"type\":\"status-update\",\"status\":\"completed\",\"call\":{\"id\":\"L\"}}}");
	struct view_call *l = view_find(&h.v, "L", 1);
	ck_assert_str_eq(l->st[0].status, "completed");
	ck_assert(l->ended);
	h_free(&h);
}
END_TEST

START_TEST(test_messages_dedup_and_update)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041330000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"one\",\"timestamp\":1784041330000},"
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"dup in same event\"},"
	           "{\"messageId\":\"b\",\"role\":\"assistant\",\"text\":\"two\"}]}}");
	struct view_call *c = view_find(&h.v, "M", 1);
	ck_assert_uint_eq(c->nmsg, 2);
	ck_assert_str_eq(c->msg[0].text, "one");
	/* a newer event with a changed text updates it; an older one does not */
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041340000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"one, corrected\"}]}}");
	ck_assert_str_eq(c->msg[0].text, "one, corrected");
	ck_assert_uint_eq(h.res.upd_msgs, 1);
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041335000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"stale\"}]}}");
	ck_assert_str_eq(c->msg[0].text, "one, corrected");
	ck_assert_uint_eq(h.nitems, 0);
	/* the same event twice adds nothing */
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041340000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"one, corrected\"}]}}");
	ck_assert_uint_eq(h.nitems, 0);
	ck_assert_uint_eq(c->nmsg, 2);
	/* a reply that a newer update moved into a skipped list does not come back as a bubble from an
	 * older update; a message never seen does (a sender may send each message once) */
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041345000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"u2\",\"role\":\"user\",\"text\":\"wait\",\"skippedAssistantMessages\":["
	           "{\"messageId\":\"moved\",\"text\":\"interrupted later\"}]}]}}");
	ck_assert_uint_eq(c->nmsg, 3);
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041338000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"a\",\"role\":\"user\",\"text\":\"one\"},"
	           "{\"messageId\":\"moved\",\"role\":\"assistant\",\"text\":\"interrupted later\"}]}}");
	ck_assert_uint_eq(h.nitems, 0);
	ck_assert_uint_eq(c->nmsg, 3);
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":1784041339000,\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"late\",\"role\":\"user\",\"text\":\"sent once, arrived late\"}]}}");
	ck_assert_uint_eq(c->nmsg, 4);
	/* one without a timestamp cannot be judged stale: its new messages count */
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"M\"},\"messages\":["
	           "{\"messageId\":\"c\",\"role\":\"user\",\"text\":\"three\"}]}}");
	ck_assert_uint_eq(c->nmsg, 5);
	h_free(&h);
}
END_TEST

/* The newest report stands: an older one, by the event's own time, does not replace it. */
START_TEST(test_report_newest_stands)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1784041330100,\"call\":{\"id\":\"R\"},"
	           "\"analysis\":{\"summary\":\"first\"}}}");
	h_post(&h, "{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1784041330200,\"call\":{\"id\":\"R\"},"
	           "\"analysis\":{\"summary\":\"newest\"}}}");
	struct view_call *c = view_find(&h.v, "R", 1);
	ck_assert_ptr_nonnull(strstr(c->report, "newest"));
	ck_assert_int_eq(c->report_ts, 1784041330200LL);
	h_post(&h, "{\"message\":{\"type\":\"end-of-call-report\",\"timestamp\":1784041330050,\"call\":{\"id\":\"R\"},"
	           "\"analysis\":{\"summary\":\"older\"}}}");
	ck_assert_ptr_nonnull(strstr(c->report, "newest"));
	ck_assert_uint_eq(h.nitems, 0);
	/* a snapshot keeps the report's time, so the rule survives the call being re-appended */
	struct buf snap = BUF_INIT;
	ck_assert_int_eq(event_snapshot(&snap, c, h.seq), 0);
	struct event_fact f;
	ck_assert_int_eq(event_fact_decode(snap.data, snap.len, &f), 0);
	struct view v2;
	view_init(&v2);
	ck_assert_int_eq(view_apply(&v2, h.seq, 1, UINT64_MAX, &f), 0);
	ck_assert_int_eq(view_find(&v2, "R", 1)->report_ts, 1784041330200LL);
	view_clear(&v2);
	buf_free(&snap);
	h_free(&h);
}
END_TEST

/* Vapi's end-of-call report: its times and duration at the top, and the reason the call ended,
 * which the API names even without a terminal status carrying it. */
START_TEST(test_vapi_report)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"end-of-call-report\",\"endedReason\":\"customer-ended-call\","
	           "\"durationMs\":61500,\"startedAt\":\"2026-07-14T15:04:40.000Z\",\"endedAt\":\"2026-07-14T15:05:41.500Z\","
	           "\"call\":{\"id\":\"VR\"},\"artifact\":{\"messages\":[]}}}");
	struct view_call *c = view_find(&h.v, "VR", 2);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(strstr(c->report, "\"durationMs\":61500"));
	ck_assert_ptr_nonnull(strstr(c->report, "\"startedAt\":\"2026-07-14T15:04:40.000Z\""));
	ck_assert_ptr_nonnull(strstr(c->report, "\"endedAt\":\"2026-07-14T15:05:41.500Z\""));
	struct buf b = BUF_INIT;
	api_call_detail(&b, c, 1, h.seq);
	ck_assert_ptr_nonnull(memmem(b.data, b.len, "\"ended_reason\":\"customer-ended-call\"", 36));
	buf_free(&b);
	h_free(&h);
}
END_TEST

/* The 2025 shape keeps the analysis inside the call object. */
START_TEST(test_legacy_report_analysis)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"end-of-call-report\",\"call\":{\"id\":\"L\",\"analysis\":"
	           "{\"summary\":\"legacy summary\",\"successEvaluation\":\"true\"}}}}");
	struct view_call *c = view_find(&h.v, "L", 1);
	ck_assert_ptr_nonnull(c->report);
	ck_assert_ptr_nonnull(strstr(c->report, "\"summary\":\"legacy summary\""));
	ck_assert_ptr_nonnull(strstr(c->report, "\"successEvaluation\":\"true\""));
	ck_assert(c->ended);
	h_free(&h);
}
END_TEST

START_TEST(test_skipped_replies)
{
	struct harness h;
	h_init(&h);
	h_post_file(&h, "12-callB-conversation-user2-interrupted.json");
	struct view_call *c = view_find(&h.v, "CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18", 39);
	ck_assert_uint_eq(c->nmsg, 3);
	ck_assert_ptr_nonnull(c->msg[2].extra);
	ck_assert_ptr_nonnull(strstr(c->msg[2].extra, "\"skipped\":[{"));
	ck_assert_ptr_nonnull(strstr(c->msg[2].extra, "Will you be able"));
	ck_assert_ptr_null(c->msg[0].extra);
	h_free(&h);
}
END_TEST

START_TEST(test_vapi_shape)
{
	struct harness h;
	h_init(&h);
	h_post_file(&h, "90-vapi-status-update-in-progress.json");
	h_post_file(&h, "91-vapi-conversation-update.json");
	h_post_file(&h, "92-vapi-speech-update.json");
	ck_assert_uint_eq(h.nitems, 0);
	h_post_file(&h, "93-vapi-conversation-update-tools.json");
	h_post_file(&h, "94-vapi-status-update-ended.json");
	const char *id = "7c0e2b9a-4d1f-4a83-b6e2-91c5d0f3a7e4";
	struct view_call *c = view_find(&h.v, id, strlen(id));
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->st[0].status, "in-progress");
	ck_assert_str_eq(c->st[1].status, "ended");
	ck_assert(c->ended);
	int convo = 0;
	for (size_t i = 0; i < c->nmsg; i++) {
		if (strcmp(c->msg[i].role, "user") && strcmp(c->msg[i].role, "assistant"))
			continue;
		convo++;
		ck_assert_str_ne(c->msg[i].role, "bot");
		ck_assert_ptr_nonnull(strstr(c->msg[i].key, "vapi-"));
	}
	ck_assert_int_eq(convo, 4); /* no duplicates across the two full-history updates */
	h_free(&h);
}
END_TEST

START_TEST(test_legacy_shape)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"OLD\",\"messages\":["
	           "{\"messageId\":\"m1\",\"role\":\"assistant\",\"text\":\"hi\",\"timestamp\":\"2025-03-01T10:00:00.000Z\"}]}}}");
	struct view_call *c = view_find(&h.v, "OLD", 3);
	ck_assert_uint_eq(c->nmsg, 1);
	ck_assert_int_eq(c->msg[0].ts, 1740823200000LL);
	h_free(&h);
}
END_TEST

START_TEST(test_error_alert)
{
	struct harness h;
	h_init(&h);
	h_post_file(&h, "42-callD-error-llm-rate-limit.json");
	ck_assert_str_eq(h.res.detail, "llm_error/rate_limit_exceeded");
	struct view_call *c = view_find(&h.v, "WC-6e2f1a9c-4b3d-4e8a-b5c7-0d1e2f3a4b5c", 39);
	ck_assert_uint_eq(c->nalert, 1);
	ck_assert_uint_eq(c->alert[0].type, EVENT_ALERT_ERROR);
	ck_assert_ptr_nonnull(strstr(c->alert[0].details, "\"retryable\":true"));
	ck_assert(!c->ended);
	h_free(&h);
}
END_TEST

START_TEST(test_view_whole_calls)
{
	struct harness h;
	h_init(&h);
	h_post(&h, "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P1\"}}}"); /* seq 0: P1's base */
	h_post(&h, "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P2\"}}}"); /* seq 1: P2's base */
	h_post(&h, "{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P1\"}}}"); /* seq 2, base 0 */
	ck_assert_uint_eq(view_find(&h.v, "P1", 2)->nalert, 2);
	/* P1's base is overwritten: P1 leaves whole, though its later fact is still there */
	ck_assert_uint_eq(view_prune(&h.v, 1, NULL, NULL), 1);
	ck_assert_ptr_null(view_find(&h.v, "P1", 2));
	ck_assert_ptr_nonnull(view_find(&h.v, "P2", 2));
	h_free(&h);

	/* A reader that starts at the tail (1) never shows P1 from the middle of its history. */
	struct view late;
	view_init(&late);
	h_init(&h);
	static const char *const bodies[] = {
		"{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P1\"}}}",
		"{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P2\"}}}",
		"{\"message\":{\"type\":\"hang\",\"call\":{\"id\":\"P1\"}}}",
	};
	for (int i = 0; i < 3; i++) {
		h_post(&h, bodies[i]);
		struct event_fact f;
		ck_assert_int_eq(event_fact_decode(h.fact.data, h.fact.len, &f), 0);
		if (i >= 1)
			ck_assert_int_eq(view_apply(&late, (uint64_t)i, 1000, UINT64_MAX, &f), 0);
	}
	ck_assert_uint_eq(late.ncalls, 1);
	ck_assert_ptr_null(view_find(&late, "P1", 2));
	ck_assert_uint_eq(late.skipped, 1);
	/* A snapshot of P1 (its whole state) brings it back whole, replacing what a reader had. */
	struct buf snap = BUF_INIT;
	ck_assert_int_eq(event_snapshot(&snap, view_find(&h.v, "P1", 2), 3), 0);
	struct event_fact f;
	ck_assert_int_eq(event_fact_decode(snap.data, snap.len, &f), 0);
	ck_assert(f.flags & EVENT_F_SNAPSHOT);
	ck_assert_int_eq(view_apply(&late, 3, 2000, UINT64_MAX, &f), 0);
	ck_assert_int_eq(view_apply(&h.v, 3, 2000, UINT64_MAX, &f), 0);
	struct view_call *a = view_find(&late, "P1", 2), *b = view_find(&h.v, "P1", 2);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->nalert, 2);
	ck_assert_uint_eq(b->nalert, 2);
	ck_assert_uint_eq(a->base_seq, 3);
	/* the snapshot keeps the original sequence numbers and activity, not its own */
	ck_assert_uint_eq(a->alert[0].seq, 0);
	ck_assert_uint_eq(a->alert[1].seq, 2);
	ck_assert_uint_eq(a->first_seq, 0);
	ck_assert_uint_eq(a->changed_seq, 2);
	/* and now P1 survives a tail beyond its old records */
	ck_assert_uint_eq(view_prune(&late, 3, NULL, NULL), 1); /* P2 (base 1) leaves */
	ck_assert_ptr_nonnull(view_find(&late, "P1", 2));
	buf_free(&snap);
	view_clear(&late);
	h_free(&h);
}
END_TEST

START_TEST(test_snapshot_round_trip)
{
	/* A call with every kind of state survives a snapshot exactly. */
	static const char *const files[] = {
		"03-callB-status-initiated.json", "05-callB-status-queued.json", "07-callB-status-ongoing.json",
		"08-callB-conversation-welcome.json", "10-callB-conversation-user1.json",
		"12-callB-conversation-user2-interrupted.json", "14-callB-conversation-assistant2.json",
		"16-callB-conversation-user3.json", "17-callB-status-finished.json", "19-callB-end-of-call-report.json",
	};
	struct harness h;
	h_init(&h);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		h_post_file(&h, files[i]);
	h_post(&h, "{\"message\":{\"type\":\"error\",\"call\":{\"id\":\"CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18\"},"
	           "\"error\":{\"type\":\"llm_error\",\"code\":\"x\"}}}");
	const char *id = "CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18";
	struct view_call *c = view_find(&h.v, id, strlen(id));
	struct buf snap = BUF_INIT;
	ck_assert_int_eq(event_snapshot(&snap, c, 100), 0);
	struct event_fact f;
	ck_assert_int_eq(event_fact_decode(snap.data, snap.len, &f), 0);
	struct view fresh;
	view_init(&fresh);
	ck_assert_int_eq(view_apply(&fresh, 100, 5000, UINT64_MAX, &f), 0);
	struct view_call *d = view_find(&fresh, id, strlen(id));
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->nst, c->nst);
	for (size_t i = 0; i < c->nst; i++) {
		ck_assert_str_eq(d->st[i].status, c->st[i].status);
		ck_assert_int_eq(d->st[i].ts, c->st[i].ts);
		ck_assert_uint_eq(d->st[i].seq, c->st[i].seq);
	}
	ck_assert_uint_eq(d->nmsg, c->nmsg);
	for (size_t i = 0; i < c->nmsg; i++) {
		ck_assert_str_eq(d->msg[i].key, c->msg[i].key);
		ck_assert_str_eq(d->msg[i].role, c->msg[i].role);
		ck_assert_str_eq(d->msg[i].text, c->msg[i].text);
		ck_assert_int_eq(d->msg[i].ts, c->msg[i].ts);
		ck_assert_int_eq(d->msg[i].evt_ts, c->msg[i].evt_ts);
		ck_assert_uint_eq(d->msg[i].seq, c->msg[i].seq);
		ck_assert_int_eq(d->msg[i].extra != NULL, c->msg[i].extra != NULL);
		if (c->msg[i].extra)
			ck_assert_str_eq(d->msg[i].extra, c->msg[i].extra);
	}
	ck_assert_str_eq(d->report, c->report);
	ck_assert_uint_eq(d->report_seq, c->report_seq);
	ck_assert_uint_eq(d->nalert, c->nalert);
	ck_assert_str_eq(d->alert[0].details, c->alert[0].details);
	ck_assert_str_eq(d->customer, c->customer);
	ck_assert_uint_eq(d->nraw, c->nraw);
	for (size_t i = 0; i < c->nraw; i++)
		ck_assert_uint_eq(d->raw[i], c->raw[i]);
	ck_assert(d->ended == c->ended);
	ck_assert_uint_eq(d->first_seq, c->first_seq);
	ck_assert_uint_eq(d->changed_seq, c->changed_seq);
	ck_assert_uint_eq(d->changed_ns, c->changed_ns);
	view_clear(&fresh);
	buf_free(&snap);
	h_free(&h);
}
END_TEST

/* --- the record codec ------------------------------------------------------------------------------- */

START_TEST(test_record_truncation_never_misread)
{
	struct buf b = BUF_INIT;
	struct event_enc e;
	event_enc_begin(&e, &b, EVENT_CONVERSATION_UPDATE, EVENT_F_REPAIRED, 1784041330000LL, 42, "conversation-update",
	                19, "CALL", 4);
	event_enc_status(&e, 5, "ongoing", 7, NULL, NULL);
	struct event_msg_item mi = { .ts = 6, .evt_ts = 7, .updated = EVENT_ORIGIN_SELF, .key = "k", .key_len = 1, .role = "user", .role_len = 4,
	                             .text = "hello", .text_len = 5, .extra = "{\"skipped\":[]}", .extra_len = 14 };
	event_enc_message(&e, &mi);
	event_enc_report(&e, "{}", 2, EVENT_TS_NONE);
	event_enc_alert(&e, EVENT_ALERT_ERROR, 7, "{\"a\":1}", 7);
	ck_assert(event_enc_end(&e));
	struct event_fact f;
	ck_assert_int_eq(event_fact_decode(b.data, b.len, &f), 0);
	ck_assert_uint_eq(f.nitems, 4);
	ck_assert_uint_eq(f.call_base, 42);
	ck_assert_str_eq(f.call_id.p, "CALL");
	size_t cur = 0;
	struct event_item it;
	int n = 0;
	while (event_fact_next(&f, &cur, &it) == 1)
		n++;
	ck_assert_int_eq(n, 4);
	/* every prefix decodes to an error or to fewer complete items, never to garbage */
	for (size_t len = 0; len < b.len; len++) {
		if (event_fact_decode(b.data, len, &f) < 0)
			continue;
		cur = 0;
		int rc, k = 0;
		while ((rc = event_fact_next(&f, &cur, &it)) == 1) {
			ck_assert_uint_le((size_t)(it.a.p - b.data) + it.a.len, len);
			k++;
		}
		ck_assert_int_lt(k, 4);
	}
	/* random bytes never crash the decoder */
	unsigned seed = 7;
	for (int round = 0; round < 20000; round++) {
		unsigned char junk[96];
		memcpy(junk, b.data, b.len < sizeof(junk) ? b.len : sizeof(junk));
		for (int k = 0; k < 4; k++)
			junk[rand_r(&seed) % sizeof(junk)] = (unsigned char)rand_r(&seed);
		if (event_fact_decode(junk, sizeof(junk), &f) == 0) {
			cur = 0;
			while (event_fact_next(&f, &cur, &it) == 1)
				;
		}
	}
	buf_free(&b);
}
END_TEST

static Suite *
event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("event");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_time_units);
	tcase_add_test(tc, test_time_iso);
	tcase_add_test(tc, test_call_a_lifecycle);
	tcase_add_test(tc, test_redaction);
	tcase_add_test(tc, test_short_secret_redacted_in_place_only);
	tcase_add_test(tc, test_escaped_secret_echoes);
	tcase_add_test(tc, test_url_credentials);
	tcase_add_test(tc, test_secret_key_names);
	tcase_add_test(tc, test_cut_at_character);
	tcase_add_test(tc, test_secret_with_replacement_char);
	tcase_add_test(tc, test_secret_matching_syntax);
	tcase_add_test(tc, test_unattributed);
	tcase_add_test(tc, test_unknown_type_changes_nothing);
	tcase_add_test(tc, test_status_order_and_terminal);
	tcase_add_test(tc, test_messages_dedup_and_update);
	tcase_add_test(tc, test_skipped_replies);
	tcase_add_test(tc, test_report_newest_stands);
	tcase_add_test(tc, test_legacy_report_analysis);
	tcase_add_test(tc, test_vapi_report);
	tcase_add_test(tc, test_vapi_shape);
	tcase_add_test(tc, test_legacy_shape);
	tcase_add_test(tc, test_error_alert);
	tcase_add_test(tc, test_view_whole_calls);
	tcase_add_test(tc, test_snapshot_round_trip);
	tcase_add_test(tc, test_record_truncation_never_misread);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(event_suite)
