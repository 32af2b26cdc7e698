/* follow: bringing a view up to date with the facts ring (see follow.h). */
#include "config.h"

#include "follow.h"

#include <string.h>

#include "event_record.h"

void
follow_init(struct follow *f)
{
	memset(f, 0, sizeof(*f));
}

void
follow_free(struct follow *f)
{
	buf_free(&f->scratch);
}

static void
start_over(struct follow *f, const struct arena *a, struct view *v, uint64_t gen)
{
	view_clear(v);
	f->generation = gen;
	f->cursor = arena_tail(a, ARENA_FACTS);
	f->pruned_tail = f->cursor;
	f->restarts++;
	if (f->started_over)
		f->started_over(f->arg);
}

long
follow_sync(struct follow *f, const struct arena *a, struct view *v)
{
	struct arena_rec rec;
	struct event_fact fact;
	long applied = 0;
	for (int attempt = 0; attempt < FOLLOW_RETRIES; attempt++) {
		uint64_t gen = arena_generation(a);
		if (gen != f->generation)
			start_over(f, a, v, gen);
		/* Counters that claim an impossible window are damaged (the writer's recovery repairs
		 * them): keep what the view shows and read nothing until they make sense again. */
		if (!arena_window_ok(a, ARENA_FACTS)) {
			f->inconsistent++;
			return applied;
		}
		/* A tail that went back (repaired after damage) uncovers records the view may lack. */
		if (arena_tail(a, ARENA_FACTS) < f->pruned_tail)
			start_over(f, a, v, gen);
		/* A cursor beyond the head means the counters were re-initialised under us (the new
		 * generation may not be visible yet): start from the tail rather than wait for the head to
		 * climb back past it. */
		if (f->cursor > arena_head(a, ARENA_FACTS))
			start_over(f, a, v, gen);
		for (uint64_t budget = a->ring[ARENA_FACTS].slot_count; budget; budget--) {
			enum arena_read_status st = arena_read(a, ARENA_FACTS, f->cursor, &rec, &f->scratch);
			if (st == ARENA_READ_END)
				break;
			if (st == ARENA_READ_OVERRUN) {
				f->overruns++;
				f->cursor = arena_tail(a, ARENA_FACTS);
				continue;
			}
			if (st == ARENA_READ_OK && rec.kind == ARENA_KIND_HOLE) {
				f->holes++; /* lost to damage, and known: recovery counted and logged it */
				f->cursor++;
				continue;
			}
			if (st == ARENA_READ_CORRUPT || rec.kind != EVENT_REC_FACT ||
			    event_fact_decode(f->scratch.data, f->scratch.len, &fact) < 0) {
				f->corrupt++;
				f->last_corrupt = f->cursor;
				f->cursor++;
				continue;
			}
			if (view_apply(v, f->cursor, rec.time_ns, rec.ref, &fact) < 0) {
				/* Incomplete now: empty it, and have the next call rebuild it from the tail. */
				view_clear(v);
				f->generation = 0;
				return -1;
			}
			if (f->applied)
				f->applied(f->arg, f->cursor,
				           fact.call_id.len ? view_find(v, fact.call_id.p, fact.call_id.len) : NULL);
			f->cursor++;
			applied++;
		}
		uint64_t tail = arena_tail(a, ARENA_FACTS);
		if (tail > f->pruned_tail) {
			view_prune(v, tail, f->gone, f->arg);
			f->pruned_tail = tail;
		}
		if (arena_generation(a) == f->generation)
			break;
	}
	return applied;
}
