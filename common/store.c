/* store: committing events, keeping live calls whole (see store.h for the policy). */
#include "config.h"

#include "store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "follow.h"
#include "log.h"

static struct log_limit drop_limit;

/* Replays the committed facts into the writer's view, as every reader does. */
static void
rebuild(struct store *s)
{
	struct follow f;
	follow_init(&f);
	view_clear(&s->view);
	if (follow_sync(&f, s->a, &s->view) < 0)
		log_msg(LOG_ERR, "out of memory rebuilding the call index");
	if (f.corrupt)
		log_msg(LOG_WARNING, "%" PRIu64 " unreadable fact record(s) skipped while rebuilding", f.corrupt);
	follow_free(&f);
}

int
store_open(struct store *s, struct arena *a, uint64_t idle_ms, char *why, size_t whylen)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
	s->idle_ns = idle_ms * 1000000u;
	view_init(&s->view);
	event_builder_init(&s->eb);
	arena_recover(a, why, whylen);
	rebuild(s);
	return 0;
}

void
store_close(struct store *s)
{
	view_clear(&s->view);
	event_builder_free(&s->eb);
	buf_free(&s->fact);
	buf_free(&s->body);
	buf_free(&s->raw);
	for (size_t i = 0; i < STORE_MAX_SNAPSHOTS; i++)
		buf_free(&s->snap[i]);
}

bool
store_call_live(const struct store *s, const struct view_call *c, uint64_t now_ns)
{
	/* A clock stepped back must not make every call look idle. */
	return !c->ended && (now_ns <= c->changed_ns || now_ns - c->changed_ns < s->idle_ns);
}

static bool
planned(const struct store *s, const struct view_call *c)
{
	for (size_t i = 0; i < s->nsnap; i++)
		if (s->snap_call[i] == c)
			return true;
	return false;
}

/* Decides which live calls must be re-appended before a fact of fact_len bytes can be: the calls
 * whose base (the start of their whole history) the append would overwrite. Their snapshots take
 * room too, so the tail is recomputed after each. Returns the tail that appending all of it will
 * leave. A call whose snapshot cannot fit is not kept: it leaves with the others. */
static uint64_t
plan(struct store *s, size_t fact_len, uint64_t now_ns)
{
	struct arena_ring *ring = &s->a->ring[ARENA_FACTS];
	uint64_t bytes = ARENA_ALIGN(fact_len), nrec = 1;
	s->nsnap = 0;
	for (;;) {
		uint64_t t = arena_evict_bound(s->a, ARENA_FACTS, bytes, nrec);
		if (t <= s->view.min_base)
			return t; /* no call begins below the new tail: the common case, no scan */
		struct view_call *oldest = NULL;
		for (size_t i = 0; i < s->view.ncalls; i++) {
			struct view_call *c = s->view.calls[i];
			if (c->base_seq < t && store_call_live(s, c, now_ns) && !planned(s, c) &&
			    (!oldest || c->base_seq < oldest->base_seq))
				oldest = c;
		}
		if (!oldest)
			return t;
		if (s->nsnap == STORE_MAX_SNAPSHOTS) {
			log_limited(&drop_limit, LOG_WARNING,
			            "arena too small: more than %d live calls to keep at once; the oldest live calls leave",
			            STORE_MAX_SNAPSHOTS);
			return t;
		}
		struct buf *b = &s->snap[s->nsnap];
		/* The record's own sequence number only fills a fixed-size field: set it when appending. */
		if (event_snapshot(b, oldest, 0) < 0)
			return t;
		s->snap_call[s->nsnap] = oldest;
		if (b->len > ring->max_record || bytes + ARENA_ALIGN(b->len) > ring->data_size ||
		    nrec + 1 > ring->slot_count) {
			/* Kept out of the plan (marked, so it is not picked again) and left to leave. */
			log_limited(&drop_limit, LOG_WARNING,
			            "arena too small to keep live call %.12s… whole (%zu bytes of state): it leaves",
			            oldest->id, b->len);
			buf_reset(b);
			arena_count(s->a, ARENA_C_LIVE_DROPPED, 1);
			s->nsnap++;
			continue;
		}
		bytes += ARENA_ALIGN(b->len);
		nrec++;
		s->nsnap++;
	}
}

static int
apply_own(struct store *s, uint64_t seq, uint64_t now_ns, uint64_t raw_seq, const struct buf *rec)
{
	struct event_fact f;
	if (event_fact_decode(rec->data, rec->len, &f) < 0)
		return -1;
	return view_apply(&s->view, seq, now_ns, raw_seq, &f);
}

static void
count_evictions(struct store *s)
{
	size_t n = view_prune(&s->view, arena_tail(s->a, ARENA_FACTS));
	if (n)
		arena_count(s->a, ARENA_C_CALLS_EVICTED, n);
}

