/* check_arena: unit tests of the shared-memory arena: geometry, append and read back, wrap-around,
 * eviction, a concurrent reader that must never accept a torn record, recovery after a writer killed
 * at each named point inside an append, header validation, locking and reset. Built with
 * -DARENA_KILL_POINTS so the writer can be killed mid-append for real. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
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

#define SMALL (1u << 20) /* the smallest arena: rings wrap quickly */
#define CONCURRENT_READS 200000
#define CONCURRENT_SECONDS 5

CHECK_TMP_FIXTURE("check_arena")

/* Deterministic content: every byte depends on the sequence number and the offset, so a record
 * glued together from two different writes is detected without trusting the CRC. */
static size_t
rec_len(uint64_t seq, size_t max)
{
	return (size_t)((seq * 2654435761u) % max) + 1;
}

static void
fill(unsigned char *p, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((seq * 31 + i * 7) ^ (seq >> 3));
}

static bool
matches(const unsigned char *p, size_t n, uint64_t seq, size_t max)
{
	if (n != rec_len(seq, max))
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)((seq * 31 + i * 7) ^ (seq >> 3)))
			return false;
	return true;
}

static int
open_rw(struct arena *a, uint64_t size)
{
	char err[256];
	int ro = -1;
	int fd = arena_create_or_open(path, size, &ro, err, sizeof(err));
	ck_assert_msg(fd >= 0, "create: %s", err);
	ck_assert_int_eq(arena_map(a, fd, true, err, sizeof(err)), 0);
	char why[256];
	ck_assert_int_eq(arena_recover(a, why, sizeof(why)), 0);
	return ro;
}

static uint64_t
append_one(struct arena *a, enum arena_ring_id r, uint64_t seq_hint, size_t max, unsigned char *scratch)
{
	size_t n = rec_len(seq_hint, max);
	fill(scratch, n, seq_hint);
	struct iovec iov = { scratch, n };
	return arena_append(a, r, 7, 3, seq_hint ^ 0xabc, arena_now_ns(), &iov, 1);
}

START_TEST(test_geometry)
{
	struct arena_geometry g;
	ck_assert_int_eq(arena_geometry(ARENA_MIN_SIZE - 1, &g), -1);
	uint64_t sizes[] = { ARENA_MIN_SIZE, 3u << 20, ARENA_DEFAULT_SIZE, 1ull << 32 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(arena_geometry(sizes[i], &g), 0);
		ck_assert_uint_le(g.file_size, sizes[i]);
		for (int r = 0; r < ARENA_RINGS; r++) {
			ck_assert_uint_eq(g.ring[r].data_size & (g.ring[r].data_size - 1), 0);
			ck_assert_uint_eq(g.ring[r].slot_count & (g.ring[r].slot_count - 1), 0);
			ck_assert_uint_eq(g.ring[r].slots_off % ARENA_PAGE, 0);
			ck_assert_uint_eq(g.ring[r].data_off % ARENA_PAGE, 0);
			ck_assert_uint_le(g.ring[r].data_off + g.ring[r].data_size, g.file_size);
		}
		/* raw payloads get the larger share */
		ck_assert_uint_gt(g.ring[ARENA_RAW].data_size, g.ring[ARENA_FACTS].data_size);
	}
}
END_TEST

