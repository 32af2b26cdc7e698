/* store: committing events, keeping live calls whole (see store.h for the policy and its rule). */
#include "config.h"

#include "store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "follow.h"
#include "hash.h"
#include "log.h"

/* c->mark: the commit that last snapshotted the call, with the high bit; or MARK_DROPPED once the
 * writer gives the call up (it stays given up until it leaves). */
#define MARK_SNAPPED (1ull << 63)
#define MARK_DROPPED UINT64_MAX

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
	why[0] = '\0';
	s->a = a;
	s->idle_ns = idle_ms * 1000000u;
	view_init(&s->view);
	event_builder_init(&s->eb);
	s->gone = calloc((size_t)STORE_GONE_SETS * STORE_GONE_WAYS, sizeof(*s->gone));
	s->gone_next = calloc(STORE_GONE_SETS, 1);
	if (!s->gone || !s->gone_next) {
		free(s->gone);
		free(s->gone_next);
		return -1;
	}
	arena_recover(a, why, whylen);
	rebuild(s);
	return 0;
}

void
store_close(struct store *s)
{
	view_clear(&s->view);
	event_builder_free(&s->eb);
	free(s->gone);
	free(s->gone_next);
	s->gone = NULL;
	s->gone_next = NULL;
	buf_free(&s->fact);
	buf_free(&s->body);
	buf_free(&s->raw);
	buf_free(&s->snap);
}

bool
store_call_live(const struct store *s, const struct view_call *c, uint64_t now_ns)
{
	if (c->ended || c->mark == MARK_DROPPED)
		return false;
	/* A clock stepped back must not make every call look idle. */
	return now_ns <= c->changed_ns || now_ns - c->changed_ns < s->idle_ns;
}

/* The live call with the oldest base: from the view's cursor, which only the calls before it that
 * change (and may be live again) move back. */
static struct view_call *
oldest_live(struct store *s, uint64_t now_ns)
{
	struct view_call *c = s->view.live_from ? s->view.live_from : s->view.oldest;
	while (c && !store_call_live(s, c, now_ns))
		c = c->newer;
	s->view.live_from = c ? c : s->view.newest;
	return c;
}

/* An entry: the hash without its low bit, never 0 (free), and the low bit for "had ended". */
static uint64_t
gone_key(uint64_t h)
{
	return (h | 2u) & ~1ull;
}

static uint64_t *
gone_set(struct store *s, uint64_t h)
{
	return &s->gone[(size_t)((h >> 32) & (STORE_GONE_SETS - 1)) * STORE_GONE_WAYS];
}

/* A call leaves: remember it (a later event for it resumes it) and count how it left. */
static void
call_gone(struct view_call *c, void *arg)
{
	struct store *s = arg;
	arena_count(s->a, c->mark == MARK_DROPPED ? ARENA_C_LIVE_DROPPED : ARENA_C_CALLS_EVICTED, 1);
	if (!s->gone)
		return;
	uint64_t *set = gone_set(s, c->hash);
	uint8_t *next = &s->gone_next[(set - s->gone) / STORE_GONE_WAYS];
	set[*next] = gone_key(c->hash) | (c->ended ? 1u : 0u);
	*next = (uint8_t)((*next + 1) % STORE_GONE_WAYS);
}

/* Whether the call with id hash h left before (and forgets it: it is back); *ended whether it had
 * ended then. */
static bool
came_back(struct store *s, uint64_t h, bool *ended)
{
	if (!s->gone)
		return false;
	uint64_t *set = gone_set(s, h);
	uint64_t key = gone_key(h);
	for (unsigned w = 0; w < STORE_GONE_WAYS; w++) {
		if (set[w] && (set[w] & ~1ull) == key) {
			*ended = set[w] & 1u;
			set[w] = 0;
			return true;
		}
	}
	return false;
}

static void
prune(struct store *s)
{
	view_prune(&s->view, arena_tail(s->a, ARENA_FACTS), call_gone, s);
}

static int
apply_own(struct store *s, uint64_t seq, uint64_t now_ns, uint64_t raw_seq, const struct buf *rec)
{
	struct event_fact f;
	if (event_fact_decode(rec->data, rec->len, &f) < 0)
		return -1;
	return view_apply(&s->view, seq, now_ns, raw_seq, &f);
}

/* Whether a record of len bytes can be appended with room to spare before live call c's base: the
 * spare room is what lets c's snapshot (and those of the calls after it) be written in time, in front
 * of records older than c, never over c itself. */
static bool
room_before(const struct store *s, const struct view_call *c, size_t len, bool spare)
{
	const struct arena_ring *facts = &s->a->ring[ARENA_FACTS];
	uint64_t bytes = ARENA_ALIGN(len), nrec = 1;
	if (spare) {
		bytes += facts->data_size / STORE_SNAPSHOT_HEADROOM_DIVISOR;
		nrec += facts->slot_count / STORE_SNAPSHOT_HEADROOM_DIVISOR;
	}
	return arena_fits_before(s->a, ARENA_FACTS, c->base_seq, bytes, nrec);
}

/* Keeps room for a record of len bytes without overwriting any live call's history: a live call
 * whose base comes within the spare room of the tail is re-appended, as one snapshot, where that
 * overwrites only records older than it, and published at once; oldest first. A live call whose
 * snapshot no longer has such room (the live calls alone fill the ring) is given up: it leaves with
 * the records that follow, whole, counted and logged. */
