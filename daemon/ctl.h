/* ctl: what the parts of liveeventsctl (ctl.c: command line and output; ctl_stats.c: stats and
 * calls; ctl_tail.c: tail; ctl_check.c: check) share. */
#ifndef LIVEEVENTS_CTL_H
#define LIVEEVENTS_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "arena.h"
#include "buf.h"

#define PROG "liveeventsctl"

enum { CTL_EXIT_OK = 0, CTL_EXIT_FAIL = 1, CTL_EXIT_USAGE = 2 };

#define CTL_TAIL_DEFAULT_LINES 10
#define CTL_TAIL_MAX_LINES 1000000000ull /* more events than any arena can hold */
#define CTL_POLL_MS 50                   /* tail -f: how often an idle follower looks at the head */
#define CTL_REOPEN_POLLS 20               /* tail -f: how many idle polls between looks at whether the
                                          * path now names a new arena (the daemon re-created it) */
#define CTL_RESET_GRACE_POLLS 2          /* see tailer_step: a reset empties the rings a moment
                                          * before it announces its new generation */
#define CTL_SYNC_ATTEMPTS 3              /* stats: snapshots retried across a reset */
#define CTL_SNAP_ATTEMPTS 1000           /* check: tries for two equal snapshots of the counters */
#define CTL_CHECK_PASSES 3               /* check: walks restarted when the generation changes */
#define CTL_MAX_PROBLEMS 50              /* check: problems listed one by one; the rest are counted */
#define CTL_ID_COLUMN_MAX 48             /* calls: the id column fits ids up to this many characters;
                                          * a longer id pushes the rest of its row */
#define CTL_STATUS_COLUMN_MAX 16
#define CTL_HEARTBEAT_STALE_NS ((uint64_t)WORKER_HUNG_MS * 1000000u) /* the master would have killed
                                                                       * a writer this silent */


struct ctl_counter_name {
	const char *key, *label;
};
/* Names of the event counters of arena.h (JSON key, label), and of the rings. */
extern const struct ctl_counter_name counter_names[ARENA_NCOUNTERS_USED];
extern const char *const ring_names[ARENA_RINGS];

/* Output: each line leaves as soon as it is made, even into a pipe; a closed pipe (| head) ends the
 * program quietly. out_errno is the first write error. */
extern int out_errno;
int emit(struct buf *b);
int finish_output(int status);
void put_local_time(struct buf *b, uint64_t ns);
size_t utf8_chars(const char *s, size_t n);
void put_column(struct buf *b, const char *s, size_t n, size_t max_chars, size_t width);

/* Opens and maps the arena read-only; *id is the object's identity. quiet: no message on failure. */
int open_arena(const char *path, struct arena *a, struct stat *id, bool quiet);

/* A snapshot of the control block. */
struct ring_snap {
	uint64_t head, tail, data_head, data_tail, evicted, evicted_bytes;
};

struct snap {
	uint64_t generation, writer_pid, writer_start_ns, heartbeat_ns, recoveries;
	struct ring_snap ring[ARENA_RINGS];
	uint64_t counters[ARENA_NCOUNTERS_USED];
};

void take_snap(const struct arena *a, struct snap *s);
bool same_positions(const struct snap *x, const struct snap *y);
bool writer_alive(uint64_t pid);

int cmd_stats(const struct arena *a, const char *path, bool json);
int cmd_calls(const struct arena *a, bool json);
/* text_chars: how much of each message to print, as the daemon's --log-text (event_log.h). */
int cmd_tail(struct arena *a, const struct stat *id, const char *path, bool follow, uint64_t lines, size_t text_chars);
int cmd_check(const struct arena *a, const char *path);

#endif