START_TEST(test_append_read_back)
{
	struct arena a;
	int ro = open_rw(&a, SMALL);
	unsigned char buf[4096];
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	ck_assert_int_eq(arena_read(&a, ARENA_FACTS, 0, &rec, &out), ARENA_READ_END);
	for (uint64_t i = 0; i < 100; i++)
		ck_assert_uint_eq(append_one(&a, ARENA_FACTS, i, sizeof(buf), buf), i);
	/* appended but not published: invisible */
	ck_assert_int_eq(arena_read(&a, ARENA_FACTS, 0, &rec, &out), ARENA_READ_END);
	arena_publish(&a);
	struct arena r;
	char err[256];
	ck_assert_int_eq(arena_map(&r, ro, false, err, sizeof(err)), 0);
	for (uint64_t i = 0; i < 100; i++) {
		ck_assert_int_eq(arena_read(&r, ARENA_FACTS, i, &rec, &out), ARENA_READ_OK);
		ck_assert(matches((unsigned char *)out.data, out.len, i, sizeof(buf)));
		ck_assert_uint_eq(rec.seq, i);
		ck_assert_uint_eq(rec.kind, 7);
		ck_assert_uint_eq(rec.flags, 3);
		ck_assert_uint_eq(rec.ref, i ^ 0xabc);
		ck_assert_uint_gt(rec.time_ns, 0);
	}
	ck_assert_int_eq(arena_read(&r, ARENA_FACTS, 100, &rec, &out), ARENA_READ_END);
	ck_assert_int_eq(arena_read(&r, ARENA_RAW, 0, &rec, &out), ARENA_READ_END);
	/* a record larger than the ring's limit is refused, not truncated */
	unsigned char *big = calloc(1, a.ring[ARENA_FACTS].max_record + 1);
	struct iovec iov = { big, a.ring[ARENA_FACTS].max_record + 1 };
	ck_assert_uint_eq(arena_append(&a, ARENA_FACTS, 1, 0, 0, arena_now_ns(), &iov, 1), UINT64_MAX);
	iov.iov_len--;
	ck_assert_uint_eq(arena_append(&a, ARENA_FACTS, 1, 0, 0, arena_now_ns(), &iov, 1), 100);
	arena_rollback(&a);
	ck_assert_uint_eq(arena_next_seq(&a, ARENA_FACTS), 100);
	free(big);
	/* the read-only mapping really is read-only */
	ck_assert_int_eq(mprotect(r.base, 4096, PROT_READ | PROT_WRITE), -1);
	arena_unmap(&r);
	arena_unmap(&a);
	close(ro);
	close(a.fd);
	buf_free(&out);
}
END_TEST

START_TEST(test_wrap_around)
{
	struct arena a;
	int ro = open_rw(&a, SMALL);
	struct arena r;
	char err[256];
	ck_assert_int_eq(arena_map(&r, ro, false, err, sizeof(err)), 0);
	const size_t max = 9000; /* not a divisor of the ring: records straddle its end */
	unsigned char *buf = malloc(max);
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	uint64_t total = a.ring[ARENA_FACTS].data_size * 10 / (max / 2);
	uint64_t straddled = 0;
	for (uint64_t i = 0; i < total; i++) {
		uint64_t before = a.ring[ARENA_FACTS].pend_data_head;
		ck_assert_uint_eq(append_one(&a, ARENA_FACTS, i, max, buf), i);
		if ((before & a.ring[ARENA_FACTS].data_mask) + rec_len(i, max) > a.ring[ARENA_FACTS].data_size)
			straddled++;
		arena_publish(&a);
		/* the newest record and the oldest still stored always read back exactly */
		ck_assert_int_eq(arena_read(&r, ARENA_FACTS, i, &rec, &out), ARENA_READ_OK);
		ck_assert(matches((unsigned char *)out.data, out.len, i, max));
		uint64_t t = arena_tail(&r, ARENA_FACTS);
		ck_assert_int_eq(arena_read(&r, ARENA_FACTS, t, &rec, &out), ARENA_READ_OK);
		ck_assert(matches((unsigned char *)out.data, out.len, t, max));
		if (t > 0)
			ck_assert_int_eq(arena_read(&r, ARENA_FACTS, t - 1, &rec, &out), ARENA_READ_OVERRUN);
		/* never more bytes than the ring holds */
		ck_assert_uint_le(a.ring[ARENA_FACTS].pend_data_head - atomic_load(&a.ctl->ring[ARENA_FACTS].data_tail),
		                  a.ring[ARENA_FACTS].data_size);
	}
	ck_assert_uint_gt(straddled, 5);
	ck_assert_uint_gt(atomic_load(&a.ctl->ring[ARENA_FACTS].evicted), 0);
	/* every record in [tail, head) reads back */
	for (uint64_t s = arena_tail(&r, ARENA_FACTS); s < arena_head(&r, ARENA_FACTS); s++) {
		ck_assert_int_eq(arena_read(&r, ARENA_FACTS, s, &rec, &out), ARENA_READ_OK);
		ck_assert(matches((unsigned char *)out.data, out.len, s, max));
	}
	/* slot-limited eviction: many tiny records */
	uint64_t slots = a.ring[ARENA_RAW].slot_count;
	unsigned char one = 1;
	struct iovec iov = { &one, 1 };
	for (uint64_t i = 0; i < slots * 3; i++)
		arena_append(&a, ARENA_RAW, 1, 0, 0, arena_now_ns(), &iov, 1);
	arena_publish(&a);
	ck_assert_uint_eq(arena_head(&r, ARENA_RAW) - arena_tail(&r, ARENA_RAW), slots);
	free(buf);
	buf_free(&out);
	arena_unmap(&r);
	arena_unmap(&a);
	close(ro);
	close(a.fd);
}
END_TEST

