/* check_arena_corrupt: readers can't be hurt. A writer process appends deterministic records to a
 * small file arena without pause while a vandal (this test process, through a second writable
 * mapping of the same file) flips bytes anywhere in it: slots, payloads, the control block's
 * counters and the header. A reader process with a read-only mapping reads random sequence numbers,
 * scans [tail, head), follows the ring like query does, and now and then maps the arena again
 * through the (possibly corrupted) header. The reader must never crash, never spin (every loop is
 * bounded here, and the reader as a whole runs under a deadline), and every record it accepts
 * (ARENA_READ_OK) must carry exactly the payload written for that sequence number.
 *
 * The reader's mappings sit between PROT_NONE guard areas, so a read that leaves the arena faults
 * instead of silently reading a neighbouring mapping.
 *
 * Also: a header corrupted byte by byte is refused with a message or, when a corrupted field still
 * passes validation, yields a mapping whose every read stays inside the object; after the vandal
 * stops, arena_recover leaves an arena whose every record reads back exactly; two findings of the
 * vandal run pinned down deterministically: a never-written (all-zero) slot must not pass for an
 * empty record 0, and arena_map must build its handle from the header it validated, not from a
 * second read of a header somebody is rewriting.
 *
 * Deterministic seed (CHECK_ARENA_CORRUPT_SEED overrides it), bounded time (CHECK_ARENA_CORRUPT_MS,
 * default 3000). The counts are printed as TAP comments. Slot metadata (kind, flags, ref, time) is
 * not covered by the record CRC (arena.h): mismatches there are counted and printed, and fail the
 * test only with CHECK_ARENA_CORRUPT_STRICT_META=1. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "check_util.h"

#define SIZE ARENA_MIN_SIZE          /* the smallest arena: rings wrap within microseconds */
#define DEFAULT_RUN_MS 3000
#define DEFAULT_SEED 0x5eed2024u
#define WRITER_STALL_MS 20           /* a writer without progress this long is killed and restarted */
#define COUNTER_EVERY_MS 8           /* the vandal breaks a ring counter this often, on average */
#define HEADER_RESTORE_MS 40         /* the vandal restores the pristine header this often */
#define REMAP_EVERY 3000             /* reader operations between two re-mappings */
#define READER_GRACE_MS 10000        /* beyond its deadline, a reader still running is hung */

static const size_t max_len[ARENA_RINGS] = { 3000, 7000 };

CHECK_TMP_FIXTURE("check_arena_corrupt")

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	return strtoull(v, NULL, 0);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift64*: one stream per process, all derived from the seed. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t
rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint64_t
seed_for(uint64_t base, uint64_t stream)
{
	uint64_t s = (base ^ (stream * 0x9E3779B97F4A7C15ull)) | 1;
	for (int i = 0; i < 8; i++)
		rnd(&s);
	return s;
}

/* --- deterministic records: everything is a function of (ring, seq) ----------------------------- */

static size_t
rec_len(int r, uint64_t seq)
{
	return (size_t)((seq * 2654435761u + (uint64_t)r * 977) % max_len[r]) + 1;
}

static unsigned char
rec_byte(int r, uint64_t seq, size_t i)
{
	return (unsigned char)((seq * 31 + i * 7 + (uint64_t)r * 101) ^ (seq >> 3) ^ (i >> 8));
}

static uint16_t
rec_kind(int r, uint64_t seq)
{
	return (uint16_t)(0x100 + r * 0x10 + (seq & 0xf));
}

static uint16_t
rec_flags(int r, uint64_t seq)
{
	return (uint16_t)((seq >> 4) ^ (uint64_t)r);
}

static uint64_t
rec_ref(int r, uint64_t seq)
{
	return seq ^ (0xabcdef00ull + (uint64_t)r);
}

static void
fill(unsigned char *p, int r, uint64_t seq)
{
	size_t n = rec_len(r, seq);
	for (size_t i = 0; i < n; i++)
		p[i] = rec_byte(r, seq, i);
}

/* 0 when the payload is exactly record (r, seq); otherwise the offset of the first bad byte + 1
 * (or SIZE_MAX for a wrong length). */
static size_t
payload_mismatch(const unsigned char *p, size_t n, int r, uint64_t seq)
{
	if (n != rec_len(r, seq))
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		if (p[i] != rec_byte(r, seq, i))
			return i + 1;
	return 0;
}

/* --- shared results: survive a reader that crashes -------------------------------------------------- */

struct results {
	_Atomic uint64_t writer_appends; /* progress of the current writer */
	uint64_t reads, ok, overrun, corrupt, end;
	uint64_t bad_payload, bad_meta, bad_empty, holes;
	char first_other_bad[512];
	uint64_t scans, scans_cut, follows, follows_cut;
	uint64_t remaps, remaps_refused, remaps_refused_silent, remaps_unsafe, remap_reads_ok;
	uint64_t ops, unguarded;
	int reader_done;
	char first_bad[512];
	char first_meta[256];
	char first_refusal[256];
};

static struct results *
results_new(void)
{
	struct results *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(res, MAP_FAILED);
	memset(res, 0, sizeof(*res));
	return res;
}

/* --- the writer ------------------------------------------------------------------------------------- */

/* Appends to both rings forever. w is inherited from the test process (mapped before any vandalism,
 * so its geometry is the true one); a restarted writer recovers first, as a restarted ingest does. */
