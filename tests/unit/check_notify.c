/* check_notify: Check suite for common/notify.c, the sd_notify protocol spoken over $NOTIFY_SOCKET
 * (contract: common/notify.h). Each test binds a real AF_UNIX datagram socket, by path in a private
 * temporary directory or by an abstract name, points NOTIFY_SOCKET at it and reads back what arrived:
 * exactly one datagram per notify_send, byte for byte, and nothing at all when the variable is
 * missing or unusable. The environment handling (the workers must not inherit the variables) and the
 * WATCHDOG_USEC/WATCHDOG_PID rules are checked too. Works with CK_FORK=no: every test starts from a
 * clean environment and a re-initialised module, and removes what it created. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

#define RECV_MAX 8192
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

/* --- fixture --------------------------------------------------------------------------------- */

static char tmpdir[64];   /* private directory for path sockets and the relative-path test */
static char sockpath[512];
static int rx = -1;       /* the receiving socket the test bound */
static int saved_cwd = -1;

static void
clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void
setup(void)
{
	clear_env();
	notify_init(); /* resets the module's state: nothing configured */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_notify.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	sockpath[0] = '\0';
	rx = -1;
	saved_cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void
teardown(void)
{
	if (rx >= 0)
		close(rx);
	rx = -1;
	if (sockpath[0])
		unlink(sockpath);
	sockpath[0] = '\0';
	if (saved_cwd >= 0) {
		if (fchdir(saved_cwd) != 0)
			perror("fchdir");
		close(saved_cwd);
		saved_cwd = -1;
	}
	/* the relative-path test leaves its socket in tmpdir */
	char rel[128];
	snprintf(rel, sizeof(rel), "%s/notify.sock", tmpdir);
	unlink(rel);
	rmdir(tmpdir);
	clear_env();
	notify_init();
}

/* --- helpers --------------------------------------------------------------------------------- */

static int
dgram_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

/* Binds a datagram socket at a filesystem path (remembered for teardown). */
static int
bind_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path));
	int fd = dgram_socket();
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path, strerror(errno));
	snprintf(sockpath, sizeof(sockpath), "%s", path);
	return fd;
}

/* Binds a datagram socket at the abstract name "@name" with its exact length (no trailing NULs,
 * which would be part of an abstract name), as systemd does. */
static int
bind_abstract(const char *at_name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(at_name);
	ck_assert(at_name[0] == '@');
	ck_assert_uint_lt(n, sizeof(sa.sun_path));
	memcpy(sa.sun_path, at_name, n);
	sa.sun_path[0] = '\0';
	int fd = dgram_socket();
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s: %s", at_name, strerror(errno));
	return fd;
}

static void
unique_abstract(char *out, size_t outlen)
{
	unsigned r = 0;
	ck_assert_int_eq(getrandom(&r, sizeof(r), 0), (ssize_t)sizeof(r));
	snprintf(out, outlen, "@liveevents/check_notify/%ld/%08x", (long)getpid(), r);
}

/* Receives one pending datagram without waiting: its length, or -1 when none is queued. A local
 * AF_UNIX datagram is queued on the receiver before sendto() returns, so no waiting is needed. */
static ssize_t
recv_now(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
	return n;
}

static void
assert_datagram(int fd, const char *expected)
{
	char buf[RECV_MAX];
	ssize_t n = recv_now(fd, buf, sizeof(buf));
	ck_assert_msg(n >= 0, "no datagram arrived (expected \"%s\")", expected);
	ck_assert_int_eq(n, (ssize_t)strlen(expected));
	ck_assert_mem_eq(buf, expected, strlen(expected));
}

static void
assert_nothing(int fd)
{
	char buf[RECV_MAX];
	ssize_t n = recv_now(fd, buf, sizeof(buf));
	ck_assert_msg(n < 0, "unexpected datagram of %zd bytes: \"%.*s\"", n, (int)(n > 80 ? 80 : n), buf);
}

/* --- delivery -------------------------------------------------------------------------------- */

START_TEST(test_path_socket)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	ck_assert(notify_enabled());
	ck_assert_int_eq(notify_send("READY=1\nSTATUS=webhooks on %s, dashboard on %s\nMAINPID=%d", "127.0.0.1:8000",
	                             "0.0.0.0:8080", 4242),
	                 0);
	assert_datagram(rx, "READY=1\nSTATUS=webhooks on 127.0.0.1:8000, dashboard on 0.0.0.0:8080\nMAINPID=4242");
	assert_nothing(rx);
}
END_TEST