/* A writer process appends continuously while this reader copies random records: every record the
 * reader accepts must be exactly what was written for that sequence number. */
START_TEST(test_concurrent_reader_never_torn)
{
	struct arena a;
	int ro = open_rw(&a, SMALL);
	const size_t max = 6000;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsigned char *buf = malloc(max);
		for (uint64_t i = 0;; i++) {
			append_one(&a, ARENA_FACTS, i, max, buf);
			arena_publish(&a);
		}
	}
	struct arena r;
	char err[256];
	ck_assert_int_eq(arena_map(&r, ro, false, err, sizeof(err)), 0);
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	uint64_t ok = 0, overrun = 0, corrupt = 0, bad = 0;
	unsigned seed = 12345;
	/* let the writer wrap the ring a few times before reading */
	while (atomic_load(&r.ctl->ring[ARENA_FACTS].evicted) < 1000)
		usleep(1000);
	time_t start = time(NULL);
	while (ok + overrun < CONCURRENT_READS && time(NULL) - start < CONCURRENT_SECONDS) {
		uint64_t h = arena_head(&r, ARENA_FACTS), t = arena_tail(&r, ARENA_FACTS);
		if (h == t)
			continue;
		/* favour the oldest records: they are the ones being overwritten */
		uint64_t s = t + (rand_r(&seed) % 4 == 0 ? (uint64_t)rand_r(&seed) % (h - t) : (uint64_t)rand_r(&seed) % 3);
		switch (arena_read(&r, ARENA_FACTS, s, &rec, &out)) {
		case ARENA_READ_OK:
			ok++;
			if (!matches((unsigned char *)out.data, out.len, s, max))
				bad++;
			break;
		case ARENA_READ_OVERRUN:
			overrun++;
			break;
		case ARENA_READ_CORRUPT:
			corrupt++;
			break;
		case ARENA_READ_END:
			break;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("# concurrent reader: %llu ok, %llu overrun, %llu corrupt, %llu torn\n", (unsigned long long)ok,
	       (unsigned long long)overrun, (unsigned long long)corrupt, (unsigned long long)bad);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(corrupt, 0);
	ck_assert_uint_gt(ok, 1000);
	buf_free(&out);
	arena_unmap(&r);
	arena_unmap(&a);
	close(ro);
	close(a.fd);
}
END_TEST

/* --- killed writers ------------------------------------------------------------------------------ */

static const char *kill_at;
static int kill_countdown;

static void
kill_hook(const char *name)
{
	if (strcmp(name, kill_at) == 0 && --kill_countdown <= 0)
		raise(SIGKILL);
}

static const char *const kill_points[] = {
	"append:evicted", "append:data", "append:slot", "publish:head", "publish:between", "reset:announced",
};

START_TEST(test_killed_writer_recovers)
{
	const char *point = kill_points[_i];
	for (int round = 0; round < 3; round++) {
		/* round 0: early, nothing wrapped; rounds 1-2: the ring has wrapped, evictions happen */
		uint64_t before = round == 0 ? 20 : 1500;
		struct arena a;
		int ro = open_rw(&a, SMALL);
		const size_t max = 3000;
		unsigned char *buf = malloc(max);
		uint64_t gen0 = arena_generation(&a);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			for (uint64_t i = 0; i < before; i++) {
				append_one(&a, ARENA_RAW, i, max, buf);
				append_one(&a, ARENA_FACTS, i, max, buf);
				arena_publish(&a);
			}
			kill_at = point;
			kill_countdown = 1 + round;
			arena_kill_point = kill_hook;
			bool resets = strcmp(point, "reset:announced") == 0;
			for (uint64_t i = before;; i++) {
				if (resets)
					arena_reset(&a);
				append_one(&a, ARENA_RAW, i, max, buf);
				append_one(&a, ARENA_FACTS, i, max, buf);
				arena_publish(&a);
			}
		}
		int status;
		waitpid(pid, &status, 0);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* what any reader saw as committed at the moment of death */
		uint64_t head[ARENA_RINGS];
		for (int r = 0; r < ARENA_RINGS; r++)
			head[r] = arena_head(&a, (enum arena_ring_id)r);
		char why[256];
		struct arena w;
		char err[256];
		ck_assert_int_eq(arena_map(&w, a.fd, true, err, sizeof(err)), 0);
		ck_assert_int_eq(arena_recover(&w, why, sizeof(why)), 0);
		struct buf out = BUF_INIT;
		struct arena_rec rec;
		for (int r = 0; r < ARENA_RINGS; r++) {
			/* nothing committed is lost, nothing uncommitted appears */
			ck_assert_uint_eq(arena_head(&w, (enum arena_ring_id)r), head[r]);
			for (uint64_t s = arena_tail(&w, (enum arena_ring_id)r); s < head[r]; s++) {
				ck_assert_int_eq(arena_read(&w, (enum arena_ring_id)r, s, &rec, &out), ARENA_READ_OK);
				ck_assert(matches((unsigned char *)out.data, out.len, s, max));
			}
		}
		if (strcmp(point, "reset:announced") == 0)
			ck_assert_uint_ne(arena_generation(&w), gen0);
		/* and the recovered arena keeps working */
		for (uint64_t i = 0; i < 50; i++) {
			uint64_t s = arena_next_seq(&w, ARENA_FACTS);
			append_one(&w, ARENA_FACTS, s, max, buf);
			arena_publish(&w);
			ck_assert_int_eq(arena_read(&w, ARENA_FACTS, s, &rec, &out), ARENA_READ_OK);
			ck_assert(matches((unsigned char *)out.data, out.len, s, max));
		}
		buf_free(&out);
		free(buf);
		arena_unmap(&w);
		arena_unmap(&a);
		close(ro);
		close(a.fd);
		unlink(path);
	}
}
END_TEST

