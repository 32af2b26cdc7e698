/* ctl_tail: liveeventsctl tail [-f]: committed events in the daemon's own log words, followed like
 * tail -f across resets, overruns and a re-created arena. */
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

/* --- tail ------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void
on_stop(int sig)
{
	stop_signal = sig;
}

/* A reader following the facts ring. */
struct tailer {
	struct arena *a;      /* the arena followed: main's, or other after a re-creation */
	struct arena other;   /* where a re-created arena is mapped (struct arena is not copied:
	                       * it points into itself) */
	const char *path;
	struct stat id;       /* of the mapped object */
	unsigned idle_polls;
	uint64_t generation;
	uint64_t cursor;      /* the next fact to print */
	unsigned reset_polls; /* idle polls spent waiting for a reset's new generation */
	bool window_bad;      /* the counters' window was reported impossible, and not yet repaired */
	size_t text_chars;    /* --log-text */
	struct buf payload, line;
};

/* What one step of a follower did: moved on (printed a line or passed a snapshot), found nothing
 * new, or found its output closed. */
enum step { STEP_PROGRESS, STEP_IDLE, STEP_OUTPUT_GONE };

/* Prints what comes next at the cursor: an event, or a line saying why events are missing. */
static enum step
tailer_step(struct tailer *fw)
{
	const struct arena *a = fw->a;
	uint64_t gen = arena_generation(a);
	if (gen != fw->generation) {
		fw->generation = gen;
		fw->cursor = arena_tail(a, ARENA_FACTS);
		fw->reset_polls = 0;
		buf_printf(&fw->line, "-- arena reset or re-initialised (generation %016" PRIx64 ") --\n", gen);
		return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
	}
	if (!arena_window_ok(a, ARENA_FACTS)) {
		if (fw->window_bad)
			return STEP_IDLE;
		fw->window_bad = true;
		buf_printf(&fw->line, "-- the arena's counters are damaged (tail %" PRIu64 ", head %" PRIu64
		           "): waiting for the writer to repair them --\n",
		           arena_tail(a, ARENA_FACTS), arena_head(a, ARENA_FACTS));
		return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
	}
	if (fw->window_bad) {
		fw->window_bad = false;
		if (fw->cursor < arena_tail(a, ARENA_FACTS) || fw->cursor > arena_head(a, ARENA_FACTS))
			fw->cursor = arena_tail(a, ARENA_FACTS);
		buf_printf(&fw->line, "-- the arena's counters are consistent again --\n");
		return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
	}
	struct arena_rec rec;
	struct event_fact f;
	switch (arena_read(a, ARENA_FACTS, fw->cursor, &rec, &fw->payload)) {
	case ARENA_READ_END:
		/* A cursor beyond the head means the counters were zeroed after we saw the new generation
		 * (a re-initialisation announces it before it zeroes them): start over at the tail. */
		if (fw->cursor > arena_head(a, ARENA_FACTS))
			fw->cursor = arena_tail(a, ARENA_FACTS);
		return STEP_IDLE;
	case ARENA_READ_OVERRUN: {
		uint64_t tail = arena_tail(a, ARENA_FACTS);
		/* An empty ring behind us is a reset (or re-initialisation) in progress: it moves the tail
		 * to the head just before it stores the new generation. Eviction always leaves the newest
		 * record, so this is no overrun: wait for the generation rather than report lost events. */
		if (tail >= arena_head(a, ARENA_FACTS) && fw->reset_polls < CTL_RESET_GRACE_POLLS) {
			fw->reset_polls++;
			return STEP_IDLE;
		}
		fw->reset_polls = 0;
		buf_printf(&fw->line, "-- %" PRIu64 " records overwritten before they could be read --\n",
		           tail > fw->cursor ? tail - fw->cursor : 0);
		fw->cursor = tail;
		return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
	}
	case ARENA_READ_CORRUPT:
		break;
	case ARENA_READ_OK:
		if (rec.kind == ARENA_KIND_HOLE) {
			buf_printf(&fw->line, "-- event %" PRIu64 " was lost to damage (the writer's recovery found it) --\n",
			           fw->cursor);
			fw->cursor++;
			return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
		}
		if (rec.kind != EVENT_REC_FACT || event_fact_decode(fw->payload.data, fw->payload.len, &f) < 0)
			break;
		/* A snapshot is the writer re-appending a call to keep it whole, not an event: the
		 * daemon logs no line for it, and neither do we. */
		if (f.flags & EVENT_F_SNAPSHOT) {
			fw->cursor++;
			return STEP_PROGRESS;
		}
		/* The daemon's own words for the event (its log line without the log's prefix). */
		event_describe_text(&fw->line, &f, rec.time_ns, fw->text_chars);
		buf_addc(&fw->line, '\n');
		fw->cursor++;
		return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
	}
	buf_printf(&fw->line, "-- event %" PRIu64 " is unreadable (failed validation), skipped --\n", fw->cursor);
	fw->cursor++;
	return emit(&fw->line) < 0 ? STEP_OUTPUT_GONE : STEP_PROGRESS;
}