START_TEST(test_abstract_socket)
{
	char name[96];
	unique_abstract(name, sizeof(name));
	rx = bind_abstract(name);
	setenv("NOTIFY_SOCKET", name, 1);
	notify_init();
	ck_assert(notify_enabled());
	ck_assert_int_eq(notify_send("STOPPING=1"), 0);
	assert_datagram(rx, "STOPPING=1");
	assert_nothing(rx);
}
END_TEST

/* An abstract name addressed with sizeof(struct sockaddr_un) would carry trailing NULs and name a
 * different socket: only the exact length reaches the one bound above. A second socket bound at
 * the padded name must therefore receive nothing. */
START_TEST(test_abstract_exact_length)
{
	char name[96];
	unique_abstract(name, sizeof(name));
	rx = bind_abstract(name);
	struct sockaddr_un padded = { .sun_family = AF_UNIX };
	memcpy(padded.sun_path, name, strlen(name));
	padded.sun_path[0] = '\0';
	int decoy = dgram_socket();
	ck_assert_int_eq(bind(decoy, (struct sockaddr *)&padded, sizeof(padded)), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	notify_init();
	ck_assert_int_eq(notify_send("WATCHDOG=1"), 0);
	assert_datagram(rx, "WATCHDOG=1");
	assert_nothing(decoy);
	close(decoy);
}
END_TEST

START_TEST(test_one_datagram_per_send)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	ck_assert_int_eq(notify_send("STATUS=restarting %s (restart %u)", "ingest", 1u), 0);
	ck_assert_int_eq(notify_send("WATCHDOG=1"), 0);
	ck_assert_int_eq(notify_send("STATUS=%s", ""), 0);
	assert_datagram(rx, "STATUS=restarting ingest (restart 1)");
	assert_datagram(rx, "WATCHDOG=1");
	assert_datagram(rx, "STATUS=");
	assert_nothing(rx);
}
END_TEST

/* A message that does not fit is refused whole, never sent truncated. */
START_TEST(test_oversized_message)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	char big[6000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(notify_send("STATUS=%s", big), -1);
	assert_nothing(rx);
	ck_assert_int_eq(notify_send("READY=1"), 0); /* still usable afterwards */
	assert_datagram(rx, "READY=1");
}
END_TEST

/* Nobody listening any more: an error, not a crash or a signal. */
START_TEST(test_receiver_gone)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	close(rx);
	rx = -1;
	unlink(path);
	ck_assert_int_eq(notify_send("READY=1"), -1);
	ck_assert(errno == ENOENT || errno == ECONNREFUSED);
}
END_TEST

/* The longest path that fits sun_path with its NUL (107 bytes on Linux) still works. */
START_TEST(test_longest_path)
{
	char path[SUN_PATH_MAX];
	size_t dirlen = strlen(tmpdir);
	ck_assert_uint_lt(dirlen + 2, sizeof(path) - 1);
	memcpy(path, tmpdir, dirlen);
	path[dirlen] = '/';
	memset(path + dirlen + 1, 'n', sizeof(path) - 1 - dirlen - 1);
	path[sizeof(path) - 1] = '\0';
	ck_assert_uint_eq(strlen(path), SUN_PATH_MAX - 1);
	rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	ck_assert(notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);
	assert_datagram(rx, "READY=1");
}
END_TEST

/* --- the environment ------------------------------------------------------------------------- */

START_TEST(test_init_unsets_environment)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	rx = bind_path(path);
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	notify_init();
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	ck_assert_ptr_null(getenv("WATCHDOG_PID"));
	/* ... and what they said is kept for this process. */
	ck_assert(notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 30000000u);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	assert_datagram(rx, "READY=1");
}
END_TEST

/* Even unusable values are removed, so that no worker ever sees them. */
START_TEST(test_init_unsets_invalid_environment)
{
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	setenv("WATCHDOG_USEC", "bogus", 1);
	setenv("WATCHDOG_PID", "1", 1);
	notify_init();
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	ck_assert_ptr_null(getenv("WATCHDOG_PID"));
	ck_assert(!notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
}
END_TEST

START_TEST(test_no_socket_is_noop)
{
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	ck_assert_int_eq(notify_send("STATUS=%s", "anything"), 0);
	/* a watchdog interval without a socket to ping means nothing */
	setenv("WATCHDOG_USEC", "3000000", 1);
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	ck_assert_int_eq(notify_send("WATCHDOG=1"), 0);
}
END_TEST

/* A relative path is not a valid NOTIFY_SOCKET: disabled, and nothing reaches a socket that happens
 * to exist at that relative path. */
START_TEST(test_relative_path_disabled)
{
	ck_assert_int_eq(chdir(tmpdir), 0);
	int fd = dgram_socket();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, "notify.sock");
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	rx = fd;
	setenv("NOTIFY_SOCKET", "notify.sock", 1);
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);
	assert_nothing(rx);
}
END_TEST