/* Ten published records of ring r, sizes from rec_len(i, 512). */
static int
open_with_ten(struct arena *a, unsigned char *buf)
{
	int ro = open_rw(a, SMALL);
	for (uint64_t i = 0; i < 10; i++)
		ck_assert_uint_eq(append_one(a, ARENA_FACTS, i, 512, buf), i);
	arena_publish(a);
	return ro;
}

static void
close_rw(struct arena *a, int ro)
{
	arena_unmap(a);
	close(ro);
	close(a->fd);
	unlink(path);
}

static void
damage_payload(struct arena *a, uint64_t seq)
{
	struct arena_ring *ring = &a->ring[ARENA_FACTS];
	ring->data[ring->slots[seq & ring->slot_mask].pos & ring->data_mask] ^= 0xff;
}

/* Records [from, to) read back exactly; hole is the one that must read as a hole (or UINT64_MAX). */
static void
expect_records(struct arena *a, uint64_t from, uint64_t to, uint64_t hole)
{
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	for (uint64_t s = from; s < to; s++) {
		ck_assert_int_eq(arena_read(a, ARENA_FACTS, s, &rec, &out), ARENA_READ_OK);
		if (s == hole) {
			ck_assert_uint_eq(rec.kind, ARENA_KIND_HOLE);
			ck_assert_uint_eq(rec.len, 0);
		} else {
			ck_assert_uint_eq(rec.kind, 7);
			ck_assert(matches((unsigned char *)out.data, out.len, s, 512));
		}
	}
	buf_free(&out);
}

