/* check_access: unit tests of the dashboard's access checks (http_access.h): the token file (made
 * once, private, never replaced, validated), which Host names are answered (addresses, localhost,
 * this machine's name, --allowed-host names and suffixes; rebinding names refused), which credential
 * decides, cookie parsing, and the Origin rule for requests that change something. The daemon's
 * side of the same doors is tests/integration/test_security.py. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "http_access.h"

CHECK_TMP_FIXTURE("check_access")

static void
write_file(const char *p, const char *s, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	fchmod(fd, mode);
	close(fd);
}

START_TEST(test_token_made_once)
{
	char a[HTTP_TOKEN_MAX + 1], b[HTTP_TOKEN_MAX + 1], err[256];
	bool created, loose;
	ck_assert_int_eq(http_token_load(path, a, sizeof(a), &created, &loose, err, sizeof(err)), 0);
	ck_assert(created);
	ck_assert(!loose);
	ck_assert_uint_eq(strlen(a), 43); /* 256 bits in base64url, unpadded */
	for (const char *p = a; *p; p++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(http_token_load(path, b, sizeof(b), &created, &loose, err, sizeof(err)), 0);
	ck_assert(!created);
	ck_assert_str_eq(a, b);
	unlink(path);
	ck_assert_int_eq(http_token_load(path, b, sizeof(b), &created, &loose, err, sizeof(err)), 0);
	ck_assert(created);
	ck_assert_str_ne(a, b);
	/* no temporary file is left beside it */
	char tmpl[400];
	snprintf(tmpl, sizeof(tmpl), "ls %s | wc -l | grep -qx 1", dir);
	ck_assert_int_eq(system(tmpl), 0);
}
END_TEST

START_TEST(test_token_file_checked)
{
	char tok[HTTP_TOKEN_MAX + 1], err[256];
	bool created, loose;
	write_file(path, "  my-own_token.from~a-store  \r\n", 0644);
	ck_assert_int_eq(http_token_load(path, tok, sizeof(tok), &created, &loose, err, sizeof(err)), 0);
	ck_assert_str_eq(tok, "my-own_token.from~a-store");
	ck_assert(loose);
	ck_assert(!created);
	static const char *const bad[] = { "", "\n", "short-token\n", "two tokens here-and-there\n",
		                           "semi;colon-in-a-token\n", "quote\"in-a-token-here\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i], 0600);
		err[0] = '\0';
		ck_assert_int_eq(http_token_load(path, tok, sizeof(tok), &created, &loose, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "dashboard token file"));
	}
	char big[HTTP_TOKEN_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big, 0600);
	ck_assert_int_eq(http_token_load(path, tok, sizeof(tok), &created, &loose, err, sizeof(err)), -1);
	unlink(path);
	ck_assert_int_eq(symlink("/etc/hostname", path), 0);
	ck_assert_int_eq(http_token_load(path, tok, sizeof(tok), &created, &loose, err, sizeof(err)), -1);
}
END_TEST

static struct http_access
access_for_tests(void)
{
	struct http_access a;
	memset(&a, 0, sizeof(a));
	a.auth = true;
	snprintf(a.token, sizeof(a.token), "%s", "0123456789abcdef-token");
	a.token_len = strlen(a.token);
	snprintf(a.cookie, sizeof(a.cookie), "liveevents_8080");
	snprintf(a.hostname, sizeof(a.hostname), "labbox.example.org");
	snprintf(a.allowed[a.nallowed++], sizeof(a.allowed[0]), "dash.lan");
	snprintf(a.allowed[a.nallowed++], sizeof(a.allowed[0]), ".office.example");
	return a;
}