static void __attribute__((noreturn))
writer_main(struct arena *w, struct results *res, uint64_t seed, bool recover)
{
	char why[512];
	if (recover)
		arena_recover(w, why, sizeof(why));
	unsigned char *buf = malloc(max_len[ARENA_RAW] > max_len[ARENA_FACTS] ? max_len[ARENA_RAW] : max_len[ARENA_FACTS]);
	if (!buf)
		_exit(3);
	uint64_t s = seed;
	for (;;) {
		int batch = 1 + (int)rnd_below(&s, 3);
		for (int b = 0; b < batch; b++) {
			for (int r = 0; r < ARENA_RINGS; r++) {
				uint64_t seq = arena_next_seq(w, (enum arena_ring_id)r);
				fill(buf, r, seq);
				struct iovec iov = { buf, rec_len(r, seq) };
				arena_append(w, (enum arena_ring_id)r, rec_kind(r, seq), rec_flags(r, seq), rec_ref(r, seq), arena_now_ns(), &iov, 1);
			}
		}
		arena_publish(w);
		atomic_fetch_add_explicit(&res->writer_appends, 1, memory_order_relaxed);
	}
}

static pid_t
writer_start(struct arena *w, struct results *res, uint64_t seed, bool recover)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		writer_main(w, res, seed, recover);
	return pid;
}

/* --- the reader ------------------------------------------------------------------------------------- */

struct reader {
	struct results *res;
	struct buf out;
	uint64_t rs;
};

static void
note_bad(struct reader *rd, const char *how, int r, uint64_t seq, const struct arena_rec *rec, size_t where)
{
	rd->res->bad_payload++;
	if (rec->len == 0) /* every record written here has at least one byte */
		rd->res->bad_empty++;
	else if (!rd->res->first_other_bad[0])
		snprintf(rd->res->first_other_bad, sizeof(rd->res->first_other_bad),
		         "%s: ring %d seq %" PRIu64 " accepted with len %u (expected %zu), first bad byte %zd, kind %#x ref %#" PRIx64,
		         how, r, seq, rec->len, rec_len(r, seq), where == SIZE_MAX ? (ssize_t)-1 : (ssize_t)where - 1,
		         rec->kind, rec->ref);
	if (rd->res->first_bad[0])
		return;
	snprintf(rd->res->first_bad, sizeof(rd->res->first_bad),
	         "%s: ring %d seq %" PRIu64 " accepted with len %u (expected %zu), first bad byte %zd, kind %#x ref %#" PRIx64,
	         how, r, seq, rec->len, rec_len(r, seq), where == SIZE_MAX ? (ssize_t)-1 : (ssize_t)where - 1,
	         rec->kind, rec->ref);
}

/* One read, fully checked. Returns the status. */
static enum arena_read_status
read_one(struct reader *rd, const struct arena *a, int r, uint64_t seq, const char *how)
{
	struct arena_rec rec;
	memset(&rec, 0, sizeof(rec));
	enum arena_read_status st = arena_read(a, (enum arena_ring_id)r, seq, &rec, &rd->out);
	rd->res->reads++;
	switch (st) {
	case ARENA_READ_OK: {
		rd->res->ok++;
		/* A record a restarted writer's recovery found damaged is let go as a hole, which says so
		 * (kind, len 0, all under the record's CRC): a reader learns of the loss, never reads garbage. */
		if (rec.kind == ARENA_KIND_HOLE && rec.len == 0 && rec.seq == seq && rd->out.len == 0) {
			rd->res->holes++;
			break;
		}
		size_t bad = rec.seq != seq ? SIZE_MAX : payload_mismatch((const unsigned char *)rd->out.data, rd->out.len, r, seq);
		if (bad || rec.len != rd->out.len)
			note_bad(rd, how, r, seq, &rec, bad);
		if (rec.kind != rec_kind(r, seq) || rec.flags != rec_flags(r, seq) || rec.ref != rec_ref(r, seq)) {
			if (rd->res->bad_meta++ == 0)
				snprintf(rd->res->first_meta, sizeof(rd->res->first_meta),
				         "ring %d seq %" PRIu64 ": kind %#x flags %#x ref %#" PRIx64 ", written kind %#x flags %#x ref %#" PRIx64,
				         r, seq, rec.kind, rec.flags, rec.ref, rec_kind(r, seq), rec_flags(r, seq), rec_ref(r, seq));
		}
		break;
	}
	case ARENA_READ_OVERRUN:
		rd->res->overrun++;
		break;
	case ARENA_READ_CORRUPT:
		rd->res->corrupt++;
		break;
	case ARENA_READ_END:
		rd->res->end++;
		break;
	default:
		note_bad(rd, "unknown status", r, seq, &rec, SIZE_MAX);
	}
	return st;
}

/* A sequence number worth trying: in range, at its edges, or anywhere at all. */
static uint64_t
pick_seq(struct reader *rd, const struct arena *a, int r)
{
	uint64_t h = arena_head(a, (enum arena_ring_id)r), t = arena_tail(a, (enum arena_ring_id)r);
	switch (rnd_below(&rd->rs, 8)) {
	case 0:
	case 1:
	case 2:
		return h > t ? t + rnd_below(&rd->rs, h - t) : t;
	case 3:
		return t + rnd_below(&rd->rs, 3);
	case 4:
		return h - 1 - rnd_below(&rd->rs, 3);
	case 5:
		return h + rnd_below(&rd->rs, 2);
	case 6:
		return t - 1 - rnd_below(&rd->rs, 1100);
	default:
		return rnd(&rd->rs);
	}
}

/* Every record in [tail, head), but never more than the ring's slots whatever the counters say. */
static void
scan(struct reader *rd, const struct arena *a, int r)
{
	uint64_t bound = a->ring[r].slot_count + 16;
	uint64_t t = arena_tail(a, (enum arena_ring_id)r), h = arena_head(a, (enum arena_ring_id)r);
	uint64_t n = h > t ? h - t : 0;
	rd->res->scans++;
	if (n > bound) {
		n = bound;
		rd->res->scans_cut++;
	}
	for (uint64_t i = 0; i < n; i++)
		read_one(rd, a, r, t + i, "scan");
}

