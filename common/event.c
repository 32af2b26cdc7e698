/* event: webhook body → fact record + redacted raw body (see event.h). */
#include "config.h"

#include "event.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hash.h"

struct name {
	const char *s;
	size_t len;
};
#define NAME(x) { x, sizeof(x) - 1 }

/* Keys whose values are secrets wherever they appear (compared case-insensitively). */
/* Keys whose values are secrets, whatever their case and separators (accessToken, x-api-key,
 * client_secret): the key with its letters and digits only, lowered, holds one of these ... */
static const char *const secret_parts[] = {
	"secret", "password", "passwd", "apikey", "authorization", "privatekey", "credential", "accesskey",
	"cookie", "signingkey", "passphrase",
};
/* ... or ends with this (token, accessToken, refresh_token; not promptTokens, a usage count). */
#define SECRET_SUFFIX "token"
#define SECRET_KEY_MIN 4 /* "auth" */
/* Objects whose "headers" member echoes the request headers the platform sends us. */
static const struct name server_keys[] = { NAME("assistantServer"), NAME("server") };
static const struct name headers_key[] = { NAME("headers") };
/* Bounds on the lengths of the names above (escaped keys may be longer than they read): every key
 * of every object is checked, and most fail on length alone. */
#define KEY_MIN_LEN 6
#define KEY_MAX_ESCAPED 60
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void
event_builder_init(struct event_builder *eb)
{
	memset(eb, 0, sizeof(*eb));
}

void
event_builder_free(struct event_builder *eb)
{
	free(eb->mark);
	free(eb->seen);
	buf_free(&eb->tmp);
	buf_free(&eb->tmp2);
	buf_free(&eb->scrub);
	buf_free(&eb->scrub_str);
	buf_free(&eb->scrub_out);
	memset(eb, 0, sizeof(*eb));
}

void
event_secrets_add(struct event_secrets *s, const char *v, size_t n)
{
	if (n == 0 || s->n >= EVENT_MAX_SECRETS)
		return;
	for (int i = 0; i < s->n; i++)
		if (s->len[i] == n && memcmp(s->v[i], v, n) == 0)
			return;
	char *p = malloc(n + 1);
	if (!p)
		return;
	memcpy(p, v, n);
	p[n] = '\0';
	s->v[s->n] = p;
	s->len[s->n] = n;
	s->n++;
}

void
event_secrets_clear(struct event_secrets *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

/* --- timestamps --------------------------------------------------------------------------------- */

bool
event_time_from_number(double v, int64_t *ms)
{
	if (!isfinite(v) || v <= 0)
		return false;
	/* The unit is whichever puts the value in a plausible range: seconds, milliseconds (Interactly,
	 * Vapi's fractional `time`), microseconds or nanoseconds. */
	static const double scale[] = { 1e3, 1, 1e-3, 1e-6 };
	for (size_t i = 0; i < sizeof(scale) / sizeof(scale[0]); i++) {
		double m = v * scale[i];
		if (m >= (double)EVENT_TS_MIN && m <= (double)EVENT_TS_MAX) {
			*ms = (int64_t)llround(m);
			return true;
		}
	}
	return false;
}

static int
digits(const char *s, size_t n, size_t *i, int count)
{
	int v = 0;
	for (int k = 0; k < count; k++) {
		if (*i >= n || !isdigit((unsigned char)s[*i]))
			return -1;
		v = v * 10 + (s[(*i)++] - '0');
	}
	return v;
}

bool
event_time_from_iso(const char *s, size_t n, int64_t *ms)
{
	size_t i = 0;
	int Y = digits(s, n, &i, 4);
	if (Y < 0 || i >= n || s[i++] != '-')
		return false;
	int M = digits(s, n, &i, 2);
	if (M < 1 || M > 12 || i >= n || s[i++] != '-')
		return false;
	int D = digits(s, n, &i, 2);
	if (D < 1 || D > 31)
		return false;
	int h = 0, mi = 0, sec = 0;
	double frac = 0;
	int64_t offset_s = 0;
	if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		h = digits(s, n, &i, 2);
		if (h < 0 || h > 23 || i >= n || s[i++] != ':')
			return false;
		mi = digits(s, n, &i, 2);
		if (mi < 0 || mi > 59)
			return false;
		if (i < n && s[i] == ':') {
			i++;
			sec = digits(s, n, &i, 2);
			if (sec < 0 || sec > 60)
				return false;
			if (i < n && (s[i] == '.' || s[i] == ',')) {
				i++;
				double f = 0.1;
				size_t start = i;
				while (i < n && isdigit((unsigned char)s[i])) {
					frac += (s[i++] - '0') * f;
					f /= 10;
				}
				if (i == start)
					return false;
			}
		}
		if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < n && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i++] == '-' ? -1 : 1;
			int oh = digits(s, n, &i, 2);
			if (oh < 0 || oh > 23)
				return false;
			if (i < n && s[i] == ':')
				i++;
			int om = digits(s, n, &i, 2);
			if (om < 0 || om > 59)
				return false;
			offset_s = sign * (oh * 3600 + om * 60);
		}
	}
	if (i != n)
		return false;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = mi, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	int64_t v = ((int64_t)t - offset_s) * 1000 + (int64_t)llround(frac * 1000);
	if (v < EVENT_TS_MIN || v > EVENT_TS_MAX)
		return false;
	*ms = v;
	return true;
}

