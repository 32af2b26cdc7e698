/* ctl_stats: liveeventsctl stats (the header and control block) and calls (the per-call state,
 * rebuilt from the facts exactly as query rebuilds it). */
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

/* --- a snapshot of the control block ---------------------------------------------------------------- */

static uint64_t
load(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

/* Reads the control block. Per ring the tail is loaded before the head, so tail <= head holds in
 * the snapshot even while the writer moves both; arena.h has accessors only for head, tail,
 * generation and counters, so the rest is read from the (public) control struct. */
void
take_snap(const struct arena *a, struct snap *s)
{
	const struct arena_control *c = a->ctl;
	memset(s, 0, sizeof(*s));
	s->generation = arena_generation(a);
	s->writer_pid = load(&c->writer_pid);
	s->writer_start_ns = load(&c->writer_start_ns);
	s->heartbeat_ns = load(&c->heartbeat_ns);
	s->recoveries = load(&c->recoveries);
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct arena_ring_ctl *rc = &c->ring[r];
		struct ring_snap *rs = &s->ring[r];
		rs->evicted = load(&rc->evicted);
		rs->evicted_bytes = load(&rc->evicted_bytes);
		rs->data_tail = load(&rc->data_tail);
		rs->tail = arena_tail(a, (enum arena_ring_id)r);
		rs->head = arena_head(a, (enum arena_ring_id)r);
		rs->data_head = load(&rc->data_head);
	}
	/* Ingest counts an event before saying what it was (repaired, unattributed...): loading the
	 * event count last keeps "of which" counts <= events in the snapshot. */
	for (int i = ARENA_NCOUNTERS_USED - 1; i >= 0; i--)
		s->counters[i] = arena_counter_get(a, (enum arena_counter)i);
}

bool
same_positions(const struct snap *x, const struct snap *y)
{
	if (x->generation != y->generation)
		return false;
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct ring_snap *p = &x->ring[r], *q = &y->ring[r];
		if (p->head != q->head || p->tail != q->tail || p->data_head != q->data_head ||
		    p->data_tail != q->data_tail)
			return false;
	}
	return true;
}

