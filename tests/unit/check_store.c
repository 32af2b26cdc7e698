/* check_store: the arena's eviction policy, end to end through the writer (store) and a reader
 * rebuilt from the arena: a small arena filled many times over with interleaved live, ended and idle
 * calls. Rules checked: raw payloads age out first; live calls keep their whole history (snapshots);
 * ended and idle calls leave whole, oldest first; ingest never blocks (every commit succeeds); every
 * eviction is counted; live calls that cannot all fit leave whole too, counted. */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "check_util.h"
#include "hash.h"
#include "json.h"
#include "follow.h"
#include "store.h"

#define SMALL (1u << 20)
#define SECOND 1000000000ull
#define MAX_CALLS 8192
#define MAX_MSGS 64

CHECK_TMP_FIXTURE("check_store")

/* What each call should show, kept by the test independently of the daemon's code. */
struct model {
	char id[32];
	int nstatus;
	char status[8][16];
	int nmsg;
	char msg[MAX_MSGS][48];
	bool ended;
	uint64_t created; /* order of creation */
};

struct world {
	struct arena a;
	struct store s;
	struct model calls[MAX_CALLS];
	int ncalls;
	uint64_t now;
	uint64_t bytes;  /* raw body bytes committed */
	uint64_t commits, stop_at; /* stop_at: the commit not to make (0: none) */
	uint64_t first_snap_commit; /* the first commit that snapshotted once facts were evicted */
	uint64_t arm_at;            /* the commit before which the kill hook is installed (0: never) */
	bool stopped;
	uint64_t raw_evicted_at_first_fact_eviction;
	bool seen_fact_eviction;
	struct buf body;
};