/* query's pattern: a cursor that moves to the tail on overrun, past corrupt records, until the end;
 * bounded here at a few laps of the ring. */
static void
follow(struct reader *rd, const struct arena *a, int r)
{
	uint64_t bound = 4 * a->ring[r].slot_count;
	uint64_t cur = arena_tail(a, (enum arena_ring_id)r);
	uint64_t i = 0;
	rd->res->follows++;
	for (; i < bound; i++) {
		enum arena_read_status st = read_one(rd, a, r, cur, "follow");
		if (st == ARENA_READ_END)
			break;
		if (st == ARENA_READ_OVERRUN)
			cur = arena_tail(a, (enum arena_ring_id)r);
		else
			cur++;
	}
	if (i == bound)
		rd->res->follows_cut++;
}

/* Moves a mapping between two PROT_NONE guard areas, so that a read leaving the arena faults instead
 * of silently reading whatever the kernel happened to map next to it. Returns the reserved region
 * (to be unmapped whole after arena_unmap), or NULL when it could not be done (then unguarded). */
#define GUARD_BYTES ((size_t)1 << 20)

static void *
guard(struct arena *m)
{
	size_t total = m->size + 2 * GUARD_BYTES;
	char *region = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED)
		return NULL;
	void *n = mremap(m->base, m->size, m->size, MREMAP_MAYMOVE | MREMAP_FIXED, region + GUARD_BYTES);
	if (n == MAP_FAILED) {
		munmap(region, total);
		return NULL;
	}
	ptrdiff_t d = (char *)n - (char *)m->base;
	m->base = n;
	m->hdr = n;
	m->ctl = (struct arena_control *)((char *)m->ctl + d);
	for (int r = 0; r < ARENA_RINGS; r++) {
		m->ring[r].slots = (struct arena_slot *)((char *)m->ring[r].slots + d);
		m->ring[r].data += d;
	}
	return region;
}

static void
unmap_guarded(struct arena *m, void *region)
{
	size_t total = m->size + 2 * GUARD_BYTES;
	arena_unmap(m);
	if (region)
		munmap(region, total);
}

static bool
within(const struct arena *m, const void *p, uint64_t len)
{
	const char *b = m->base, *q = p;
	return q >= b && (uint64_t)(q - b) <= m->size && len <= m->size - (uint64_t)(q - b);
}

/* Maps the arena again through its current header: refused with a message, or a handle whose every
 * offset stays inside the object (and then it is read through like the first one). */
static void
remap(struct reader *rd, int ro_fd)
{
	struct arena m;
	char err[256];
	err[0] = '\0';
	rd->res->remaps++;
	if (arena_map(&m, ro_fd, false, err, sizeof(err)) < 0) {
		rd->res->remaps_refused++;
		if (!err[0])
			rd->res->remaps_refused_silent++;
		else if (!rd->res->first_refusal[0])
			snprintf(rd->res->first_refusal, sizeof(rd->res->first_refusal), "%s", err);
		return;
	}
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct arena_ring *g = &m.ring[r];
		if (!within(&m, g->slots, g->slot_count * sizeof(struct arena_slot)) || !within(&m, g->data, g->data_size) ||
		    g->slot_count == 0 || g->data_size == 0 || g->max_record > g->data_size) {
			rd->res->remaps_unsafe++;
			if (!rd->res->first_bad[0])
				snprintf(rd->res->first_bad, sizeof(rd->res->first_bad),
				         "arena_map accepted a geometry outside the object: ring %d slots at +%td x %" PRIu64
				         ", data at +%td size %" PRIu64 " (object %zu bytes)",
				         r, (const char *)g->slots - (const char *)m.base, g->slot_count,
				         (const char *)g->data - (const char *)m.base, g->data_size, m.size);
			arena_unmap(&m);
			return;
		}
	}
	void *gm = guard(&m);
	if (!gm)
		rd->res->unguarded++;
	uint64_t ok0 = rd->res->ok;
	for (int k = 0; k < 200; k++) {
		int r = (int)rnd_below(&rd->rs, ARENA_RINGS);
		read_one(rd, &m, r, pick_seq(rd, &m, r), "remapped read");
	}
	scan(rd, &m, (int)rnd_below(&rd->rs, ARENA_RINGS));
	rd->res->remap_reads_ok += rd->res->ok - ok0;
	unmap_guarded(&m, gm);
}

static void __attribute__((noreturn))
reader_main(int ro_fd, struct results *res, uint64_t seed, uint64_t deadline_ms)
{
	struct reader rd = { .res = res, .out = BUF_INIT, .rs = seed };
	struct arena a;
	char err[256];
	if (arena_map(&a, ro_fd, false, err, sizeof(err)) < 0) {
		snprintf(res->first_bad, sizeof(res->first_bad), "reader cannot map: %s", err);
		_exit(2);
	}
	void *ga = guard(&a);
	if (!ga)
		res->unguarded++;
	while (mono_ms() < deadline_ms) {
		res->ops++;
		int r = (int)rnd_below(&rd.rs, ARENA_RINGS);
		uint64_t op = rnd_below(&rd.rs, 100);
		if (op < 80)
			read_one(&rd, &a, r, pick_seq(&rd, &a, r), "random read");
		else if (op < 92)
			scan(&rd, &a, r);
		else
			follow(&rd, &a, r);
		if (res->ops % REMAP_EVERY == 0)
			remap(&rd, ro_fd);
	}
	buf_free(&rd.out);
	unmap_guarded(&a, ga);
	res->reader_done = 1;
	_exit(0);
}

/* --- the vandal ------------------------------------------------------------------------------------- */

