/* arena_bench: measures the arena on this machine and prints a small table (scripts/bench-arena
 * builds and runs it). It measures and never asserts, so make check does not run it.
 *
 *   writer      appends per second, each followed by a publish as ingest commits every event, for
 *               ~200-byte facts and 64 KiB raw bodies, on a full ring (every append also evicts)
 *   reader      catch-up per second: a forked process maps the arena read-only and reads (copies
 *               and verifies, arena_read) everything from the tail to the head, once with the writer
 *               idle and once while it keeps appending
 *   storage     arena bytes per stored message: conversations built from a fixture's body and
 *               committed through the store exactly as ingest does (event_build decides what is new)
 *
 * Usage: arena_bench [--dir DIR] [--fixtures DIR] [--seconds S]
 * The arenas are private files under a new directory in DIR (default $TMPDIR or /tmp), removed at
 * the end. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "event.h"
#include "event_record.h"
#include "hash.h"
#include "json.h"
#include "store.h"
#include "view.h"

#define BENCH_ARENA_SIZE ARENA_DEFAULT_SIZE /* the daemon's default: the figures hold for it */
#define BENCH_SMALL_BYTES 200               /* a typical fact (a status, one short message) */
#define BENCH_LARGE_BYTES (64u << 10)       /* a large webhook body */
#define BENCH_DEFAULT_SECONDS 1.0           /* each writer measurement */
#define BENCH_MAX_SECONDS 60.0
#define BENCH_READER_MIN_SECONDS 0.5        /* idle catch-up passes repeat at least this long */
#define BENCH_CATCHUP_MAX_SECONDS 5.0       /* a reader that never catches up stops here */
#define BENCH_BATCH 64                      /* operations between two clock reads */
#define BENCH_CALLS 20                      /* storage: concurrent conversations ... */
#define BENCH_TURNS 30                      /* ... of this many messages each */
#define BENCH_FIXTURE "06-callA-conversation-user1.json"
#define BENCH_MAX_FIXTURE (1u << 20)
#define BENCH_ID_MAX 64
#define BENCH_TMPL_MSGS 2                   /* the fixture's messages used as templates */
#define BENCH_META "{\"received\":0,\"remote\":\"203.0.113.7\",\"headers\":{\"Content-Type\":\"application/json\"," \
                   "\"User-Agent\":\"Interactly-Webhooks/1.0\"}}"

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "arena_bench: %s: %s\n", what, why);
	exit(1);
}

/* --- arenas --------------------------------------------------------------------------------------- */

struct bench_arena {
	char path[4200];
	int fd; /* read-write, holds the lock */
	struct arena a;
};

static void
bench_open(struct bench_arena *b, const char *dir, const char *name)
{
	char err[512], why[512];
	int ro;
	snprintf(b->path, sizeof(b->path), "%s/%s", dir, name);
	b->fd = arena_create_or_open(b->path, BENCH_ARENA_SIZE, &ro, err, sizeof(err));
	if (b->fd < 0)
		die(b->path, err);
	close(ro);
	if (arena_map(&b->a, b->fd, true, err, sizeof(err)) < 0)
		die(b->path, err);
	arena_recover(&b->a, why, sizeof(why));
}

static void
bench_close(struct bench_arena *b)
{
	arena_unmap(&b->a);
	close(b->fd);
	unlink(b->path);
}

