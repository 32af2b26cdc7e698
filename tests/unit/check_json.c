/* check_json: Check suite for common/json.c, the strict validator, jsmn tokenization, navigation,
 * unescaping with repair and JSON output (contract: common/json.h). Besides hand-written cases it
 * replays the sample webhook bodies in tests/fixtures and mutates valid documents at random, checking
 * the validator against a small reference parser written from RFC 8259. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

#ifndef FUZZ_ITERATIONS /* -DFUZZ_ITERATIONS=... for a longer run */
#define FUZZ_ITERATIONS 20000
#endif
#ifndef FUZZ_SEED
#define FUZZ_SEED 0x5eed1234abcdULL
#endif
#define FUZZ_MAX_MUTATIONS 4
#define FIXTURE_MIN_COUNT 40   /* the fixture folder holds about 50 bodies */
#define FIXTURE_MAX_BYTES (4u << 20)
#define SLOW_TIMEOUT 300       /* seconds, for the fuzz, fixture and size tests under valgrind */
#define BIG_STRING_BYTES (1u << 20)
#define BIG_DOC_ELEMENTS 40000 /* x 5 tokens = 200k tokens */
#define CHUNK_CROSS_REPEAT 1000
#define REF_MAX_DEPTH 1000     /* the reference recognizer's recursion bound */

/* --- helpers --------------------------------------------------------------------------------- */

/* A literal with its exact length, so that embedded NUL bytes count. */
#define L(s) (s), (sizeof(s) - 1)

static enum json_status
parse_status(const char *s, size_t n, const struct json_limits *lim, size_t *err_offset)
{
	struct json_doc d;
	enum json_status st = json_parse(&d, s, n, lim);

	if (st != JSON_OK) {
		ck_assert_ptr_null(d.tok);
		ck_assert_ptr_null(d.owned);
		ck_assert_uint_le(d.err_offset, n);
	}
	if (err_offset != NULL)
		*err_offset = d.err_offset;
	json_free(&d);
	return st;
}

static void
parse_ok(struct json_doc *d, const char *s, size_t n)
{
	enum json_status st = json_parse(d, s, n, NULL);

	ck_assert_msg(st == JSON_OK, "parse of \"%.*s\" gave %s at %zu", (int)n, s, json_errcode(st),
	    d->err_offset);
}

/* Unescapes s[0..n) into a fresh buffer; checks the result is valid UTF-8 without NUL. */
static char *
unescape(const char *s, size_t n, size_t *outlen, unsigned *rep)
{
	char *out = malloc(JSON_UNESCAPED_MAX(n) + 1);
	size_t len;

	ck_assert_ptr_nonnull(out);
	len = json_unescape(s, n, out, rep);
	ck_assert_uint_le(len, JSON_UNESCAPED_MAX(n));
	ck_assert_uint_eq(strlen(out), len);
	ck_assert(json_utf8_valid(out, len));
	if (outlen != NULL)
		*outlen = len;
	return out;
}

static void
check_unescape(const char *in, size_t n, const char *want, size_t wantlen, unsigned wantrep)
{
	unsigned rep = 0;
	size_t len;
	char *out = unescape(in, n, &len, &rep);

	ck_assert_uint_eq(len, wantlen);
	ck_assert_mem_eq(out, want, wantlen);
	ck_assert_uint_eq(rep, wantrep);
	free(out);
}

/* Parses {"k":"<raw>"} and returns the unescaped value; *doc_repairs gets doc->repairs. */
static char *
value_of(const char *raw, size_t n, size_t *len, unsigned *rep, unsigned *doc_repairs)
{
	struct buf b = BUF_INIT;
	struct json_doc d;
	char *s;
	int t;

	buf_add(&b, "{\"k\":\"", 6);
	buf_add(&b, raw, n);
	buf_add(&b, "\"}", 2);
	parse_ok(&d, b.data, b.len);
	t = json_obj_get(&d, 0, "k");
	ck_assert_int_eq(t, 2);
	s = json_strdup(&d, t, len, rep);
	ck_assert_ptr_nonnull(s);
	ck_assert(json_utf8_valid(s, strlen(s)));
	if (doc_repairs != NULL)
		*doc_repairs = d.repairs;
	json_free(&d);
	buf_free(&b);
	return s;
}

static char *
write_token_str(const struct json_doc *d, int tok, size_t *len)
{
	struct buf b = BUF_INIT;
	char *out;

	json_write_token(&b, d, tok);
	ck_assert(!b.failed);
	out = strndup(b.data ? b.data : "", b.len);
	*len = b.len;
	buf_free(&b);
	return out;
}

static void
check_write_str(const char *in, size_t n, const char *want)
{
	struct buf b = BUF_INIT;

	json_write_str(&b, in, n);
	ck_assert(!b.failed);
	ck_assert_str_eq(buf_cstr(&b), want);
	buf_free(&b);
}

/* Sanitizes text and checks the invariants: the result parses with no repair needed and is valid
 * UTF-8; returns it. */
static char *
sanitize(const char *text, size_t n, size_t *outlen)
{
	struct buf b = BUF_INIT;
	struct json_doc d;
	char *out;

	json_write_sanitized(&b, text, n);
	ck_assert(!b.failed);
	ck_assert(json_utf8_valid(b.data ? b.data : "", b.len));
	ck_assert_int_eq(json_parse(&d, b.data, b.len, NULL), JSON_OK);
	ck_assert_uint_eq(d.repairs, 0);
	json_free(&d);
	out = malloc(b.len + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	*outlen = b.len;
	buf_free(&b);
	return out;
}

/* Round trip: json_write_token output parses, needs no repair, is valid UTF-8 and reproduces itself. */
static void
check_round_trip(const struct json_doc *d)
{
	struct json_doc d2;
	size_t len, len2;
	char *out = write_token_str(d, 0, &len), *out2;

	ck_assert(json_utf8_valid(out, len));
	ck_assert_msg(json_parse(&d2, out, len, NULL) == JSON_OK, "re-parse failed: %s", out);
	ck_assert_uint_eq(d2.repairs, 0);
	ck_assert_int_eq(d2.ntok, d->ntok);
	out2 = write_token_str(&d2, 0, &len2);
	ck_assert_uint_eq(len, len2);
	ck_assert_mem_eq(out, out2, len);
	json_free(&d2);
	free(out);
	free(out2);
}

static char *
nested(unsigned depth, const char *open, const char *inner, const char *close)
{
	struct buf b = BUF_INIT;
	char *s;

	for (unsigned i = 0; i < depth; i++)
		buf_adds(&b, i == 0 ? "{\"a\":" : open);
	buf_adds(&b, inner);
	for (unsigned i = depth; i-- > 0;)
		buf_adds(&b, i == 0 ? "}" : close);
	s = strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* --- valid documents ------------------------------------------------------------------------- */

START_TEST(test_valid_nested)
{
	static const char doc[] = "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":true,\"e\":false,"
	    "\"f\":\"s\",\"g\":-1.5e+10,\"h\":[],\"i\":{},\"j\":[[],{}]}";
	struct json_doc d;
	bool bv;
	double dv;

	parse_ok(&d, L(doc));
	ck_assert_int_eq(d.ntok, 26);
	ck_assert_uint_eq(d.repairs, 0);
	ck_assert(!d.bom);
	ck_assert_ptr_null(d.owned);
	ck_assert_ptr_eq(d.text, doc);
	ck_assert_uint_eq(d.len, sizeof doc - 1);
	ck_assert_int_eq(d.next[0], d.ntok);
	ck_assert(json_is_null(&d, json_obj_get(&d, json_path(&d, 0, "a", "b", NULL) + 3, "c")));
	ck_assert(json_is_bool(&d, json_obj_get(&d, 0, "d"), &bv) && bv);
	ck_assert(json_is_bool(&d, json_obj_get(&d, 0, "e"), &bv) && !bv);
	ck_assert(json_is_bool(&d, json_obj_get(&d, 0, "e"), NULL));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "f"), "s"));
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "g"), &dv));
	ck_assert(dv == -1.5e10);
	ck_assert_int_eq(json_array_len(&d, json_obj_get(&d, 0, "h")), 0);
	ck_assert(json_is_object(&d, json_obj_get(&d, 0, "i")));
	ck_assert_int_eq(json_first(&d, json_obj_get(&d, 0, "i")), -1);
	ck_assert_int_eq(json_array_len(&d, json_obj_get(&d, 0, "j")), 2);
	check_round_trip(&d);
	json_free(&d);
}
END_TEST

START_TEST(test_valid_whitespace)
{
	static const char doc[] = " \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r[ \t1 ,\n2\r, { } , [ ] ]\r\n,"
	    "\"b\"\n:\n\"x\"\n} \n\t\r";
	struct json_doc d;
	size_t len;
	char *out;

	parse_ok(&d, L(doc));
	ck_assert_int_eq(d.ntok, 9);
	ck_assert_int_eq(d.tok[0].start, 4);
	out = write_token_str(&d, 0, &len);
	ck_assert_str_eq(out, "{\"a\":[1,2,{},[]],\"b\":\"x\"}");
	free(out);
	json_free(&d);
}
END_TEST