struct vandal {
	unsigned char *base; /* a second, writable mapping of the same file */
	size_t size;
	unsigned char pristine[ARENA_HEADER_SIZE];
	struct arena_header geo; /* the true geometry, to aim at slots and data */
	uint64_t vs;
	uint64_t flips[6];
};

enum { V_HEADER, V_COUNTER, V_SLOT, V_DATA, V_ANY, V_COUNTER_SET };

static void
flip_byte(struct vandal *v, uint64_t off)
{
	if (off >= v->size)
		return;
	unsigned char x = (unsigned char)(rnd(&v->vs) | 1); /* never a no-op */
	if (rnd_below(&v->vs, 2))
		x = (unsigned char)(1u << rnd_below(&v->vs, 8));
	v->base[off] ^= x;
}

static void
vandalise_counter(struct vandal *v)
{
	struct arena_control *c = (struct arena_control *)(v->base + ARENA_HEADER_SIZE);
	int r = (int)rnd_below(&v->vs, ARENA_RINGS);
	_Atomic uint64_t *f[4] = { &c->ring[r].head_seq, &c->ring[r].tail_seq, &c->ring[r].data_head, &c->ring[r].data_tail };
	_Atomic uint64_t *p = f[rnd_below(&v->vs, 4)];
	uint64_t x = atomic_load_explicit(p, memory_order_relaxed);
	uint64_t slots = v->geo.ring[r].slot_count, data = v->geo.ring[r].data_size;
	switch (rnd_below(&v->vs, 10)) {
	case 0:
		x ^= 1ull << rnd_below(&v->vs, 64);
		break;
	case 1:
		x ^= (rnd(&v->vs) & 0xff) << (8 * rnd_below(&v->vs, 8));
		break;
	case 2:
		x += 1 + rnd_below(&v->vs, 4);
		break;
	case 3:
		x -= 1 + rnd_below(&v->vs, 4);
		break;
	case 4:
		x += rnd_below(&v->vs, 2) ? slots : data;
		break;
	case 5:
		x -= rnd_below(&v->vs, 2) ? slots : data;
		break;
	case 6:
		x = 0;
		break;
	case 7:
		x = UINT64_MAX - rnd_below(&v->vs, 3);
		break;
	case 8:
		x -= rnd_below(&v->vs, slots * 2);
		break;
	default:
		x = rnd(&v->vs);
	}
	atomic_store_explicit(p, x, memory_order_relaxed);
	v->flips[V_COUNTER_SET]++;
}

static void
vandalise_counter_byte(struct vandal *v)
{
	/* a byte of a ring's head_seq, tail_seq, data_head or data_tail */
	int r = (int)rnd_below(&v->vs, ARENA_RINGS);
	flip_byte(v, ARENA_HEADER_SIZE + offsetof(struct arena_control, ring) + (uint64_t)r * sizeof(struct arena_ring_ctl) +
	                     rnd_below(&v->vs, 4 * sizeof(uint64_t)));
	v->flips[V_COUNTER]++;
}

static void
vandalise_once(struct vandal *v)
{
	uint64_t w = rnd_below(&v->vs, 100);
	if (w < 5) {
		/* the header's fields, now and then anywhere in its page */
		uint64_t n = rnd_below(&v->vs, 4) ? sizeof(struct arena_header) : ARENA_HEADER_SIZE;
		flip_byte(v, rnd_below(&v->vs, n));
		v->flips[V_HEADER]++;
	} else if (w < 40) {
		int r = (int)rnd_below(&v->vs, ARENA_RINGS);
		flip_byte(v, v->geo.ring[r].slots_off +
		                     rnd_below(&v->vs, (uint64_t)v->geo.ring[r].slot_count * sizeof(struct arena_slot)));
		v->flips[V_SLOT]++;
	} else if (w < 75) {
		int r = (int)rnd_below(&v->vs, ARENA_RINGS);
		flip_byte(v, v->geo.ring[r].data_off + rnd_below(&v->vs, v->geo.ring[r].data_size));
		v->flips[V_DATA]++;
	} else {
		flip_byte(v, rnd_below(&v->vs, v->size));
		v->flips[V_ANY]++;
	}
}

static void
sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --- the test ----------------------------------------------------------------------------------- */

static int
create_arena(struct arena *w, int *ro)
{
	char err[256], why[256];
	unlink(path);
	int fd = arena_create_or_open(path, SIZE, ro, err, sizeof(err));
	ck_assert_msg(fd >= 0, "create: %s", err);
	ck_assert_msg(arena_map(w, fd, true, err, sizeof(err)) == 0, "map: %s", err);
	ck_assert_int_eq(arena_recover(w, why, sizeof(why)), 0);
	return fd;
}

