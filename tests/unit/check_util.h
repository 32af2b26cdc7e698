/* check_util: what several Check suites share: a private temporary directory for an arena file
 * (created before and removed after each test, in the forked test process), and main(). */
#ifndef LIVEEVENTS_CHECK_UTIL_H
#define LIVEEVENTS_CHECK_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hash.h"

/* Checked fixtures: dir, the test's directory named after the suite, and path, an arena file
 * inside it; made before each test, removed after. */
#define CHECK_TMP_FIXTURE(name)                                                                  \
	static char dir[256], path[300];                                                         \
	static void setup(void)                                                                  \
	{                                                                                        \
		snprintf(dir, sizeof(dir), "/tmp/" name ".XXXXXX");                              \
		ck_assert_ptr_nonnull(mkdtemp(dir));                                             \
		snprintf(path, sizeof(path), "%s/arena", dir);                                   \
	}                                                                                        \
	static void teardown(void)                                                               \
	{                                                                                        \
		unlink(path);                                                                    \
		rmdir(dir);                                                                      \
	}

/* Runs the suite with the environment's settings (CK_FORK, CK_TAP_LOG_FILE_NAME...); stdout is
 * unbuffered because Check's forked tests and the parent share it. */
#define CHECK_MAIN(make_suite)                                                                   \
	int main(void)                                                                           \
	{                                                                                        \
		setvbuf(stdout, NULL, _IONBF, 0);                                                \
		hash_seed();                                                                     \
		SRunner *sr = srunner_create(make_suite());                                      \
		srunner_run_all(sr, CK_ENV);                                                     \
		int failed = srunner_ntests_failed(sr);                                          \
		srunner_free(sr);                                                                \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                     \
	}

#endif