START_TEST(test_value_kinds)
{
	static const char doc[] = "{\"o\":{},\"a\":[],\"s\":\"\",\"n\":0,\"t\":true,\"f\":false,\"z\":null}";
	struct json_doc d;
	int o, a, s, n, t, f, z;

	parse_ok(&d, L(doc));
	o = json_obj_get(&d, 0, "o");
	a = json_obj_get(&d, 0, "a");
	s = json_obj_get(&d, 0, "s");
	n = json_obj_get(&d, 0, "n");
	t = json_obj_get(&d, 0, "t");
	f = json_obj_get(&d, 0, "f");
	z = json_obj_get(&d, 0, "z");
	ck_assert(json_is_object(&d, o) && !json_is_array(&d, o) && !json_is_string(&d, o));
	ck_assert(json_is_array(&d, a) && !json_is_object(&d, a));
	ck_assert(json_is_string(&d, s) && json_str_eq(&d, s, "") && !json_is_number(&d, s));
	ck_assert(json_is_number(&d, n) && !json_is_null(&d, n) && !json_is_bool(&d, n, NULL));
	ck_assert(json_is_bool(&d, t, NULL) && !json_is_number(&d, t) && !json_is_null(&d, t));
	ck_assert(json_is_bool(&d, f, NULL));
	ck_assert(json_is_null(&d, z) && !json_is_bool(&d, z, NULL) && !json_is_number(&d, z));
	ck_assert_int_eq(json_array_len(&d, o), -1);
	ck_assert(!json_str_eq(&d, n, "0"));
	ck_assert_ptr_null(json_strdup(&d, n, NULL, NULL));
	json_free(&d);
}
END_TEST

static const char *const valid_numbers[] = {
	"0", "-0", "1", "-1", "10", "1.5", "0.5", "-0.0", "1e5", "1E5", "1e+5", "1e-5", "1.5e10",
	"0e0", "-0E-0", "123456789012345678901234567890", "1.000000000000000000000000001",
	"9223372036854775807", "-9223372036854775808", "2.2250738585072014e-308",
};

START_TEST(test_valid_numbers)
{
	char doc[128];
	struct json_doc d;
	size_t len;
	char *out;
	double v;

	snprintf(doc, sizeof doc, "{\"n\":%s}", valid_numbers[_i]);
	parse_ok(&d, doc, strlen(doc));
	ck_assert(json_is_number(&d, 2));
	ck_assert(json_get_double(&d, 2, &v));
	out = write_token_str(&d, 2, &len);
	ck_assert_str_eq(out, valid_numbers[_i]);
	free(out);
	json_free(&d);
}
END_TEST

START_TEST(test_escaped_keys)
{
	static const char doc[] = "{\"\\u0074ype\":\"x\",\"a\\\"b\":1,\"caf\\u00e9\":2,\"plain\":3,"
	    "\"\\ud83d\\ude00\":4,\"\\/\":5}";
	struct json_doc d;
	int64_t v;

	parse_ok(&d, L(doc));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "type"), "x"));
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "a\"b"), &v) && v == 1);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "caf\xC3\xA9"), &v) && v == 2);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "plain"), &v) && v == 3);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "\xF0\x9F\x98\x80"), &v) && v == 4);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "/"), &v) && v == 5);
	ck_assert_int_eq(json_obj_get(&d, 0, "\\u0074ype"), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, "typ"), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, "types"), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, "plai"), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, ""), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, "caf"), -1);
	json_free(&d);
}
END_TEST

START_TEST(test_big_integers_verbatim)
{
	static const char doc[] = "{\"a\":9007199254740993,\"b\":-123456789012345678901234567890,"
	    "\"c\":1e400,\"d\":0.10000000000000000000000001}";
	struct json_doc d;
	size_t len;
	char *out;
	int64_t v;
	double dv;

	parse_ok(&d, L(doc));
	out = write_token_str(&d, 0, &len);
	ck_assert_str_eq(out, doc);
	free(out);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "a"), &v));
	ck_assert(v == 9007199254740993LL);
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "b"), &v));
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "b"), &dv));
	ck_assert(!json_get_double(&d, json_obj_get(&d, 0, "c"), &dv)); /* overflows a double */
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "d"), &dv) && dv > 0.09 && dv < 0.11);
	json_free(&d);
}
END_TEST

START_TEST(test_get_numbers)
{
	static const char doc[] = "{\"max\":9223372036854775807,\"min\":-9223372036854775808,"
	    "\"over\":9223372036854775808,\"under\":-9223372036854775809,\"frac\":1.0,\"exp\":1e3,"
	    "\"neg0\":-0,\"s\":\"12\",\"t\":true,\"tiny\":1e-400,\"long\":"
	    "0.000000000000000000000000000000000000000000000000000000000000000000000000000000000001}";
	struct json_doc d;
	int64_t v;
	double dv;

	parse_ok(&d, L(doc));
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "max"), &v) && v == INT64_MAX);
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "min"), &v) && v == INT64_MIN);
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "over"), &v));
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "under"), &v));
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "frac"), &v));
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "exp"), &v));
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "neg0"), &v) && v == 0);
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "s"), &v));
	ck_assert(!json_get_i64(&d, json_obj_get(&d, 0, "t"), &v));
	ck_assert(!json_get_i64(&d, -1, &v));
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "frac"), &dv) && dv == 1.0);
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "exp"), &dv) && dv == 1000.0);
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "max"), &dv) && dv > 9.2e18);
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "tiny"), &dv) && dv == 0.0);
	ck_assert(json_get_double(&d, json_obj_get(&d, 0, "long"), &dv) && dv > 0 && dv < 1e-50);
	ck_assert(!json_get_double(&d, json_obj_get(&d, 0, "s"), &dv));
	ck_assert(!json_get_double(&d, -1, &dv));
	json_free(&d);
}
END_TEST

START_TEST(test_bom)
{
	static const char doc[] = "\xEF\xBB\xBF{\"a\":1}";
	struct json_doc d;
	size_t off;

	parse_ok(&d, L(doc));
	ck_assert(d.bom);
	ck_assert_ptr_eq(d.text, doc + 3);
	ck_assert_uint_eq(d.len, sizeof doc - 4);
	ck_assert_int_eq(d.tok[0].start, 0);
	json_free(&d);
	ck_assert_int_eq(parse_status(L("\xEF\xBB\xBF{\"a\":x}"), NULL, &off), JSON_ERR_SYNTAX);
	ck_assert_uint_eq(off, 8); /* counted in the caller's buffer, BOM included */
	ck_assert_int_eq(parse_status(L("\xEF\xBB\xBF"), NULL, NULL), JSON_ERR_EMPTY);
	ck_assert_int_eq(parse_status(L("\xEF\xBB\xBF  "), NULL, NULL), JSON_ERR_EMPTY);
	ck_assert_int_eq(parse_status(L("\xEF\xBB{}"), NULL, NULL), JSON_ERR_SYNTAX);
	ck_assert_int_eq(parse_status(L("\xEF\xBB\xBF\xEF\xBB\xBF{}"), NULL, NULL), JSON_ERR_SYNTAX);
	ck_assert_int_eq(parse_status(L(" \xEF\xBB\xBF{}"), NULL, NULL), JSON_ERR_SYNTAX);
}
END_TEST

/* --- invalid documents ----------------------------------------------------------------------- */

struct bad_case {
	const char *in;
	size_t len;
	enum json_status st;
	size_t off; /* expected err_offset, or SIZE_MAX for "do not check" */
};

#define BAD(s, st, off) { (s), sizeof(s) - 1, (st), (off) }
#define ANY SIZE_MAX