enum store_status
store_prepare(struct store *s, const struct json_doc *doc, const char *orig, struct event_secrets *sec,
              struct event_result *res)
{
	count_evictions(s);
	return event_build(&s->eb, doc, orig, &s->view, sec, &s->fact, &s->body, res) < 0 ? STORE_NOMEM : STORE_OK;
}

enum store_status
store_commit(struct store *s, const struct json_doc *doc, const char *orig, struct event_secrets *sec,
             const char *meta, size_t meta_len, uint8_t raw_flags, uint64_t now_ns, struct event_result *res)
{
	struct arena *a = s->a;
	struct arena_ring *facts = &a->ring[ARENA_FACTS];
	for (int attempt = 0;; attempt++) {
		if (s->fact.len > facts->max_record)
			return STORE_TOO_LARGE;
		uint64_t new_tail = plan(s, s->fact.len, now_ns);
		struct view_call *c = res->call_id[0] ? view_find(&s->view, res->call_id, strlen(res->call_id)) : NULL;
		if (!c || c->base_seq >= new_tail || planned(s, c) || attempt > 0)
			break;
		/* This event's own call is ended or idle and about to leave whole: the event starts it over,
		 * so it is rebuilt against no history at all (every message in it is new again). */
		view_forget(&s->view, c);
		arena_count(a, ARENA_C_CALLS_EVICTED, 1);
		if (event_build(&s->eb, doc, orig, &s->view, sec, &s->fact, &s->body, res) < 0)
			return STORE_NOMEM;
	}

	/* Snapshots first, so the calls they keep are whole before anything of theirs is overwritten. */
	for (size_t i = 0; i < s->nsnap; i++) {
		struct buf *b = &s->snap[i];
		if (!b->len)
			continue;
		uint64_t seq = arena_next_seq(a, ARENA_FACTS);
		event_enc_set_call_base(b, seq);
		struct iovec iov = { b->data, b->len };
		if (arena_append(a, ARENA_FACTS, EVENT_REC_FACT, EVENT_F_SNAPSHOT, ARENA_NO_REF, now_ns, &iov, 1) != seq ||
		    apply_own(s, seq, now_ns, ARENA_NO_REF, b) < 0)
			return STORE_NOMEM; /* cannot happen: the plan checked the size; memory is all it needs */
		arena_count(a, ARENA_C_SNAPSHOTS, 1);
	}

	uint64_t fact_seq = arena_next_seq(a, ARENA_FACTS);
	buf_reset(&s->raw);
	event_raw_encode(&s->raw, raw_flags, meta, meta_len);
	if (s->raw.failed)
		return STORE_NOMEM;
	struct iovec riov[2] = { { s->raw.data, s->raw.len }, { s->body.data, s->body.len } };
	uint64_t raw_seq = arena_append(a, ARENA_RAW, EVENT_REC_RAW, raw_flags, fact_seq, now_ns, riov, 2);
	uint16_t flags = res->flags;
	if (raw_seq == UINT64_MAX)
		arena_count(a, ARENA_C_RAW_DROPPED, 1);
	else
		flags |= EVENT_F_RAW;
	res->flags = flags;
	event_enc_set_flags(&s->fact, flags);
	/* The call's history continues from its base, or starts here. */
	struct view_call *c = (flags & EVENT_F_UNATTRIBUTED) ? NULL
	                                                      : view_find(&s->view, res->call_id, strlen(res->call_id));
	event_enc_set_call_base(&s->fact, c ? c->base_seq : fact_seq);
	struct iovec fiov = { s->fact.data, s->fact.len };
	uint64_t ref = raw_seq == UINT64_MAX ? ARENA_NO_REF : raw_seq;
	uint64_t seq = arena_append(a, ARENA_FACTS, EVENT_REC_FACT, flags, ref, now_ns, &fiov, 1);
	if (seq == UINT64_MAX) {
		arena_rollback(a);
		return STORE_TOO_LARGE;
	}
	arena_publish(a);
	s->fact_seq = seq;
	s->raw_seq = raw_seq;
	s->fact_time_ns = now_ns;
	arena_count(a, ARENA_C_EVENTS, 1);
	arena_count(a, ARENA_C_RAW_BYTES, s->body.len);
	if (flags & EVENT_F_REPAIRED)
		arena_count(a, ARENA_C_REPAIRED, 1);
	if (flags & EVENT_F_UNATTRIBUTED)
		arena_count(a, ARENA_C_UNATTRIBUTED, 1);
	if (flags & EVENT_F_UNKNOWN_TYPE)
		arena_count(a, ARENA_C_UNKNOWN_TYPE, 1);
	if (apply_own(s, seq, now_ns, raw_seq == UINT64_MAX ? ARENA_NO_REF : raw_seq, &s->fact) < 0) {
		log_msg(LOG_ERR, "out of memory updating the call index: rebuilding it");
		rebuild(s);
	}
	count_evictions(s);
	return STORE_OK;
}

void
store_reset(struct store *s)
{
	arena_reset(s->a);
	view_clear(&s->view);
}