START_TEST(test_recover_keeps_records_after_a_damaged_one)
{
	/* A published record that fails validation is damage, not an interrupted write: it becomes a
	 * hole, and the records after it stay. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	damage_payload(&a, 7);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "1 damaged record(s) replaced by holes") != NULL, "why: %s", why);
	ck_assert_uint_eq(arena_tail(&a, ARENA_FACTS), 0);
	ck_assert_uint_eq(arena_head(&a, ARENA_FACTS), 10);
	expect_records(&a, 0, 10, 7);
	ck_assert_uint_eq(arena_counter_get(&a, ARENA_C_DAMAGED), 1);
	/* a second recovery finds nothing new to repair, and appends continue the sequence */
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(why[0] == '\0', "why: %s", why);
	ck_assert_uint_eq(append_one(&a, ARENA_FACTS, 10, sizeof(buf), buf), 10);
	arena_publish(&a);
	expect_records(&a, 0, 11, 7);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_damaged_slot_metadata)
{
	/* A slot whose position is garbage: the walk resumes at the next record that validates where
	 * its own slot says, so eviction later still finds consistent positions. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	a.ring[ARENA_FACTS].slots[4].pos ^= 0x5a5a5a5a00ull;
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	expect_records(&a, 0, 10, 4);
	ck_assert_uint_lt(a.ring[ARENA_FACTS].slots[4].pos, a.ring[ARENA_FACTS].slots[5].pos + 1);
	/* fill the ring several times over: eviction walks through the hole without losing its way */
	struct arena_ring *ring = &a.ring[ARENA_FACTS];
	uint64_t n = 4 * ring->data_size / 256 + 4 * ring->slot_count;
	for (uint64_t i = 10; i < 10 + n; i++) {
		ck_assert_uint_eq(append_one(&a, ARENA_FACTS, i, sizeof(buf), buf), i);
		arena_publish(&a);
	}
	uint64_t t = arena_tail(&a, ARENA_FACTS), h = arena_head(&a, ARENA_FACTS);
	ck_assert_uint_eq(h, 10 + n);
	ck_assert_uint_gt(t, 10);
	ck_assert_uint_le(h - t, ring->slot_count);
	expect_records(&a, t, h, UINT64_MAX);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_damaged_ends)
{
	/* Damage at the tail lets the oldest record go; damage to the newest leaves a hole there, and
	 * the next append reuses its bytes but never its sequence number. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	damage_payload(&a, 0);
	damage_payload(&a, 9);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "1 damaged oldest record(s) let go") && strstr(why, "replaced by holes"), "why: %s",
	              why);
	ck_assert_uint_eq(arena_tail(&a, ARENA_FACTS), 1);
	ck_assert_uint_eq(arena_head(&a, ARENA_FACTS), 10);
	expect_records(&a, 1, 10, 9);
	uint64_t hole_pos = a.ring[ARENA_FACTS].slots[9].pos;
	ck_assert_uint_eq(append_one(&a, ARENA_FACTS, 10, sizeof(buf), buf), 10);
	arena_publish(&a);
	ck_assert_uint_eq(a.ring[ARENA_FACTS].slots[10].pos, hole_pos);
	expect_records(&a, 1, 11, 9);
	ck_assert_uint_eq(arena_counter_get(&a, ARENA_C_DAMAGED), 2);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_clamps_counters)
{
	/* A tail beyond the head is brought back into the window: the records are still there. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	uint64_t gen = arena_generation(&a);
	atomic_store(&a.ctl->ring[ARENA_FACTS].tail_seq, 1000);
	atomic_store(&a.ctl->ring[ARENA_FACTS].data_tail, UINT64_MAX / 2);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "outside the window") != NULL, "why: %s", why);
	ck_assert_uint_eq(arena_generation(&a), gen);
	ck_assert_uint_eq(arena_tail(&a, ARENA_FACTS), 0);
	expect_records(&a, 0, 10, UINT64_MAX);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_rebuilds_counters_from_records)
{
	/* Head and tail both nonsense, records whole: the counters are rebuilt from the records (the
	 * head from the newest whole record, the tail from the data tail), nothing is lost. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	uint64_t gen = arena_generation(&a);
	atomic_store(&a.ctl->ring[ARENA_FACTS].head_seq, 5000000);
	atomic_store(&a.ctl->ring[ARENA_FACTS].tail_seq, 9000000);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "head counter 5000000") && strstr(why, "10 by the newest whole record"), "why: %s", why);
	ck_assert_uint_eq(arena_generation(&a), gen);
	ck_assert_uint_eq(arena_head(&a, ARENA_FACTS), 10);
	ck_assert_uint_eq(arena_tail(&a, ARENA_FACTS), 0);
	expect_records(&a, 0, 10, UINT64_MAX);
	ck_assert_uint_eq(append_one(&a, ARENA_FACTS, 0, sizeof(buf), buf), 10);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_head_moved_back)
{
	/* A head moved back would hide published records; a tail moved forward would drop them. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	atomic_store(&a.ctl->ring[ARENA_FACTS].head_seq, 4);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_uint_eq(arena_head(&a, ARENA_FACTS), 10);
	expect_records(&a, 0, 10, UINT64_MAX);
	close_rw(&a, ro);
	ro = open_with_ten(&a, buf);
	atomic_store(&a.ctl->ring[ARENA_FACTS].tail_seq, 6);
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "tail counter 6 disagrees with the data tail; moved to 0"), "why: %s", why);
	ck_assert_uint_eq(arena_tail(&a, ARENA_FACTS), 0);
	ck_assert_uint_gt(arena_counter_get(&a, ARENA_C_DAMAGED), 0);
	expect_records(&a, 0, 10, UINT64_MAX);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_keeps_records_after_hole_when_data_head_is_wrong)
{
	/* One damaged record, and a data head that points just past the first record: the walk must
	 * bound itself by the records, not by the counter, or it would turn good records into holes. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	damage_payload(&a, 5);
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "1 damaged record(s) replaced by holes"), "why: %s", why);
	expect_records(&a, 0, 10, 5);
	atomic_store(&a.ctl->ring[ARENA_FACTS].data_head, 5);
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 0);
	ck_assert_msg(!strstr(why, "holes"), "why: %s", why);
	expect_records(&a, 0, 10, 5);
	close_rw(&a, ro);
}
END_TEST

START_TEST(test_recover_reinitialises_broken_structure)
{
	/* Counters that point at no valid record at all: the structure is gone; a new generation. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	uint64_t gen = arena_generation(&a);
	atomic_store(&a.ctl->ring[ARENA_FACTS].head_seq, 5000000);
	atomic_store(&a.ctl->ring[ARENA_FACTS].tail_seq, 9000000);
	memset(a.ring[ARENA_FACTS].slots, 0, a.ring[ARENA_FACTS].slot_count * sizeof(struct arena_slot));
	char why[256];
	ck_assert_int_eq(arena_recover(&a, why, sizeof(why)), 1);
	ck_assert_msg(strstr(why, "no valid record") && strstr(why, "new generation"), "why: %s", why);
	ck_assert_uint_ne(arena_generation(&a), gen);
	ck_assert_uint_eq(arena_head(&a, ARENA_FACTS), 0);
	ck_assert_uint_eq(append_one(&a, ARENA_FACTS, 0, sizeof(buf), buf), 0);
	close_rw(&a, ro);
}
END_TEST

/* --- files, headers, locks ----------------------------------------------------------------------- */

START_TEST(test_header_validation)
{
	struct arena a;
	int ro = open_rw(&a, SMALL);
	char err[256];
	ck_assert_int_eq(arena_check_header(a.base, a.size, err, sizeof(err)), 0);
	/* a copy with another layout version */
	unsigned char *copy = malloc(a.size);
	memcpy(copy, a.base, a.size);
	((struct arena_header *)copy)->layout_version = 99;
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "99") && strstr(err, "version 1"), "err: %s", err);
	memcpy(copy, a.base, a.size);
	ck_assert_int_eq(arena_check_header(copy, a.size - 4096, err, sizeof(err)), -1);
	memcpy(copy, a.base, a.size);
	((struct arena_header *)copy)->ring[1].data_size = 1ull << 40;
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	memcpy(copy, a.base, a.size);
	copy[0] = 'X';
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	/* geometry inside the bounds but not the one the size gives: every record would be misread */
	memcpy(copy, a.base, a.size);
	((struct arena_header *)copy)->ring[0].slot_count /= 2;
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "geometry does not match"), "err: %s", err);
	memcpy(copy, a.base, a.size);
	((struct arena_header *)copy)->ring[1].slots_off += 4096;
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	memcpy(copy, a.base, a.size);
	((struct arena_header *)copy)->header_size = 200;
	ck_assert_int_eq(arena_check_header(copy, a.size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "200") && strstr(err, "112"), "err: %s", err);
	free(copy);
	arena_unmap(&a);
	/* a second opener is refused while the lock is held, naming the arena */
	int ro2 = -1;
	ck_assert_int_eq(arena_create_or_open(path, SMALL, &ro2, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, path) && strstr(err, "in use"), "err: %s", err);
	close(ro);
	close(a.fd);
	/* reopened with another size: refused, naming both sizes */
	ck_assert_int_eq(arena_create_or_open(path, 4u << 20, &ro2, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "--arena-size 1M") && strstr(err, "--arena-size 4M"), "err: %s", err);
	/* same size: accepted, contents kept */
	int fd = arena_create_or_open(path, SMALL, &ro2, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(ro2);
}
END_TEST

