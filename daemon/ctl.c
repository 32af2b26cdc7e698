/* liveeventsctl: the read-only inspector of a liveevents arena, in the spirit of varnishstat and
 * varnishlog. It maps the arena read-only, takes no lock and never writes, so it needs no daemon,
 * works whether liveeventsd runs or not, and can never disturb the writer (the kernel itself keeps
 * it from writing). Commands:
 *   stats   the header and the control block: rings, counters, writer liveness
 *   calls   the per-call state, rebuilt from the facts by view_apply exactly as query does
 *   tail    committed events in the daemon's own log words (event_describe); -f follows them
 *   check   reads back and decodes every record and checks the control counters' invariants
 * Everything it reads from the mapping is untrusted: it goes through arena_read, which bounds-checks
 * and verifies each record, or is compared against the header's geometry before use. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "arena.h"
#include "buf.h"
#include "ctl.h"
#include "event.h"
#include "event_log.h"
#include "event_record.h"
#include "follow.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "options.h"
#include "view.h"
#include "worker.h"

static const char usage_text[] =
	"Usage: " PROG " [--arena PATH] COMMAND [OPTION]...\n"
	"Inspect a liveevents arena read-only: needs no daemon, takes no lock, never writes.\n"
	"\n"
	"Commands:\n"
	"  stats [--json]       layout, rings, event counters and the writer's liveness\n"
	"  calls [--json]       one line per call (id, status, ended, messages, alerts, last activity),\n"
	"                       newest activity last; --json prints the document GET /api/calls serves\n"
	"  tail [-f] [-n N]     the last N committed events (default 10), in the daemon's log words;\n"
	"                       -f then follows new events until interrupted; --log-text short|none|full\n"
	"                       shows messages as the daemon's option does (default short: 80 characters)\n"
	"  check                read back and decode every record, check the control counters;\n"
	"                       exit status 1 if the arena is inconsistent\n"
	"\n"
	"Options:\n"
	"  --arena PATH         the arena: /dev/shm/NAME is a POSIX shared-memory object, any other\n"
	"                       path a file (default " CONFIG_DEFAULT_ARENA ")\n"
	"  --json               machine-readable output (stats, calls)\n"
	"  -f, --follow         tail: keep printing events as they are committed\n"
	"  -n, --lines N        tail: how many past events to print first\n"
	"  --help               show this help and exit\n"
	"  --version            show the version and exit\n"
	"\n"
	"Exit status: 0 success, 1 arena unreadable or inconsistent, 2 wrong command line.\n";

/* Names of the event counters of arena.h, for stats (JSON key, label). A counter added to
 * enum arena_counter without a name here stops the build. */
const struct ctl_counter_name counter_names[] = {
	[ARENA_C_EVENTS] = { "events", "events" },
	[ARENA_C_REPAIRED] = { "repaired", "repaired" },
	[ARENA_C_UNATTRIBUTED] = { "unattributed", "unattributed" },
	[ARENA_C_UNKNOWN_TYPE] = { "unknown_type", "unknown type" },
	[ARENA_C_REJECTED] = { "rejected", "rejected" },
	[ARENA_C_RESETS] = { "resets", "resets" },
	[ARENA_C_RAW_BYTES] = { "raw_bytes", "raw bytes" },
	[ARENA_C_RAW_DROPPED] = { "raw_dropped", "raw dropped" },
	[ARENA_C_SNAPSHOTS] = { "snapshots", "snapshots" },
	[ARENA_C_CALLS_EVICTED] = { "calls_evicted", "calls evicted" },
	[ARENA_C_LIVE_DROPPED] = { "live_dropped", "live dropped" },
	[ARENA_C_DAMAGED] = { "damaged", "damaged" },
	[ARENA_C_UNAUTHORIZED] = { "unauthorized", "unauthorized" },
};
_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) == ARENA_NCOUNTERS_USED,
               "every counter of enum arena_counter needs a name in counter_names");

const char *const ring_names[ARENA_RINGS] = { [ARENA_FACTS] = "facts", [ARENA_RAW] = "raw" };