bool
event_time_ms(const struct json_doc *doc, int tok, int64_t *ms)
{
	if (tok < 0)
		return false;
	if (json_is_number(doc, tok)) {
		double v;
		return json_get_double(doc, tok, &v) && event_time_from_number(v, ms);
	}
	if (!json_is_string(doc, tok))
		return false;
	const jsmntok_t *t = &doc->tok[tok];
	const char *s = doc->text + t->start;
	size_t n = (size_t)(t->end - t->start);
	if (n == 0 || n > 64)
		return false;
	bool all_digits = true;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.')
			all_digits = false;
	if (all_digits) {
		char tmp[65];
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		return event_time_from_number(strtod(tmp, NULL), ms);
	}
	return event_time_from_iso(s, n, ms);
}

/* --- small helpers ------------------------------------------------------------------------------- */

/* Unescaped value of a string token into b (reset first); false if tok is not a string. */
static bool
str_into(const struct json_doc *d, int tok, struct buf *b, unsigned *repairs)
{
	buf_reset(b);
	if (!json_is_string(d, tok))
		return false;
	const jsmntok_t *t = &d->tok[tok];
	size_t n = (size_t)(t->end - t->start);
	if (!buf_reserve(b, JSON_UNESCAPED_MAX(n)))
		return false;
	b->len = json_unescape(d->text + t->start, n, b->data, repairs);
	return true;
}

/* Copies at most max bytes of s into dst (size max + 1), cutting at a character boundary. */
static size_t
copy_cut(char *dst, size_t max, const char *s, size_t n)
{
	size_t k = json_utf8_cut(s, n, max);
	memcpy(dst, s, k);
	dst[k] = '\0';
	return k;
}

/* Whether an object's key names a secret (see secret_parts). */
static bool
key_is_secret(const struct json_doc *d, int key)
{
	const jsmntok_t *t = &d->tok[key];
	const char *s = d->text + t->start;
	size_t n = (size_t)(t->end - t->start);
	char tmp[3 * KEY_MAX_ESCAPED + 1], norm[3 * KEY_MAX_ESCAPED + 1];
	if (n < SECRET_KEY_MIN || n > KEY_MAX_ESCAPED)
		return false;
	if (memchr(s, '\\', n)) {
		n = json_unescape(s, n, tmp, NULL);
		s = tmp;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			norm[k++] = (char)(c - 'A' + 'a');
		else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			norm[k++] = c;
	}
	norm[k] = '\0';
	for (size_t i = 0; i < COUNT(secret_parts); i++)
		if (strstr(norm, secret_parts[i]))
			return true;
	size_t sl = sizeof(SECRET_SUFFIX) - 1;
	return (k >= sl && memcmp(norm + k - sl, SECRET_SUFFIX, sl) == 0) || strcmp(norm, "auth") == 0;
}

static bool
key_is(const struct json_doc *d, int key, const struct name *names, size_t count, bool nocase)
{
	const jsmntok_t *t = &d->tok[key];
	const char *s = d->text + t->start;
	size_t n = (size_t)(t->end - t->start);
	char tmp[64];
	if (n < KEY_MIN_LEN || n > KEY_MAX_ESCAPED)
		return false;
	if (memchr(s, '\\', n)) {
		if (n >= sizeof(tmp) / 3)
			return false;
		n = json_unescape(s, n, tmp, NULL);
		s = tmp;
	}
	for (size_t i = 0; i < count; i++)
		if (names[i].len == n && (nocase ? strncasecmp(s, names[i].s, n) == 0 : memcmp(s, names[i].s, n) == 0))
			return true;
	return false;
}

/* --- redaction ----------------------------------------------------------------------------------- */

struct ctx {
	struct event_builder *eb;
	const struct json_doc *d;
	struct event_secrets *sec;
	struct event_result *res;
	bool any_mark;
};

static void
mark_value(struct ctx *x, int v)
{
	const struct json_doc *d = x->d;
	if (json_is_object(d, v)) {
		for (int k = json_first(d, v); k >= 0; k = json_after(d, v, k))
			mark_value(x, k + 1);
		return;
	}
	if (json_is_array(d, v)) {
		for (int e = json_first(d, v); e >= 0; e = json_after(d, v, e))
			mark_value(x, e);
		return;
	}
	x->eb->mark[v] = 1;
	x->any_mark = true;
	if (x->sec && json_is_string(d, v) && str_into(d, v, &x->eb->tmp, NULL)) {
		const char *s = x->eb->tmp.data;
		size_t n = x->eb->tmp.len;
		/* "Bearer xyz": the token alone is the secret that may be echoed elsewhere. */
		if (n > 7 && strncasecmp(s, "Bearer ", 7) == 0)
			event_secrets_add(x->sec, s + 7, n - 7);
		event_secrets_add(x->sec, s, n);
	}
}

/* Credentials written into a URL ("https://user:password@host/..."), anywhere in the body: the
 * password becomes a secret, scrubbed wherever it appears. A password too short to scrub alone is
 * scrubbed with the URL's "://user:" and "@" around it, which no ordinary text contains. */