static uint64_t
load_u64(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

/* --- writer --------------------------------------------------------------------------------------- */

struct rate {
	double per_s, mb_s;
	uint64_t n;
};

static void
append_one(struct arena *a, enum arena_ring_id r, const void *p, size_t n)
{
	struct iovec iov = { (void *)(uintptr_t)p, n };
	uint16_t kind = r == ARENA_FACTS ? EVENT_REC_FACT : EVENT_REC_RAW;
	if (arena_append(a, r, kind, 0, ARENA_NO_REF, arena_now_ns(), &iov, 1) == UINT64_MAX)
		die("append", "record larger than the ring allows");
	arena_publish(a);
}

/* Fills the ring until it has wrapped, so every measured append also evicts (a full arena's steady
 * state), then appends for `seconds`. */
static struct rate
measure_appends(struct arena *a, enum arena_ring_id r, const void *p, size_t n, double seconds)
{
	while (load_u64(&a->ctl->ring[r].evicted) == 0)
		append_one(a, r, p, n);
	struct rate rt = { 0 };
	double t0 = now_s(), el;
	do {
		for (int i = 0; i < BENCH_BATCH; i++)
			append_one(a, r, p, n);
		rt.n += BENCH_BATCH;
	} while ((el = now_s() - t0) < seconds);
	rt.per_s = (double)rt.n / el;
	rt.mb_s = rt.per_s * (double)n / 1e6;
	return rt;
}

/* --- reader --------------------------------------------------------------------------------------- */

struct reader_result {
	uint64_t records, bytes, overrun, passes;
	double seconds;
	int caught_up;
};

/* The child: maps the arena read-only, like liveeventsctl and query, and reads from the tail to the
 * head. Idle: whole passes until BENCH_READER_MIN_SECONDS. Concurrent: one pass chasing the head
 * until it catches up (or the time limit). */
static void
reader_child(const char *path, enum arena_ring_id r, bool concurrent, int ready_fd, int result_fd)
{
	struct arena a;
	char err[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || arena_map(&a, fd, false, err, sizeof(err)) < 0)
		_exit(1);
	struct buf payload = BUF_INIT;
	struct arena_rec rec;
	struct reader_result res = { 0 };
	char c = 'r';
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	double t0 = now_s();
	do {
		uint64_t s = arena_tail(&a, r);
		uint64_t end = concurrent ? UINT64_MAX : arena_head(&a, r);
		for (unsigned k = 0; s < end; k++) {
			enum arena_read_status st = arena_read(&a, r, s, &rec, &payload);
			if (st == ARENA_READ_END) {
				res.caught_up = 1;
				break;
			}
			if (st == ARENA_READ_OVERRUN) {
				uint64_t tail = arena_tail(&a, r);
				res.overrun += tail > s ? tail - s : 0;
				s = tail > s ? tail : s + 1;
				continue;
			}
			if (st == ARENA_READ_OK) {
				res.records++;
				res.bytes += rec.len;
			}
			s++;
			if (k % BENCH_BATCH == 0 && now_s() - t0 > BENCH_CATCHUP_MAX_SECONDS)
				break;
		}
		res.passes++;
	} while (!concurrent && now_s() - t0 < BENCH_READER_MIN_SECONDS);
	res.seconds = now_s() - t0;
	if (!concurrent)
		res.caught_up = 1;
	if (write(result_fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

struct catchup {
	struct reader_result rd;
	struct rate writer; /* appends meanwhile (concurrent only) */
};

static struct catchup
measure_catchup(struct bench_arena *b, enum arena_ring_id r, const void *p, size_t n, bool concurrent)
{
	struct catchup cu = { 0 };
	int ready[2], result[2];
	if (pipe(ready) < 0 || pipe(result) < 0)
		die("pipe", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		close(result[0]);
		reader_child(b->path, r, concurrent, ready[1], result[1]);
	}
	close(ready[1]);
	close(result[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		die("reader", "did not start");
	if (concurrent) {
		/* Append until the reader reports, so it always chases a moving head. */
		struct pollfd pf = { .fd = result[0], .events = POLLIN };
		double t0 = now_s();
		while (poll(&pf, 1, 0) == 0) {
			for (int i = 0; i < BENCH_BATCH; i++)
				append_one(&b->a, r, p, n);
			cu.writer.n += BENCH_BATCH;
		}
		double el = now_s() - t0;
		cu.writer.per_s = (double)cu.writer.n / el;
		cu.writer.mb_s = cu.writer.per_s * (double)n / 1e6;
	}
	if (read(result[0], &cu.rd, sizeof(cu.rd)) != (ssize_t)sizeof(cu.rd))
		die("reader", "no result");
	int status;
	waitpid(pid, &status, 0);
	close(ready[0]);
	close(result[0]);
	return cu;
}

/* --- storage: bytes per stored message ------------------------------------------------------------ */

struct span {
	size_t start, end;
};

static struct span
tok_span(const struct json_doc *d, int tok)
{
	struct span s = { (size_t)d->tok[tok].start, (size_t)d->tok[tok].end };
	return s;
}

struct storage {
	uint64_t events, messages, fact_bytes, raw_bytes, snapshots;
	double seconds;
};

/* Conversations as the platform sends them: every update carries the whole history so far, and
 * the store keeps only what is new. The fixture's body is the template: its call id and message
 * ids are replaced, its two messages alternate as the turns. */
static struct storage
measure_storage(const char *dir, const char *fixtures)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", fixtures, BENCH_FIXTURE);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		die(path, strerror(errno));
	char *text = malloc(BENCH_MAX_FIXTURE);
	size_t len = text ? fread(text, 1, BENCH_MAX_FIXTURE, fp) : 0;
	fclose(fp);
	struct json_doc d;
	if (!len || json_parse(&d, text, len, NULL) != JSON_OK)
		die(path, "not a JSON object");
	int msg = json_obj_get(&d, 0, "message");
	int id = json_path(&d, msg, "call", "id", NULL);
	int arr = json_obj_get(&d, msg, "messages");
	int el[BENCH_TMPL_MSGS], mid[BENCH_TMPL_MSGS];
	el[0] = json_first(&d, arr);
	el[1] = json_after(&d, arr, el[0]);
	for (int i = 0; i < BENCH_TMPL_MSGS; i++)
		mid[i] = json_obj_get(&d, el[i], "messageId");
	if (id < 0 || arr < 0 || el[1] < 0 || mid[0] < 0 || mid[1] < 0)
		die(path, "no call id or fewer than two messages with ids");
	struct span sid = tok_span(&d, id), sarr = tok_span(&d, arr), sel[BENCH_TMPL_MSGS], smid[BENCH_TMPL_MSGS];
	for (int i = 0; i < BENCH_TMPL_MSGS; i++) {
		sel[i] = tok_span(&d, el[i]);
		smid[i] = tok_span(&d, mid[i]);
	}

	struct bench_arena b;
	bench_open(&b, dir, "storage-arena");
	struct store st;
	char why[256];
	store_open(&st, &b.a, STORE_DEFAULT_IDLE_MS, why, sizeof(why));
	uint64_t dh0[ARENA_RINGS], h0[ARENA_RINGS];
	for (int r = 0; r < ARENA_RINGS; r++) {
		dh0[r] = load_u64(&b.a.ctl->ring[r].data_head);
		h0[r] = arena_head(&b.a, (enum arena_ring_id)r);
	}
	struct storage out = { 0 };
	struct buf body = BUF_INIT;
	double t0 = now_s();
	for (int turn = 0; turn < BENCH_TURNS; turn++) {
		for (int call = 0; call < BENCH_CALLS; call++) {
			char cid[BENCH_ID_MAX];
			snprintf(cid, sizeof(cid), "CA%032d", call);
			buf_reset(&body);
			buf_add(&body, text, sid.start);
			buf_adds(&body, cid);
			buf_add(&body, text + sid.end, sarr.start - sid.end);
			buf_addc(&body, '[');
			for (int m = 0; m <= turn; m++) {
				int k = m % BENCH_TMPL_MSGS;
				char key[BENCH_ID_MAX];
				snprintf(key, sizeof(key), "c%d-m%d", call, m);
				buf_adds(&body, m ? "," : "");
				buf_add(&body, text + sel[k].start, smid[k].start - sel[k].start);
				buf_adds(&body, key);
				buf_add(&body, text + smid[k].end, sel[k].end - smid[k].end);
			}
			buf_addc(&body, ']');
			buf_add(&body, text + sarr.end, len - sarr.end);
			if (body.failed)
				die("storage", "out of memory");
			struct json_doc ev;
			struct event_result res;
			struct event_secrets sec = { 0 };
			if (json_parse(&ev, body.data, body.len, NULL) != JSON_OK)
				die("storage", "a generated body is not JSON");
			if (store_prepare(&st, &ev, body.data, &sec, &res) != STORE_OK ||
			    store_commit(&st, &ev, body.data, &sec, BENCH_META, strlen(BENCH_META), 0, arena_now_ns(), &res) !=
			            STORE_OK)
				die("storage", "the store refused an event");
			event_secrets_clear(&sec);
			json_free(&ev);
			out.events++;
		}
	}
	out.seconds = now_s() - t0;
	for (size_t i = 0; i < st.view.ncalls; i++)
		out.messages += st.view.calls[i]->nmsg;
	/* Monotonic data counters: what was written, wrapped or not, plus one slot per record. */
	out.fact_bytes = load_u64(&b.a.ctl->ring[ARENA_FACTS].data_head) - dh0[ARENA_FACTS] +
	                 (arena_head(&b.a, ARENA_FACTS) - h0[ARENA_FACTS]) * sizeof(struct arena_slot);
	out.raw_bytes = load_u64(&b.a.ctl->ring[ARENA_RAW].data_head) - dh0[ARENA_RAW] +
	                (arena_head(&b.a, ARENA_RAW) - h0[ARENA_RAW]) * sizeof(struct arena_slot);
	out.snapshots = arena_counter_get(&b.a, ARENA_C_SNAPSHOTS);
	store_close(&st);
	bench_close(&b);
	buf_free(&body);
	json_free(&d);
	free(text);
	return out;
}

/* --- the machine ---------------------------------------------------------------------------------- */

static void
cpu_model(char *out, size_t n)
{
	snprintf(out, n, "unknown CPU");
	FILE *fp = fopen("/proc/cpuinfo", "r");
	if (!fp)
		return;
	char line[512];
	while (fgets(line, sizeof(line), fp)) {
		char *colon = strchr(line, ':');
		if (colon && strncmp(line, "model name", 10) == 0) {
			colon += 2;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(out, n, "%s", colon);
			break;
		}
	}
	fclose(fp);
}

static const char *
fs_kind(const char *dir)
{
	struct statfs s;
	if (statfs(dir, &s) < 0)
		return "?";
	return s.f_type == 0x01021994 ? "tmpfs" : "a disk file system (page cache)";
}

/* --- main ----------------------------------------------------------------------------------------- */

static void
print_reader(const char *what, const char *writer, const struct catchup *cu)
{
	const struct reader_result *r = &cu->rd;
	double per_s = r->seconds > 0 ? (double)r->records / r->seconds : 0;
	printf("  %-14s %-10s %12.0f %9.0f %10" PRIu64 " %9" PRIu64 "  %s\n", what, writer, per_s,
	       r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0, r->records, r->overrun,
	       r->caught_up ? "yes" : "no");
	if (cu->writer.n)
		printf("  %-14s %-10s writer meanwhile: %.0f appends/s\n", "", "", cu->writer.per_s);
}

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const char *fixtures = "tests/fixtures";
	double seconds = BENCH_DEFAULT_SECONDS;
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "fixtures", required_argument, NULL, 'x' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			base = optarg;
			break;
		case 'x':
			fixtures = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			if (seconds <= 0 || seconds > BENCH_MAX_SECONDS)
				die("--seconds", "expected a number of seconds from 0 to 60");
			break;
		default:
			fprintf(stderr, "usage: arena_bench [--dir DIR] [--fixtures DIR] [--seconds S]\n");
			return 2;
		}
	}
	hash_seed();
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/arena-bench.XXXXXX", base);
	if (!mkdtemp(dir))
		die(dir, strerror(errno));

	char cpu[256];
	struct utsname u;
	cpu_model(cpu, sizeof(cpu));
	uname(&u);
	printf("liveevents arena benchmark (liveevents %s)\n", PACKAGE_VERSION);
	printf("machine: %ld CPUs, %s, Linux %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu, u.release);
	printf("arena:   %u MiB file in %s (%s)\n\n", (unsigned)(BENCH_ARENA_SIZE >> 20), base, fs_kind(base));

	static unsigned char small[BENCH_SMALL_BYTES], large[BENCH_LARGE_BYTES];
	for (size_t i = 0; i < sizeof(large); i++)
		large[i] = (unsigned char)(i * 2654435761u >> 24);
	memcpy(small, large, sizeof(small));
	static const struct {
		const char *name;
		enum arena_ring_id ring;
		const unsigned char *p;
		size_t n;
	} cases[] = {
		{ "fact 200 B", ARENA_FACTS, small, sizeof(small) },
		{ "raw 64 KiB", ARENA_RAW, large, sizeof(large) },
	};
	struct rate w[2];
	struct catchup idle[2], busy[2];
	for (int i = 0; i < 2; i++) {
		struct bench_arena b;
		bench_open(&b, dir, "arena");
		w[i] = measure_appends(&b.a, cases[i].ring, cases[i].p, cases[i].n, seconds);
		idle[i] = measure_catchup(&b, cases[i].ring, cases[i].p, cases[i].n, false);
		busy[i] = measure_catchup(&b, cases[i].ring, cases[i].p, cases[i].n, true);
		bench_close(&b);
	}
	printf("writer: append + publish, one record per commit, ring full (each append evicts)\n");
	printf("  %-14s %12s %9s\n", "record", "appends/s", "MB/s");
	for (int i = 0; i < 2; i++)
		printf("  %-14s %12.0f %9.0f\n", cases[i].name, w[i].per_s, w[i].mb_s);
	printf("\nreader catch-up: a forked read-only reader, arena_read (copy + CRC) from tail to head\n");
	printf("  %-14s %-10s %12s %9s %10s %9s  %s\n", "record", "writer", "records/s", "MB/s", "records", "overrun",
	       "caught up");
	for (int i = 0; i < 2; i++) {
		print_reader(cases[i].name, "idle", &idle[i]);
		print_reader(cases[i].name, "appending", &busy[i]);
	}

	struct storage s = measure_storage(dir, fixtures);
	printf("\nstorage: %d calls x %d turns built from %s, each update resending the whole history,\n"
	       "committed through the store as ingest does (%.0f events/s)\n",
	       BENCH_CALLS, BENCH_TURNS, BENCH_FIXTURE, (double)s.events / s.seconds);
	printf("  events %" PRIu64 ", messages stored %" PRIu64 ", snapshots %" PRIu64 "\n", s.events, s.messages,
	       s.snapshots);
	printf("  facts bytes per message (payload + slots) %10.0f\n", (double)s.fact_bytes / (double)s.messages);
	printf("  facts bytes per event                     %10.0f\n", (double)s.fact_bytes / (double)s.events);
	printf("  raw bytes per event (payload + slot)      %10.0f\n", (double)s.raw_bytes / (double)s.events);
	printf("  raw bytes per message                     %10.0f\n", (double)s.raw_bytes / (double)s.messages);
	rmdir(dir);
	return 0;
}
