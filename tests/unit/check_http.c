/* check_http: unit tests of what the webhook port applies before an event is parsed: the
 * Content-Encoding names, inflating gzip and deflate under a cap (bombs, truncation, trailing bytes,
 * several members), the secrets file (format, limits, rotation detection, matching), and log_text,
 * which every payload string passes through on its way to a log line. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <zlib.h>

#include "buf.h"
#include "check_util.h"
#include "http_inflate.h"
#include "http_rate.h"
#include "http_secret.h"
#include "log.h"

CHECK_TMP_FIXTURE("check_http")

/* Compresses in[0..n) as gzip (wbits 31) or zlib (15) into out. */
static void
deflate_into(const void *in, size_t n, int wbits, struct buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
	buf_reset(out);
	ck_assert(buf_reserve(out, deflateBound(&z, (uLong)n)));
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = (unsigned char *)out->data;
	z.avail_out = (uInt)deflateBound(&z, (uLong)n);
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	out->len = z.total_out;
	deflateEnd(&z);
}

START_TEST(test_encoding_names)
{
	ck_assert_int_eq(http_encoding_parse(NULL), HTTP_ENC_IDENTITY);
	ck_assert_int_eq(http_encoding_parse("identity"), HTTP_ENC_IDENTITY);
	ck_assert_int_eq(http_encoding_parse(" GZIP "), HTTP_ENC_GZIP);
	ck_assert_int_eq(http_encoding_parse("x-gzip"), HTTP_ENC_GZIP);
	ck_assert_int_eq(http_encoding_parse("Deflate"), HTTP_ENC_DEFLATE);
	ck_assert_int_eq(http_encoding_parse("br"), HTTP_ENC_UNKNOWN);
	ck_assert_int_eq(http_encoding_parse("gzip, br"), HTTP_ENC_UNKNOWN);
	ck_assert_int_eq(http_encoding_parse("gzipx"), HTTP_ENC_UNKNOWN);
	ck_assert_int_eq(http_encoding_parse(""), HTTP_ENC_IDENTITY); /* an empty header names no coding */
}
END_TEST

START_TEST(test_inflate)
{
	static const char doc[] = "{\"message\":{\"type\":\"status-update\",\"call\":{\"id\":\"gz\"}}}";
	size_t n = sizeof(doc) - 1;
	struct buf z = BUF_INIT, out = BUF_INIT, two = BUF_INIT;
	/* gzip and deflate round trips */
	deflate_into(doc, n, 31, &z);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, z.len, 4096, &out), HTTP_INFLATE_OK);
	ck_assert_uint_eq(out.len, n);
	ck_assert(memcmp(out.data, doc, n) == 0);
	/* exactly at the cap is fine; one byte under it is too large */
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, z.len, n, &out), HTTP_INFLATE_OK);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, z.len, n - 1, &out), HTTP_INFLATE_TOO_LARGE);
	/* cut short, trailing bytes, the wrong wrapper, not compressed at all */
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, z.len - 4, 4096, &out), HTTP_INFLATE_BAD);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, 5, 4096, &out), HTTP_INFLATE_BAD);
	buf_add(&two, z.data, z.len);
	buf_adds(&two, "junk");
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, two.data, two.len, 4096, &out), HTTP_INFLATE_BAD);
	ck_assert_int_eq(http_inflate(HTTP_ENC_DEFLATE, z.data, z.len, 4096, &out), HTTP_INFLATE_BAD);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, doc, n, 4096, &out), HTTP_INFLATE_BAD);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, "", 0, 4096, &out), HTTP_INFLATE_BAD);
	/* two gzip members make one body */
	buf_reset(&two);
	deflate_into(doc, 10, 31, &z);
	buf_add(&two, z.data, z.len);
	deflate_into(doc + 10, n - 10, 31, &z);
	buf_add(&two, z.data, z.len);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, two.data, two.len, 4096, &out), HTTP_INFLATE_OK);
	ck_assert(out.len == n && memcmp(out.data, doc, n) == 0);
	deflate_into(doc, n, 15, &z);
	ck_assert_int_eq(http_inflate(HTTP_ENC_DEFLATE, z.data, z.len, 4096, &out), HTTP_INFLATE_OK);
	ck_assert(out.len == n && memcmp(out.data, doc, n) == 0);
	/* "deflate" sent as the bare stream, without the zlib wrapper, as some senders do */
	deflate_into(doc, n, -15, &z);
	ck_assert_int_eq(http_inflate(HTTP_ENC_DEFLATE, z.data, z.len, 4096, &out), HTTP_INFLATE_OK);
	ck_assert(out.len == n && memcmp(out.data, doc, n) == 0);
	/* a bomb: 64 MiB of zeros in a few kilobytes stops at the cap, having produced no more */
	size_t big = 64u << 20;
	char *zeros = calloc(1, big);
	ck_assert_ptr_nonnull(zeros);
	deflate_into(zeros, big, 31, &z);
	free(zeros);
	ck_assert_uint_lt(z.len, 100000);
	ck_assert_int_eq(http_inflate(HTTP_ENC_GZIP, z.data, z.len, 1u << 20, &out), HTTP_INFLATE_TOO_LARGE);
	ck_assert_uint_le(out.len, (1u << 20) + 1);
	buf_free(&z);
	buf_free(&out);
	buf_free(&two);
}
END_TEST

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