static const char *
status_text(int st, char *b, size_t n)
{
	if (WIFEXITED(st))
		snprintf(b, n, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(b, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(b, n, "wait status %#x", st);
	return b;
}

/* Waits for a child and returns its wait status; a child still running after timeout_ms is killed
 * (status: SIGKILL) and *hung set. */
static int
wait_child(pid_t pid, uint64_t timeout_ms, bool *hung)
{
	uint64_t end = mono_ms() + timeout_ms;
	int st = 0;
	*hung = false;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (mono_ms() > end) {
			*hung = true;
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return st;
		}
		sleep_us(2000);
	}
}

START_TEST(test_reader_survives_vandal)
{
	uint64_t run_ms = env_u64("CHECK_ARENA_CORRUPT_MS", DEFAULT_RUN_MS);
	uint64_t seed = env_u64("CHECK_ARENA_CORRUPT_SEED", DEFAULT_SEED);
	bool strict_meta = env_u64("CHECK_ARENA_CORRUPT_STRICT_META", 0) != 0;
	struct arena w;
	int ro = -1;
	int fd = create_arena(&w, &ro);
	struct results *res = results_new();

	/* a clean start: let the writer wrap both rings before anything is damaged */
	pid_t writer = writer_start(&w, res, seed_for(seed, 3), false);
	uint64_t t0 = mono_ms();
	while ((arena_tail(&w, ARENA_FACTS) == 0 || arena_tail(&w, ARENA_RAW) == 0) && mono_ms() - t0 < 5000)
		sleep_us(500);
	ck_assert_msg(arena_tail(&w, ARENA_FACTS) > 0 && arena_tail(&w, ARENA_RAW) > 0, "the writer never wrapped the rings");

	struct vandal v = { .size = w.size, .vs = seed_for(seed, 2) };
	int vfd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(vfd, 0);
	v.base = mmap(NULL, v.size, PROT_READ | PROT_WRITE, MAP_SHARED, vfd, 0);
	ck_assert_ptr_ne(v.base, MAP_FAILED);
	memcpy(v.pristine, v.base, ARENA_HEADER_SIZE);
	memcpy(&v.geo, v.base, sizeof(v.geo));

	uint64_t start = mono_ms();
	uint64_t deadline = start + run_ms;
	pid_t reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0)
		reader_main(ro, res, seed_for(seed, 1), deadline);

	uint64_t writer_restarts = 0, writer_deaths = 0, last_progress = 0, last_progress_ms = start;
	uint64_t last_restore = start, restores = 0, next_counter_ms = start;
	char sbuf[128], writer_death[160] = "";
	while (mono_ms() < deadline) {
		vandalise_once(&v);
		sleep_us(20 + rnd_below(&v.vs, 300));
		uint64_t now = mono_ms();
		/* The counters get their own, slower schedule: a broken tail_seq stalls the writer. */
		if (now >= next_counter_ms) {
			if (rnd_below(&v.vs, 2))
				vandalise_counter(&v);
			else
				vandalise_counter_byte(&v);
			next_counter_ms = now + rnd_below(&v.vs, 2 * COUNTER_EVERY_MS + 1);
		}
		if (now - last_restore >= HEADER_RESTORE_MS) {
			memcpy(v.base, v.pristine, ARENA_HEADER_SIZE);
			last_restore = now;
			restores++;
		}
		/* The writer may be stuck in an eviction loop fed with a counter the vandal broke (tail_seq
		 * beyond its head, for example): kill it and start another, which recovers first. */
		uint64_t p = atomic_load_explicit(&res->writer_appends, memory_order_relaxed);
		int st;
		pid_t dead = waitpid(writer, &st, WNOHANG);
		if (dead == writer) {
			writer_deaths++;
			if (!writer_death[0])
				snprintf(writer_death, sizeof(writer_death), "%s", status_text(st, sbuf, sizeof(sbuf)));
			writer = writer_start(&w, res, seed_for(seed, 100 + writer_restarts++), true);
			last_progress_ms = now;
		} else if (p != last_progress) {
			last_progress = p;
			last_progress_ms = now;
		} else if (now - last_progress_ms > WRITER_STALL_MS) {
			kill(writer, SIGKILL);
			waitpid(writer, &st, 0);
			writer = writer_start(&w, res, seed_for(seed, 100 + writer_restarts++), true);
			last_progress_ms = now;
		}
	}
	kill(writer, SIGKILL);
	waitpid(writer, NULL, 0);
	bool hung;
	int rst = wait_child(reader, READER_GRACE_MS, &hung);
	memcpy(v.base, v.pristine, ARENA_HEADER_SIZE);

	printf("# vandal: %" PRIu64 " header, %" PRIu64 " counter-byte, %" PRIu64 " counter-set, %" PRIu64 " slot, %" PRIu64
	       " data, %" PRIu64 " anywhere flips in %" PRIu64 " ms (seed %#" PRIx64 "); header restored %" PRIu64 " times\n",
	       v.flips[V_HEADER], v.flips[V_COUNTER], v.flips[V_COUNTER_SET], v.flips[V_SLOT], v.flips[V_DATA], v.flips[V_ANY],
	       run_ms, seed, restores);
	printf("# writer: %" PRIu64 " publishes, %" PRIu64 " restarts after a stall or death, %" PRIu64 " deaths%s%s%s\n",
	       atomic_load(&res->writer_appends), writer_restarts, writer_deaths, writer_death[0] ? " (first: " : "",
	       writer_death, writer_death[0] ? ")" : "");
	printf("# reader: %" PRIu64 " reads in %" PRIu64 " operations: %" PRIu64 " ok, %" PRIu64 " overrun, %" PRIu64
	       " corrupt, %" PRIu64 " end\n",
	       res->reads, res->ops, res->ok, res->overrun, res->corrupt, res->end);
	printf("# reader: %" PRIu64 " scans (%" PRIu64 " cut at the slot count), %" PRIu64 " follows (%" PRIu64
	       " cut after 4 laps: an unbounded follower would have spun there)\n",
	       res->scans, res->scans_cut, res->follows, res->follows_cut);
	if (res->unguarded)
		printf("# reader: %" PRIu64 " mapping(s) could not be put between guard pages\n", res->unguarded);
	printf("# reader: %" PRIu64 " re-mappings, %" PRIu64 " refused (%" PRIu64 " without a message), %" PRIu64
	       " unsafe, %" PRIu64 " records read ok through them%s%s\n",
	       res->remaps, res->remaps_refused, res->remaps_refused_silent, res->remaps_unsafe, res->remap_reads_ok,
	       res->first_refusal[0] ? "; e.g. " : "", res->first_refusal);
	printf("# reader: %" PRIu64 " holes read (records a restarted writer's recovery let go as damaged); %" PRIu64
	       " of the wrong payloads were empty; other: %s\n", res->holes, res->bad_empty,
	       res->first_other_bad[0] ? res->first_other_bad : "none");
	printf("# reader: %" PRIu64 " accepted with a wrong payload, %" PRIu64 " accepted with wrong slot metadata%s%s%s\n",
	       res->bad_payload, res->bad_meta, res->first_meta[0] ? " (first: " : "", res->first_meta,
	       res->first_meta[0] ? ")" : "");

	ck_assert_msg(!hung, "the reader hung: still running %d ms after its deadline", READER_GRACE_MS);
	ck_assert_msg(WIFEXITED(rst) && WEXITSTATUS(rst) == 0 && res->reader_done,
	              "the reader did not exit normally: %s; last finding: %s", status_text(rst, sbuf, sizeof(sbuf)),
	              res->first_bad[0] ? res->first_bad : "(none)");
	ck_assert_msg(res->bad_payload == 0 && res->remaps_unsafe == 0, "%" PRIu64 " bad record(s) accepted, %" PRIu64
	              " unsafe mapping(s); first: %s", res->bad_payload, res->remaps_unsafe, res->first_bad);
	ck_assert_msg(res->remaps_refused_silent == 0, "arena_map refused a corrupted header without a message");
	if (strict_meta)
		ck_assert_msg(res->bad_meta == 0, "slot metadata accepted corrupted: %s", res->first_meta);
	/* the run must have meant something */
	ck_assert_msg(res->ok > 1000, "only %" PRIu64 " records read ok", res->ok);
	ck_assert_msg(res->corrupt > 0, "the vandal never made a record unreadable");
	ck_assert_msg(res->remaps > 0 && res->remaps_refused > 0, "no re-mapping met a corrupted header");

	/* After the vandal stops: recovery leaves an arena whose every record reads back exactly (in a
	 * child: a crash there must be reported, not take the test runner down). */
	pid_t rec = fork();
	ck_assert_int_ge(rec, 0);
	if (rec == 0) {
		char why[512];
		arena_recover(&w, why, sizeof(why));
		struct buf out = BUF_INIT;
		struct arena_rec rr;
		for (int r = 0; r < ARENA_RINGS; r++) {
			uint64_t t = arena_tail(&w, (enum arena_ring_id)r), h = arena_head(&w, (enum arena_ring_id)r);
			if (h < t || h - t > w.ring[r].slot_count)
				_exit(10 + r);
			uint64_t holes = 0;
			for (uint64_t s = t; s < h; s++) {
				if (arena_read(&w, (enum arena_ring_id)r, s, &rr, &out) != ARENA_READ_OK)
					_exit(20 + r);
				/* a record recovery found damaged is a hole, known as such; every other is exact */
				if (rr.kind == ARENA_KIND_HOLE && rr.len == 0)
					holes++;
				else if (payload_mismatch((const unsigned char *)out.data, out.len, r, s) != 0)
					_exit(20 + r);
			}
			printf("# after recovery (%s): ring %d holds [%" PRIu64 ", %" PRIu64 "), all exact but %" PRIu64
			       " hole(s)\n", why[0] ? why : "nothing to do", r, t, h, holes);
		}
		/* and it still takes records */
		unsigned char *b = malloc(max_len[ARENA_RAW]);
		for (int r = 0; r < ARENA_RINGS; r++) {
			uint64_t s = arena_next_seq(&w, (enum arena_ring_id)r);
			fill(b, r, s);
			struct iovec iov = { b, rec_len(r, s) };
			arena_append(&w, (enum arena_ring_id)r, rec_kind(r, s), rec_flags(r, s), rec_ref(r, s), arena_now_ns(), &iov, 1);
			arena_publish(&w);
			if (arena_read(&w, (enum arena_ring_id)r, s, &rr, &out) != ARENA_READ_OK ||
			    payload_mismatch((const unsigned char *)out.data, out.len, r, s) != 0)
				_exit(30 + r);
		}
		_exit(0);
	}
	int st = wait_child(rec, 20000, &hung);
	ck_assert_msg(!hung && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "after the vandal stopped, recovery + read-back failed: %s%s (10+r: counters, 20+r: a record in "
	              "[tail, head) unreadable or wrong, 30+r: append after recovery)",
	              status_text(st, sbuf, sizeof(sbuf)), hung ? ", hung" : "");

	munmap(v.base, v.size);
	close(vfd);
	munmap(res, sizeof(*res));
	arena_unmap(&w);
	close(ro);
	close(fd);
}
END_TEST

