/* ctl_check: liveeventsctl check: every record read back and decoded, and the control counters
 * checked against the invariants the writer's recovery relies on. */
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

/* --- check ------------------------------------------------------------------------------------------ */

struct check {
	const struct arena *a;
	unsigned problems;
	struct buf list; /* "problem: ..." lines */
	uint64_t walked[ARENA_RINGS];         /* records in the walked range, evicted ones aside */
	uint64_t records[ARENA_RINGS], bytes[ARENA_RINGS]; /* of which read back and decoded */
	uint64_t first[ARENA_RINGS], last[ARENA_RINGS];
	uint64_t overwritten[ARENA_RINGS]; /* evicted by a running writer while we walked */
	uint64_t holes[ARENA_RINGS];       /* records recovery found damaged and blanked */
	uint64_t unpublished[ARENA_RINGS]; /* bytes beyond the last record, below data_head */
	bool exact;                        /* the counters were checked on a stable snapshot */
};

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(struct check *c, const char *fmt, ...)
{
	if (c->problems++ >= CTL_MAX_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_adds(&c->list, "problem: ");
	buf_vprintf(&c->list, fmt, ap);
	buf_addc(&c->list, '\n');
	va_end(ap);
}

/* Racy loads of slot fields the reader API does not return (its data position). They are only
 * trusted when a later acquire fence and tail check show the slot was not reused meanwhile. */
static uint64_t
slot_pos(const struct arena *a, int r, uint64_t seq)
{
	const struct arena_ring *ring = &a->ring[r];
	return *(const volatile uint64_t *)&ring->slots[seq & ring->slot_mask].pos;
}

static uint32_t
slot_len(const struct arena *a, int r, uint64_t seq)
{
	const struct arena_ring *ring = &a->ring[r];
	return *(const volatile uint32_t *)&ring->slots[seq & ring->slot_mask].len;
}

/* Two equal consecutive snapshots are exact (every counter is monotonic within a generation), with
 * the oldest and newest slots' positions read between them. False when the writer never paused. */
static bool
stable_snap(const struct arena *a, struct snap *s, uint64_t first_pos[ARENA_RINGS], uint64_t last_end[ARENA_RINGS])
{
	struct snap again;
	for (int i = 0; i < CTL_SNAP_ATTEMPTS; i++) {
		take_snap(a, s);
		for (int r = 0; r < ARENA_RINGS; r++) {
			const struct ring_snap *rs = &s->ring[r];
			bool any = rs->tail < rs->head && rs->head - rs->tail <= a->ring[r].slot_count;
			first_pos[r] = any ? slot_pos(a, r, rs->tail) : 0;
			last_end[r] = any ? slot_pos(a, r, rs->head - 1) + ARENA_ALIGN(slot_len(a, r, rs->head - 1)) : 0;
		}
		atomic_thread_fence(memory_order_acquire);
		take_snap(a, &again);
		if (same_positions(s, &again))
			return true;
	}
	return false;
}

#define CTL_PID_MAX 4194304u                         /* PID_MAX_LIMIT on 64-bit Linux */
#define CTL_CLOCK_SLACK_NS (60ull * 1000000000ull)  /* clocks that disagree a little are not damage */

/* The control counters' invariants (those arena_recover checks before it trusts them). */
static void
check_control(struct check *c, const struct snap *s, const uint64_t first_pos[ARENA_RINGS],
              const uint64_t last_end[ARENA_RINGS])
{
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct ring_snap *rs = &s->ring[r];
		const struct arena_ring *ring = &c->a->ring[r];
		const char *n = ring_names[r];
		if (rs->tail > rs->head)
			problem(c, "%s ring: tail %" PRIu64 " is beyond head %" PRIu64, n, rs->tail, rs->head);
		else if (rs->head - rs->tail > ring->slot_count)
			problem(c, "%s ring: %" PRIu64 " records but only %" PRIu64 " slots", n, rs->head - rs->tail,
			        ring->slot_count);
		bool window_ok = false;
		if (rs->data_tail > rs->data_head)
			problem(c, "%s ring: data tail %" PRIu64 " is beyond data head %" PRIu64, n, rs->data_tail,
			        rs->data_head);
		else if (rs->data_head - rs->data_tail > ring->data_size)
			problem(c, "%s ring: %" PRIu64 " data bytes in use but the ring holds %" PRIu64, n,
			        rs->data_head - rs->data_tail, ring->data_size);
		else
			window_ok = true;
		if (!window_ok || rs->tail >= rs->head || rs->head - rs->tail > ring->slot_count)
			continue;
		if (first_pos[r] != rs->data_tail)
			problem(c, "%s ring: the oldest record (seq %" PRIu64 ") starts at %" PRIu64
			           " but the data window at %" PRIu64, n, rs->tail, first_pos[r], rs->data_tail);
		if (last_end[r] > rs->data_head)
			problem(c, "%s ring: the newest record (seq %" PRIu64 ") ends at %" PRIu64
			           ", beyond the data head %" PRIu64, n, rs->head - 1, last_end[r], rs->data_head);
		else
			/* A writer killed between publishing data_head and head_seq leaves this: its next
			 * start discards the bytes. Not an inconsistency. */
			c->unpublished[r] = rs->data_head - last_end[r];
	}
	/* The writer's identity: a pid no kernel hands out, or times from the future, are damage. */
	uint64_t now = arena_now_ns();
	if (s->writer_pid > CTL_PID_MAX)
		problem(c, "writer pid %" PRIu64 " is beyond any Linux pid (%u)", s->writer_pid, CTL_PID_MAX);
	if (s->writer_start_ns > now + CTL_CLOCK_SLACK_NS)
		problem(c, "the writer's start time is %" PRIu64 " s in the future", (s->writer_start_ns - now) / 1000000000u);
	if (s->heartbeat_ns > now + CTL_CLOCK_SLACK_NS)
		problem(c, "the writer's heartbeat is %" PRIu64 " s in the future", (s->heartbeat_ns - now) / 1000000000u);
	/* Counters of what the committed events were can never exceed the events. */
	static const enum arena_counter of_events[] = { ARENA_C_REPAIRED, ARENA_C_UNATTRIBUTED, ARENA_C_UNKNOWN_TYPE };
	for (size_t i = 0; i < sizeof(of_events) / sizeof(of_events[0]); i++)
		if (s->counters[of_events[i]] > s->counters[ARENA_C_EVENTS])
			problem(c, "counter %s (%" PRIu64 ") exceeds events (%" PRIu64 ")", counter_names[of_events[i]].label,
			        s->counters[of_events[i]], s->counters[ARENA_C_EVENTS]);
}

