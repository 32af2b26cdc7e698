/* follow: the one way a reader brings a view up to date with the facts ring. From the tail, then
 * each newly committed fact, through view_apply; starting over when the arena's generation changes
 * (a reset or a re-initialisation); jumping to the tail on an overrun; skipping records that fail
 * validation; reading at most one ring's worth per call, whatever a damaged head says; and dropping
 * the calls whose base has been overwritten. query, the writer's rebuild and liveeventsctl all read
 * the arena through it, so they can never disagree about what a call shows. */
#ifndef LIVEEVENTS_FOLLOW_H
#define LIVEEVENTS_FOLLOW_H

#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "view.h"

#define FOLLOW_RETRIES 3 /* generation changes tolerated within one call before giving up for now */

struct follow {
	uint64_t generation; /* of the view's contents (0: nothing read yet) */
	uint64_t cursor;     /* the next fact to apply */
	uint64_t pruned_tail;
	uint64_t overruns, corrupt, holes, restarts;
	uint64_t inconsistent; /* calls that found the counters' window impossible, and read nothing */
	uint64_t last_corrupt; /* the sequence number of the last record that failed validation */
	struct buf scratch;
	/* Optional observers (query's event stream), called as the view changes; all may be NULL.
	 * applied: after each fact, with the call it names (NULL if none, or skipped);
	 * started_over: after the view was emptied to be rebuilt (a new generation, damage);
	 * gone: before a call whose history was overwritten is dropped. */
	void (*applied)(void *arg, uint64_t seq, const struct view_call *c);
	void (*started_over)(void *arg);
	void (*gone)(struct view_call *c, void *arg);
	void *arg;
};

void follow_init(struct follow *f);
void follow_free(struct follow *f);
/* Applies what was committed since the last call. Returns the number of facts applied, or -1 when
 * out of memory (the view is then cleared and will be rebuilt on the next call). */
long follow_sync(struct follow *f, const struct arena *a, struct view *v);

#endif