static enum store_status
protect_live(struct store *s, size_t len, uint64_t now_ns)
{
	struct arena *a = s->a;
	struct arena_ring *facts = &a->ring[ARENA_FACTS];
	for (size_t n = 0; n <= 2 * s->view.ncalls + 1; n++) {
		struct view_call *c = oldest_live(s, now_ns);
		if (!c || room_before(s, c, len, true))
			return STORE_OK;
		uint64_t seq = arena_next_seq(a, ARENA_FACTS);
		if (event_snapshot(&s->snap, c, seq) < 0)
			return STORE_NOMEM;
		uint64_t window = facts->data_size / STORE_RATIO_WINDOW_DIVISOR;
		bool crowding = s->win_event >= window &&
		                s->win_snap + s->snap.len > STORE_MAX_SNAPSHOT_RATIO * s->win_event;
		if (c->mark == (s->commit_no | MARK_SNAPPED) || s->snap.len > facts->max_record ||
		    !room_before(s, c, s->snap.len, false) || crowding) {
			if (s->snap.len > facts->max_record)
				log_limited(&drop_limit, LOG_WARNING,
				            "live call %.12s… has outgrown the arena: its state (%zu bytes) is larger than the "
				            "largest record (%" PRIu64 " bytes); it is no longer kept and leaves when its records are "
				            "overwritten (a larger --arena-size keeps it)",
				            c->id, s->snap.len, facts->max_record);
			else
				log_limited(&drop_limit, LOG_WARNING,
				            "the live calls no longer fit half the facts ring, where they are kept: %.12s… "
				            "(%zu bytes of state) is no longer kept and leaves when its records are overwritten "
				            "(a larger --arena-size keeps it)",
				            c->id, s->snap.len);
			c->mark = MARK_DROPPED;
			continue;
		}
		struct iovec iov = { s->snap.data, s->snap.len };
		if (arena_append(a, ARENA_FACTS, EVENT_REC_FACT, EVENT_F_SNAPSHOT, ARENA_NO_REF, now_ns, &iov, 1) != seq)
			return STORE_NOMEM;
		arena_publish(a); /* before anything of the call is overwritten: the rule of store.h */
		if (apply_own(s, seq, now_ns, ARENA_NO_REF, &s->snap) < 0)
			return STORE_NOMEM;
		c->mark = s->commit_no | MARK_SNAPPED;
		arena_count(a, ARENA_C_SNAPSHOTS, 1);
		s->win_snap += s->snap.len;
	}
	return STORE_OK;
}

enum store_status
store_prepare(struct store *s, const struct json_doc *doc, const char *orig, struct event_secrets *sec,
              struct event_result *res)
{
	prune(s);
	return event_build(&s->eb, doc, orig, &s->view, sec, &s->fact, &s->body, res) < 0 ? STORE_NOMEM : STORE_OK;
}

enum store_status
store_commit(struct store *s, const struct json_doc *doc, const char *orig, struct event_secrets *sec,
             const char *meta, size_t meta_len, uint8_t raw_flags, uint64_t now_ns, struct event_result *res)
{
	struct arena *a = s->a;
	struct arena_ring *facts = &a->ring[ARENA_FACTS];
	s->commit_no++;
	bool attributed = res->call_id[0] != '\0';
	struct view_call *own = NULL;
	for (int attempt = 0;; attempt++) {
		if (s->fact.len > facts->max_record)
			return STORE_TOO_LARGE;
		enum store_status st = protect_live(s, s->fact.len, now_ns);
		if (st != STORE_OK)
			return st;
		own = attributed ? view_find(&s->view, res->call_id, strlen(res->call_id)) : NULL;
		if (!own || attempt > 0 || room_before(s, own, s->fact.len, false))
			break;
		/* The event's own call is leaving (ended, idle, or given up) with the room it needs: the
		 * event starts it over, rebuilt against no history (every message in it is new again). */
		call_gone(own, s);
		view_forget(&s->view, own);
		if (event_build(&s->eb, doc, orig, &s->view, sec, &s->fact, &s->body, res) < 0)
			return STORE_NOMEM;
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
	if (attributed && !own) {
		/* A call this view does not hold: new, or back after its history left. */
		bool was_ended;
		if (came_back(s, hash_bytes(res->call_id, strlen(res->call_id)), &was_ended))
			flags |= EVENT_F_RESUMED | (was_ended ? EVENT_F_WAS_ENDED : 0);
	}
	res->flags = flags;
	event_enc_set_flags(&s->fact, flags);
	/* The call's history continues from its base, or starts here. */
	event_enc_set_call_base(&s->fact, own ? own->base_seq : fact_seq);
	uint64_t ref = raw_seq == UINT64_MAX ? ARENA_NO_REF : raw_seq;
	struct iovec fiov = { s->fact.data, s->fact.len };
	uint64_t seq = arena_append(a, ARENA_FACTS, EVENT_REC_FACT, flags, ref, now_ns, &fiov, 1);
	if (seq == UINT64_MAX) {
		arena_rollback(a);
		return STORE_TOO_LARGE;
	}
	arena_publish(a);
	s->win_event += s->fact.len;
	if (s->win_event > 2 * (a->ring[ARENA_FACTS].data_size / STORE_RATIO_WINDOW_DIVISOR)) {
		s->win_event /= 2;
		s->win_snap /= 2;
	}
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
	if (apply_own(s, seq, now_ns, ref, &s->fact) < 0) {
		log_msg(LOG_ERR, "out of memory updating the call index: rebuilding it");
		rebuild(s);
	}
	prune(s);
	return STORE_OK;
}

void
store_reset(struct store *s)
{
	arena_reset(s->a);
	view_clear(&s->view);
	/* Cleared on purpose: a call that speaks again after a reset is new, not resumed. */
	if (s->gone) {
		memset(s->gone, 0, (size_t)STORE_GONE_SETS * STORE_GONE_WAYS * sizeof(*s->gone));
		memset(s->gone_next, 0, STORE_GONE_SETS);
	}
}