static void
url_credentials(struct ctx *x, int tok)
{
	const struct json_doc *d = x->d;
	const jsmntok_t *t = &d->tok[tok];
	if (!x->sec || !memchr(d->text + t->start, '@', (size_t)(t->end - t->start)) ||
	    !str_into(d, tok, &x->eb->tmp, NULL))
		return;
	const char *s = x->eb->tmp.data, *end = s + x->eb->tmp.len;
	for (const char *p = s; (p = memmem(p, (size_t)(end - p), "://", 3)) != NULL;) {
		/* the userinfo ends at the authority's last '@': a password may hold one unencoded */
		const char *u = p + 3, *a = NULL;
		for (const char *q = u; q < end && !strchr("/?# \t\r\n\"<>", *q); q++)
			if (*q == '@')
				a = q;
		p = u;
		if (!a)
			continue;
		const char *colon = memchr(u, ':', (size_t)(a - u));
		const char *pw = colon ? colon + 1 : u; /* no colon: the whole userinfo is a token */
		size_t n = (size_t)(a - pw);
		if (n >= EVENT_SECRET_MIN_SCRUB)
			event_secrets_add(x->sec, pw, n);
		else if (n)
			event_secrets_add(x->sec, p - 3, (size_t)(a + 1 - (p - 3)));
	}
}

static void
walk(struct ctx *x, int tok)
{
	const struct json_doc *d = x->d;
	if (json_is_string(d, tok)) {
		url_credentials(x, tok);
		return;
	}
	if (json_is_array(d, tok)) {
		for (int e = json_first(d, tok); e >= 0; e = json_after(d, tok, e))
			walk(x, e);
		return;
	}
	if (!json_is_object(d, tok))
		return;
	int parent_key = d->tok[tok].parent;
	bool in_server = parent_key >= 0 && json_is_string(d, parent_key) &&
	                 key_is(d, parent_key, server_keys, COUNT(server_keys), false);
	for (int k = json_first(d, tok); k >= 0; k = json_after(d, tok, k)) {
		int v = k + 1;
		if (key_is_secret(d, k)) {
			mark_value(x, v);
		} else if (in_server && key_is(d, k, headers_key, 1, false)) {
			mark_value(x, v);
		} else {
			walk(x, v);
		}
	}
}

/* Replaces every occurrence of s[0..n) in b. */
static void
replace_all(struct event_builder *eb, struct buf *b, const char *s, size_t n)
{
	struct buf *tmp = &eb->scrub;
	const char *hit = b->len >= n ? memmem(b->data, b->len, s, n) : NULL;
	if (!hit)
		return;
	buf_reset(tmp);
	const char *p = b->data, *end = b->data + b->len;
	while (hit) {
		buf_add(tmp, p, (size_t)(hit - p));
		buf_adds(tmp, EVENT_REDACTED);
		p = hit + n;
		hit = memmem(p, (size_t)(end - p), s, n);
	}
	buf_add(tmp, p, (size_t)(end - p));
	struct buf swap = *b;
	*b = *tmp;
	*tmp = swap;
}

/* Scrubs plain text (an unescaped string): every secret long enough is replaced where it stands. */
static void
scrub(struct event_builder *eb, struct buf *b, const struct event_secrets *sec)
{
	if (!sec)
		return;
	for (int i = 0; i < sec->n; i++)
		if (sec->len[i] >= EVENT_SECRET_MIN_SCRUB)
			replace_all(eb, b, sec->v[i], sec->len[i]);
}

/* Whether plain text s[0..n) holds a secret long enough to scrub. */
static bool
holds_secret(const char *s, size_t n, const struct event_secrets *sec)
{
	for (int i = 0; i < sec->n; i++)
		if (sec->len[i] >= EVENT_SECRET_MIN_SCRUB && n >= sec->len[i] && memmem(s, n, sec->v[i], sec->len[i]))
			return true;
	return false;
}

/* Scrubs JSON text b (a valid document), inside its strings only: a secret that happens to match
 * JSON syntax or a number's digits is not a value, and replacing it there would break the document.
 * A string whose raw text holds a secret has it replaced where it stands, keeping everything else
 * as sent. A copy written with escapes (\u0073ecret, \/, a secret holding a quote), or one that
 * would appear only once broken UTF-8 is served repaired (a secret holding U+FFFD), is found by
 * reading the string as its reader would; that string is written again with the secret replaced.
 * A number that holds a secret becomes the quoted marker. */