static const struct bad_case bad_cases[] = {
	/* jsmn leniencies */
	BAD("[1 2]", JSON_ERR_SYNTAX, 3),
	BAD("{\"a\":[1 2]}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":1,}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":[1,]}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":tru}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":01}", JSON_ERR_SYNTAX, 6),
	BAD("01", JSON_ERR_SYNTAX, 1),
	BAD("{}{}", JSON_ERR_TRAILING, 2),
	BAD("{\"a\":1}\0garbage", JSON_ERR_TRAILING, 7),
	BAD("{\"a\":::1}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\" 1}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":[1,2}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":1.2.3}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":1]", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":[1}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\"}", JSON_ERR_SYNTAX, 4),
	BAD("{\"a\":}", JSON_ERR_SYNTAX, 5),
	BAD("{,}", JSON_ERR_SYNTAX, 1),
	BAD("{\"a\":1,,\"b\":2}", JSON_ERR_SYNTAX, 7),
	BAD("{:1}", JSON_ERR_SYNTAX, 1),
	BAD("{1:2}", JSON_ERR_SYNTAX, 1),
	BAD("{\"a\":1 \"b\":2}", JSON_ERR_SYNTAX, 7),
	BAD("{'a':1}", JSON_ERR_SYNTAX, 1),
	BAD("{a:1}", JSON_ERR_SYNTAX, 1),
	BAD("{\"a\":1,\x01}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":[}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":{]}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":{\"b\"}}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":{\"b\":}}", JSON_ERR_SYNTAX, 10),
	BAD("{\"a\":\"x\" \"y\"}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":[\"x\":1]}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":1}}", JSON_ERR_TRAILING, 7),
	BAD("}", JSON_ERR_SYNTAX, 0),
	BAD("]", JSON_ERR_SYNTAX, 0),
	BAD(",", JSON_ERR_SYNTAX, 0),
	BAD("\xC3\xA9", JSON_ERR_SYNTAX, 0),
	BAD("{\"a\":\xC3\xA9}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":1}\xC2\xA0", JSON_ERR_TRAILING, 7),
	BAD("{\"a\":1\xC2\xA0}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":1,\f\"b\":2}", JSON_ERR_SYNTAX, 7),
	/* trailing data and second values */
	BAD("{\"a\":1}x", JSON_ERR_TRAILING, 7),
	BAD("{\"a\":1} {\"b\":2}", JSON_ERR_TRAILING, 8),
	BAD("{} 1", JSON_ERR_TRAILING, 3),
	BAD("{}]", JSON_ERR_TRAILING, 2),
	BAD("{}\n\n,", JSON_ERR_TRAILING, 4),
	BAD("[] []", JSON_ERR_TRAILING, 3),
	BAD("\"s\" 1", JSON_ERR_TRAILING, 4),
	/* literals */
	BAD("{\"a\":nul}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":True}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":NULL}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":fals}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":truex}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":nulll}", JSON_ERR_SYNTAX, 9),
	BAD("{\"a\":t}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":undefined}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":NaN}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":Infinity}", JSON_ERR_SYNTAX, 5),
	BAD("true", JSON_ERR_NOT_OBJECT, 0),
	BAD("tru", JSON_ERR_TRUNCATED, 3),
	/* numbers */
	BAD("{\"a\":-}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":1.}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":.5}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":1e}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":1e+}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":1E-x}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":+1}", JSON_ERR_SYNTAX, 5),
	BAD("{\"a\":0x1}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":--1}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":-01}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":00}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":1.e5}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":1.5.}", JSON_ERR_SYNTAX, 8),
	BAD("{\"a\":-a}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":1x}", JSON_ERR_SYNTAX, 6),
	BAD("{\"a\":[01]}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":1ee5}", JSON_ERR_SYNTAX, 7),
	BAD("1x", JSON_ERR_SYNTAX, 1),
	BAD("-", JSON_ERR_TRUNCATED, 1),
	BAD("1.", JSON_ERR_TRUNCATED, 2),
	BAD("1e", JSON_ERR_TRUNCATED, 2),
	BAD("1e-", JSON_ERR_TRUNCATED, 3),
	/* escapes */
	BAD("{\"a\":\"\\x\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\u12G4\"}", JSON_ERR_SYNTAX, 10),
	BAD("{\"a\":\"\\u12\"}", JSON_ERR_SYNTAX, 10),
	BAD("{\"a\":\"\\U0041\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\a\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\0\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\'\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\ \"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"a\":\"\\\xC3\xA9\"}", JSON_ERR_SYNTAX, 7),
	BAD("{\"\\x\":1}", JSON_ERR_SYNTAX, 3),
	BAD("{\"a\":\"\\ud800\\u12\"}", JSON_ERR_SYNTAX, 16),
	BAD("{\"a\":\"\\ud800\\x\"}", JSON_ERR_SYNTAX, 13),
	/* roots that are not objects */
	BAD("[]", JSON_ERR_NOT_OBJECT, 0),
	BAD("\"s\"", JSON_ERR_NOT_OBJECT, 0),
	BAD("1", JSON_ERR_NOT_OBJECT, 0),
	BAD("null", JSON_ERR_NOT_OBJECT, 0),
	BAD("false", JSON_ERR_NOT_OBJECT, 0),
	BAD(" -1.5e3 ", JSON_ERR_NOT_OBJECT, 1),
	BAD("\n[1,2]\n", JSON_ERR_NOT_OBJECT, 1),
	BAD("[{\"a\":1}]", JSON_ERR_NOT_OBJECT, 0),
	/* truncated */
	BAD("[1,2", JSON_ERR_TRUNCATED, 4),
	BAD("{", JSON_ERR_TRUNCATED, 1),
	BAD("{ ", JSON_ERR_TRUNCATED, 2),
	BAD("{\"a", JSON_ERR_TRUNCATED, 3),
	BAD("{\"a\":\"abc", JSON_ERR_TRUNCATED, 9),
	BAD("{\"a\":\"abc\\", JSON_ERR_TRUNCATED, 10),
	BAD("{\"a\":\"\\u12", JSON_ERR_TRUNCATED, 10),
	BAD("{\"a\":\"\xE2\x82", JSON_ERR_TRUNCATED, 8),
	BAD("{\"a\":1", JSON_ERR_TRUNCATED, 6),
	BAD("{\"a\":1,", JSON_ERR_TRUNCATED, 7),
	BAD("{\"a\":", JSON_ERR_TRUNCATED, 5),
	BAD("{\"a\"", JSON_ERR_TRUNCATED, 4),
	BAD("{\"a\":[", JSON_ERR_TRUNCATED, 6),
	BAD("{\"a\":{}", JSON_ERR_TRUNCATED, 7),
	BAD("\"abc", JSON_ERR_TRUNCATED, 4),
	/* empty */
	BAD("", JSON_ERR_EMPTY, ANY),
	BAD(" ", JSON_ERR_EMPTY, ANY),
	BAD(" \t\n\r ", JSON_ERR_EMPTY, ANY),
};

START_TEST(test_bad_documents)
{
	const struct bad_case *c = &bad_cases[_i];
	size_t off;
	enum json_status st = parse_status(c->in, c->len, NULL, &off);

	ck_assert_msg(st == c->st, "case %d \"%s\": want %s, got %s", _i, c->in, json_errcode(c->st),
	    json_errcode(st));
	if (c->off != ANY)
		ck_assert_msg(off == c->off, "case %d \"%s\": want err_offset %zu, got %zu", _i, c->in,
		    c->off, off);
}
END_TEST

START_TEST(test_null_and_empty_input)
{
	struct json_doc d;

	ck_assert_int_eq(json_parse(&d, NULL, 0, NULL), JSON_ERR_EMPTY);
	ck_assert_ptr_null(d.tok);
	ck_assert_int_eq(json_parse(&d, "{}", 0, NULL), JSON_ERR_EMPTY);
	json_free(&d);
	json_free(NULL);
}
END_TEST

/* Every proper prefix of a valid document is truncated, with err_offset at its end. */
START_TEST(test_truncated_everywhere)
{
	static const char doc[] = "{\"a\":[1,-2.5e3,true,false,null,\"x\\u0041\\n\\ud83d\\ude00\xC3\xA9\"],"
	    "\"b\" : { \"c\" : [ { } , [ ] ] } , \"d\":0.5E+7}";
	size_t off;

	ck_assert_int_eq(parse_status(L(doc), NULL, NULL), JSON_OK);
	for (size_t n = 1; n < sizeof doc - 1; n++) {
		enum json_status st = parse_status(doc, n, NULL, &off);

		ck_assert_msg(st == JSON_ERR_TRUNCATED, "prefix %zu: %s", n, json_errcode(st));
		ck_assert_uint_eq(off, n);
	}
}
END_TEST

START_TEST(test_json_strerror)
{
	for (int st = JSON_OK; st <= JSON_ERR_NOMEM; st++) {
		ck_assert_ptr_nonnull(json_strerror((enum json_status)st));
		ck_assert_ptr_nonnull(json_errcode((enum json_status)st));
		ck_assert_uint_gt(strlen(json_errcode((enum json_status)st)), 0);
	}
	ck_assert_str_eq(json_errcode(JSON_ERR_SYNTAX), "syntax");
	ck_assert_str_eq(json_errcode(JSON_ERR_TRUNCATED), "truncated");
	ck_assert_str_eq(json_errcode(JSON_ERR_NOT_OBJECT), "not_object");
	ck_assert_str_eq(json_strerror(JSON_ERR_SYNTAX), "body is not valid JSON");
	ck_assert_str_ne(json_errcode(JSON_ERR_DEPTH), json_errcode(JSON_ERR_TOKENS));
}
END_TEST

/* --- limits ---------------------------------------------------------------------------------- */

START_TEST(test_depth_default)
{
	char *at = nested(JSON_DEFAULT_MAX_DEPTH, "{\"a\":", "1", "}");
	char *over = nested(JSON_DEFAULT_MAX_DEPTH + 1, "{\"a\":", "1", "}");
	char *arr_at = nested(JSON_DEFAULT_MAX_DEPTH, "[", "1", "]");
	char *arr_over = nested(JSON_DEFAULT_MAX_DEPTH + 1, "[", "1", "]");
	char *empty_over = nested(JSON_DEFAULT_MAX_DEPTH + 1, "{\"a\":", "{}", "}");
	size_t off;
	struct json_doc d;

	parse_ok(&d, at, strlen(at));
	check_round_trip(&d);
	json_free(&d);
	ck_assert_int_eq(parse_status(over, strlen(over), NULL, &off), JSON_ERR_DEPTH);
	ck_assert_uint_eq(off, 5 * JSON_DEFAULT_MAX_DEPTH); /* the opening brace one too deep */
	ck_assert_int_eq(parse_status(arr_at, strlen(arr_at), NULL, NULL), JSON_OK);
	ck_assert_int_eq(parse_status(arr_over, strlen(arr_over), NULL, NULL), JSON_ERR_DEPTH);
	ck_assert_int_eq(parse_status(empty_over, strlen(empty_over), NULL, NULL), JSON_ERR_DEPTH);
	free(at);
	free(over);
	free(arr_at);
	free(arr_over);
	free(empty_over);
}
END_TEST

