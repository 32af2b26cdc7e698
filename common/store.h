/* store: the writer's side of the arena. ingest hands it each parsed event; it decides what the
 * event changes (against its own view of every call), keeps live calls whole when the arena is
 * full, and commits the event's fact and raw records in one publish. Kept apart from the HTTP code
 * so the policy can be tested directly on a small arena.
 *
 * The policy (DESIGN.md §3): the arena has a fixed size and ingest never blocks. When records must
 * be overwritten to make room, their calls decide what happens. A live call (not ended, and with a
 * change within the idle limit) is re-appended whole, as one snapshot record, before anything of it
 * is overwritten; an ended or idle call simply reaches the tail and leaves, whole, oldest first.
 *
 * The rule that makes this crash-proof: the tail never passes a live call's base (the record from
 * which its history is complete) before that call's snapshot is published. A snapshot is therefore
 * written only where it overwrites records older than the call's base, and published on its own,
 * before the event that needed the room; a writer killed at any point leaves every live call whole.
 * When no such room is left (the live calls alone fill the ring), the oldest live call leaves
 * whole instead, counted and logged. Raw payloads live in their own ring and simply age out first.
 * A call whose history left and that gets a new event starts over from it, marked as resumed. */
#ifndef LIVEEVENTS_STORE_H
#define LIVEEVENTS_STORE_H

#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "event.h"
#include "json.h"
#include "view.h"

#define STORE_DEFAULT_IDLE_MS (2ull * 3600 * 1000) /* a call silent this long is no longer kept alive */
/* A live call is re-appended once its base comes within this fraction of the facts ring (bytes and
 * slots) of the tail: early enough that its snapshot fits in front of older records. */
#define STORE_SNAPSHOT_HEADROOM_DIVISOR 2u
/* Keeping live calls whole costs a copy of each once per half ring of writes: as their state nears
 * half the ring the copies crowd out the events (each webhook would copy megabytes, and ingest fell
 * from 8,600 to 170 webhooks a second). Past this many bytes of snapshots per byte of events,
 * measured over a window of a sixteenth of the facts ring of events, the live calls no longer fit:
 * the oldest leaves instead of being copied again. 4 keeps live calls up to four fifths of half the
 * ring. */
#define STORE_MAX_SNAPSHOT_RATIO 4u
#define STORE_RATIO_WINDOW_DIVISOR 16u
/* Calls whose leaving is remembered, to mark them resumed when they come back: a 4-way set-associative
 * table of id hashes (the oldest of a set is forgotten first), 512 KiB; a call is remembered at least
 * until tens of thousands of others have left. */
#define STORE_GONE_SETS 16384u
#define STORE_GONE_WAYS 4u

struct store {
	struct arena *a;
	struct view view;
	struct event_builder eb;
	struct buf fact, body, raw, snap;
	uint64_t idle_ns;
	uint64_t commit_no;         /* marks the calls a commit snapshots */
	uint64_t fact_seq, raw_seq; /* of the last commit (raw_seq UINT64_MAX when none) */
	uint64_t fact_time_ns;      /* the time stamped on its fact record */
	uint64_t win_event, win_snap; /* fact bytes of events and of snapshots, recently (halved as it goes) */
	/* Calls that left: their id's hash with the low bit saying whether they had ended (0: free). */
	uint64_t *gone;    /* [STORE_GONE_SETS][STORE_GONE_WAYS] */
	uint8_t *gone_next; /* per set: the way to replace next */
};

enum store_status { STORE_OK = 0, STORE_TOO_LARGE, STORE_NOMEM };

/* Recovers the arena (why: what recovery had to do, "" when nothing) and rebuilds the view from its
 * records. idle_ms: see STORE_DEFAULT_IDLE_MS. Returns 0, or -1 without memory. */
int store_open(struct store *s, struct arena *a, uint64_t idle_ms, char *why, size_t whylen);
void store_close(struct store *s);

/* Works out what one event changes: doc parsed from the body, orig the body after any byte-order
 * mark, sec the secrets to scrub, extended with those the body reveals (the caller needs them to
 * redact the raw record's metadata). res says what the event is. */
enum store_status store_prepare(struct store *s, const struct json_doc *doc, const char *orig,
                                struct event_secrets *sec, struct event_result *res);
/* Commits the prepared event (same doc, orig, sec, res) with meta, the raw record's metadata (JSON
 * object text), at now_ns. On STORE_OK it is published and s->fact holds its fact record.
 * STORE_TOO_LARGE: the fact exceeds the facts ring's largest record; nothing was stored. */
enum store_status store_commit(struct store *s, const struct json_doc *doc, const char *orig,
                               struct event_secrets *sec, const char *meta, size_t meta_len, uint8_t raw_flags,
                               uint64_t now_ns, struct event_result *res);
/* Clears everything, overwriting the records (DELETE /api/conversations). */
void store_reset(struct store *s);
/* Whether a call is kept whole when the arena is full. */
bool store_call_live(const struct store *s, const struct view_call *c, uint64_t now_ns);

#endif