START_TEST(test_too_long_disabled)
{
	char path[SUN_PATH_MAX + 64];
	/* exactly sizeof(sun_path): no room for the NUL */
	memset(path, 'a', SUN_PATH_MAX);
	path[0] = '/';
	path[SUN_PATH_MAX] = '\0';
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);
	/* far too long, and abstract */
	memset(path, 'b', sizeof(path) - 1);
	path[0] = '@';
	path[sizeof(path) - 1] = '\0';
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);
}
END_TEST

START_TEST(test_empty_disabled)
{
	setenv("NOTIFY_SOCKET", "", 1);
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);
}
END_TEST

/* --- the watchdog ---------------------------------------------------------------------------- */

static void
watchdog_env(const char *usec, const char *pid)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	if (rx < 0)
		rx = bind_path(path);
	setenv("NOTIFY_SOCKET", path, 1);
	if (usec)
		setenv("WATCHDOG_USEC", usec, 1);
	else
		unsetenv("WATCHDOG_USEC");
	if (pid)
		setenv("WATCHDOG_PID", pid, 1);
	else
		unsetenv("WATCHDOG_PID");
	notify_init();
	ck_assert(notify_enabled());
}

START_TEST(test_watchdog_for_us)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	watchdog_env("3000000", pid);
	ck_assert_uint_eq(notify_watchdog_usec(), 3000000u);
}
END_TEST

/* Without WATCHDOG_PID the interval applies to whoever systemd started, i.e. us. */
START_TEST(test_watchdog_without_pid)
{
	watchdog_env("20000000", NULL);
	ck_assert_uint_eq(notify_watchdog_usec(), 20000000u);
}
END_TEST

START_TEST(test_watchdog_other_pid)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	watchdog_env("3000000", pid);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	snprintf(pid, sizeof(pid), "%ld", (long)getppid());
	watchdog_env("3000000", pid);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	/* the socket itself still works: only the watchdog is not ours */
	ck_assert_int_eq(notify_send("READY=1"), 0);
	assert_datagram(rx, "READY=1");
}
END_TEST

START_TEST(test_watchdog_invalid)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	static const char *const bad[] = { "", "0", "abc", "12x", "3000000 ", "-5", "+5", " 5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		watchdog_env(bad[i], pid);
		ck_assert_msg(notify_watchdog_usec() == 0, "WATCHDOG_USEC=\"%s\" gave %llu", bad[i],
		              (unsigned long long)notify_watchdog_usec());
	}
	watchdog_env(NULL, pid);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
}
END_TEST

/* A later notify_init without the variables forgets the earlier configuration. */
START_TEST(test_reinit_forgets)
{
	watchdog_env("3000000", NULL);
	ck_assert_uint_eq(notify_watchdog_usec(), 3000000u);
	clear_env();
	notify_init();
	ck_assert(!notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	assert_nothing(rx);
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	tc = tcase_create("delivery");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_path_socket);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_abstract_exact_length);
	tcase_add_test(tc, test_one_datagram_per_send);
	tcase_add_test(tc, test_oversized_message);
	tcase_add_test(tc, test_receiver_gone);
	tcase_add_test(tc, test_longest_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("environment");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_init_unsets_environment);
	tcase_add_test(tc, test_init_unsets_invalid_environment);
	tcase_add_test(tc, test_no_socket_is_noop);
	tcase_add_test(tc, test_relative_path_disabled);
	tcase_add_test(tc, test_too_long_disabled);
	tcase_add_test(tc, test_empty_disabled);
	suite_add_tcase(s, tc);

	tc = tcase_create("watchdog");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_watchdog_for_us);
	tcase_add_test(tc, test_watchdog_without_pid);
	tcase_add_test(tc, test_watchdog_other_pid);
	tcase_add_test(tc, test_watchdog_invalid);
	tcase_add_test(tc, test_reinit_forgets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IONBF, 0);
	sr = srunner_create(notify_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