START_TEST(test_depth_custom)
{
	struct json_limits three = { 3, 0 }, big = { 5000, 0 };
	char *d3 = nested(3, "[", "[]", "]"); /* four levels */
	char *deep = nested(5000, "[", "0", "]");
	char *deeper = nested(5001, "[", "0", "]");
	struct json_doc d;

	ck_assert_int_eq(parse_status(L("{\"a\":[[1]]}"), &three, NULL), JSON_OK);
	ck_assert_int_eq(parse_status(L("{\"a\":[[[1]]]}"), &three, NULL), JSON_ERR_DEPTH);
	ck_assert_int_eq(parse_status(d3, strlen(d3), &three, NULL), JSON_ERR_DEPTH);
	/* beyond the on-stack depth bitmap */
	ck_assert_int_eq(json_parse(&d, deep, strlen(deep), &big), JSON_OK);
	ck_assert_int_eq(d.ntok, 5002);
	ck_assert_int_eq(d.next[1], 5002);
	json_free(&d);
	ck_assert_int_eq(parse_status(deeper, strlen(deeper), &big, NULL), JSON_ERR_DEPTH);
	ck_assert_int_eq(parse_status(deeper, strlen(deeper), NULL, NULL), JSON_ERR_DEPTH);
	free(d3);
	free(deep);
	free(deeper);
}
END_TEST

START_TEST(test_token_limit)
{
	static const char doc[] = "{\"a\":[1,\"x\",{\"b\":null}],\"c\":true}"; /* 10 tokens */
	struct json_limits at = { 0, 10 }, below = { 0, 9 };
	struct json_doc d;
	size_t off;

	ck_assert_int_eq(json_parse(&d, L(doc), &at), JSON_OK);
	ck_assert_int_eq(d.ntok, 10);
	json_free(&d);
	ck_assert_int_eq(parse_status(L(doc), &below, &off), JSON_ERR_TOKENS);
	ck_assert_uint_eq(off, 28); /* the tenth token, true */
	ck_assert_int_eq(parse_status(L("{}"), &(struct json_limits){ 0, 1 }, NULL), JSON_OK);
	ck_assert_int_eq(parse_status(L("{\"a\":1}"), &(struct json_limits){ 0, 2 }, NULL),
	    JSON_ERR_TOKENS);
	ck_assert_int_eq(parse_status(L("{\"a\":1}"), &(struct json_limits){ 0, 3 }, NULL), JSON_OK);
}
END_TEST

START_TEST(test_token_count_matches)
{
	static const struct {
		const char *doc;
		int ntok;
	} cases[] = {
		{ "{}", 1 },
		{ "{\"a\":1}", 3 },
		{ "{\"a\":{}}", 3 },
		{ "{\"a\":[]}", 3 },
		{ "{\"a\":[1,2,3]}", 6 },
		{ "{\"a\":{\"b\":{\"c\":\"d\"}},\"e\":[[],[{}]]}", 12 },
		{ "{\"\":\"\"}", 3 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct json_doc d;

		parse_ok(&d, cases[i].doc, strlen(cases[i].doc));
		ck_assert_int_eq(d.ntok, cases[i].ntok);
		json_free(&d);
	}
}
END_TEST

/* --- strings --------------------------------------------------------------------------------- */

START_TEST(test_every_escape)
{
	static const char raw[] = "\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20AC \\uFFFF \\u0001";
	static const char want[] = "\" \\ / \b \f \n \r \t A \xC3\xA9 \xE2\x82\xAC \xEF\xBF\xBF \x01";
	unsigned rep = 0, drep = 99;
	size_t len;
	char *s = value_of(L(raw), &len, &rep, &drep);

	ck_assert_uint_eq(len, sizeof want - 1);
	ck_assert_mem_eq(s, want, len);
	ck_assert_uint_eq(rep, 0);
	ck_assert_uint_eq(drep, 0);
	free(s);
	check_unescape(L(raw), L(want), 0);
}
END_TEST

START_TEST(test_surrogates)
{
	unsigned drep;
	size_t len;
	char *s;

	check_unescape(L("\\ud83d\\ude00"), L("\xF0\x9F\x98\x80"), 0);
	check_unescape(L("\\uD83D\\uDE00"), L("\xF0\x9F\x98\x80"), 0);
	check_unescape(L("\\udbff\\udfff"), L("\xF4\x8F\xBF\xBF"), 0);
	check_unescape(L("\\ud800\\udc00"), L("\xF0\x90\x80\x80"), 0);
	check_unescape(L("\\ud800"), L("\xEF\xBF\xBD"), 1);
	check_unescape(L("\\udc00"), L("\xEF\xBF\xBD"), 1);
	check_unescape(L("\\udc00\\ud800"), L("\xEF\xBF\xBD\xEF\xBF\xBD"), 2);
	check_unescape(L("\\ud83dx"), L("\xEF\xBF\xBDx"), 1);
	check_unescape(L("\\ud83d\\u0041"), L("\xEF\xBF\xBD" "A"), 1);
	check_unescape(L("\\ud83d\\n"), L("\xEF\xBF\xBD\n"), 1);
	check_unescape(L("\\ud83d\\ud83d\\ude00"), L("\xEF\xBF\xBD\xF0\x9F\x98\x80"), 1);
	check_unescape(L("a\\ud83d"), L("a\xEF\xBF\xBD"), 1);

	/* the document counts one repair per string, however many lone surrogates it holds */
	s = value_of(L("\\udc00\\ud800"), &len, NULL, &drep);
	ck_assert_uint_eq(drep, 1);
	free(s);
	s = value_of(L("\\ud83d\\ude00"), &len, NULL, &drep);
	ck_assert_uint_eq(drep, 0);
	ck_assert_str_eq(s, "\xF0\x9F\x98\x80");
	free(s);
	s = value_of(L("\\ud83d\\ud83d"), &len, NULL, &drep);
	ck_assert_uint_eq(drep, 1);
	free(s);
	s = value_of(L("\\ud83d"), &len, NULL, &drep);
	ck_assert_uint_eq(drep, 1);
	free(s);
}
END_TEST

START_TEST(test_escaped_nul)
{
	unsigned rep = 0, drep = 99;
	size_t len;
	char *s = value_of(L("a\\u0000b"), &len, &rep, &drep);

	ck_assert_uint_eq(len, 5);
	ck_assert_str_eq(s, "a\xEF\xBF\xBD" "b");
	ck_assert_uint_eq(rep, 1);
	ck_assert_uint_eq(drep, 0); /* valid JSON: the wire text needs no repair */
	free(s);
}
END_TEST

#define R "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

static const struct {
	const char *in;
	size_t len;
	const char *want;
	size_t wantlen;
	unsigned rep;
} utf8_cases[] = {
#define U(in, want, rep) { (in), sizeof(in) - 1, (want), sizeof(want) - 1, (rep) }
	/* valid boundaries */
	U("\xC2\x80", "\xC2\x80", 0),
	U("\xDF\xBF", "\xDF\xBF", 0),
	U("\xE0\xA0\x80", "\xE0\xA0\x80", 0),
	U("\xED\x9F\xBF", "\xED\x9F\xBF", 0),
	U("\xEE\x80\x80", "\xEE\x80\x80", 0),
	U("\xEF\xBF\xBF", "\xEF\xBF\xBF", 0),
	U("\xF0\x90\x80\x80", "\xF0\x90\x80\x80", 0),
	U("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF", 0),
	U("\x7F", "\x7F", 0),
	/* overlong forms */
	U("\xC0\x80", R R, 2),
	U("\xC1\xBF", R R, 2),
	U("\xE0\x80\x80", R R R, 3),
	U("\xE0\x9F\xBF", R R R, 3),
	U("\xF0\x80\x80\x80", R R R R, 4),
	U("\xF0\x8F\xBF\xBF", R R R R, 4),
	U("\xF0\x80\x80", R R R, 3),
	/* UTF-8-encoded surrogates */
	U("\xED\xA0\x80", R R R, 3),
	U("\xED\xBF\xBF", R R R, 3),
	U("\xED\xA0\x80\xED\xB0\x80", R R R R R R, 6),
	/* above U+10FFFF */
	U("\xF4\x90\x80\x80", R R R R, 4),
	U("\xF5\x80\x80\x80", R R R R, 4),
	U("\xF8\x88\x80\x80\x80", R R R R R, 5),
	U("\xFE", R, 1),
	U("\xFF", R, 1),
	/* stray continuation bytes */
	U("\x80", R, 1),
	U("\xBF\x80", R R, 2),
	U("a\x80" "b", "a" R "b", 1),
	/* truncated sequences: one U+FFFD per maximal subpart, the next character kept */
	U("\xC3" "A", R "A", 1),
	U("\xE2\x82" "A", R "A", 1),
	U("\xF0\x9F\x98" "A", R "A", 1),
	U("\xF0\x9F\x98\xC3\xA9", R "\xC3\xA9", 1),
	U("\xE2\x82\xE2\x82\xAC", R "\xE2\x82\xAC", 1),
	U("abc\xE2\x82", "abc" R, 1),
	U("abc\xF0\x9F\x98", "abc" R, 1),
	U("abc\xC3", "abc" R, 1),
	U("\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", R R R R "\x41", 4),
	/* raw control characters */
	U("\x01", R, 1),
	U("a\x1f" "b", "a" R "b", 1),
	U("\x1b[31m", R "[31m", 1),
	U("\t\n\r", "\t\n\r", 0),
	U("a\tb\nc\rd", "a\tb\nc\rd", 0),
#undef U
};

START_TEST(test_utf8_repair)
{
	bool ascii = true;
	unsigned drep = 0;
	size_t len;
	char *s;

	check_unescape(utf8_cases[_i].in, utf8_cases[_i].len, utf8_cases[_i].want, utf8_cases[_i].wantlen,
	    utf8_cases[_i].rep);
	/* inside a document: accepted, repaired when read, counted once */
	s = value_of(utf8_cases[_i].in, utf8_cases[_i].len, &len, NULL, &drep);
	ck_assert_uint_eq(len, utf8_cases[_i].wantlen);
	ck_assert_mem_eq(s, utf8_cases[_i].want, len);
	/* control characters are valid UTF-8; every repair of a non-ASCII byte here is not */
	for (size_t k = 0; k < utf8_cases[_i].len; k++)
		ascii = ascii && (unsigned char)utf8_cases[_i].in[k] < 0x80;
	ck_assert(json_utf8_valid(utf8_cases[_i].in, utf8_cases[_i].len) ==
	    (utf8_cases[_i].rep == 0 || ascii));
	if (memchr(utf8_cases[_i].in, '\t', utf8_cases[_i].len) != NULL)
		ck_assert_uint_eq(drep, 1); /* raw TAB is not JSON: kept when read, but counted */
	else
		ck_assert_uint_eq(drep, utf8_cases[_i].rep > 0 ? 1 : 0);
	free(s);
}
END_TEST

START_TEST(test_nul_in_string)
{
	static const char doc[] = "{\"a\":\"x\0y\",\"k\0\":1,\"b\":\"\0\",\"c\":[\"ok\"]}";
	struct json_doc d;
	unsigned rep = 0;
	size_t len;
	char *s;

	parse_ok(&d, L(doc));
	ck_assert_ptr_nonnull(d.owned);
	ck_assert_ptr_eq(d.text, d.owned);
	ck_assert_uint_eq(d.repairs, 3);
	ck_assert_int_eq(d.ntok, 10);
	s = json_strdup(&d, json_obj_get(&d, 0, "a"), &len, &rep);
	ck_assert_uint_eq(len, 5);
	ck_assert_str_eq(s, "x\xEF\xBF\xBDy");
	ck_assert_uint_eq(rep, 1);
	free(s);
	ck_assert_int_eq(json_obj_get(&d, 0, "k"), -1);
	ck_assert_int_ne(json_obj_get(&d, 0, "k\xEF\xBF\xBD"), -1);
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "b"), "\xEF\xBF\xBD"));
	ck_assert(json_str_eq(&d, json_path(&d, 0, "c", NULL) + 1, "ok"));
	check_round_trip(&d);
	json_free(&d);
	ck_assert_int_eq(parse_status(L("{\"a\":\0}"), NULL, NULL), JSON_ERR_SYNTAX);
	ck_assert_int_eq(parse_status(L("\0{}"), NULL, NULL), JSON_ERR_SYNTAX);
}
END_TEST

