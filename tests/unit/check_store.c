/* check_store: the arena's eviction policy, end to end through the writer (store) and a reader
 * rebuilt from the arena: a small arena filled many times over with interleaved live, ended and idle
 * calls. Rules checked: raw payloads age out first; live calls keep their whole history (snapshots);
 * ended and idle calls leave whole, oldest first; ingest never blocks (every commit succeeds); every
 * eviction is counted; live calls that cannot all fit leave whole too, counted. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "check_util.h"
#include "hash.h"
#include "json.h"
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

static void
commit(struct world *w)
{
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
	commit(w);
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
	snprintf(m->msg[m->nmsg], sizeof(m->msg[0]), "msg %d of %s", m->nmsg, id);
	m->nmsg++;
	buf_reset(&w->body);
	buf_printf(&w->body, "{\"message\":{\"type\":\"conversation-update\",\"timestamp\":%llu,\"call\":{\"id\":\"%s\"},"
	                     "\"assistant\":{\"pad\":\"", (unsigned long long)(w->now / 1000000), m->id);
	for (size_t i = 0; i < padding; i++)
		buf_addc(&w->body, 'x');
	buf_adds(&w->body, "\"},\"messages\":[");
	for (int i = 0; i < m->nmsg; i++)
		buf_printf(&w->body, "%s{\"messageId\":\"m%d\",\"role\":\"%s\",\"text\":\"%s\"}", i ? "," : "", i,
		           i % 2 ? "user" : "assistant", m->msg[i]);
	buf_adds(&w->body, "]}}");
	commit(w);
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
	int round = 0;
	/* Ended calls come and go while the live ones keep talking, until the arena has been filled
	 * many times over. */
	while (w.bytes < 12 * size) {
		struct model *e = new_call(&w, "ended");
		post_status(&w, e, "queued");
		post_status(&w, e, "ongoing");
		for (int k = 0; k < 3; k++)
			post_message(&w, e, 1500);
		post_status(&w, e, "finished");
		if (round++ % 8 == 0)
			for (int i = 0; i < LIVE; i++)
				if (live[i]->nmsg < MAX_MSGS - 1)
					post_message(&w, live[i], 1500);
	}
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
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(store_suite)