/* Waits one poll interval for new commits. It polls stdout rather than sleeping, so a follower whose
 * reader went away (`| head`) notices at once instead of at its next event: a pipe without readers
 * reports POLLERR, a closed terminal POLLHUP. Returns false when the output is gone. */
static bool
idle_wait(void)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };
	int n = poll(&p, 1, CTL_POLL_MS);
	return !(n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)));
}

/* Where the last n events before head begin: walking back, snapshots (not events) are not counted.
 * The slot flags say what a record is without decoding it. */
static uint64_t
start_of_last_events(const struct arena *a, uint64_t head, uint64_t n, struct buf *scratch)
{
	uint64_t s = head;
	struct arena_rec rec;
	while (n && s > arena_tail(a, ARENA_FACTS)) {
		enum arena_read_status st = arena_read(a, ARENA_FACTS, s - 1, &rec, scratch);
		if (st == ARENA_READ_OVERRUN)
			break;
		s--;
		if (st != ARENA_READ_OK || !(rec.flags & EVENT_F_SNAPSHOT))
			n--; /* an unreadable record gets its line too */
	}
	return s < arena_tail(a, ARENA_FACTS) ? arena_tail(a, ARENA_FACTS) : s;
}

/* A daemon started after its arena was removed creates a new object at the same path; this mapping
 * would then show a dead arena forever. Varnish's readers watch for that the same way: the path's
 * device and inode. The new arena is followed from its tail, announced as a re-initialisation. */
static void
tailer_reopen(struct tailer *fw, struct arena *first)
{
	struct stat st, id;
	struct arena *next = fw->a == first ? &fw->other : first;
	if (stat(fw->path, &st) < 0 || (st.st_dev == fw->id.st_dev && st.st_ino == fw->id.st_ino))
		return;
	if (open_arena(fw->path, next, &id, true) < 0)
		return; /* not (yet) a valid arena: look again later */
	arena_unmap(fw->a);
	fw->a = next;
	fw->id = id;
	fw->generation = 0; /* never a generation: the next step prints the reset line */
}

int
cmd_tail(struct arena *a, const struct stat *id, const char *path, bool follow, uint64_t lines, size_t text_chars)
{
	if (follow) {
		struct sigaction sa = { .sa_handler = on_stop }; /* no SA_RESTART: poll returns EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGPIPE, &sa, NULL);
	}
	struct tailer fw = { .a = a, .path = path, .id = *id, .payload = BUF_INIT, .line = BUF_INIT,
	                     .text_chars = text_chars };
	fw.generation = arena_generation(a);
	uint64_t head = arena_head(a, ARENA_FACTS);
	fw.cursor = start_of_last_events(a, head, lines, &fw.payload);
	while (!stop_signal) {
		/* Without -f: what was committed when we started, then stop. */
		if (!follow && fw.cursor >= head && fw.generation == arena_generation(fw.a))
			break;
		enum step st = tailer_step(&fw);
		if (st == STEP_OUTPUT_GONE)
			break;
		if (st == STEP_IDLE && (!follow || !idle_wait()))
			break;
		if (st == STEP_IDLE && ++fw.idle_polls % CTL_REOPEN_POLLS == 0)
			tailer_reopen(&fw, a);
	}
	if (fw.a != a)
		arena_unmap(fw.a); /* main unmaps its own (a no-op once unmapped here) */
	buf_free(&fw.payload);
	buf_free(&fw.line);
	return CTL_EXIT_OK;
}