/* kill(pid, 0): EPERM means the process exists but belongs to someone else (the daemon's user). */
bool
writer_alive(uint64_t pid)
{
	if (pid == 0 || pid > INT_MAX)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* --- stats ------------------------------------------------------------------------------------------ */

static double
percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

int
cmd_stats(const struct arena *a, const char *path, bool json)
{
	struct snap s;
	/* A snapshot taken across a reset would mix two generations: take it again. */
	for (int i = 0; i < CTL_SYNC_ATTEMPTS; i++) {
		take_snap(a, &s);
		if (arena_generation(a) == s.generation)
			break;
	}
	const struct arena_header *h = a->hdr;
	uint64_t now = arena_now_ns();
	bool alive = writer_alive(s.writer_pid);
	bool have_hb = s.heartbeat_ns != 0;
	uint64_t age = have_hb && now > s.heartbeat_ns ? now - s.heartbeat_ns : 0;
	struct buf b = BUF_INIT;
	if (json) {
		buf_adds(&b, "{\"arena\":");
		json_write_cstr(&b, path);
		buf_printf(&b, ",\"layout_version\":%u,\"file_size\":%" PRIu64 ",\"created_ns\":%" PRIu64
		               ",\"generation\":\"%016" PRIx64 "\",\"recoveries\":%" PRIu64,
		           h->layout_version, h->file_size, h->created_ns, s.generation, s.recoveries);
		buf_printf(&b, ",\"writer\":{\"pid\":%" PRIu64 ",\"alive\":%s,\"started_ns\":%" PRIu64
		               ",\"heartbeat_ns\":%" PRIu64 ",\"heartbeat_age_ms\":",
		           s.writer_pid, alive ? "true" : "false", s.writer_start_ns, s.heartbeat_ns);
		if (have_hb)
			buf_printf(&b, "%" PRIu64, age / 1000000u);
		else
			buf_adds(&b, "null");
		buf_printf(&b, ",\"heartbeat_stale\":%s}", !have_hb || age > CTL_HEARTBEAT_STALE_NS ? "true" : "false");
		buf_adds(&b, ",\"rings\":{");
		for (int r = 0; r < ARENA_RINGS; r++) {
			const struct ring_snap *rs = &s.ring[r];
			const struct arena_ring *ring = &a->ring[r];
			uint64_t used = rs->data_head - rs->data_tail;
			buf_printf(&b,
			           "%s\"%s\":{\"slots_used\":%" PRIu64 ",\"slots_total\":%" PRIu64 ",\"data_used\":%" PRIu64
			           ",\"data_total\":%" PRIu64 ",\"data_full_percent\":%.1f,\"head\":%" PRIu64
			           ",\"tail\":%" PRIu64 ",\"evicted\":%" PRIu64 ",\"evicted_bytes\":%" PRIu64 "}",
			           r ? "," : "", ring_names[r], rs->head - rs->tail, ring->slot_count, used,
			           ring->data_size, percent(used, ring->data_size), rs->head, rs->tail, rs->evicted,
			           rs->evicted_bytes);
		}
		buf_adds(&b, "},\"counters\":{");
		bool first = true;
		for (size_t i = 0; i < ARENA_NCOUNTERS_USED; i++) {
			if (!counter_names[i].key)
				continue;
			buf_printf(&b, "%s\"%s\":%" PRIu64, first ? "" : ",", counter_names[i].key, s.counters[i]);
			first = false;
		}
		buf_adds(&b, "}}\n");
	} else {
		buf_adds(&b, "arena        ");
		log_text(&b, path, strlen(path), PATH_MAX);
		buf_printf(&b, "\nlayout       version %u, %" PRIu64 " bytes\ncreated      ", h->layout_version,
		           h->file_size);
		put_local_time(&b, h->created_ns);
		buf_printf(&b, "\ngeneration   %016" PRIx64 "\nwriter       ", s.generation);
		if (s.writer_pid == 0) {
			buf_adds(&b, "none has opened this arena yet");
		} else {
			buf_printf(&b, "pid %" PRIu64 " %s, started ", s.writer_pid, alive ? "alive" : "not running");
			put_local_time(&b, s.writer_start_ns);
			if (have_hb)
				buf_printf(&b, ", heartbeat %.1f s ago%s", (double)age / 1e9,
				           alive && age > CTL_HEARTBEAT_STALE_NS ? " (stale: is the pid reused?)" : "");
		}
		buf_printf(&b, "\nrecoveries   %" PRIu64 "\n", s.recoveries);
		for (int r = 0; r < ARENA_RINGS; r++) {
			const struct ring_snap *rs = &s.ring[r];
			const struct arena_ring *ring = &a->ring[r];
			uint64_t used = rs->data_head - rs->data_tail;
			buf_printf(&b,
			           "\n%s ring\n"
			           "  slots      %" PRIu64 " used of %" PRIu64 "\n"
			           "  data       %" PRIu64 " of %" PRIu64 " bytes used (%.1f%% full)\n"
			           "  sequence   tail %" PRIu64 ", head %" PRIu64 "\n"
			           "  evicted    %" PRIu64 " records, %" PRIu64 " bytes\n",
			           ring_names[r], rs->head - rs->tail, ring->slot_count, used, ring->data_size,
			           percent(used, ring->data_size), rs->tail, rs->head, rs->evicted, rs->evicted_bytes);
		}
		buf_adds(&b, "\ncounters\n");
		for (size_t i = 0; i < ARENA_NCOUNTERS_USED; i++)
			if (counter_names[i].label)
				buf_printf(&b, "  %-14s %12" PRIu64 "\n", counter_names[i].label, s.counters[i]);
	}
	emit(&b);
	buf_free(&b);
	return CTL_EXIT_OK;
}

/* --- calls ------------------------------------------------------------------------------------------ */

/* Every readable fact through the shared reader (follow.h), as query reads them. Returns 0, or -1
 * (message printed). */
static int
load_view(const struct arena *a, struct view *v, uint64_t *gen_out, uint64_t *seq_out)
{
	struct follow f;
	follow_init(&f);
	long n = follow_sync(&f, a, v);
	int rc = 0;
	if (n < 0) {
		fprintf(stderr, PROG ": out of memory replaying the facts\n");
		rc = -1;
	} else if (arena_generation(a) != f.generation) {
		fprintf(stderr, PROG ": the arena was reset %d times while being read; try again\n", FOLLOW_RETRIES);
		rc = -1;
	} else if (f.corrupt) {
		fprintf(stderr, PROG ": %" PRIu64 " unreadable fact record(s) skipped\n", f.corrupt);
	}
	*gen_out = f.generation;
	*seq_out = f.cursor;
	follow_free(&f);
	return rc;
}

static int
by_activity_asc(const void *pa, const void *pb)
{
	const struct view_call *x = *(const struct view_call *const *)pa, *y = *(const struct view_call *const *)pb;
	return x->changed_seq < y->changed_seq ? -1 : x->changed_seq > y->changed_seq ? 1 : 0;
}

int
cmd_calls(const struct arena *a, bool json)
{
	struct view v;
	uint64_t gen, seq;
	view_init(&v);
	if (load_view(a, &v, &gen, &seq) < 0) {
		view_clear(&v);
		return CTL_EXIT_FAIL;
	}
	struct buf b = BUF_INIT;
	int status = CTL_EXIT_OK;
	if (json) {
		/* The very document GET /api/calls serves, so scripts can use either. */
		api_calls(&b, &v, gen, seq, SIZE_MAX, UINT64_MAX);
		buf_addc(&b, '\n');
		emit(&b);
	} else {
		const struct view_call **order = v.ncalls ? malloc(v.ncalls * sizeof(*order)) : NULL;
		if (v.ncalls && !order) {
			fprintf(stderr, PROG ": out of memory\n");
			status = CTL_EXIT_FAIL;
			goto out;
		}
		for (size_t i = 0; i < v.ncalls; i++)
			order[i] = v.calls[i];
		if (order)
			qsort(order, v.ncalls, sizeof(*order), by_activity_asc);
		/* Columns as wide as their widest value, within limits. */
		size_t idw = strlen("CALL"), stw = strlen("STATUS");
		for (size_t i = 0; i < v.ncalls; i++) {
			const char *st = view_call_status(v.calls[i]);
			size_t w = utf8_chars(v.calls[i]->id, v.calls[i]->id_len);
			idw = w > idw ? (w < CTL_ID_COLUMN_MAX ? w : CTL_ID_COLUMN_MAX) : idw;
			w = st ? utf8_chars(st, strlen(st)) : 0;
			stw = w > stw ? (w < CTL_STATUS_COLUMN_MAX ? w : CTL_STATUS_COLUMN_MAX) : stw;
		}
		put_column(&b, "CALL", 4, 4, idw);
		buf_adds(&b, "  ");
		put_column(&b, "STATUS", 6, 6, stw);
		buf_adds(&b, "  ENDED  MESSAGES  ALERTS  LAST ACTIVITY\n");
		emit(&b);
		for (size_t i = 0; i < v.ncalls && !out_errno; i++) {
			const struct view_call *c = order[i];
			const char *st = view_call_status(c);
			put_column(&b, c->id, c->id_len, EVENT_MAX_CALL_ID, idw);
			buf_adds(&b, "  ");
			if (st)
				put_column(&b, st, strlen(st), EVENT_LOG_STATUS_MAX, stw);
			else
				put_column(&b, "-", 1, 1, stw);
			buf_printf(&b, "  %-5s  %8zu  %6zu  ", c->ended ? "yes" : "no", c->nmsg, c->nalert);
			put_local_time(&b, c->changed_ns);
			buf_addc(&b, '\n');
			emit(&b);
		}
		free(order);
	}
out:
	buf_free(&b);
	view_clear(&v);
	return status;
}