static void
scrub_json(struct event_builder *eb, struct buf *b, const struct event_secrets *sec)
{
	if (!sec || !b->len)
		return;
	bool any = false, repl = false;
	for (int i = 0; i < sec->n; i++) {
		if (sec->len[i] < EVENT_SECRET_MIN_SCRUB)
			continue;
		any = any || memmem(b->data, b->len, sec->v[i], sec->len[i]) != NULL;
		repl = repl || memmem(sec->v[i], sec->len[i], "\xEF\xBF\xBD", 3) != NULL;
	}
	if (!any && !repl && !memchr(b->data, '\\', b->len))
		return; /* the common case: nothing to look at */
	struct buf *str = &eb->scrub_str, *out = &eb->scrub_out;
	const char *p = b->data, *end = b->data + b->len, *copied = p;
	bool rewrote = false;
	buf_reset(out);
	while (p < end) {
		const char *s = p, *e;
		bool is_str = *p == '"';
		if (is_str) {
			bool slow = false;
			for (e = ++s; e < end && *e != '"'; e++) {
				if (*e == '\\') {
					slow = true;
					e++;
				} else if (repl && ((unsigned char)*e >= 0x80 || (unsigned char)*e < 0x20)) {
					slow = true; /* broken UTF-8 or a raw NUL: served as U+FFFD */
				}
			}
			if (e >= end)
				break; /* not JSON: nothing more can be read */
			p = e + 1;
			size_t n = (size_t)(e - s);
			if (slow) {
				if (!buf_reserve(str, JSON_UNESCAPED_MAX(n) + 1))
					continue;
				str->len = json_unescape(s, n, str->data, NULL);
			} else {
				buf_reset(str);
				buf_add(str, s, n);
			}
			if (str->failed || !holds_secret(str->data, str->len, sec))
				continue;
			scrub(eb, str, sec);
			buf_add(out, copied, (size_t)(s - 1 - copied));
			if (slow)
				json_write_str(out, str->data, str->len);
			else { /* as sent, but for the markers (which need no escape) */
				buf_addc(out, '"');
				buf_add(out, str->data, str->len);
				buf_addc(out, '"');
			}
			copied = p;
			rewrote = true;
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			for (e = p + 1; e < end && (strchr("0123456789+-.eE", *e) != NULL); e++)
				;
			p = e;
			bool hit = false; /* a number holding a secret's digits (one of digits is easy to make: a
			                   * URL's userinfo) carries it: the whole number goes */
			for (int i = 0; i < sec->n && !hit; i++)
				hit = sec->len[i] >= EVENT_SECRET_MIN_SCRUB && sec->len[i] <= (size_t)(e - s) &&
				      memmem(s, (size_t)(e - s), sec->v[i], sec->len[i]) != NULL;
			if (!hit)
				continue;
			buf_add(out, copied, (size_t)(s - copied));
			buf_adds(out, "\"" EVENT_REDACTED "\"");
			copied = p;
			rewrote = true;
		} else {
			p++;
		}
	}
	if (!rewrote)
		return;
	buf_add(out, copied, (size_t)(end - copied));
	struct buf swap = *b;
	*b = *out;
	*out = swap;
}

/* --- extraction --------------------------------------------------------------------------------- */

struct seen_entry {
	uint64_t h;
	uint32_t off, len; /* key bytes in eb->tmp2 */
};

/* Per-event key set, so a body listing one messageId twice adds it once (first wins). */
static bool
seen_check_add(struct event_builder *eb, const char *key, size_t len, size_t cap)
{
	struct seen_entry *tab = eb->seen;
	uint64_t h = hash_bytes(key, len);
	size_t j = h & (cap - 1);
	for (; tab[j].len || tab[j].off; j = (j + 1) & (cap - 1))
		if (tab[j].h == h && tab[j].len == len && memcmp(eb->tmp2.data + tab[j].off - 1, key, len) == 0)
			return true;
	size_t off = eb->tmp2.len;
	buf_add(&eb->tmp2, key, len);
	tab[j] = (struct seen_entry){ .h = h, .off = (uint32_t)off + 1, .len = (uint32_t)len };
	return false;
}

static void
put_member(struct buf *b, bool *first, const char *name, const struct json_doc *d, int tok)
{
	if (tok < 0 || json_is_null(d, tok))
		return;
	if (json_is_string(d, tok) && d->tok[tok].end == d->tok[tok].start)
		return; /* "" carries nothing */
	buf_adds(b, *first ? "{" : ",");
	*first = false;
	json_write_cstr(b, name);
	buf_addc(b, ':');
	json_write_token(b, d, tok);
}

static void
end_object(struct buf *b, bool first)
{
	buf_adds(b, first ? "{}" : "}");
}

static void
build_report(struct ctx *x, int msg, int call, struct buf *out)
{
	const struct json_doc *d = x->d;
	int analysis = json_obj_get(d, msg, "analysis");
	if (!json_is_object(d, analysis))
		analysis = json_obj_get(d, call, "analysis"); /* the 2025 shape */
	int cost = json_obj_get(d, call, "cost");
	int artifact = json_obj_get(d, msg, "artifact");
	bool first = true;
	buf_reset(out);
	int summary = json_obj_get(d, analysis, "summary");
	if (summary < 0)
		summary = json_obj_get(d, msg, "summary");
	put_member(out, &first, "summary", d, summary);
	put_member(out, &first, "successEvaluation", d, json_obj_get(d, analysis, "successEvaluation"));
	put_member(out, &first, "outcome", d, json_obj_get(d, analysis, "outcome"));
	put_member(out, &first, "structuredData", d, json_obj_get(d, analysis, "structuredData"));
	int ms = json_obj_get(d, call, "assistantCallDuration");
	if (ms < 0)
		ms = json_obj_get(d, msg, "durationMs"); /* Vapi */
	put_member(out, &first, "durationMs", d, ms);
	int secs = json_obj_get(d, cost, "callDuration");
	if (secs < 0)
		secs = json_obj_get(d, msg, "durationSeconds");
	put_member(out, &first, "durationSeconds", d, secs);
	int total = json_obj_get(d, cost, "totalCost");
	if (total < 0 && json_is_number(d, json_obj_get(d, msg, "cost")))
		total = json_obj_get(d, msg, "cost");
	put_member(out, &first, "cost", d, total);
	put_member(out, &first, "endedBy", d, json_obj_get(d, call, "callEndTriggerBy"));
	put_member(out, &first, "endReason", d, json_obj_get(d, call, "phoneCallStatusReason"));
	put_member(out, &first, "endedReason", d, json_obj_get(d, msg, "endedReason"));
	int started = json_obj_get(d, call, "startAt"), ended = json_obj_get(d, call, "endAt");
	put_member(out, &first, "startedAt", d, started >= 0 ? started : json_obj_get(d, msg, "startedAt"));
	put_member(out, &first, "endedAt", d, ended >= 0 ? ended : json_obj_get(d, msg, "endedAt"));
	int rec = json_obj_get(d, call, "recording");
	if (json_is_object(d, rec) && json_obj_get(d, rec, "path") >= 0 &&
	    d->tok[json_obj_get(d, rec, "path")].end > d->tok[json_obj_get(d, rec, "path")].start)
		put_member(out, &first, "recording", d, rec);
	int url = json_obj_get(d, artifact, "recordingUrl");
	if (url < 0)
		url = json_obj_get(d, msg, "recordingUrl");
	put_member(out, &first, "recordingUrl", d, url);
	end_object(out, first);
	if (json_is_string(d, json_obj_get(d, analysis, "successEvaluation"))) {
		str_into(d, json_obj_get(d, analysis, "successEvaluation"), &x->eb->tmp, NULL);
		copy_cut(x->res->detail, 64, x->eb->tmp.data ? x->eb->tmp.data : "", x->eb->tmp.len);
	}
}