/* --- output ---------------------------------------------------------------------------------------- */

/* The first write error on stdout. EPIPE means the reader (e.g. head) has what it wanted: that ends
 * the program quietly and successfully rather than with a "Broken pipe". */
int out_errno;

/* Writes b to stdout and flushes it, so each line leaves as soon as it is made even into a pipe.
 * Returns -1 once the output is gone. */
int
emit(struct buf *b)
{
	if (out_errno)
		return -1;
	if (b->failed) {
		out_errno = ENOMEM;
		return -1;
	}
	errno = 0;
	if ((b->len && fwrite(b->data, 1, b->len, stdout) != b->len) || fflush(stdout) != 0) {
		out_errno = errno ? errno : EIO;
		return -1;
	}
	buf_reset(b);
	return 0;
}

/* The exit status once the output is done: a write error other than a closed pipe is a failure. */
int
finish_output(int status)
{
	if (!out_errno && fflush(stdout) != 0)
		out_errno = errno ? errno : EIO;
	if (out_errno && out_errno != EPIPE) {
		fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(out_errno));
		return CTL_EXIT_FAIL;
	}
	return status;
}

void
put_local_time(struct buf *b, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	char s[32];
	if (ns == 0 || !localtime_r(&t, &tm) || strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		buf_addc(b, '-');
		return;
	}
	buf_adds(b, s);
}

/* Code points in s[0..n) (the displayed width of the sanitised UTF-8 strings we print). */
size_t
utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* Appends s on one line (control characters made visible, as in the log) padded to width. */
void
put_column(struct buf *b, const char *s, size_t n, size_t max_chars, size_t width)
{
	size_t from = b->len;
	log_text(b, s, n, max_chars);
	for (size_t w = utf8_chars(b->data + from, b->len - from); w < width; w++)
		buf_addc(b, ' ');
}

/* --- opening the arena ------------------------------------------------------------------------------ */

/* Prepared before mapping: a file truncated under our mapping raises SIGBUS on the next access,
 * and that must end in a message naming the arena, not in a core dump. */
static char sigbus_msg[PATH_MAX + 128];
static size_t sigbus_len;

static void
on_sigbus(int sig)
{
	(void)sig;
	ssize_t w = write(STDERR_FILENO, sigbus_msg, sigbus_len);
	(void)w;
	_exit(CTL_EXIT_FAIL);
}

/* Opens and maps the arena read-only with the daemon's path rule (arena_open_readonly).
 * *id receives the object's identity (device and inode), to notice when the path is re-created.
 * quiet: no message on failure (tail -f retrying a re-created arena). */
int
open_arena(const char *path, struct arena *a, struct stat *id, bool quiet)
{
	char err[256];
	int fd = arena_open_readonly(path, err, sizeof(err));
	if (fd < 0) {
		if (!quiet)
			fprintf(stderr, PROG ": %s\n", err);
		return -1;
	}
	if (fstat(fd, id) < 0)
		memset(id, 0, sizeof(*id));
	int len = snprintf(sigbus_msg, sizeof(sigbus_msg),
	                   PROG ": arena %s: bus error reading the mapping (was the file truncated?)\n", path);
	sigbus_len = len < 0 ? 0 : (size_t)len >= sizeof(sigbus_msg) ? sizeof(sigbus_msg) - 1 : (size_t)len;
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	if (arena_map(a, fd, false, err, sizeof(err)) < 0) {
		if (!quiet)
			fprintf(stderr, PROG ": arena %s: %s\n", path, err);
		close(fd);
		return -1;
	}
	/* The mapping stays valid without the descriptor. */
	close(fd);
	a->fd = -1;
	return 0;
}

/* --- command line ----------------------------------------------------------------------------------- */

enum { OPT_ARENA = 256, OPT_JSON, OPT_LOG_TEXT, OPT_HELP, OPT_VERSION };

static const struct option long_options[] = {
	{ "arena", required_argument, NULL, OPT_ARENA },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "follow", no_argument, NULL, 'f' },
	{ "lines", required_argument, NULL, 'n' },
	{ "log-text", required_argument, NULL, OPT_LOG_TEXT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int
usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (try " PROG " --help)\n", stderr);
	va_end(ap);
	return CTL_EXIT_USAGE;
}