/* A committed fact must say whether it has a raw record, and that record must point back at it. */
static void
check_fact(struct check *c, uint64_t seq, const struct arena_rec *rec, const struct buf *payload,
           struct buf *scratch)
{
	struct event_fact f;
	struct event_item it;
	size_t cur = 0;
	int rc;
	if (event_fact_decode(payload->data, payload->len, &f) < 0) {
		problem(c, "facts seq %" PRIu64 ": not a well-formed fact record", seq);
		return;
	}
	while ((rc = event_fact_next(&f, &cur, &it)) == 1)
		;
	if (rc < 0)
		problem(c, "facts seq %" PRIu64 ": a malformed item", seq);
	if (f.flags != rec->flags)
		problem(c, "facts seq %" PRIu64 ": slot flags %#x differ from the record's %#x", seq, rec->flags, f.flags);
	bool has_raw = rec->ref != ARENA_NO_REF;
	if (has_raw != ((rec->flags & EVENT_F_RAW) != 0)) {
		problem(c, "facts seq %" PRIu64 ": raw flag and raw reference disagree", seq);
		return;
	}
	/* Raw is published before its fact, so a committed fact's raw record is committed too. */
	if (has_raw && rec->ref >= arena_head(c->a, ARENA_RAW)) {
		problem(c, "facts seq %" PRIu64 ": refers to raw record %" PRIu64 ", which was never committed", seq,
		        rec->ref);
		return;
	}
	struct arena_rec raw;
	if (has_raw && arena_read(c->a, ARENA_RAW, rec->ref, &raw, scratch) == ARENA_READ_OK &&
	    raw.kind != ARENA_KIND_HOLE && raw.ref != seq)
		problem(c, "facts seq %" PRIu64 ": its raw record %" PRIu64 " points at fact %" PRIu64, seq, rec->ref,
		        raw.ref);
}

/* Reads back every record of ring r in [from, to). */
static void
check_ring(struct check *c, int r, uint64_t from, uint64_t to)
{
	const struct arena *a = c->a;
	struct buf payload = BUF_INIT, scratch = BUF_INIT;
	struct arena_rec rec;
	struct event_raw raw;
	bool have_prev = false;
	uint64_t prev_end = 0;
	c->first[r] = from;
	for (uint64_t s = from; s < to; s++) {
		uint64_t pos = slot_pos(a, r, s); /* validated by arena_read's own tail check below */
		enum arena_read_status st = arena_read(a, (enum arena_ring_id)r, s, &rec, &payload);
		if (st == ARENA_READ_END)
			break;
		if (st == ARENA_READ_OVERRUN) {
			/* Evicted by a running writer since the walk began: not an inconsistency. */
			uint64_t tail = arena_tail(a, (enum arena_ring_id)r);
			uint64_t next = tail > s ? tail : s + 1;
			c->overwritten[r] += next - s;
			if (c->walked[r] == 0)
				c->first[r] = next;
			s = next - 1;
			have_prev = false;
			continue;
		}
		c->walked[r]++;
		c->last[r] = s;
		if (st == ARENA_READ_CORRUPT) {
			problem(c, "%s seq %" PRIu64 ": the slot or its payload fails validation (sequence or CRC)",
			        ring_names[r], s);
			have_prev = false;
			continue;
		}
		if (rec.kind == ARENA_KIND_HOLE) {
			/* Known and counted: the next record starts where its slot says. */
			c->holes[r]++;
			c->records[r]++;
			have_prev = false;
			continue;
		}
		unsigned before = c->problems;
		if (have_prev && pos != prev_end)
			problem(c, "%s seq %" PRIu64 ": starts at %" PRIu64 ", but the previous record ends at %" PRIu64,
			        ring_names[r], s, pos, prev_end);
		have_prev = true;
		prev_end = pos + ARENA_ALIGN(rec.len);
		if (r == ARENA_FACTS) {
			if (rec.kind != EVENT_REC_FACT)
				problem(c, "facts seq %" PRIu64 ": kind %u is not a fact", s, rec.kind);
			else
				check_fact(c, s, &rec, &payload, &scratch);
		} else {
			if (rec.kind != EVENT_REC_RAW)
				problem(c, "raw seq %" PRIu64 ": kind %u is not a raw body", s, rec.kind);
			else if (event_raw_decode(payload.data, payload.len, &raw) < 0)
				problem(c, "raw seq %" PRIu64 ": not a well-formed raw record", s);
		}
		if (c->problems == before) {
			c->records[r]++;
			c->bytes[r] += rec.len;
		}
	}
	buf_free(&payload);
	buf_free(&scratch);
}