/* Every single-byte corruption of the header (each byte, several patterns), on the file itself:
 * arena_check_header on a copy and arena_map on the file either refuse with a message, or accept
 * a geometry that stays inside the object, and then reading every record through it neither
 * crashes nor accepts a wrong payload. Runs in a child so that a crash is reported as such. */
START_TEST(test_corrupted_header_refused_or_harmless)
{
	struct arena w;
	int ro = -1;
	int fd = create_arena(&w, &ro);
	unsigned char *buf = malloc(max_len[ARENA_RAW]);
	/* fill both rings past a wrap */
	for (uint64_t i = 0; i < 3000; i++) {
		for (int r = 0; r < ARENA_RINGS; r++) {
			uint64_t s = arena_next_seq(&w, (enum arena_ring_id)r);
			fill(buf, r, s);
			struct iovec iov = { buf, rec_len(r, s) };
			arena_append(&w, (enum arena_ring_id)r, rec_kind(r, s), rec_flags(r, s), rec_ref(r, s), arena_now_ns(), &iov, 1);
		}
		arena_publish(&w);
	}
	free(buf);
	struct results *res = results_new();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static const unsigned char pattern[] = { 0x01, 0x02, 0x10, 0x40, 0x80, 0xff };
		unsigned char pristine[ARENA_HEADER_SIZE];
		memcpy(pristine, w.base, ARENA_HEADER_SIZE);
		unsigned char *copy = malloc(w.size);
		memcpy(copy, w.base, w.size);
		struct reader rd = { .res = res, .out = BUF_INIT, .rs = 77 };
		uint64_t refused = 0, accepted = 0, check_refused = 0;
		for (size_t off = 0; off < sizeof(struct arena_header) + 8; off++) {
			for (size_t k = 0; k < sizeof(pattern); k++) {
				unsigned char b = pristine[off] ^ pattern[k];
				char err[256] = "";
				/* arena_check_header on a private copy */
				copy[off] = b;
				if (arena_check_header(copy, w.size, err, sizeof(err)) < 0) {
					check_refused++;
					if (!err[0])
						_exit(40);
				}
				copy[off] = pristine[off];
				/* arena_map on the file */
				if (pwrite(fd, &b, 1, (off_t)off) != 1)
					_exit(41);
				struct arena m;
				err[0] = '\0';
				if (arena_map(&m, ro, false, err, sizeof(err)) < 0) {
					refused++;
					if (!err[0])
						_exit(42);
				} else {
					accepted++;
					void *gm = NULL;
					for (int r = 0; r < ARENA_RINGS; r++) {
						const struct arena_ring *g = &m.ring[r];
						if (!within(&m, g->slots, g->slot_count * sizeof(struct arena_slot)) ||
						    !within(&m, g->data, g->data_size) || g->max_record > g->data_size) {
							snprintf(res->first_bad, sizeof(res->first_bad),
							         "byte %zu ^ %#x: accepted geometry outside the object (ring %d)", off,
							         pattern[k], r);
							_exit(43);
						}
						if (!gm)
							gm = guard(&m);
						uint64_t t = arena_tail(&m, (enum arena_ring_id)r), h = arena_head(&m, (enum arena_ring_id)r);
						for (uint64_t s = t; s < h && s - t <= g->slot_count; s++)
							read_one(&rd, &m, r, s, "corrupted header");
					}
					unmap_guarded(&m, gm);
				}
				if (pwrite(fd, &pristine[off], 1, (off_t)off) != 1)
					_exit(44);
			}
		}
		printf("# header corruption: %" PRIu64 " single-byte variants: arena_check_header refused %" PRIu64
		       ", arena_map refused %" PRIu64 " and accepted %" PRIu64 " (%" PRIu64 " records read ok through them, %" PRIu64
		       " corrupt)\n",
		       (uint64_t)((sizeof(struct arena_header) + 8) * sizeof(pattern)), check_refused, refused, accepted,
		       res->ok, res->corrupt);
		printf("# e.g. magic: ");
		{
			char err[256];
			copy[0] ^= 1;
			arena_check_header(copy, w.size, err, sizeof(err));
			printf("\"%s\"; size: ", err);
			copy[0] ^= 1;
			arena_check_header(copy, w.size - ARENA_PAGE, err, sizeof(err));
			printf("\"%s\"\n", err);
		}
		free(copy);
		buf_free(&rd.out);
		_exit(res->bad_payload ? 45 : 0);
	}
	bool hung;
	char sbuf[128];
	int st = wait_child(pid, 30000, &hung);
	ck_assert_msg(!hung && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "corrupted headers: %s%s (40/42: refused without a message, 43: unsafe geometry accepted, 45: wrong "
	              "payload accepted); %s",
	              status_text(st, sbuf, sizeof(sbuf)), hung ? ", hung" : "", res->first_bad);
	/* a truncated object and a too-small size are refused with a message too */
	char err[256] = "";
	ck_assert_int_eq(arena_check_header(w.base, ARENA_HEADER_SIZE, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no message for a too-small mapping");
	munmap(res, sizeof(*res));
	arena_unmap(&w);
	close(ro);
	close(fd);
}
END_TEST

/* A slot that was never written (a fresh arena, or one wiped by a reset or a re-initialisation) is
 * all zeros: seq 0, len 0, crc 0, and 0 is also the CRC-32C of nothing. A head_seq broken upwards
 * must not turn it into an accepted record 0, neither for a reader nor for recovery. */
START_TEST(test_zeroed_slot_is_not_a_record)
{
	struct arena w, r;
	int ro = -1;
	int fd = create_arena(&w, &ro);
	char err[256], why[256];
	ck_assert_int_eq(arena_map(&r, ro, false, err, sizeof(err)), 0);
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	for (int ring = 0; ring < ARENA_RINGS; ring++)
		atomic_store(&w.ctl->ring[ring].head_seq, 1); /* the vandal: one committed record claimed */
	enum arena_read_status st[ARENA_RINGS];
	for (int ring = 0; ring < ARENA_RINGS; ring++) {
		memset(&rec, 0, sizeof(rec));
		st[ring] = arena_read(&r, (enum arena_ring_id)ring, 0, &rec, &out);
		printf("# never-written slot 0 of ring %d, head_seq 1: arena_read says %s (len %u)\n", ring,
		       st[ring] == ARENA_READ_OK ? "OK" : st[ring] == ARENA_READ_CORRUPT ? "CORRUPT" : "END/OVERRUN", rec.len);
	}
	arena_recover(&w, why, sizeof(why));
	uint64_t head_after = arena_head(&w, ARENA_FACTS), tail_after = arena_tail(&w, ARENA_FACTS);
	printf("# recovery then: \"%s\", facts [%" PRIu64 ", %" PRIu64 ")\n", why, tail_after, head_after);
	for (int ring = 0; ring < ARENA_RINGS; ring++)
		ck_assert_msg(st[ring] != ARENA_READ_OK,
		              "ring %d: a never-written (all-zero) slot was accepted as record 0 with an empty payload", ring);
	ck_assert_msg(tail_after == head_after, "recovery kept a never-written slot as committed record 0");
	ck_assert_int_eq(arena_read(&w, ARENA_FACTS, 0, &rec, &out), ARENA_READ_OVERRUN);
	buf_free(&out);
	arena_unmap(&r);
	arena_unmap(&w);
	close(ro);
	close(fd);
}
END_TEST

/* arena_map while somebody rewrites the header: whatever geometry the handle ends up with must be
 * one that was validated. A second process flips ring 0's slots_off between its true value and one
 * far beyond the object (refused by arena_check_header); every handle arena_map returns must keep
 * its slots and data inside the object. */
START_TEST(test_map_while_header_changes)
{
	struct arena w;
	int ro = -1;
	int fd = create_arena(&w, &ro);
	unsigned char *buf = malloc(max_len[ARENA_RAW]);
	for (uint64_t i = 0; i < 500; i++) {
		uint64_t s = arena_next_seq(&w, ARENA_FACTS);
		fill(buf, ARENA_FACTS, s);
		struct iovec iov = { buf, rec_len(ARENA_FACTS, s) };
		arena_append(&w, ARENA_FACTS, rec_kind(ARENA_FACTS, s), rec_flags(ARENA_FACTS, s), rec_ref(ARENA_FACTS, s), arena_now_ns(), &iov, 1);
		arena_publish(&w);
	}
	free(buf);
	int vfd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(vfd, 0);
	unsigned char *vb = mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED, vfd, 0);
	ck_assert_ptr_ne(vb, MAP_FAILED);
	_Atomic uint64_t *field = (_Atomic uint64_t *)(vb + offsetof(struct arena_header, ring[0].slots_off));
	const uint64_t good = atomic_load(field), evil = (uint64_t)1 << 40;
	struct results *res = results_new();
	pid_t vandal = fork();
	ck_assert_int_ge(vandal, 0);
	if (vandal == 0) {
		atomic_store(&res->writer_appends, 1); /* running (nothing else in the loop: it must be fast) */
		for (;;) {
			atomic_store_explicit(field, evil, memory_order_relaxed);
			atomic_store_explicit(field, good, memory_order_relaxed);
		}
	}
	/* the clock starts once the vandal runs */
	uint64_t t0 = mono_ms();
	while (atomic_load(&res->writer_appends) == 0 && mono_ms() - t0 < 5000)
		sleep_us(100);
	/* The race is narrow and its odds depend on scheduling: run until it has shown a few times or
	 * the time is up. */
	uint64_t maps = 0, refused = 0, unsafe = 0, end = mono_ms() + env_u64("CHECK_ARENA_CORRUPT_MAP_MS", 4000);
	char first[256] = "";
	struct arena bad;
	bool have_bad = false;
	while (mono_ms() < end && unsafe < 20) {
		struct arena m;
		char err[256];
		maps++;
		if (arena_map(&m, ro, false, err, sizeof(err)) < 0) {
			refused++;
			continue;
		}
		const struct arena_ring *g = &m.ring[ARENA_FACTS];
		if (!within(&m, g->slots, g->slot_count * sizeof(struct arena_slot)) || !within(&m, g->data, g->data_size)) {
			if (unsafe++ == 0)
				snprintf(first, sizeof(first), "facts slots at +%td in a %zu-byte object",
				         (const char *)g->slots - (const char *)m.base, m.size);
			if (!have_bad) {
				bad = m;
				have_bad = true;
				continue;
			}
		}
		arena_unmap(&m);
	}
	kill(vandal, SIGKILL);
	waitpid(vandal, NULL, 0);
	atomic_store(field, good);
	char fate[160] = "";
	if (have_bad) {
		/* what a reader holding that handle meets on its next read */
		pid_t rd = fork();
		ck_assert_int_ge(rd, 0);
		if (rd == 0) {
			struct buf out = BUF_INIT;
			struct arena_rec rec;
			arena_read(&bad, ARENA_FACTS, arena_tail(&bad, ARENA_FACTS), &rec, &out);
			_exit(0);
		}
		bool hung;
		char sb[128];
		int st = wait_child(rd, 10000, &hung);
		snprintf(fate, sizeof(fate), "; a read through the first such handle: %s", status_text(st, sb, sizeof(sb)));
		arena_unmap(&bad);
	}
	printf("# arena_map during header rewrites: %" PRIu64 " maps, %" PRIu64 " refused, %" PRIu64
	       " returned an unvalidated geometry%s%s%s\n",
	       maps, refused, unsafe, first[0] ? " (first: " : "", first, first[0] ? ")" : "");
	if (fate[0])
		printf("#%s\n", fate + 1);
	ck_assert_msg(unsafe == 0,
	              "arena_map returned %" PRIu64 " handle(s) whose geometry was never validated: it checks the shared "
	              "header, then reads it again to build the handle (%s)%s",
	              unsafe, first, fate);
	ck_assert_msg(refused > 0, "the header rewrites were never seen (%" PRIu64 " maps)", maps);
	munmap(res, sizeof(*res));
	munmap(vb, w.size);
	close(vfd);
	arena_unmap(&w);
	close(ro);
	close(fd);
}
END_TEST

static Suite *
arena_corrupt_suite(void)
{
	Suite *s = suite_create("arena_corrupt");
	TCase *tc = tcase_create("arena_corrupt");
	/* Once for the whole case, in the runner: a failed test (its process exits at the failed
	 * assertion) leaves nothing behind in /tmp. Each test starts from a fresh arena file. */
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_reader_survives_vandal);
	tcase_add_test(tc, test_corrupted_header_refused_or_harmless);
	tcase_add_test(tc, test_zeroed_slot_is_not_a_record);
	tcase_add_test(tc, test_map_while_header_changes);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(arena_corrupt_suite)