START_TEST(test_refuses_arena_with_zeroed_magic)
{
	/* An arena whose magic was zeroed looks like an interrupted init, but it holds published
	 * records: it is damage, refused, never re-created over the records. */
	struct arena a;
	unsigned char buf[512];
	int ro = open_with_ten(&a, buf);
	memset(a.base, 0, 8);
	arena_unmap(&a);
	close(ro);
	close(a.fd);
	char err[256];
	int ro2 = -1;
	ck_assert_int_eq(arena_create_or_open(path, SMALL, &ro2, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no magic but holds records"), "err: %s", err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 1 << 19);
	unlink(path);
}
END_TEST

START_TEST(test_refuses_foreign_zero_prefixed_file)
{
	/* A disk image or preallocated file starts with zeros where our magic would be: still not ours. */
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	char block[4096] = { 0 };
	memcpy(block + 446, "partition table, boot code, data", 33);
	ck_assert_int_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	close(fd);
	char err[256];
	int ro = -1;
	ck_assert_int_eq(arena_create_or_open(path, SMALL, &ro, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a liveevents arena"), "err: %s", err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)sizeof(block));
}
END_TEST

START_TEST(test_refuses_foreign_file)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	const char text[] = "somebody's notes, not an arena\n";
	ck_assert_int_eq(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));
	close(fd);
	char err[256];
	int ro = -1;
	ck_assert_int_eq(arena_create_or_open(path, SMALL, &ro, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a liveevents arena"), "err: %s", err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)sizeof(text)); /* untouched */
}
END_TEST

START_TEST(test_shm_object)
{
	char name[64];
	snprintf(name, sizeof(name), "/dev/shm/check_arena_%d", (int)getpid());
	char err[256];
	int ro = -1;
	int fd = arena_create_or_open(name, SMALL, &ro, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	struct arena a;
	ck_assert_int_eq(arena_map(&a, fd, true, err, sizeof(err)), 0);
	ck_assert(!a.file_backed);
	arena_unmap(&a);
	close(fd);
	close(ro);
	shm_unlink(name + strlen("/dev/shm"));
}
END_TEST

START_TEST(test_reset_overwrites)
{
	struct arena a;
	int ro = open_rw(&a, SMALL);
	const char secret[] = "PATIENT-HEALTH-DETAIL-0123456789";
	struct iovec iov = { (void *)secret, sizeof(secret) - 1 };
	for (int i = 0; i < 20; i++) {
		arena_append(&a, ARENA_FACTS, 1, 0, 0, arena_now_ns(), &iov, 1);
		arena_append(&a, ARENA_RAW, 1, 0, 0, arena_now_ns(), &iov, 1);
	}
	arena_publish(&a);
	uint64_t gen = arena_generation(&a);
	uint64_t head = arena_head(&a, ARENA_FACTS);
	arena_reset(&a);
	ck_assert_uint_ne(arena_generation(&a), gen);
	struct buf out = BUF_INIT;
	struct arena_rec rec;
	ck_assert_int_eq(arena_read(&a, ARENA_FACTS, head - 1, &rec, &out), ARENA_READ_OVERRUN);
	ck_assert_int_eq(arena_read(&a, ARENA_FACTS, head, &rec, &out), ARENA_READ_END);
	ck_assert_ptr_null(memmem(a.base, a.size, secret, sizeof(secret) - 1));
	ck_assert_uint_eq(arena_counter_get(&a, ARENA_C_RESETS), 1);
	/* on disk too: the reset synced the overwritten pages of this file-backed arena */
	int fd = open(path, O_RDONLY);
	struct stat st;
	fstat(fd, &st);
	char *all = malloc((size_t)st.st_size);
	ck_assert_int_eq(pread(fd, all, (size_t)st.st_size, 0), st.st_size);
	ck_assert_ptr_null(memmem(all, (size_t)st.st_size, secret, sizeof(secret) - 1));
	free(all);
	close(fd);
	/* appends continue with the next sequence number */
	ck_assert_uint_eq(arena_append(&a, ARENA_FACTS, 1, 0, 0, arena_now_ns(), &iov, 1), head);
	arena_publish(&a);
	ck_assert_int_eq(arena_read(&a, ARENA_FACTS, head, &rec, &out), ARENA_READ_OK);
	buf_free(&out);
	arena_unmap(&a);
	close(ro);
	close(a.fd);
}
END_TEST

START_TEST(test_crc32c_known_answer)
{
	/* RFC 3720 test vector: 32 bytes of zeros */
	unsigned char z[32] = { 0 };
	ck_assert_uint_eq(arena_crc32c(0, z, sizeof(z)), 0x8A9136AAu);
	ck_assert_uint_eq(arena_crc32c(0, "123456789", 9), 0xE3069283u);
	/* incremental equals one-shot */
	uint32_t c = arena_crc32c(0, "1234", 4);
	ck_assert_uint_eq(arena_crc32c(c, "56789", 5), 0xE3069283u);
}
END_TEST

static Suite *
arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("arena");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_geometry);
	tcase_add_test(tc, test_crc32c_known_answer);
	tcase_add_test(tc, test_append_read_back);
	tcase_add_test(tc, test_wrap_around);
	tcase_add_test(tc, test_concurrent_reader_never_torn);
	tcase_add_loop_test(tc, test_killed_writer_recovers, 0, (int)(sizeof(kill_points) / sizeof(kill_points[0])));
	tcase_add_test(tc, test_recover_keeps_records_after_a_damaged_one);
	tcase_add_test(tc, test_recover_damaged_slot_metadata);
	tcase_add_test(tc, test_recover_damaged_ends);
	tcase_add_test(tc, test_recover_clamps_counters);
	tcase_add_test(tc, test_recover_rebuilds_counters_from_records);
	tcase_add_test(tc, test_recover_head_moved_back);
	tcase_add_test(tc, test_recover_keeps_records_after_hole_when_data_head_is_wrong);
	tcase_add_test(tc, test_recover_reinitialises_broken_structure);
	tcase_add_test(tc, test_header_validation);
	tcase_add_test(tc, test_refuses_foreign_file);
	tcase_add_test(tc, test_refuses_foreign_zero_prefixed_file);
	tcase_add_test(tc, test_refuses_arena_with_zeroed_magic);
	tcase_add_test(tc, test_shm_object);
	tcase_add_test(tc, test_reset_overwrites);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(arena_suite)