static void
build_error(struct ctx *x, int msg, struct buf *out)
{
	const struct json_doc *d = x->d;
	int err = json_obj_get(d, msg, "error");
	buf_reset(out);
	if (err >= 0)
		json_write_token(out, d, err);
	int type = json_obj_get(d, err, "type"), code = json_obj_get(d, err, "code");
	struct buf *t = &x->eb->tmp;
	char a[64] = "", b[64] = "";
	if (str_into(d, type, t, NULL))
		copy_cut(a, 60, t->data, t->len);
	if (str_into(d, code, t, NULL))
		copy_cut(b, 60, t->data, t->len);
	snprintf(x->res->detail, sizeof(x->res->detail), "%s%s%s", a, (a[0] && b[0]) ? "/" : "", b);
}

/* Skipped (interrupted) assistant replies of a user message, as {"skipped":[...]}. */
static void
build_extra(const struct json_doc *d, int m, struct buf *out)
{
	buf_reset(out);
	int sk = json_obj_get(d, m, "skippedAssistantMessages");
	if (json_array_len(d, sk) <= 0)
		return;
	buf_adds(out, "{\"skipped\":[");
	bool first = true;
	for (int e = json_first(d, sk); e >= 0; e = json_after(d, sk, e)) {
		bool f2 = true;
		buf_adds(out, first ? "" : ",");
		first = false;
		if (json_is_string(d, e)) {
			buf_adds(out, "{\"text\":");
			json_write_token(out, d, e);
			buf_addc(out, '}');
			continue;
		}
		put_member(out, &f2, "messageId", d, json_obj_get(d, e, "messageId"));
		int text = json_obj_get(d, e, "text");
		if (text < 0)
			text = json_obj_get(d, e, "message");
		put_member(out, &f2, "text", d, text);
		put_member(out, &f2, "timestamp", d, json_obj_get(d, e, "timestamp"));
		end_object(out, f2);
	}
	buf_adds(out, "]}");
}

/* The platform may deliver one event twice (a retry of its own, a proxy's, a replay by hand): the
 * second copy must add nothing. A status is the same when its value and its event time are; one
 * without a time is the same as the latest pill when that has none either. */
static bool
status_known(const struct view_call *vc, const char *status, int64_t ts)
{
	if (!vc)
		return false;
	if (ts == EVENT_TS_NONE)
		return vc->nst && vc->st[vc->nst - 1].ts == EVENT_TS_NONE && strcmp(vc->st[vc->nst - 1].status, status) == 0;
	for (size_t i = vc->nst; i > 0; i--)
		if (vc->st[i - 1].ts == ts && strcmp(vc->st[i - 1].status, status) == 0)
			return true;
	return false;
}

/* An alert is the same when its type, time and details are; without a time it cannot be told from
 * a second hang, so it counts. */
static bool
alert_known(const struct view_call *vc, enum event_alert_type type, int64_t ts, const char *details, size_t len)
{
	for (size_t i = 0; vc && ts != EVENT_TS_NONE && i < vc->nalert; i++) {
		const struct view_alert *a = &vc->alert[i];
		const char *d = a->details ? a->details : "";
		if (a->type == type && a->ts == ts && strlen(d) == len && memcmp(d, details, len) == 0)
			return true;
	}
	return false;
}

/* Whether a message of the call lists key among its skipped (interrupted) replies. */
static bool
skipped_known(const struct view_call *vc, const char *key, size_t len, struct buf *needle)
{
	buf_reset(needle);
	buf_adds(needle, "\"messageId\":");
	json_write_str(needle, key, len);
	if (needle->failed)
		return false;
	for (size_t i = 0; i < vc->nmsg; i++) {
		const struct view_msg *m = &vc->msg[i];
		if (m->extra && m->extra_len >= needle->len && memmem(m->extra, m->extra_len, needle->data, needle->len))
			return true;
	}
	return false;
}