static void
open_world(struct world *w, uint64_t size, uint64_t idle_ms)
{
	memset(w, 0, sizeof(*w));
	char err[256], why[256];
	int ro = -1;
	int fd = arena_create_or_open(path, size, &ro, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(ro);
	ck_assert_int_eq(arena_map(&w->a, fd, true, err, sizeof(err)), 0);
	ck_assert_int_eq(store_open(&w->s, &w->a, idle_ms, why, sizeof(why)), 0);
	w->now = 1784041330ull * SECOND;
}

static void
close_world(struct world *w)
{
	store_close(&w->s);
	arena_unmap(&w->a);
	close(w->a.fd);
	buf_free(&w->body);
}

/* The crash test's hook: the writer dies the kill_countdown-th time it passes kill_at. */
static const char *kill_at;
static int kill_countdown;

static void
kill_hook(const char *name)
{
	if (strcmp(name, kill_at) == 0 && --kill_countdown <= 0)
		raise(SIGKILL);
}

/* Commits w->body; false (nothing done) once the world has reached its stop point. */
static bool
commit(struct world *w)
{
	if (w->stopped || (w->stop_at && w->commits + 1 == w->stop_at)) {
		w->stopped = true;
		return false;
	}
	if (w->arm_at && w->commits + 1 == w->arm_at)
		arena_kill_point = kill_hook;
	w->commits++;
	uint64_t snaps = arena_counter_get(&w->a, ARENA_C_SNAPSHOTS);
	struct json_doc d;
	ck_assert_int_eq(json_parse(&d, w->body.data, w->body.len, NULL), JSON_OK);
	struct event_secrets sec = { 0 };
	struct event_result r;
	ck_assert_int_eq(store_prepare(&w->s, &d, w->body.data, &sec, &r), STORE_OK);
	/* ingest never blocks and never refuses for lack of room */
	ck_assert_int_eq(store_commit(&w->s, &d, w->body.data, &sec, "{}", 2, 0, w->now, &r), STORE_OK);
	json_free(&d);
	event_secrets_clear(&sec);
	w->bytes += w->body.len;
	w->now += SECOND / 100;
	if (!w->seen_fact_eviction && atomic_load(&w->a.ctl->ring[ARENA_FACTS].evicted) > 0) {
		w->seen_fact_eviction = true;
		w->raw_evicted_at_first_fact_eviction = atomic_load(&w->a.ctl->ring[ARENA_RAW].evicted);
	}
	if (!w->first_snap_commit && w->seen_fact_eviction && arena_counter_get(&w->a, ARENA_C_SNAPSHOTS) > snaps)
		w->first_snap_commit = w->commits;
	return true;
}

static struct model *
new_call(struct world *w, const char *prefix)
{
	ck_assert_int_lt(w->ncalls, MAX_CALLS);
	struct model *m = &w->calls[w->ncalls];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s-%d", prefix, w->ncalls);
	m->created = (uint64_t)w->ncalls++;
	return m;
}

static void
post_status(struct world *w, struct model *m, const char *status)
{
	buf_reset(&w->body);
	buf_printf(&w->body, "{\"message\":{\"type\":\"status-update\",\"timestamp\":%llu,\"call\":{\"id\":\"%s\",\"status\":\"%s\"}}}",
	           (unsigned long long)(w->now / 1000000), m->id, status);
	if (!commit(w))
		return;
	snprintf(m->status[m->nstatus++], sizeof(m->status[0]), "%s", status);
	if (!strcmp(status, "finished"))
		m->ended = true;
}

/* A conversation-update carrying the whole history plus one new message, padded with the bulk a
 * real body has (the assistant object) so that raw bodies are much larger than facts. */
static void
post_message(struct world *w, struct model *m, size_t padding)
{
	ck_assert_int_lt(m->nmsg, MAX_MSGS);
	char id[sizeof(m->id)];
	memcpy(id, m->id, sizeof(id));
	snprintf(m->msg[m->nmsg], sizeof(m->msg[0]), "msg %d of %.20s", m->nmsg, id);
	buf_reset(&w->body);
	buf_printf(&w->body, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":%llu,\"call\":{\"id\":\"%s\"},"
	                     "\"assistant\":{\"pad\":\"", (unsigned long long)(w->now / 1000000), m->id);
	for (size_t i = 0; i < padding; i++)
		buf_addc(&w->body, 'x');
	buf_adds(&w->body, "\"},\"messages\":[");
	for (int i = 0; i <= m->nmsg; i++)
		buf_printf(&w->body, "%s{\"messageId\":\"m%d\",\"role\":\"%s\",\"text\":\"%s\"}", i ? "," : "", i,
		           i % 2 ? "user" : "assistant", m->msg[i]);
	buf_adds(&w->body, "]}}");
	if (commit(w))
		m->nmsg++;
}

/* A reader as query is: everything from the tail, through the same rules. */
static void
read_back(struct world *w, struct view *v)
{
	struct buf payload = BUF_INIT;
	struct arena_rec rec;
	struct event_fact f;
	view_init(v);
	for (uint64_t q = arena_tail(&w->a, ARENA_FACTS); q < arena_head(&w->a, ARENA_FACTS); q++) {
		ck_assert_int_eq(arena_read(&w->a, ARENA_FACTS, q, &rec, &payload), ARENA_READ_OK);
		ck_assert_int_eq(event_fact_decode(payload.data, payload.len, &f), 0);
		ck_assert_int_eq(view_apply(v, q, rec.time_ns, rec.ref, &f), 0);
	}
	view_prune(v, arena_tail(&w->a, ARENA_FACTS), NULL, NULL);
	buf_free(&payload);
}

/* A call is shown whole: every status and message the model has, in order, and nothing else. */
static bool
whole(const struct view *v, const struct model *m, char *why, size_t n)
{
	const struct view_call *c = view_find(v, m->id, strlen(m->id));
	if (!c)
		return snprintf(why, n, "%s missing", m->id), false;
	if ((int)c->nst != m->nstatus || (int)c->nmsg != m->nmsg)
		return snprintf(why, n, "%s has %zu statuses, %zu messages; expected %d, %d", m->id, c->nst, c->nmsg,
		                m->nstatus, m->nmsg),
		       false;
	for (int i = 0; i < m->nstatus; i++)
		if (strcmp(c->st[i].status, m->status[i]))
			return snprintf(why, n, "%s status %d is %s", m->id, i, c->st[i].status), false;
	for (int i = 0; i < m->nmsg; i++)
		if (strcmp(c->msg[i].text, m->msg[i]))
			return snprintf(why, n, "%s message %d is %s", m->id, i, c->msg[i].text), false;
	if (c->ended != m->ended)
		return snprintf(why, n, "%s ended=%d", m->id, c->ended), false;
	return true;
}

/* Ended calls come and go while the live ones keep talking, until bytes of bodies have gone in (or
 * the world reaches its stop point). */
static void
churn(struct world *w, struct model **live, int nlive, uint64_t bytes)
{
	int round = 0;
	while (w->bytes < bytes && !w->stopped) {
		struct model *e = new_call(w, "ended");
		post_status(w, e, "queued");
		post_status(w, e, "ongoing");
		for (int k = 0; k < 3; k++)
			post_message(w, e, 1500);
		post_status(w, e, "finished");
		if (round++ % 8 == 0)
			for (int i = 0; i < nlive; i++)
				if (live[i]->nmsg < MAX_MSGS - 1)
					post_message(w, live[i], 1500);
	}
}

START_TEST(test_live_calls_whole_ended_calls_leave_oldest_first)
{
	static struct world w;
	open_world(&w, SMALL, STORE_DEFAULT_IDLE_MS);
	enum { LIVE = 6 };
	struct model *live[LIVE];
	for (int i = 0; i < LIVE; i++) {
		live[i] = new_call(&w, "live");
		post_status(&w, live[i], "ongoing");
	}
	uint64_t size = w.a.hdr->ring[ARENA_FACTS].data_size + w.a.hdr->ring[ARENA_RAW].data_size;
	churn(&w, live, LIVE, 12 * size);
	printf("# %d calls, %llu body bytes through a %llu-byte arena; %llu snapshots, %llu calls evicted\n",
	       w.ncalls, (unsigned long long)w.bytes, (unsigned long long)size,
	       (unsigned long long)arena_counter_get(&w.a, ARENA_C_SNAPSHOTS),
	       (unsigned long long)arena_counter_get(&w.a, ARENA_C_CALLS_EVICTED));
	/* raw payloads aged out before any fact did */
	ck_assert(w.seen_fact_eviction);
	ck_assert_uint_gt(w.raw_evicted_at_first_fact_eviction, 0);
	ck_assert_uint_gt(arena_counter_get(&w.a, ARENA_C_SNAPSHOTS), 0);

	struct view v;
	read_back(&w, &v);
	char why[256];
	/* live calls are whole, in the writer's view and in a reader's rebuilt from the arena */
	for (int i = 0; i < LIVE; i++) {
		ck_assert_msg(whole(&v, live[i], why, sizeof(why)), "reader: %s", why);
		ck_assert_msg(whole(&w.s.view, live[i], why, sizeof(why)), "writer: %s", why);
	}
	/* ended calls: whole or gone, and gone ones are exactly the oldest */
	int gone = 0, present = 0;
	bool seen_present = false;
	for (int i = 0; i < w.ncalls; i++) {
		const struct model *m = &w.calls[i];
		if (strncmp(m->id, "ended", 5))
			continue;
		if (view_find(&v, m->id, strlen(m->id))) {
			ck_assert_msg(whole(&v, m, why, sizeof(why)), "reader: %s", why);
			seen_present = true;
			present++;
		} else {
			ck_assert_msg(!seen_present, "%s is gone but a newer ended call is still there", m->id);
			gone++;
		}
	}
	ck_assert_int_gt(gone, 0);
	ck_assert_int_gt(present, 0);
	/* every call that left was counted */
	ck_assert_uint_eq(arena_counter_get(&w.a, ARENA_C_CALLS_EVICTED), (uint64_t)gone);
	ck_assert_uint_eq(arena_counter_get(&w.a, ARENA_C_LIVE_DROPPED), 0);
	/* the writer and a fresh reader agree call for call */
	ck_assert_uint_eq(v.ncalls, w.s.view.ncalls);
	view_clear(&v);
	/* the very first call to leave, after more than a thousand others left: back, and marked so;
	 * a call never seen before is not */
	struct model *first = NULL;
	for (int i = 0; i < w.ncalls && !first; i++)
		if (!strncmp(w.calls[i].id, "ended", 5))
			first = &w.calls[i];
	ck_assert_ptr_nonnull(first);
	post_status(&w, first, "ongoing");
	const struct view_call *back = view_find(&w.s.view, first->id, strlen(first->id));
	ck_assert_ptr_nonnull(back);
	ck_assert_msg(back->resumed, "%s came back after %d calls left and is not marked resumed", first->id, gone);
	struct model *fresh = new_call(&w, "fresh");
	post_status(&w, fresh, "ongoing");
	ck_assert(!view_find(&w.s.view, fresh->id, strlen(fresh->id))->resumed);

	/* a writer restarted on this arena rebuilds the same calls */
	store_close(&w.s);
	char why2[256];
	ck_assert_int_eq(store_open(&w.s, &w.a, STORE_DEFAULT_IDLE_MS, why2, sizeof(why2)), 0);
	for (int i = 0; i < LIVE; i++)
		ck_assert_msg(whole(&w.s.view, live[i], why, sizeof(why)), "restarted writer: %s", why);
	close_world(&w);
}
END_TEST

START_TEST(test_idle_calls_leave)
{
	static struct world w;
	open_world(&w, SMALL, 60 * 1000); /* idle after a minute */
	struct model *idle = new_call(&w, "idle"), *active = new_call(&w, "active");
	post_status(&w, idle, "ongoing");
	post_message(&w, idle, 100);
	post_status(&w, active, "ongoing");
	uint64_t size = w.a.hdr->ring[ARENA_FACTS].data_size + w.a.hdr->ring[ARENA_RAW].data_size;
	int round = 0;
	while (round < 30 * (MAX_MSGS - 4)) {
		struct model *e = new_call(&w, "filler");
		post_status(&w, e, "ongoing");
		post_message(&w, e, 1500);
		post_status(&w, e, "finished");
		/* the active call speaks every ~30 s (within the minute), the idle one never again */
		if (round++ % 30 == 0) {
			ck_assert_int_lt(active->nmsg, MAX_MSGS - 1);
			post_message(&w, active, 200);
		}
		w.now += SECOND; /* time passes: the idle call stops being live after a minute */
	}
	ck_assert_uint_gt(w.bytes, 3 * size); /* filled a few times over */
	struct view v;
	read_back(&w, &v);
	char why[256];
	ck_assert_msg(whole(&v, active, why, sizeof(why)), "%s", why);
	/* neither live nor partly there: gone whole */
	ck_assert_ptr_null(view_find(&v, idle->id, strlen(idle->id)));
	ck_assert_ptr_null(view_find(&w.s.view, idle->id, strlen(idle->id)));
	view_clear(&v);
	close_world(&w);
}
END_TEST

START_TEST(test_too_many_live_calls)
{
	/* More live state than the facts ring holds: ingest still never blocks, calls that cannot be
	 * kept leave whole, and that is counted. */
	static struct world w;
	open_world(&w, SMALL, STORE_DEFAULT_IDLE_MS);
	enum { LIVE = 40 };
	struct model *live[LIVE];
	for (int i = 0; i < LIVE; i++) {
		live[i] = new_call(&w, "big");
		post_status(&w, live[i], "ongoing");
	}
	/* each call's messages are ~200 bytes of text; 40 calls × 60 messages overflow 256 KiB */
	for (int k = 0; k < MAX_MSGS - 4; k++) {
		for (int i = 0; i < LIVE; i++) {
			struct model *m = live[i];
			char id[sizeof(m->id)];
			memcpy(id, m->id, sizeof(id));
			snprintf(m->msg[m->nmsg], sizeof(m->msg[0]), "msg %d of %s", m->nmsg, id);
			m->nmsg++;
			buf_reset(&w.body);
			buf_printf(&w.body, "{\"message\":{\"type\":\"conversation-update\",\"call\":{\"id\":\"%s\"},\"messages\":[",
			           m->id);
			for (int j = 0; j < m->nmsg; j++) {
				buf_printf(&w.body, "%s{\"messageId\":\"m%d\",\"role\":\"user\",\"text\":\"%s", j ? "," : "", j,
				           m->msg[j]);
				for (int p = 0; p < 150; p++)
					buf_addc(&w.body, 'y');
				buf_adds(&w.body, "\"}");
			}
			buf_adds(&w.body, "]}}");
			commit(&w);
		}
	}
	/* Copying the live calls never crowds out the events: past a bounded ratio of snapshot bytes to
	 * event bytes the oldest leaves instead (without the bound, this run copied the same calls over
	 * and over, several snapshots per event, each the size of a whole call). */
	uint64_t events = arena_counter_get(&w.a, ARENA_C_EVENTS), snaps = arena_counter_get(&w.a, ARENA_C_SNAPSHOTS);
	printf("# %llu events, %llu snapshots, %llu live calls given up\n", (unsigned long long)events,
	       (unsigned long long)snaps, (unsigned long long)arena_counter_get(&w.a, ARENA_C_LIVE_DROPPED));
	ck_assert_uint_le(snaps, 2 * events); /* 12.9 per event without the bound */
	struct view v;
	read_back(&w, &v);
	/* whatever is shown is whole: every present call has all its statuses and a gapless prefix of
	 * messages (texts carry 150 bytes of padding the model does not, so compare the start) */
	int present = 0, restarted = 0;
	for (int i = 0; i < LIVE; i++) {
		const struct view_call *c = view_find(&v, live[i]->id, strlen(live[i]->id));
		if (!c)
			continue;
		present++;
		/* every message, in order: full-history updates bring a call that left back whole... */
		ck_assert_uint_eq(c->nmsg, (size_t)live[i]->nmsg);
		for (size_t j = 0; j < c->nmsg; j++)
			ck_assert_int_eq(strncmp(c->msg[j].text, live[i]->msg[j], strlen(live[i]->msg[j])), 0);
		/* ...but not the status pill of its very first event, which left with it */
		ck_assert_uint_le(c->nst, 1);
		restarted += c->nst == 0;
	}
	ck_assert_uint_gt(arena_counter_get(&w.a, ARENA_C_LIVE_DROPPED), 0);
	printf("# %d of %d live calls shown (%d of them came back after leaving); %llu dropped, %llu evicted\n",
	       present, LIVE, restarted,
	       (unsigned long long)arena_counter_get(&w.a, ARENA_C_LIVE_DROPPED),
	       (unsigned long long)arena_counter_get(&w.a, ARENA_C_CALLS_EVICTED));
	view_clear(&v);
	close_world(&w);
}
END_TEST

/* --- the writer killed inside a snapshot --------------------------------------------------------- */

enum { KILL_LIVE = 6 };
/* Where to die in the commit that snapshots: the nth time the writer passes a named point. That
 * commit appends a snapshot per live call it protects (publishing each), then its raw and fact
 * records, published together (publish:between lies between the two rings: reached once). */
static const struct kill_case {
	const char *point;
	int nth;
} kill_cases[] = {
	{ "append:evicted", 1 }, { "append:evicted", 2 }, { "append:evicted", 3 },
	{ "append:data", 1 },    { "append:data", 2 },    { "append:data", 3 },
	{ "append:slot", 1 },    { "append:slot", 2 },    { "append:slot", 3 },
	{ "publish:head", 1 }, { "publish:head", 2 }, { "publish:between", 1 },
};

/* The churn of the first test, on the arena at path: up to (not including) commit stop_at (0: to the
 * end), with the kill hook armed just before commit arm_at (0: never). */
static void
run_world(struct world *w, struct model **live, uint64_t stop_at, uint64_t arm_at)
{
	open_world(w, SMALL, STORE_DEFAULT_IDLE_MS);
	w->stop_at = stop_at;
	w->arm_at = arm_at;
	for (int i = 0; i < KILL_LIVE; i++) {
		live[i] = new_call(w, "live");
		post_status(w, live[i], "ongoing");
	}
	uint64_t size = w->a.hdr->ring[ARENA_FACTS].data_size + w->a.hdr->ring[ARENA_RAW].data_size;
	churn(w, live, KILL_LIVE, 6 * size);
}

START_TEST(test_writer_killed_inside_a_snapshot)
{
	/* A snapshot is an append and a publish. The writer is killed at each named point of a commit
	 * that snapshots a live call, after the facts ring has started evicting: the next writer must
	 * find every live call whole and every commit before that one intact. */
	const char *point = kill_cases[_i].point;
	int occurrence = kill_cases[_i].nth;
	static struct world w;
	struct model *live[KILL_LIVE];

	/* A dry run finds the commit: the first to snapshot once the facts ring evicts. */
	run_world(&w, live, 0, 0);
	uint64_t target = w.first_snap_commit;
	close_world(&w);
	unlink(path);
	ck_assert_uint_gt(target, 0);

	/* The writer that dies inside commit `target`. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* the very run of the dry run, armed just before that commit */
		kill_at = point;
		kill_countdown = occurrence;
		run_world(&w, live, 0, target);
		_exit(3); /* the point was not reached */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s #%d: the writer was not killed there",
	              point, occurrence);

	/* The model of what was acknowledged: the same run, stopped before that commit. */
	static struct world model;
	struct model *mlive[KILL_LIVE];
	char moved[sizeof(path) + 8];
	snprintf(moved, sizeof(moved), "%s.killed", path);
	ck_assert_int_eq(rename(path, moved), 0);
	run_world(&model, mlive, target, 0);
	ck_assert_uint_gt(arena_counter_get(&model.a, ARENA_C_SNAPSHOTS), 0);

	/* The next writer, on the killed one's arena. */
	static struct world after;
	memset(&after, 0, sizeof(after));
	char err[256], why[256];
	int ro = -1;
	int fd = arena_create_or_open(moved, SMALL, &ro, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(ro);
	ck_assert_int_eq(arena_map(&after.a, fd, true, err, sizeof(err)), 0);
	ck_assert_int_eq(store_open(&after.s, &after.a, STORE_DEFAULT_IDLE_MS, why, sizeof(why)), 0);
	after.now = model.now;
	printf("# killed at %s #%d of commit %llu; recovery: %s\n", point, occurrence, (unsigned long long)target,
	       why[0] ? why : "nothing to do");
	struct view v;
	read_back(&after, &v);
	for (int i = 0; i < KILL_LIVE; i++) {
		ck_assert_msg(whole(&v, mlive[i], why, sizeof(why)), "%s #%d, reader: %s", point, occurrence, why);
		ck_assert_msg(whole(&after.s.view, mlive[i], why, sizeof(why)), "%s #%d, writer: %s", point, occurrence,
		              why);
	}
	/* ended calls: whole or gone, as before */
	for (int i = 0; i < model.ncalls; i++) {
		const struct model *m = &model.calls[i];
		if (view_find(&v, m->id, strlen(m->id)))
			ck_assert_msg(whole(&v, m, why, sizeof(why)), "%s #%d: %s", point, occurrence, why);
	}
	view_clear(&v);
	/* and the recovered writer goes on: one more message for every live call */
	for (int i = 0; i < KILL_LIVE; i++)
		post_message(&after, mlive[i], 100);
	read_back(&after, &v);
	for (int i = 0; i < KILL_LIVE; i++)
		ck_assert_msg(whole(&v, mlive[i], why, sizeof(why)), "after recovery: %s", why);
	view_clear(&v);
	store_close(&after.s);
	arena_unmap(&after.a);
	close(fd);
	unlink(moved);
	close_world(&model);
}
END_TEST

START_TEST(test_many_live_calls_with_room)
{
	/* A hundred and twenty live calls whose state fits easily: none is ever given up, however many
	 * ended calls pass through, and every counter is exact. */
	static struct world w;
	open_world(&w, 4u << 20, STORE_DEFAULT_IDLE_MS);
	enum { LIVE = 120 };
	struct model *live[LIVE];
	for (int i = 0; i < LIVE; i++) {
		live[i] = new_call(&w, "live");
		post_status(&w, live[i], "ongoing");
		post_message(&w, live[i], 200);
	}
	uint64_t size = w.a.hdr->ring[ARENA_FACTS].data_size + w.a.hdr->ring[ARENA_RAW].data_size;
	int round = 0;
	while (w.bytes < 8 * size) {
		struct model *e = new_call(&w, "ended");
		post_status(&w, e, "ongoing");
		post_message(&w, e, 3000);
		post_status(&w, e, "finished");
		if (round++ % 40 == 0)
			for (int i = 0; i < LIVE; i++)
				if (live[i]->nmsg < 12)
					post_message(&w, live[i], 200);
	}
	struct view v;
	read_back(&w, &v);
	char why[256];
	for (int i = 0; i < LIVE; i++)
		ck_assert_msg(whole(&v, live[i], why, sizeof(why)), "%s", why);
	int gone = 0;
	for (int i = 0; i < w.ncalls; i++)
		if (strncmp(w.calls[i].id, "ended", 5) == 0 && !view_find(&v, w.calls[i].id, strlen(w.calls[i].id)))
			gone++;
	printf("# %d live calls kept whole through %llu body bytes in a %llu-byte arena: %llu snapshots, %d ended "
	       "calls left\n", LIVE, (unsigned long long)w.bytes, (unsigned long long)size,
	       (unsigned long long)arena_counter_get(&w.a, ARENA_C_SNAPSHOTS), gone);
	ck_assert_uint_eq(arena_counter_get(&w.a, ARENA_C_LIVE_DROPPED), 0);
	ck_assert_uint_eq(arena_counter_get(&w.a, ARENA_C_CALLS_EVICTED), (uint64_t)gone);
	ck_assert_uint_eq(arena_counter_get(&w.a, ARENA_C_EVENTS), w.commits);
	ck_assert_uint_gt(arena_counter_get(&w.a, ARENA_C_SNAPSHOTS), (uint64_t)LIVE);
	ck_assert_uint_eq(v.ncalls, w.s.view.ncalls);
	view_clear(&v);
	close_world(&w);
}
END_TEST

START_TEST(test_follower_survives_damaged_counters)
{
	/* A follower (query, liveeventsctl) under counters damaged while it runs: an impossible window
	 * reads nothing and keeps the view; a tail that went back makes it read everything again. */
	static struct world w; /* large: off the stack */
	open_world(&w, 1u << 20, 3600 * 1000);
	struct model *m[4];
	for (int i = 0; i < 4; i++) {
		m[i] = new_call(&w, "F");
		post_status(&w, m[i], "ongoing");
		post_message(&w, m[i], 10);
	}
	struct follow f;
	struct view v;
	follow_init(&f);
	view_init(&v);
	ck_assert_int_gt(follow_sync(&f, &w.a, &v), 0);
	ck_assert_uint_eq(v.ncalls, 4);
	struct arena_ring_ctl *rc = &w.a.ctl->ring[ARENA_FACTS];
	uint64_t head = atomic_load(&rc->head_seq), tail = atomic_load(&rc->tail_seq);
	/* a head claiming billions of records */
	atomic_store(&rc->head_seq, 0x7fffffffffff0000ull);
	ck_assert_int_eq(follow_sync(&f, &w.a, &v), 0);
	ck_assert_uint_eq(f.inconsistent, 1);
	ck_assert_uint_eq(f.corrupt, 0);
	ck_assert_uint_eq(v.ncalls, 4);
	atomic_store(&rc->head_seq, head);
	/* a tail pushed forward hides calls; once it goes back, they are read again */
	atomic_store(&rc->tail_seq, head - 1);
	follow_sync(&f, &w.a, &v);
	atomic_store(&rc->tail_seq, tail);
	follow_sync(&f, &w.a, &v);
	char why[128];
	for (int i = 0; i < 4; i++)
		ck_assert_msg(whole(&v, m[i], why, sizeof(why)), "%s: %s", m[i]->id, why);
	ck_assert_uint_eq(v.ncalls, 4);
	view_clear(&v);
	follow_free(&f);
	close_world(&w);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_live_calls_whole_ended_calls_leave_oldest_first);
	tcase_add_test(tc, test_idle_calls_leave);
	tcase_add_test(tc, test_too_many_live_calls);
	tcase_add_test(tc, test_many_live_calls_with_room);
	tcase_add_test(tc, test_follower_survives_damaged_counters);
	tcase_add_loop_test(tc, test_writer_killed_inside_a_snapshot, 0,
	                    (int)(sizeof(kill_cases) / sizeof(kill_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(store_suite)