START_TEST(test_host)
{
	struct http_access a = access_for_tests();
	static const char *const ok[] = {
		"127.0.0.1", "127.0.0.1:8080", "10.1.2.3:80", "[::1]", "[::1]:8080", "[fe80::1]:8080", "localhost",
		"LocalHost:8080", "x.localhost", "labbox.example.org", "labbox", "LABBOX.local:8080", "dash.lan",
		"dash.lan.", "DASH.LAN:1", "office.example", "a.office.example", "b.a.office.example:8080",
	};
	static const char *const bad[] = {
		"", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "labbox.evil", "xdash.lan",
		"dash.lan.evil", "xoffice.example", "[::1", "[::1]8080", "[nothost]:80", "127.0.0.1:", "127.0.0.1:8a",
		"127.0.0.1:123456", "a:b:c", "0x7f000001", "labbox.example.org.evil", ".", ":8080",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(http_access_host_ok(&a, ok[i]), "should answer Host %s", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!http_access_host_ok(&a, bad[i]), "should refuse Host %s", bad[i]);
	ck_assert(http_access_host_ok(&a, NULL));
	char longname[HTTP_HOST_MAX + 40];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert(!http_access_host_ok(&a, longname));
	a.any_host = true;
	ck_assert(http_access_host_ok(&a, "evil.example"));
}
END_TEST

START_TEST(test_credential)
{
	struct http_access a = access_for_tests();
	const char *tok = a.token;
	char bearer[HTTP_TOKEN_MAX + 16], cookie[HTTP_TOKEN_MAX + 40];
	snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
	snprintf(cookie, sizeof(cookie), "a=1; liveevents_8080=%s; b=2", tok);
	ck_assert_int_eq(http_access_credential(&a, NULL, NULL, NULL), HTTP_CRED_NONE);
	ck_assert_int_eq(http_access_credential(&a, bearer, NULL, NULL), HTTP_CRED_BEARER);
	ck_assert_int_eq(http_access_credential(&a, "bearer   0123456789abcdef-token  ", NULL, NULL), HTTP_CRED_BEARER);
	ck_assert_int_eq(http_access_credential(&a, "Bearer 0123456789abcdef-toke", NULL, NULL), HTTP_CRED_BAD);
	ck_assert_int_eq(http_access_credential(&a, "Bearer 0123456789abcdef-tokenn", NULL, NULL), HTTP_CRED_BAD);
	ck_assert_int_eq(http_access_credential(&a, "Bearer", NULL, NULL), HTTP_CRED_BAD);
	/* another scheme is a proxy's business: the cookie still decides */
	ck_assert_int_eq(http_access_credential(&a, "Basic 0123456789abcdef-token", NULL, NULL), HTTP_CRED_NONE);
	ck_assert_int_eq(http_access_credential(&a, "Basic dXNlcjpwYXNz", cookie, NULL), HTTP_CRED_COOKIE);
	ck_assert_int_eq(http_access_credential(&a, "Bearertoken", NULL, NULL), HTTP_CRED_NONE);
	ck_assert_int_eq(http_access_credential(&a, NULL, cookie, NULL), HTTP_CRED_COOKIE);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_8080=\"0123456789abcdef-token\"", NULL),
	                 HTTP_CRED_COOKIE);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_8080=wrong", NULL), HTTP_CRED_BAD);
	/* a wrong one planted first (another service on this host) does not lock the right one out */
	char planted[HTTP_TOKEN_MAX + 80];
	snprintf(planted, sizeof(planted), "liveevents_8080=planted; x=1; liveevents_8080=%s", tok);
	ck_assert_int_eq(http_access_credential(&a, NULL, planted, NULL), HTTP_CRED_COOKIE);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_8080=a; liveevents_8080=b", NULL), HTTP_CRED_BAD);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_80800=0123456789abcdef-token", NULL),
	                 HTTP_CRED_NONE);
	ck_assert_int_eq(http_access_credential(&a, NULL, "xliveevents_8080=0123456789abcdef-token", NULL),
	                 HTTP_CRED_NONE);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_8080", NULL), HTTP_CRED_NONE);
	/* the first present decides: the URL, then the bearer, then the cookie */
	ck_assert_int_eq(http_access_credential(&a, "Bearer wrong", cookie, NULL), HTTP_CRED_BAD);
	ck_assert_int_eq(http_access_credential(&a, NULL, "liveevents_8080=old", tok), HTTP_CRED_QUERY);
	ck_assert_int_eq(http_access_credential(&a, bearer, cookie, "wrong"), HTTP_CRED_BAD);
	ck_assert_int_eq(http_access_credential(&a, NULL, NULL, ""), HTTP_CRED_BAD);
	a.auth = false;
	ck_assert_int_eq(http_access_credential(&a, "Bearer wrong", NULL, NULL), HTTP_CRED_OPEN);
	/* an empty token never matches an empty guess */
	a.auth = true;
	a.token[0] = '\0';
	a.token_len = 0;
	ck_assert_int_eq(http_access_credential(&a, "Bearer ", NULL, NULL), HTTP_CRED_BAD);
}
END_TEST

START_TEST(test_origin)
{
	const char *host = "192.168.1.5:8080";
	ck_assert(http_access_origin_ok(HTTP_CRED_BEARER, NULL, host));
	ck_assert(http_access_origin_ok(HTTP_CRED_BEARER, "http://evil.example", host));
	ck_assert(http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5:8080", host));
	ck_assert(http_access_origin_ok(HTTP_CRED_COOKIE, "https://192.168.1.5:8080", host));
	ck_assert(http_access_origin_ok(HTTP_CRED_COOKIE, "HTTP://192.168.1.5:8080", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, NULL, host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "null", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5:9999", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5:8080/", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5:8080.evil", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "ftp://192.168.1.5:8080", host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://192.168.1.5:8080", NULL));
	ck_assert(!http_access_origin_ok(HTTP_CRED_COOKIE, "http://", ""));
	/* --no-auth: a script (no Origin) may, a page on another origin may not */
	ck_assert(http_access_origin_ok(HTTP_CRED_OPEN, NULL, host));
	ck_assert(!http_access_origin_ok(HTTP_CRED_OPEN, "http://evil.example", host));
	ck_assert(http_access_origin_ok(HTTP_CRED_OPEN, "http://192.168.1.5:8080", host));
}
END_TEST

static Suite *
access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("access");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_token_made_once);
	tcase_add_test(tc, test_token_file_checked);
	tcase_add_test(tc, test_host);
	tcase_add_test(tc, test_credential);
	tcase_add_test(tc, test_origin);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(access_suite)