static int
add_messages(struct ctx *x, struct event_enc *enc, int msgs, const struct view_call *vc, int64_t evt_ts)
{
	struct event_builder *eb = x->eb;
	const struct json_doc *d = x->d;
	int n = json_array_len(d, msgs);
	if (n <= 0)
		return 0;
	/* An update older than the newest applied is stale: what it says of known messages changes
	 * nothing, and a reply that a newer update moved into a skipped list does not come back as an
	 * ordinary message. Ids the call has never seen still count: a sender may send each message
	 * once, and an acknowledged message must not be lost to arrival order. */
	bool stale = vc && vc->has_msgs_ts && evt_ts != EVENT_TS_NONE && evt_ts < vc->msgs_ts;
	size_t cap = 16;
	while (cap < (size_t)n * 2)
		cap *= 2;
	if (cap > eb->seen_cap) {
		free(eb->seen);
		if (!(eb->seen = malloc(cap * sizeof(struct seen_entry))))
			return -1;
		eb->seen_cap = cap;
	}
	memset(eb->seen, 0, cap * sizeof(struct seen_entry));
	buf_reset(&eb->tmp2);
	struct buf text = BUF_INIT, extra = BUF_INIT;
	int idx = -1;
	int rc = 0;
	for (int m = json_first(d, msgs); m >= 0; m = json_after(d, msgs, m)) {
		idx++;
		if (!json_is_object(d, m))
			continue;
		char role[EVENT_MAX_ROLE + 1] = "unknown", raw_role[EVENT_MAX_ROLE + 1] = "unknown";
		char key[EVENT_MAX_KEY + 48];
		size_t key_len;
		if (str_into(d, json_obj_get(d, m, "role"), &eb->tmp, NULL) && eb->tmp.len) {
			scrub(eb, &eb->tmp, x->sec);
			copy_cut(raw_role, EVENT_MAX_ROLE, eb->tmp.data, eb->tmp.len);
			/* Vapi calls the assistant "bot". */
			strcpy(role, strcmp(raw_role, "bot") == 0 ? "assistant" : raw_role);
		}
		int64_t ts = EVENT_TS_NONE, t;
		int tt = json_obj_get(d, m, "timestamp");
		if (tt < 0)
			tt = json_obj_get(d, m, "time");
		if (event_time_ms(d, tt, &t))
			ts = t;
		if (str_into(d, json_obj_get(d, m, "messageId"), &eb->tmp, NULL) && eb->tmp.len &&
		    (scrub(eb, &eb->tmp, x->sec), eb->tmp.len <= EVENT_MAX_KEY)) {
			memcpy(key, eb->tmp.data, eb->tmp.len);
			key_len = eb->tmp.len;
		} else if (ts != EVENT_TS_NONE) {
			/* No id (Vapi): a stable key from who spoke and when. */
			key_len = (size_t)snprintf(key, sizeof(key), "vapi-%s-%lld", raw_role, (long long)ts);
		} else {
			key_len = (size_t)snprintf(key, sizeof(key), "idx-%d", idx);
		}
		if (seen_check_add(eb, key, key_len, cap))
			continue;
		if (stale && !view_msg_find(vc, key, key_len) && skipped_known(vc, key, key_len, &eb->scrub_str))
			continue;
		int tx = json_obj_get(d, m, "text");
		if (!json_is_string(d, tx))
			tx = json_obj_get(d, m, "message");
		if (!json_is_string(d, tx))
			tx = json_obj_get(d, m, "content");
		if (!str_into(d, tx, &text, NULL))
			buf_reset(&text);
		scrub(eb, &text, x->sec);
		const struct view_msg *known = vc ? view_msg_find(vc, key, key_len) : NULL;
		uint8_t iflags = 0;
		if (known) {
			/* A known message changes only through a newer event that says something else. */
			if (evt_ts == EVENT_TS_NONE || evt_ts <= known->evt_ts || known->evt_ts == EVENT_TS_NONE ||
			    (known->text_len == text.len && (text.len == 0 || memcmp(known->text, text.data, text.len) == 0)))
				continue;
			iflags = EVENT_MSG_UPDATE;
			x->res->upd_msgs++;
		} else {
			x->res->new_msgs++;
		}
		build_extra(d, m, &extra);
		scrub_json(eb, &extra, x->sec);
		struct event_msg_item mi = {
			.iflags = iflags, .ts = ts, .evt_ts = evt_ts, .updated = EVENT_ORIGIN_SELF, .key = key,
			.key_len = key_len, .role = role,
			.role_len = strlen(role), .text = text.data ? text.data : "", .text_len = text.len,
			.extra = extra.data, .extra_len = extra.len,
		};
		event_enc_message(enc, &mi);
		/* The log shows the latest message that says something. */
		if (text.len || !x->res->role[0]) {
			strcpy(x->res->role, role);
			copy_cut(x->res->text, EVENT_LOG_TEXT_MAX, text.data ? text.data : "", text.len);
		}
		if (text.failed || extra.failed) {
			rc = -1;
			break;
		}
	}
	buf_free(&text);
	buf_free(&extra);
	return rc;
}