START_TEST(test_raw_controls)
{
	static const char doc[] = "{\"a\":\"tab\there\",\"b\":\"bell\x07\",\"c\":\"del\x7F\"}";
	struct json_doc d;
	unsigned rep = 0;
	char *s;

	parse_ok(&d, L(doc));
	ck_assert_uint_eq(d.repairs, 2); /* TAB and BEL; DEL is a valid character */
	s = json_strdup(&d, json_obj_get(&d, 0, "a"), NULL, &rep);
	ck_assert_str_eq(s, "tab\there");
	ck_assert_uint_eq(rep, 0);
	free(s);
	s = json_strdup(&d, json_obj_get(&d, 0, "b"), NULL, &rep);
	ck_assert_str_eq(s, "bell\xEF\xBF\xBD");
	ck_assert_uint_eq(rep, 1);
	free(s);
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "c"), "del\x7F"));
	json_free(&d);
}
END_TEST

START_TEST(test_unescape_robust)
{
	/* json_unescape takes any bytes, even escapes the validator would refuse */
	check_unescape(L("\\"), L(R), 1);
	check_unescape(L("a\\x"), L("a" R "x"), 1);
	check_unescape(L("\\u12"), L(R "u12"), 1);
	check_unescape(L("\\u12G4"), L(R "u12G4"), 1);
	check_unescape(L("\\ud800\\u12"), L(R R "u12"), 2);
	check_unescape(L("\""), L("\""), 0);
	check_unescape(L(""), L(""), 0);
	/* worst case expansion: 3 bytes out per byte in */
	{
		char in[300], *out;
		size_t len;

		memset(in, 0x01, sizeof in);
		out = unescape(in, sizeof in, &len, NULL);
		ck_assert_uint_eq(len, JSON_UNESCAPED_MAX(sizeof in));
		free(out);
		memset(in, 0xFF, sizeof in);
		out = unescape(in, sizeof in, &len, NULL);
		ck_assert_uint_eq(len, JSON_UNESCAPED_MAX(sizeof in));
		free(out);
	}
}
END_TEST

START_TEST(test_str_eq_and_strdup)
{
	static const char doc[] = "{\"a\":\"hello\",\"b\":\"he\\u006clo\",\"c\":\"\",\"d\":\"x\\\\y\","
	    "\"e\":\"caf\xC3\xA9\",\"f\":\"\xFF\"}";
	struct json_doc d;
	size_t len = 99;
	char *s;

	parse_ok(&d, L(doc));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "a"), "hello"));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "b"), "hello"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "a"), "hell"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "a"), "hello!"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "b"), "hell"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "b"), "hellO"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "b"), "he\\u006clo"));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "c"), ""));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "c"), "x"));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "d"), "x\\y"));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "e"), "caf\xC3\xA9"));
	ck_assert(json_str_eq(&d, json_obj_get(&d, 0, "f"), R));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "f"), "\xFF"));
	ck_assert(!json_str_eq(&d, json_obj_get(&d, 0, "a"), NULL));
	ck_assert(!json_str_eq(&d, -1, "x"));
	ck_assert(!json_str_eq(NULL, 0, "x"));
	s = json_strdup(&d, json_obj_get(&d, 0, "d"), &len, NULL);
	ck_assert_str_eq(s, "x\\y");
	ck_assert_uint_eq(len, 3);
	free(s);
	s = json_strdup(&d, json_obj_get(&d, 0, "c"), &len, NULL);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	free(s);
	ck_assert_ptr_null(json_strdup(&d, -1, NULL, NULL));
	ck_assert_ptr_null(json_strdup(&d, 0, NULL, NULL));
	json_free(&d);
}
END_TEST

/* --- output ---------------------------------------------------------------------------------- */