START_TEST(test_secrets_file)
{
	static struct http_secrets s;
	char err[512];
	write_file("# comment\n\n  first-secret  \r\nsecond\tsecret\n#not-a-secret\n");
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), 0);
	ck_assert_int_eq(s.n, 2);
	ck_assert(!s.world_readable);
	ck_assert(http_secrets_match(&s, "first-secret", 12));
	ck_assert(http_secrets_match(&s, "second\tsecret", 13));
	ck_assert(!http_secrets_match(&s, "first-secre", 11));
	ck_assert(!http_secrets_match(&s, "first-secrets", 13));
	ck_assert(!http_secrets_match(&s, "FIRST-SECRET", 12));
	ck_assert(!http_secrets_match(&s, "", 0));
	ck_assert(!http_secrets_match(&s, "#not-a-secret", 13));
	ck_assert(!http_secrets_match(&s, "  first-secret  ", 16));
	ck_assert_int_eq(http_secrets_changed(&s, path), 0);
	/* a change is seen (size or time), and a failed load keeps the secrets loaded before */
	write_file("# only comments\n\n");
	ck_assert_int_eq(http_secrets_changed(&s, path), 1);
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "holds no secret") && strstr(err, path), "err: %s", err);
	ck_assert(http_secrets_match(&s, "first-secret", 12));
	/* limits */
	char *longline = malloc(HTTP_SECRET_MAX_LEN + 3);
	memset(longline, 'k', HTTP_SECRET_MAX_LEN + 1);
	strcpy(longline + HTTP_SECRET_MAX_LEN + 1, "\n");
	write_file(longline);
	free(longline);
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "line 1") && strstr(err, "longer than"), "err: %s", err);
	struct buf many = BUF_INIT;
	for (int i = 0; i <= HTTP_SECRET_MAX; i++)
		buf_printf(&many, "secret-number-%d\n", i);
	write_file(buf_cstr(&many));
	buf_free(&many);
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "more than"), "err: %s", err);
	/* exactly the maximum length, no trailing newline, world-readable */
	char *exact = malloc(HTTP_SECRET_MAX_LEN + 1);
	memset(exact, 'e', HTTP_SECRET_MAX_LEN);
	exact[HTTP_SECRET_MAX_LEN] = '\0';
	write_file(exact);
	chmod(path, 0644);
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), 0);
	ck_assert(s.world_readable);
	ck_assert(http_secrets_match(&s, exact, HTTP_SECRET_MAX_LEN));
	free(exact);
	/* a missing file, a directory */
	unlink(path);
	ck_assert_int_eq(http_secrets_changed(&s, path), -1);
	ck_assert_int_eq(http_secrets_load(&s, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "No such file"), "err: %s", err);
	ck_assert_int_eq(http_secrets_load(&s, dir, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a regular file"), "err: %s", err);
	http_secrets_clear(&s);
	ck_assert_int_eq(s.n, 0);
}
END_TEST

static const char *
logged(const char *s, size_t max_chars)
{
	static struct buf b;
	buf_reset(&b);
	log_text(&b, s, strlen(s), max_chars);
	return buf_cstr(&b);
}

START_TEST(test_log_text)
{
	ck_assert_str_eq(logged("plain text", 80), "plain text");
	ck_assert_str_eq(logged("two\nlines", 80), "two\xE2\x8F\x8Elines");
	ck_assert_str_eq(logged("crlf\r\nend", 80), "crlf\xE2\x8F\x8E" "end");
	ck_assert_str_eq(logged("lone\rcr", 80), "lone\xE2\x8F\x8E" "cr");
	ck_assert_str_eq(logged("tab\there", 80), "tab\xE2\x86\x92here");
	ck_assert_str_eq(logged("esc\x1b[31mred", 80), "esc\xEF\xBF\xBD[31mred");
	/* bidi controls would reorder the rest of the line on a terminal */
	ck_assert_str_eq(logged("a\xE2\x80\xAE" "b", 80), "a\xEF\xBF\xBD" "b");   /* U+202E */
	ck_assert_str_eq(logged("a\xE2\x81\xA6" "b", 80), "a\xEF\xBF\xBD" "b");   /* U+2066 */
	ck_assert_str_eq(logged("a\xE2\x80\x8F" "b", 80), "a\xEF\xBF\xBD" "b");   /* U+200F */
	ck_assert_str_eq(logged("a\xD8\x9C" "b", 80), "a\xEF\xBF\xBD" "b");       /* U+061C */
	ck_assert_str_eq(logged("a\xE2\x80\x94" "b", 80), "a\xE2\x80\x94" "b");   /* an em dash stays */
	ck_assert_str_eq(logged("caf\xC3\xA9 \xF0\x9F\x98\x80", 80), "caf\xC3\xA9 \xF0\x9F\x98\x80");
	/* bytes that are not UTF-8 (a path is what the client sent): one U+FFFD per maximal subpart */
	ck_assert_str_eq(logged("/\xFF\xFE/a", 80), "/\xEF\xBF\xBD\xEF\xBF\xBD/a");
	ck_assert_str_eq(logged("\xE2\x82x", 80), "\xEF\xBF\xBDx");                 /* cut short */
	ck_assert_str_eq(logged("\xC0\xAF", 80), "\xEF\xBF\xBD\xEF\xBF\xBD");      /* overlong */
	ck_assert_str_eq(logged("\xED\xA0\x80", 80), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
	/* cut at a character boundary, marked */
	ck_assert_str_eq(logged("\xC3\xA9\xC3\xA9\xC3\xA9", 2), "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
}
END_TEST

/* A path a client put a credential into is logged without it, each occurrence, before the cut. */
START_TEST(test_log_text_redacted)
{
	static struct buf b;
	const char *sec[] = { "tok-123", "", "s3cr3t" };
	const size_t lens[] = { 7, 0, 6 };
	const char *p = "/api/calls/tok-123/x/s3cr3ts3cr3t/tok-12";
	log_text_redacted(&b, p, strlen(p), 80, sec, lens, 3);
	ck_assert_str_eq(buf_cstr(&b), "/api/calls/[redacted]/x/[redacted][redacted]/tok-12");
	buf_reset(&b);
	p = "/aaaaaaaaaa/tok-123";
	log_text_redacted(&b, p, strlen(p), 14, sec, lens, 3);
	ck_assert_str_eq(buf_cstr(&b), "/aaaaaaaaaa/[r\xE2\x80\xA6");
	buf_reset(&b);
	log_text_redacted(&b, "\n/tok-123", 9, 80, sec, lens, 0);
	ck_assert_str_eq(buf_cstr(&b), "\xE2\x8F\x8E/tok-123");
	buf_free(&b);
}
END_TEST

static struct sockaddr_storage
addr_of(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		ss.ss_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
	} else {
		ss.ss_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr), 1);
	}
	return ss;
}