int
cmd_check(const struct arena *a, const char *path)
{
	struct check c;
	struct snap s;
	uint64_t first_pos[ARENA_RINGS], last_end[ARENA_RINGS];
	int pass;
	for (pass = 0; pass < CTL_CHECK_PASSES; pass++) {
		memset(&c, 0, sizeof(c));
		c.a = a;
		c.list = (struct buf)BUF_INIT;
		c.exact = stable_snap(a, &s, first_pos, last_end);
		if (c.exact)
			check_control(&c, &s, first_pos, last_end);
		for (int r = 0; r < ARENA_RINGS; r++) {
			const struct ring_snap *rs = &s.ring[r];
			/* Broken counters give no range to walk; they are reported above. */
			if (rs->tail <= rs->head && rs->head - rs->tail <= a->ring[r].slot_count)
				check_ring(&c, r, rs->tail, rs->head);
		}
		/* Records of another generation are not comparable: walk again. */
		if (arena_generation(a) == s.generation)
			break;
		buf_free(&c.list);
	}
	struct buf b = BUF_INIT;
	if (pass == CTL_CHECK_PASSES) {
		fprintf(stderr, PROG ": arena %s was reset %d times while being checked; try again\n", path,
		        CTL_CHECK_PASSES);
		return CTL_EXIT_FAIL;
	}
	buf_add(&b, c.list.data, c.list.len);
	if (c.problems > CTL_MAX_PROBLEMS)
		buf_printf(&b, "problem: ... and %u more\n", c.problems - CTL_MAX_PROBLEMS);
	buf_adds(&b, "arena ");
	log_text(&b, path, strlen(path), PATH_MAX);
	buf_printf(&b, ": layout version %u, %" PRIu64 " bytes, generation %016" PRIx64 ", writer ",
	           a->hdr->layout_version, a->hdr->file_size, s.generation);
	if (s.writer_pid)
		buf_printf(&b, "pid %" PRIu64 " %s\n", s.writer_pid, writer_alive(s.writer_pid) ? "alive" : "not running");
	else
		buf_adds(&b, "none yet\n");
	for (int r = 0; r < ARENA_RINGS; r++) {
		buf_printf(&b, "%-5s ring: ", ring_names[r]);
		if (!c.walked[r])
			buf_adds(&b, "no records");
		else if (c.records[r] == c.walked[r])
			buf_printf(&b, "%" PRIu64 " record%s (seq %" PRIu64 " to %" PRIu64 "), %" PRIu64
			               " bytes: all read back and decoded", c.walked[r], c.walked[r] == 1 ? "" : "s",
			           c.first[r], c.last[r], c.bytes[r]);
		else
			buf_printf(&b, "%" PRIu64 " record%s (seq %" PRIu64 " to %" PRIu64 "): %" PRIu64 " read back and decoded",
			           c.walked[r], c.walked[r] == 1 ? "" : "s", c.first[r], c.last[r], c.records[r]);
		if (c.holes[r])
			buf_printf(&b, "; %" PRIu64 " of them hole%s left by recovery for damaged records", c.holes[r],
			           c.holes[r] == 1 ? "" : "s");
		if (c.overwritten[r])
			buf_printf(&b, "; %" PRIu64 " overwritten by the writer during the check", c.overwritten[r]);
		if (c.unpublished[r])
			buf_printf(&b, "; %" PRIu64 " bytes of an interrupted append (the next writer discards them)",
			           c.unpublished[r]);
		buf_addc(&b, '\n');
	}
	buf_adds(&b, c.exact ? "control counters: checked\n"
	                     : "control counters: not checked (the writer never paused for a consistent snapshot)\n");
	if (c.problems)
		buf_printf(&b, "INCONSISTENT: %u problem%s\n", c.problems, c.problems == 1 ? "" : "s");
	else
		buf_adds(&b, "consistent\n");
	emit(&b);
	buf_free(&b);
	buf_free(&c.list);
	return c.problems ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