START_TEST(test_write_str)
{
	struct buf b = BUF_INIT;

	check_write_str(L(""), "\"\"");
	check_write_str(L("plain text"), "\"plain text\"");
	check_write_str(L("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
	check_write_str(L("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
	check_write_str(L("\x01\x1f\x7f\x0b"), "\"\\u0001\\u001f\\u007f\\u000b\"");
	check_write_str(L("a\0b"), "\"a\\u0000b\"");
	check_write_str(L("caf\xC3\xA9 \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
	check_write_str(L("x\xE2\x80\xA8y\xE2\x80\xA9z"), "\"x\\u2028y\\u2029z\"");
	check_write_str(L("\xE2\x80\xAA"), "\"\xE2\x80\xAA\"");
	check_write_str(L("\xFF"), "\"" R "\"");
	check_write_str(L("a\xE2\x82"), "\"a" R "\"");
	check_write_str(L("\xC0\xAF" "b"), "\"" R R "b\"");
	check_write_str(L("\xED\xA0\x80"), "\"" R R R "\"");
	check_write_str(L("<b>&amp;</b>"), "\"<b>&amp;</b>\"");
	json_write_cstr(&b, NULL);
	buf_addc(&b, ' ');
	json_write_cstr(&b, "q\"");
	ck_assert_str_eq(buf_cstr(&b), "null \"q\\\"\"");
	buf_free(&b);
}
END_TEST

/* Long input whose units straddle json_write_str's internal chunks. */
START_TEST(test_write_str_long)
{
	static const char seg[] = "ab\"\\\n\xE2\x80\xA8\xC3\xA9\xFF\xF0\x9F\x98\x80\x01z";
	static const char segout[] = "ab\\\"\\\\\\n\\u2028\xC3\xA9" R "\xF0\x9F\x98\x80\\u0001z";
	struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;

	buf_addc(&want, '"');
	for (int i = 0; i < CHUNK_CROSS_REPEAT; i++) {
		buf_add(&in, seg, sizeof seg - 1);
		buf_add(&want, segout, sizeof segout - 1);
	}
	buf_addc(&want, '"');
	json_write_str(&out, in.data, in.len);
	ck_assert(!out.failed);
	ck_assert_uint_eq(out.len, want.len);
	ck_assert_mem_eq(out.data, want.data, want.len);
	/* the same content, offset by every amount up to the longest sequence */
	for (size_t shift = 1; shift < 4; shift++) {
		buf_reset(&out);
		json_write_str(&out, in.data + shift, in.len - shift);
		ck_assert(json_utf8_valid(out.data, out.len));
	}
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}
END_TEST

START_TEST(test_write_token)
{
	static const char doc[] = "{ \"a\" : [ 1 , 2.50 , -0 , 1e400 , 12345678901234567890 ] , \"b\" : { } ,"
	    " \"c\" : [ ] , \"d\" : \"\\u0041\\/x\\u2028\\n\" , \"e\" : null , \"f\":true,"
	    " \"g\" : {\"h\":[{\"i\":[]}, {}], \"j\":\"\\ud800\"}, \"\\u006b\":\"\\u0000\"}";
	struct json_doc d;
	size_t len;
	char *out;

	parse_ok(&d, L(doc));
	out = write_token_str(&d, 0, &len);
	ck_assert_str_eq(out, "{\"a\":[1,2.50,-0,1e400,12345678901234567890],\"b\":{},\"c\":[],"
	    "\"d\":\"A/x\\u2028\\n\",\"e\":null,\"f\":true,\"g\":{\"h\":[{\"i\":[]},{}],\"j\":\"" R "\"},"
	    "\"k\":\"" R "\"}");
	free(out);
	out = write_token_str(&d, json_obj_get(&d, 0, "a"), &len);
	ck_assert_str_eq(out, "[1,2.50,-0,1e400,12345678901234567890]");
	free(out);
	out = write_token_str(&d, json_obj_get(&d, 0, "g"), &len);
	ck_assert_str_eq(out, "{\"h\":[{\"i\":[]},{}],\"j\":\"" R "\"}");
	free(out);
	out = write_token_str(&d, json_path(&d, 0, "g", "h", NULL), &len);
	ck_assert_str_eq(out, "[{\"i\":[]},{}]");
	free(out);
	out = write_token_str(&d, json_obj_get(&d, 0, "d"), &len);
	ck_assert_str_eq(out, "\"A/x\\u2028\\n\"");
	free(out);
	out = write_token_str(&d, 1, &len); /* a key alone */
	ck_assert_str_eq(out, "\"a\"");
	free(out);
	out = write_token_str(&d, json_obj_get(&d, 0, "e"), &len);
	ck_assert_str_eq(out, "null");
	free(out);
	out = write_token_str(&d, -1, &len);
	ck_assert_str_eq(out, "null");
	free(out);
	check_round_trip(&d);
	json_free(&d);
}
END_TEST

START_TEST(test_write_token_repairs)
{
	static const char doc[] = "{\"bad\xFF\":\"a\x01\xC0\xAF\tb\\udc00\",\"n\":[\"\0\"]}";
	struct json_doc d;
	size_t len;
	char *out;

	parse_ok(&d, L(doc));
	ck_assert_uint_eq(d.repairs, 3);
	out = write_token_str(&d, 0, &len);
	ck_assert_str_eq(out, "{\"bad" R "\":\"a" R R R "\\tb" R "\",\"n\":[\"" R "\"]}");
	free(out);
	check_round_trip(&d);
	json_free(&d);
}
END_TEST

START_TEST(test_write_sanitized)
{
	static const char doc[] = "\xEF\xBB\xBF{ \"a\" : \"x\x01y\tz\xFF\\ud800\\ud83d\\ude00\\u0000 \\\"q\\\" \xE2\x82\" ,"
	    "\n \"\xC0\xAF\" : [ 1.000000000000000000000001 , \"\\/\\udc00\x7F\" , \"\r\n\0\" ] }";
	static const char want[] = "{ \"a\" : \"x\\u0001y\\tz\\ufffd\\ufffd\\ud83d\\ude00\\u0000 \\\"q\\\" \\ufffd\" ,"
	    "\n \"\\ufffd\\ufffd\" : [ 1.000000000000000000000001 , \"\\/\\ufffd\x7F\" , \"\\r\\n\\u0000\" ] }";
	struct json_doc d;
	size_t len;
	char *out;

	parse_ok(&d, L(doc));
	ck_assert_uint_eq(d.repairs, 4);
	json_free(&d);
	out = sanitize(L(doc), &len);
	ck_assert_str_eq(out, want);
	free(out);
}
END_TEST

START_TEST(test_write_sanitized_identity)
{
	static const char doc[] = "{ \"a\" :\n\t[1e5, -0.0, 123456789012345678901234567890, \"\\u0041\\/\\n\\ud83d\\ude00"
	    "\xF0\x9F\x98\x80 \xC3\xA9\", {}, [], true, false, null ] }\n";
	size_t len;
	char *out = sanitize(L(doc), &len);

	ck_assert_uint_eq(len, sizeof doc - 1);
	ck_assert_mem_eq(out, doc, len);
	free(out);
}
END_TEST

/* --- UTF-8 helpers --------------------------------------------------------------------------- */

START_TEST(test_utf8_prefix)
{
	static const char s[] = "a\xC3\xA9\xF0\x9F\x98\x80" "b\xE2\x82\xAC";
	static const size_t want[] = { 0, 1, 3, 7, 8, 11, 11 };

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_uint_eq(json_utf8_prefix(L(s), i), want[i]);
	ck_assert_uint_eq(json_utf8_prefix(L(""), 5), 0);
	/* an invalid subpart is one character, never cut */
	ck_assert_uint_eq(json_utf8_prefix(L("\xE2\x82" "A"), 1), 2);
	ck_assert_uint_eq(json_utf8_prefix(L("\xFF\xFF" "A"), 1), 1);
	ck_assert_uint_eq(json_utf8_prefix(L("\xF0\x9F\x98"), 1), 3);
	/* every prefix of a valid string is valid */
	for (size_t n = 0; n <= sizeof s; n++) {
		size_t k = json_utf8_prefix(L(s), n);

		ck_assert(json_utf8_valid(s, k));
		ck_assert_uint_le(k, sizeof s - 1);
	}
}
END_TEST

START_TEST(test_utf8_cut)
{
	static const char s[] = "a\xC3\xA9\xF0\x9F\x98\x80" "b\xE2\x82\xAC";
	/* the longest prefix of at most max bytes that ends where a character ends */
	static const size_t want[] = { 0, 1, 1, 3, 3, 3, 3, 7, 8, 8, 8, 11, 11 };

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		ck_assert_uint_eq(json_utf8_cut(L(s), i), want[i]);
		ck_assert(json_utf8_valid(s, json_utf8_cut(L(s), i)));
	}
	/* a sequence cut short at the end of the string is dropped when the limit reaches it */
	ck_assert_uint_eq(json_utf8_cut(L("ab\xE2\x82"), 3), 2);
	ck_assert_uint_eq(json_utf8_cut(L(""), 0), 0);
}
END_TEST

START_TEST(test_utf8_valid)
{
	ck_assert(json_utf8_valid(L("")));
	ck_assert(json_utf8_valid(L("plain ascii, long enough for the word loop")));
	ck_assert(json_utf8_valid(L("\0\x01\x7F")));
	ck_assert(json_utf8_valid(L("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xEF\xBF\xBF")));
	ck_assert(!json_utf8_valid(L("abcdefghijklmnop\xC0\x80")));
	ck_assert(!json_utf8_valid(L("\xE0\x9F\xBF")));
	ck_assert(!json_utf8_valid(L("\xED\xA0\x80")));
	ck_assert(!json_utf8_valid(L("\xF4\x90\x80\x80")));
	ck_assert(!json_utf8_valid(L("\xF5\x80\x80\x80")));
	ck_assert(!json_utf8_valid(L("abc\xE2\x82")));
	ck_assert(!json_utf8_valid(L("\x80")));
	ck_assert(!json_utf8_valid(L("\xC3\xA9\xC3")));
}
END_TEST

/* --- navigation ------------------------------------------------------------------------------ */

START_TEST(test_navigation)
{
	static const char doc[] = "{\"message\":{\"type\":\"x\",\"call\":{\"id\":\"c1\",\"n\":[1,[2,3],{\"z\":[4]},5]}},"
	    "\"list\":[{\"a\":[1,2]},{\"b\":{\"c\":{}}},\"s\"],\"dup\":1,\"dup\":2,\"last\":{}}";
	static const char *const keys[] = { "message", "list", "dup", "dup", "last" };
	struct json_doc d;
	int t, arr, n, i;
	int64_t v;
	bool bv;

	parse_ok(&d, L(doc));
	t = json_path(&d, 0, "message", "call", "id", NULL);
	ck_assert(json_str_eq(&d, t, "c1"));
	ck_assert_int_eq(json_path(&d, 0, "message", "call", "nope", NULL), -1);
	ck_assert_int_eq(json_path(&d, 0, "message", "type", "deeper", NULL), -1);
	ck_assert_int_eq(json_path(&d, 0, NULL), 0);
	ck_assert_int_eq(json_path(&d, -1, NULL), -1);
	ck_assert_int_eq(json_path(&d, -1, "message", NULL), -1);

	/* array iteration with nested containers between siblings */
	arr = json_path(&d, 0, "message", "call", "n", NULL);
	ck_assert_int_eq(json_array_len(&d, arr), 4);
	n = 0;
	for (i = json_first(&d, arr); i >= 0; i = json_after(&d, arr, i))
		n++;
	ck_assert_int_eq(n, 4);
	i = json_first(&d, arr);
	ck_assert(json_get_i64(&d, i, &v) && v == 1);
	i = json_after(&d, arr, i);
	ck_assert_int_eq(json_array_len(&d, i), 2);
	i = json_after(&d, arr, i);
	ck_assert(json_is_object(&d, i));
	ck_assert_int_eq(json_array_len(&d, json_obj_get(&d, i, "z")), 1);
	i = json_after(&d, arr, i);
	ck_assert(json_get_i64(&d, i, &v) && v == 5);
	ck_assert_int_eq(json_after(&d, arr, i), -1);

	/* object iteration yields keys; the value is key + 1 */
	n = 0;
	for (i = json_first(&d, 0); i >= 0; i = json_after(&d, 0, i)) {
		ck_assert_int_lt(n, 5);
		ck_assert(json_str_eq(&d, i, keys[n]));
		n++;
	}
	ck_assert_int_eq(n, 5);
	/* duplicate keys: the first wins */
	ck_assert(json_get_i64(&d, json_obj_get(&d, 0, "dup"), &v) && v == 1);
	ck_assert(json_is_object(&d, json_obj_get(&d, 0, "last")));

	arr = json_obj_get(&d, 0, "list");
	ck_assert_int_eq(json_array_len(&d, arr), 3);
	i = json_after(&d, arr, json_after(&d, arr, json_first(&d, arr)));
	ck_assert(json_str_eq(&d, i, "s"));

	/* wrong container, wrong kinds, absent tokens */
	ck_assert_int_eq(json_after(&d, 0, json_first(&d, arr)), -1);
	ck_assert_int_eq(json_after(&d, arr, 0), -1);
	ck_assert_int_eq(json_after(&d, -1, 1), -1);
	ck_assert_int_eq(json_after(&d, arr, -1), -1);
	ck_assert_int_eq(json_first(&d, json_path(&d, 0, "message", "type", NULL)), -1);
	ck_assert_int_eq(json_first(&d, -1), -1);
	ck_assert_int_eq(json_first(&d, d.ntok), -1);
	ck_assert_int_eq(json_array_len(&d, 0), -1);
	ck_assert_int_eq(json_array_len(&d, -1), -1);
	ck_assert_int_eq(json_obj_get(&d, arr, "a"), -1);
	ck_assert_int_eq(json_obj_get(&d, -1, "a"), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, NULL), -1);
	ck_assert_int_eq(json_obj_get(&d, 0, "type"), -1); /* only direct members */
	ck_assert(!json_is_object(&d, -1) && !json_is_array(&d, -1) && !json_is_string(&d, -1));
	ck_assert(!json_is_number(&d, -1) && !json_is_null(&d, -1) && !json_is_bool(&d, -1, &bv));
	ck_assert(!json_is_object(&d, d.ntok));
	json_free(&d);
}
END_TEST

/* --- fixtures -------------------------------------------------------------------------------- */

static char *
fixture_dir(void)
{
	const char *top = getenv("top_srcdir");
	char *dir;

	if (top == NULL || *top == '\0')
		top = TOP_SRCDIR;
	dir = malloc(strlen(top) + sizeof "/tests/fixtures");
	ck_assert_ptr_nonnull(dir);
	strcpy(dir, top);
	strcat(dir, "/tests/fixtures");
	return dir;
}

static char *
read_file(const char *dir, const char *name, size_t *len)
{
	char path[PATH_MAX];
	FILE *f;
	char *data;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	data = malloc(FIXTURE_MAX_BYTES);
	ck_assert_ptr_nonnull(data);
	*len = fread(data, 1, FIXTURE_MAX_BYTES, f);
	ck_assert(!ferror(f));
	ck_assert_uint_lt(*len, FIXTURE_MAX_BYTES);
	fclose(f);
	return data;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

START_TEST(test_fixtures)
{
	char *dir = fixture_dir();
	DIR *dh = opendir(dir);
	struct dirent *e;
	int count = 0;

	ck_assert_msg(dh != NULL, "no fixture folder %s", dir);
	while ((e = readdir(dh)) != NULL) {
		struct json_doc d;
		enum json_status st;
		size_t len, slen;
		char *data, *san;

		if (!has_suffix(e->d_name, ".json"))
			continue;
		data = read_file(dir, e->d_name, &len);
		st = json_parse(&d, data, len, NULL);
		ck_assert_msg(st == JSON_OK, "%s: %s at %zu", e->d_name, json_errcode(st), d.err_offset);
		ck_assert_msg(d.repairs == 0, "%s: %u repairs", e->d_name, d.repairs);
		/* every string reads back as valid UTF-8 */
		for (int t = 0; t < d.ntok; t++) {
			if (json_is_string(&d, t)) {
				unsigned rep = 0;
				char *s = json_strdup(&d, t, &slen, &rep);

				ck_assert(json_utf8_valid(s, slen));
				ck_assert_uint_eq(rep, 0);
				free(s);
			}
		}
		check_round_trip(&d);
		json_free(&d);
		san = sanitize(data, len, &slen);
		ck_assert_uint_eq(slen, len);
		ck_assert_mem_eq(san, data, len);
		free(san);
		free(data);
		count++;
	}
	closedir(dh);
	ck_assert_int_ge(count, FIXTURE_MIN_COUNT);
	free(dir);
}
END_TEST

START_TEST(test_fixture_truncated)
{
	char *dir = fixture_dir();
	size_t len, off;
	char *data = read_file(dir, "84-malformed-truncated-body.txt", &len);

	ck_assert_int_eq(parse_status(data, len, NULL, &off), JSON_ERR_TRUNCATED);
	ck_assert_uint_eq(off, len);
	free(data);
	free(dir);
}
END_TEST

START_TEST(test_fixture_unicode_message)
{
	char *dir = fixture_dir();
	size_t len;
	char *data = read_file(dir, "56-callF-conversation-unicode-html.json", &len);
	struct json_doc d;
	int msgs, m;
	char *text;

	parse_ok(&d, data, len);
	msgs = json_path(&d, 0, "message", "messages", NULL);
	ck_assert_int_ge(json_array_len(&d, msgs), 8);
	m = json_first(&d, msgs);
	for (int i = 0; i < 7; i++)
		m = json_after(&d, msgs, m);
	text = json_strdup(&d, json_obj_get(&d, m, "text"), NULL, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, "Caf\xC3\xA9 \xE2\x98\x95 at 5? \xF0\x9F\x98\x80 \\o/ \"quoted\" /slash "
	    "<b>not bold</b>");
	ck_assert(json_str_eq(&d, json_obj_get(&d, m, "text"), text));
	free(text);
	json_free(&d);
	free(data);
	free(dir);
}
END_TEST

/* --- size: nothing quadratic ----------------------------------------------------------------- */

START_TEST(test_big_document)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	struct json_doc d;
	int arr, n = 0;

	buf_adds(&b, "{\"items\":[");
	for (int i = 0; i < BIG_DOC_ELEMENTS; i++)
		buf_printf(&b, "%s{\"key\":\"value number %d with some padding text in it, and more "
		    "padding to make the body about four megabytes long........\",\"n\":%d}",
		    i ? "," : "", i, i);
	buf_adds(&b, "]}");
	ck_assert_int_eq(json_parse(&d, b.data, b.len, NULL), JSON_OK);
	ck_assert_int_eq(d.ntok, 3 + BIG_DOC_ELEMENTS * 5);
	arr = json_obj_get(&d, 0, "items");
	for (int i = json_first(&d, arr); i >= 0; i = json_after(&d, arr, i))
		n++;
	ck_assert_int_eq(n, BIG_DOC_ELEMENTS);
	json_write_token(&out, &d, 0);
	ck_assert_uint_eq(out.len, b.len);
	ck_assert_mem_eq(out.data, b.data, b.len);
	json_free(&d);
	buf_free(&out);
	buf_free(&b);
}
END_TEST

START_TEST(test_big_string)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	struct json_doc d;
	size_t len;
	char *s;

	buf_adds(&b, "{\"s\":\"");
	while (b.len < BIG_STRING_BYTES)
		buf_adds(&b, "plain text \\n \\u00e9 \xC3\xA9 \xF0\x9F\x98\x80 \\\" ");
	buf_adds(&b, "\xFF\"}");
	ck_assert_int_eq(json_parse(&d, b.data, b.len, NULL), JSON_OK);
	ck_assert_uint_eq(d.repairs, 1);
	s = json_strdup(&d, 2, &len, NULL);
	ck_assert(json_utf8_valid(s, len));
	json_write_str(&out, s, len);
	ck_assert(!out.failed);
	free(s);
	buf_reset(&out);
	json_write_token(&out, &d, 0);
	ck_assert(json_utf8_valid(out.data, out.len));
	buf_reset(&out);
	json_write_sanitized(&out, b.data, b.len);
	ck_assert_uint_eq(out.len, b.len + 5); /* one raw byte became \ufffd */
	json_free(&d);
	buf_free(&out);
	buf_free(&b);
}
END_TEST

/* --- randomized ------------------------------------------------------------------------------ */

/* A reference recognizer written straight from the RFC 8259 grammar, recursive and slow, with the
 * same tolerance as json_parse inside strings (any raw byte). It also counts tokens. */
struct ref {
	const unsigned char *p, *end;
	int ntok;
};

static bool ref_value(struct ref *r, int depth);

static void
ref_ws(struct ref *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static bool
ref_digit(const struct ref *r)
{
	return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static bool
ref_string(struct ref *r)
{
	if (r->p >= r->end || *r->p != '"')
		return false;
	r->p++;
	while (r->p < r->end) {
		unsigned char c = *r->p++;

		if (c == '"') {
			r->ntok++;
			return true;
		}
		if (c != '\\')
			continue;
		if (r->p >= r->end)
			return false;
		c = *r->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, r->p++)
				if (r->p >= r->end || !strchr("0123456789abcdefABCDEF", *r->p) || *r->p == 0)
					return false;
		} else if (c == 0 || !strchr("\"\\/bfnrt", c)) {
			return false;
		}
	}
	return false;
}

static bool
ref_number(struct ref *r)
{
	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p < r->end && *r->p == '0')
		r->p++;
	else if (ref_digit(r))
		while (ref_digit(r))
			r->p++;
	else
		return false;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!ref_digit(r))
			return false;
		while (ref_digit(r))
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!ref_digit(r))
			return false;
		while (ref_digit(r))
			r->p++;
	}
	r->ntok++;
	return true;
}