/* The webhook rate per client address: a burst, then the rate; addresses apart, an IPv6 /64 one client. */
START_TEST(test_rate)
{
	static struct http_rate r;
	http_rate_init(&r, 10, 3);
	struct sockaddr_storage a = addr_of("192.0.2.1"), b = addr_of("192.0.2.2");
	struct sockaddr_storage v6a = addr_of("2001:db8:1:2::1"), v6b = addr_of("2001:db8:1:2:ffff::9"),
	                        v6c = addr_of("2001:db8:1:3::1");
	uint64_t now = 1000000;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&a, now), 0);
	uint64_t wait = http_rate_take(&r, (struct sockaddr *)&a, now);
	ck_assert_uint_eq(wait, 100); /* one token at 10 a second */
	ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&b, now), 0);
	ck_assert_uint_ne(http_rate_take(&r, (struct sockaddr *)&a, now + 99), 0);
	ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&a, now + 100), 0);
	/* a long pause fills the bucket to its burst, no more */
	now += 60000;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&a, now), 0);
	ck_assert_uint_ne(http_rate_take(&r, (struct sockaddr *)&a, now), 0);
	/* one /64 is one client; another /64 another */
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)(i % 2 ? &v6a : &v6b), now), 0);
	ck_assert_uint_ne(http_rate_take(&r, (struct sockaddr *)&v6b, now), 0);
	ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&v6c, now), 0);
	/* rate 0: no limit */
	http_rate_init(&r, 0, 0);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&a, now), 0);
	/* many addresses: bounded memory, and every new one starts with a full bucket */
	http_rate_init(&r, 1, 1);
	for (unsigned i = 0; i < 3 * HTTP_RATE_SLOTS; i++) {
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + i) };
		ck_assert_uint_eq(http_rate_take(&r, (struct sockaddr *)&in, now), 0);
	}
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_encoding_names);
	tcase_add_test(tc, test_inflate);
	tcase_add_test(tc, test_secrets_file);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_log_text);
	tcase_add_test(tc, test_log_text_redacted);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(http_suite)