static bool
parse_count(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > CTL_TAIL_MAX_LINES)
		return false;
	*out = v;
	return true;
}

struct opts {
	const char *path;
	bool json, follow, lines_set;
	uint64_t lines;
	enum log_text_mode log_text;
	bool log_text_set;
};

/* Parses the options of argv (from argv[1]) up to its first argument, which is left at
 * argv[optind]. Returns -1 to go on, or the exit status (after --help, --version or an error). */
static int
parse_options(int argc, char **argv, struct opts *o)
{
	for (;;) {
		int c = getopt_long(argc, argv, "+:fn:", long_options, NULL);
		switch (c) {
		case -1:
			return -1;
		case OPT_ARENA:
			o->path = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_LOG_TEXT:
			if (options_parse_log_text(optarg, &o->log_text) < 0)
				return usage_error("--log-text takes short, none or full, not '%.32s'", optarg);
			o->log_text_set = true;
			break;
		case 'f':
			o->follow = true;
			break;
		case 'n':
			if (!parse_count(optarg, &o->lines))
				return usage_error("-n needs a number of events from 0 to %llu, not '%s'", CTL_TAIL_MAX_LINES,
				                   optarg);
			o->lines_set = true;
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return finish_output(CTL_EXIT_OK);
		case OPT_VERSION:
			puts(PROG " " PACKAGE_VERSION);
			return finish_output(CTL_EXIT_OK);
		/* optopt is the short option's letter; a long option's text is the argument just read. */
		case ':':
			if (optopt > 0 && optopt < OPT_ARENA)
				return usage_error("option -%c needs an argument", optopt);
			return usage_error("option %s needs an argument", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < OPT_ARENA)
				return usage_error("unknown option -%c", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
}

int
main(int argc, char **argv)
{
	struct opts o = { .path = CONFIG_DEFAULT_ARENA, .lines = CTL_TAIL_DEFAULT_LINES };
	opterr = 0;
	/* Options go before or after the command: the options up to the command first, then the
	 * command's arguments as an argument vector of their own (optind = 0 restarts getopt). */
	int rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return usage_error("no command given (stats, calls, tail or check)");
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	optind = 0;
	if ((rc = parse_options(sub_argc, sub_argv, &o)) >= 0)
		return rc;
	if (optind < sub_argc)
		return usage_error("unexpected argument '%s'", sub_argv[optind]);
	const char *path = o.path;
	bool json = o.json, follow = o.follow;
	uint64_t lines = o.lines;
	bool is_tail = strcmp(cmd, "tail") == 0;
	if (strcmp(cmd, "stats") != 0 && strcmp(cmd, "calls") != 0 && !is_tail && strcmp(cmd, "check") != 0)
		return usage_error("unknown command '%s' (stats, calls, tail or check)", cmd);
	if (json && (is_tail || strcmp(cmd, "check") == 0))
		return usage_error("--json does not apply to %s", cmd);
	if ((follow || o.lines_set || o.log_text_set) && !is_tail)
		return usage_error("%s applies only to tail", follow ? "-f" : o.lines_set ? "-n" : "--log-text");

	/* Output may go into a pipe that closes early (| head): that is a write error (EPIPE) handled
	 * like the end of the output, never a death by signal. */
	signal(SIGPIPE, SIG_IGN);
	tzset();
	hash_seed();
	struct arena a;
	struct stat id;
	if (open_arena(path, &a, &id, false) < 0)
		return CTL_EXIT_FAIL;
	int status;
	if (strcmp(cmd, "stats") == 0)
		status = cmd_stats(&a, path, json);
	else if (strcmp(cmd, "calls") == 0)
		status = cmd_calls(&a, json);
	else if (is_tail)
		status = cmd_tail(&a, &id, path, follow, lines, event_log_text_chars(o.log_text));
	else
		status = cmd_check(&a, path);
	arena_unmap(&a);
	return finish_output(status);
}