static bool
ref_literal(struct ref *r, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
		return false;
	r->p += n;
	r->ntok++;
	return true;
}

static bool
ref_value(struct ref *r, int depth)
{
	if (r->p >= r->end || depth > REF_MAX_DEPTH)
		return false;
	switch (*r->p) {
	case '{':
		r->p++;
		r->ntok++;
		ref_ws(r);
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return true;
		}
		for (;;) {
			ref_ws(r);
			if (!ref_string(r))
				return false;
			ref_ws(r);
			if (r->p >= r->end || *r->p++ != ':')
				return false;
			ref_ws(r);
			if (!ref_value(r, depth + 1))
				return false;
			ref_ws(r);
			if (r->p >= r->end)
				return false;
			if (*r->p == '}') {
				r->p++;
				return true;
			}
			if (*r->p++ != ',')
				return false;
		}
	case '[':
		r->p++;
		r->ntok++;
		ref_ws(r);
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return true;
		}
		for (;;) {
			ref_ws(r);
			if (!ref_value(r, depth + 1))
				return false;
			ref_ws(r);
			if (r->p >= r->end)
				return false;
			if (*r->p == ']') {
				r->p++;
				return true;
			}
			if (*r->p++ != ',')
				return false;
		}
	case '"':
		return ref_string(r);
	case 't':
		return ref_literal(r, "true");
	case 'f':
		return ref_literal(r, "false");
	case 'n':
		return ref_literal(r, "null");
	default:
		return ref_number(r);
	}
}