int
event_build(struct event_builder *eb, const struct json_doc *d, const char *orig, const struct view *v,
            struct event_secrets *sec, struct buf *fact, struct buf *body_out, struct event_result *res)
{
	memset(res, 0, sizeof(*res));
	res->ts = EVENT_TS_NONE;
	res->repairs = d->repairs + d->nul_escapes;
	if ((size_t)d->ntok > eb->mark_cap) {
		free(eb->mark);
		if (!(eb->mark = malloc((size_t)d->ntok)))
			return -1;
		eb->mark_cap = (size_t)d->ntok;
	}
	memset(eb->mark, 0, (size_t)d->ntok);
	struct ctx x = { .eb = eb, .d = d, .sec = sec, .res = res };

	/* 1. Redact: mark secret values, then copy the body replacing them, then scrub echoes. */
	walk(&x, 0);
	buf_reset(body_out);
	size_t pos = 0;
	for (int i = 0; x.any_mark && i < d->ntok; i++) {
		if (!eb->mark[i])
			continue;
		size_t s = (size_t)d->tok[i].start, e = (size_t)d->tok[i].end;
		if (json_is_string(d, i)) {
			s--;
			e++;
		}
		buf_add(body_out, orig + pos, s - pos);
		buf_adds(body_out, "\"" EVENT_REDACTED "\"");
		pos = e;
	}
	buf_add(body_out, orig + pos, d->len - pos);
	scrub_json(eb, body_out, sec);

	/* 2. What kind of event, for which call. */
	struct buf *t = &eb->tmp;
	int msg = json_obj_get(d, 0, "message");
	enum event_type type = EVENT_NONE;
	uint16_t flags = 0;
	int call = -1;
	if (json_is_object(d, msg)) {
		if (str_into(d, json_obj_get(d, msg, "type"), t, NULL)) {
			scrub(eb, t, sec);
			copy_cut(res->type_name, EVENT_MAX_TYPE_NAME, t->data, t->len);
		}
		type = event_type_from_name(res->type_name, strlen(res->type_name));
		call = json_obj_get(d, msg, "call");
		int id = json_obj_get(d, call, "id");
		if (str_into(d, id, t, NULL) && t->len > 0 && (scrub(eb, t, sec), t->len <= EVENT_MAX_CALL_ID)) {
			memcpy(res->call_id, t->data, t->len);
			res->call_id[t->len] = '\0';
		} else if (json_is_number(d, id) && d->tok[id].end - d->tok[id].start <= EVENT_MAX_CALL_ID) {
			copy_cut(res->call_id, EVENT_MAX_CALL_ID, d->text + d->tok[id].start,
			         (size_t)(d->tok[id].end - d->tok[id].start));
		}
		int64_t ts;
		if (event_time_ms(d, json_obj_get(d, msg, "timestamp"), &ts))
			res->ts = ts;
	} else {
		/* A foreign envelope (campaign or workflow webhook): name it by its own "event" field. */
		int ev = json_obj_get(d, 0, "event");
		if (ev < 0)
			ev = json_obj_get(d, 0, "type");
		if (str_into(d, ev, t, NULL)) {
			scrub(eb, t, sec);
			copy_cut(res->type_name, EVENT_MAX_TYPE_NAME, t->data, t->len);
		}
	}
	if (!res->call_id[0])
		flags |= EVENT_F_UNATTRIBUTED;
	if (type == EVENT_UNKNOWN)
		flags |= EVENT_F_UNKNOWN_TYPE;
	if (d->repairs || d->nul_escapes)
		flags |= EVENT_F_REPAIRED;
	res->type = type;

	struct event_enc enc;
	buf_reset(fact);
	/* The call's base is the writer's to set, once it knows where the record will go. */
	event_enc_begin(&enc, fact, type, flags, res->ts, 0, res->type_name, strlen(res->type_name), res->call_id,
	                strlen(res->call_id));
	if (flags & EVENT_F_UNATTRIBUTED) {
		res->flags = flags;
		return event_enc_end(&enc) ? 0 : -1;
	}

