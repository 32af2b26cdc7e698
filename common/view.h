/* view: the per-call state derived from fact records. The arena is the truth; a view is rebuilt by
 * replaying its records whenever a worker starts, so ingest (to deduplicate) and query (to answer)
 * apply exactly the same rules through view_apply and can never disagree.
 *
 * Semantics (DESIGN.md §4): a call exists from the first fact that names it; messages are a union
 * by key in first-seen order, and a known message's text changes only through an explicit update;
 * status pills are ordered by the event's own timestamp (arrival order where equal or missing);
 * a call is ended once a terminal status or a report arrives and stays ended.
 *
 * Whole calls (DESIGN.md §3): every fact names its call's base, the record from which the call's
 * history is complete. A snapshot replaces the call's state; a fact that starts a new history
 * (base = its own sequence number) resets it; a fact whose base this view never applied is skipped;
 * and a call whose base has been overwritten (base < tail) is dropped. So every reader, however
 * late it started, shows a call whole or not at all. */
#ifndef LIVEEVENTS_VIEW_H
#define LIVEEVENTS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_record.h"

struct view_status {
	char *status;
	char *ended_by, *reason; /* NULL when the event carried none */
	int64_t ts;       /* as sent (EVENT_TS_NONE when absent) */
	int64_t sort_key; /* ts, or the latest key so far when absent: keeps arrival order */
	uint64_t seq;
};

struct view_msg {
	char *key, *role, *text, *extra;
	size_t key_len, text_len, extra_len;
	uint64_t hash;
	int64_t ts;
	int64_t evt_ts;   /* timestamp of the event that last set the text */
	uint64_t seq;     /* fact that first carried it */
	uint64_t upd_seq; /* fact that last changed it */
};

struct view_alert {
	uint8_t type; /* enum event_alert_type */
	int64_t ts;
	uint64_t seq;
	char *details; /* JSON object text or NULL */
};

struct view_call {
	char *id;
	size_t id_len;
	uint64_t hash;
	size_t pos;                      /* its place in struct view's calls[] */
	struct view_call *older, *newer; /* the calls in order of base (see struct view) */
	struct view_call *act_older, *act_newer; /* the calls in order of changed_seq (see struct view) */
	uint64_t mark;                   /* free for the view's owner (the writer marks calls it drops) */
	bool resumed;                    /* its earlier history left the arena: shown from a later event */
	char *customer;
	uint64_t base_seq;            /* the record from which its history is complete */
	uint64_t first_seq, last_seq; /* its first and latest facts */
	uint64_t changed_seq;         /* the latest fact that changed what is shown (a status, a message,
	                               * a report, an alert): a stale replay or an unknown event does not */
	uint64_t first_ns, changed_ns; /* when the first and the latest changing facts were committed */
	bool ended;
	struct view_status *st;
	size_t nst, capst;
	struct view_msg *msg;
	size_t nmsg, capmsg;
	uint32_t *msg_index; /* open addressing: message index + 1, 0 = empty */
	size_t msg_index_cap;
	struct view_alert *alert;
	size_t nalert, capalert;
	char *report; /* JSON object text of the newest report */
	uint64_t report_seq;
	int64_t report_ts; /* the timestamp of the event that carried it (EVENT_TS_NONE: none) */
	/* The newest timestamp of the events that carried this call's messages: an older full-history
	 * update is stale and adds nothing (has_msgs_ts false: none carried one yet). */
	int64_t msgs_ts;
	bool has_msgs_ts;
	uint64_t *raw;  /* raw-ring sequence numbers of this call's events, oldest first */
	size_t nraw, capraw;
};

struct view {
	struct view_call **calls; /* in no particular order (removal moves the last one into the gap) */
	size_t ncalls, capcalls;
	uint32_t *index; /* open addressing over calls: index + 1, 0 = empty */
	size_t index_cap;
	uint64_t next_seq;        /* the next fact sequence this view expects */
	uint64_t unattributed;    /* facts that named no call */
	uint64_t *unattributed_raw; /* their raw sequence numbers, bounded ring */
	size_t nunattr_raw;
	uint64_t applied;         /* facts applied since the last clear */
	uint64_t skipped;         /* facts of calls whose history had been overwritten */
	/* Every call in order of its base (oldest first): a call moves to the newest end when a
	 * snapshot or a new history gives it a new base. So the calls a tail overwrites are always at the
	 * oldest end, and the writer finds the oldest live call without a scan. */
	struct view_call *oldest, *newest;
	/* Every call in order of changed_seq, the latest change first: the call list is served a page
	 * at a time from here, at a cost that does not grow with the number of calls. */
	struct view_call *act_oldest, *act_newest;
	/* No call older than this one can be live (the writer's cursor; a call that changes and is older
	 * moves it back; NULL: from the oldest). */
	struct view_call *live_from;
};

/* How many unattributed raw references a view remembers. */
#define VIEW_UNATTRIBUTED_KEEP 1024

void view_init(struct view *v);
void view_clear(struct view *v);
/* Applies one fact. raw_seq is the slot's ref (ARENA_NO_REF when none). Returns 0, or -1 when out
 * of memory (the view is then incomplete and should be rebuilt). */
int view_apply(struct view *v, uint64_t seq, uint64_t time_ns, uint64_t raw_seq, const struct event_fact *f);
struct view_call *view_find(const struct view *v, const char *id, size_t len);
const struct view_msg *view_msg_find(const struct view_call *c, const char *key, size_t len);
/* The current status or NULL: the last pill in timeline order, except that an ended call shows its
 * last terminal status even when a later non-terminal one arrived. */
const char *view_call_status(const struct view_call *c);
/* Drops calls whose base is older than tail_seq (overwritten), calling gone (may be NULL) for each
 * before it is freed: returns how many. */
size_t view_prune(struct view *v, uint64_t tail_seq, void (*gone)(struct view_call *c, void *arg), void *arg);
/* Removes one call (its history is gone). */
void view_forget(struct view *v, struct view_call *c);
/* The smallest base of any call (UINT64_MAX without calls). */
uint64_t view_min_base(const struct view *v);
bool view_status_is_terminal(const char *status);

#endif