static bool
ref_valid(const char *s, size_t n, int *ntok)
{
	struct ref r = { (const unsigned char *)s, (const unsigned char *)s + n, 0 };

	if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		r.p += 3;
	ref_ws(&r);
	if (!ref_value(&r, 1))
		return false;
	ref_ws(&r);
	*ntok = r.ntok;
	return r.p == r.end;
}

static uint64_t
rng_next(uint64_t *state)
{
	/* xorshift64*: deterministic across platforms */
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1DULL;
}

static const char *const fuzz_seeds[] = {
	"{\"a\":[1,-2.5e3,true,false,null,\"x\\u0041\\n\\ud83d\\ude00\xC3\xA9\"],\"b\":{\"c\":[{},[]]}}",
	("{ \"message\" : { \"type\" : \"conversation-update\", \"messages\" : [ { \"role\" : \"user\","
	    " \"text\" : \"Caf\\u00e9 \xE2\x98\x95 \\\"q\\\" \\/ <b>\" , \"t\" : 1784041509310 } ] } }"),
	"{\"k\":\"\\ud800\\udc00\\u0000\\t\",\"e\":0.5E+7,\"z\":-0,\"n\":[[[[1]]]],\"s\":\"\xF0\x9F\x98\x80\"}",
	"\xEF\xBB\xBF{\"bom\":\"yes\",\"x\":\"\xE2\x82\xAC\"}",
	"{\"\":\"\",\"a\":{\"b\":{\"c\":{\"d\":[0,1,2,3,4,5,6,7,8,9]}}}}",
};

static const char fuzz_bytes[] = "{}[]\":,\\/ u0123456789abcdefABCDEF-+.eEtrfnl\t\n\r";
static const unsigned char fuzz_high[] = {
	0x00, 0x01, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
};

static unsigned char
fuzz_byte(uint64_t *rng)
{
	uint64_t r = rng_next(rng);

	switch (r % 4) {
	case 0:
		return (unsigned char)(r >> 8);
	case 1:
		return fuzz_high[(r >> 8) % sizeof fuzz_high];
	default:
		return (unsigned char)fuzz_bytes[(r >> 8) % (sizeof fuzz_bytes - 1)];
	}
}

static void
fuzz_check_accepted(const struct json_doc *d, const char *in, size_t len)
{
	size_t slen;
	char *out;

	for (int t = 0; t < d->ntok; t++) {
		ck_assert_int_le(d->next[t], d->ntok);
		ck_assert_int_gt(d->next[t], t);
		if (json_is_string(d, t)) {
			char *s = json_strdup(d, t, &slen, NULL);

			ck_assert_ptr_nonnull(s);
			ck_assert(json_utf8_valid(s, slen));
			ck_assert_uint_eq(strlen(s), slen);
			ck_assert(json_str_eq(d, t, s));
			free(s);
		}
	}
	check_round_trip(d);
	out = sanitize(in, len, &slen);
	if (d->repairs == 0) {
		size_t skip = d->bom ? 3 : 0;

		ck_assert_uint_eq(slen, len - skip);
		ck_assert_mem_eq(out, in + skip, slen);
	}
	free(out);
}

START_TEST(test_fuzz_mutations)
{
	uint64_t rng = FUZZ_SEED;
	struct buf b = BUF_INIT;
	int accepted = 0, rejected = 0;

	for (int it = 0; it < FUZZ_ITERATIONS; it++) {
		const char *seed = fuzz_seeds[rng_next(&rng) % (sizeof fuzz_seeds / sizeof fuzz_seeds[0])];
		int nmut = 1 + (int)(rng_next(&rng) % FUZZ_MAX_MUTATIONS), ref_ntok = 0;
		struct json_limits lim = { 0, 0 };
		struct json_doc d;
		enum json_status st;
		bool valid;

		buf_reset(&b);
		buf_adds(&b, seed);
		for (int m = 0; m < nmut; m++) {
			size_t pos = b.len ? rng_next(&rng) % b.len : 0;

			switch (rng_next(&rng) % 3) {
			case 0:
				if (b.len)
					b.data[pos] = (char)fuzz_byte(&rng);
				break;
			case 1:
				buf_addc(&b, 0);
				memmove(b.data + pos + 1, b.data + pos, b.len - 1 - pos);
				b.data[pos] = (char)fuzz_byte(&rng);
				break;
			default:
				if (b.len) {
					memmove(b.data + pos, b.data + pos + 1, b.len - pos - 1);
					b.len--;
				}
				break;
			}
		}
		if (it % 7 == 0) {
			lim.max_depth = 1 + (unsigned)(rng_next(&rng) % 6);
			lim.max_tokens = 1 + (unsigned)(rng_next(&rng) % 40);
		}
		st = json_parse(&d, b.data, b.len, &lim);
		valid = ref_valid(b.data, b.len, &ref_ntok);
		if (st == JSON_OK) {
			ck_assert_msg(valid, "iteration %d: accepted invalid \"%.*s\"", it, (int)b.len, b.data);
			ck_assert_int_eq(d.ntok, ref_ntok);
			fuzz_check_accepted(&d, b.data, b.len);
			json_free(&d);
			accepted++;
		} else {
			ck_assert_ptr_null(d.tok);
			ck_assert_uint_le(d.err_offset, b.len);
			if (st == JSON_ERR_NOT_OBJECT)
				ck_assert(valid);
			else if (st != JSON_ERR_DEPTH && st != JSON_ERR_TOKENS)
				ck_assert_msg(!valid, "iteration %d: refused valid (%s) \"%.*s\"", it,
				    json_errcode(st), (int)b.len, b.data);
			rejected++;
		}
	}
	/* the mutations must exercise both outcomes */
	ck_assert_int_gt(accepted, FUZZ_ITERATIONS / 20);
	ck_assert_int_gt(rejected, FUZZ_ITERATIONS / 20);
	buf_free(&b);
}
END_TEST

/* --- suite ----------------------------------------------------------------------------------- */

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, test_valid_nested);
	tcase_add_test(tc, test_valid_whitespace);
	tcase_add_test(tc, test_value_kinds);
	tcase_add_loop_test(tc, test_valid_numbers, 0, sizeof valid_numbers / sizeof valid_numbers[0]);
	tcase_add_test(tc, test_escaped_keys);
	tcase_add_test(tc, test_big_integers_verbatim);
	tcase_add_test(tc, test_get_numbers);
	tcase_add_test(tc, test_bom);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_add_loop_test(tc, test_bad_documents, 0, sizeof bad_cases / sizeof bad_cases[0]);
	tcase_add_test(tc, test_null_and_empty_input);
	tcase_add_test(tc, test_truncated_everywhere);
	tcase_add_test(tc, test_json_strerror);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_depth_default);
	tcase_add_test(tc, test_depth_custom);
	tcase_add_test(tc, test_token_limit);
	tcase_add_test(tc, test_token_count_matches);
	suite_add_tcase(s, tc);

	tc = tcase_create("strings");
	tcase_add_test(tc, test_every_escape);
	tcase_add_test(tc, test_surrogates);
	tcase_add_test(tc, test_escaped_nul);
	tcase_add_loop_test(tc, test_utf8_repair, 0, sizeof utf8_cases / sizeof utf8_cases[0]);
	tcase_add_test(tc, test_nul_in_string);
	tcase_add_test(tc, test_raw_controls);
	tcase_add_test(tc, test_unescape_robust);
	tcase_add_test(tc, test_str_eq_and_strdup);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_test(tc, test_write_str);
	tcase_add_test(tc, test_write_str_long);
	tcase_add_test(tc, test_write_token);
	tcase_add_test(tc, test_write_token_repairs);
	tcase_add_test(tc, test_write_sanitized);
	tcase_add_test(tc, test_write_sanitized_identity);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, test_utf8_prefix);
	tcase_add_test(tc, test_utf8_cut);
	tcase_add_test(tc, test_utf8_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("navigation");
	tcase_add_test(tc, test_navigation);
	suite_add_tcase(s, tc);

	tc = tcase_create("fixtures");
	tcase_set_timeout(tc, SLOW_TIMEOUT);
	tcase_add_test(tc, test_fixtures);
	tcase_add_test(tc, test_fixture_truncated);
	tcase_add_test(tc, test_fixture_unicode_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("size");
	tcase_set_timeout(tc, SLOW_TIMEOUT);
	tcase_add_test(tc, test_big_document);
	tcase_add_test(tc, test_big_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, SLOW_TIMEOUT);
	tcase_add_test(tc, test_fuzz_mutations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IONBF, 0);
	sr = srunner_create(json_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