	/* 3. What it changes. */
	const struct view_call *vc = v ? view_find(v, res->call_id, strlen(res->call_id)) : NULL;
	int cust = json_path(d, msg, "customer", "number", NULL);
	if (!json_is_string(d, cust))
		cust = json_obj_get(d, call, "userNumber");
	if (str_into(d, cust, t, NULL) && t->len) {
		scrub(eb, t, sec);
		char c[EVENT_MAX_CUSTOMER + 1];
		size_t n = copy_cut(c, EVENT_MAX_CUSTOMER, t->data, t->len);
		if (!vc || !vc->customer || strcmp(vc->customer, c) != 0)
			event_enc_callinfo(&enc, c, n);
	}
	if (type == EVENT_STATUS_UPDATE) {
		int st = json_obj_get(d, call, "status");
		if (!json_is_string(d, st))
			st = json_obj_get(d, msg, "status");
		if (str_into(d, st, t, NULL) && t->len) {
			scrub(eb, t, sec);
			copy_cut(res->status, EVENT_MAX_STATUS, t->data, t->len);
		}
		else
			strcpy(res->status, "unknown");
		/* Who ended the call and why: Interactly's callEndTriggerBy and phoneCallStatusReason,
		 * Vapi's endedReason (which wins: it is the more precise). */
		char by[EVENT_MAX_REASON + 1] = "", why[EVENT_MAX_REASON + 1] = "";
		if (str_into(d, json_obj_get(d, call, "callEndTriggerBy"), t, NULL) && t->len) {
			scrub(eb, t, sec);
			copy_cut(by, EVENT_MAX_REASON, t->data, t->len);
		}
		int reason = json_obj_get(d, msg, "endedReason");
		if (!json_is_string(d, reason) || d->tok[reason].end == d->tok[reason].start)
			reason = json_obj_get(d, call, "endedReason");
		if (!json_is_string(d, reason) || d->tok[reason].end == d->tok[reason].start)
			reason = json_obj_get(d, call, "phoneCallStatusReason");
		if (str_into(d, reason, t, NULL) && t->len) {
			scrub(eb, t, sec);
			copy_cut(why, EVENT_MAX_REASON, t->data, t->len);
		}
		if (!status_known(vc, res->status, res->ts))
			event_enc_status(&enc, res->ts, res->status, strlen(res->status), by, why);
	}
	if (type == EVENT_STATUS_UPDATE || type == EVENT_CONVERSATION_UPDATE || type == EVENT_HANG ||
	    type == EVENT_ERROR || type == EVENT_END_OF_CALL_REPORT) {
		int msgs = json_obj_get(d, msg, "messages");
		if (!json_is_array(d, msgs))
			msgs = json_obj_get(d, call, "messages"); /* the 2025 shape */
		if (!json_is_array(d, msgs))
			msgs = json_path(d, msg, "artifact", "messages", NULL); /* Vapi's report */
		if (add_messages(&x, &enc, msgs, vc, res->ts) < 0)
			return -1;
	}
	struct buf *o = &eb->tmp2;
	if (type == EVENT_END_OF_CALL_REPORT) {
		build_report(&x, msg, call, o);
		scrub_json(eb, o, sec);
		/* The newest report stands: an identical one adds nothing, an older one (by the event's own
		 * time) does not replace it. */
		bool older = vc && vc->report && vc->report_ts != EVENT_TS_NONE && res->ts != EVENT_TS_NONE &&
		             res->ts < vc->report_ts;
		if (!older &&
		    (!vc || !vc->report || strlen(vc->report) != o->len || memcmp(vc->report, o->data, o->len) != 0))
			event_enc_report(&enc, o->data, o->len, res->ts);
	} else if (type == EVENT_HANG) {
		if (!alert_known(vc, EVENT_ALERT_HANG, res->ts, "", 0))
			event_enc_alert(&enc, EVENT_ALERT_HANG, res->ts, "", 0);
	} else if (type == EVENT_ERROR) {
		build_error(&x, msg, o);
		scrub_json(eb, o, sec);
		if (!alert_known(vc, EVENT_ALERT_ERROR, res->ts, o->data ? o->data : "", o->len))
			event_enc_alert(&enc, EVENT_ALERT_ERROR, res->ts, o->data ? o->data : "", o->len);
	}
	if (res->repairs)
		flags |= EVENT_F_REPAIRED;
	res->flags = flags;
	if (!event_enc_end(&enc))
		return -1;
	event_enc_set_flags(fact, flags);
	return body_out->failed ? -1 : 0;
}

int
event_snapshot(struct buf *b, const struct view_call *c, uint64_t self_seq)
{
	struct event_enc e;
	buf_reset(b);
	event_enc_begin(&e, b, EVENT_NONE, EVENT_F_SNAPSHOT, EVENT_TS_NONE, self_seq, "", 0, c->id, c->id_len);
	event_enc_callmeta(&e, (uint8_t)((c->resumed ? EVENT_META_RESUMED : 0) | (c->ended ? EVENT_META_ENDED : 0)),
	                   c->first_seq, c->first_ns, c->changed_seq, c->changed_ns);
	if (c->customer)
		event_enc_callinfo(&e, c->customer, strlen(c->customer));
	for (size_t i = 0; i < c->nst; i++) {
		e.origin = c->st[i].seq;
		event_enc_status(&e, c->st[i].ts, c->st[i].status, strlen(c->st[i].status), c->st[i].ended_by,
		                 c->st[i].reason);
	}
	for (size_t i = 0; i < c->nmsg; i++) {
		const struct view_msg *m = &c->msg[i];
		e.origin = m->seq;
		struct event_msg_item mi = {
			.ts = m->ts, .evt_ts = m->evt_ts, .updated = m->upd_seq, .key = m->key, .key_len = m->key_len,
			.role = m->role, .role_len = strlen(m->role), .text = m->text, .text_len = m->text_len,
			.extra = m->extra, .extra_len = m->extra_len,
		};
		event_enc_message(&e, &mi);
	}
	if (c->report) {
		e.origin = c->report_seq;
		event_enc_report(&e, c->report, strlen(c->report), c->report_ts);
	}
	for (size_t i = 0; i < c->nalert; i++) {
		e.origin = c->alert[i].seq;
		const char *d = c->alert[i].details ? c->alert[i].details : "";
		event_enc_alert(&e, c->alert[i].type, c->alert[i].ts, d, strlen(d));
	}
	e.origin = EVENT_ORIGIN_SELF;
	if (c->nraw)
		event_enc_rawrefs(&e, c->raw, (uint32_t)(c->nraw > UINT32_MAX ? UINT32_MAX : c->nraw));
	return event_enc_end(&e) ? 0 : -1;
}
