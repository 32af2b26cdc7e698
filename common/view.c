/* view: per-call state derived from fact records (see view.h for the rules). */
#include "config.h"

#include "view.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define VIEW_MIN_INDEX 16

static const char *const terminal_statuses[] = { "finished", "failed", "ended", "completed" };

bool
view_status_is_terminal(const char *status)
{
	for (size_t i = 0; i < sizeof(terminal_statuses) / sizeof(terminal_statuses[0]); i++)
		if (strcmp(status, terminal_statuses[i]) == 0)
			return true;
	return false;
}

static char *
dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Grows *arr (of element size sz) to hold at least need elements. */
static bool
grow(void **arr, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap : 4;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

/* --- the calls in order of base --------------------------------------------------------------------- */

static void
list_unlink(struct view *v, struct view_call *c)
{
	if (v->live_from == c)
		v->live_from = c->newer;
	if (c->older)
		c->older->newer = c->newer;
	else if (v->oldest == c)
		v->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else if (v->newest == c)
		v->newest = c->older;
	c->older = c->newer = NULL;
}

static void
list_append(struct view *v, struct view_call *c)
{
	c->older = v->newest;
	c->newer = NULL;
	if (v->newest)
		v->newest->newer = c;
	else
		v->oldest = c;
	v->newest = c;
	if (!v->live_from)
		v->live_from = c;
}

/* Frees everything a call holds but its identity. */
static void
act_unlink(struct view *v, struct view_call *c)
{
	if (c->act_older)
		c->act_older->act_newer = c->act_newer;
	else if (v->act_oldest == c)
		v->act_oldest = c->act_newer;
	if (c->act_newer)
		c->act_newer->act_older = c->act_older;
	else if (v->act_newest == c)
		v->act_newest = c->act_older;
	c->act_older = c->act_newer = NULL;
}

/* Puts c where its changed_seq belongs. A change is the newest fact, so it goes first in one step;
 * only a snapshot (which restores an older changed_seq) walks. */
static void
act_place(struct view *v, struct view_call *c)
{
	act_unlink(v, c);
	struct view_call *newer = NULL, *older = v->act_newest;
	while (older && older->changed_seq > c->changed_seq) {
		newer = older;
		older = older->act_older;
	}
	c->act_newer = newer;
	c->act_older = older;
	if (newer)
		newer->act_older = c;
	else
		v->act_newest = c;
	if (older)
		older->act_newer = c;
	else
		v->act_oldest = c;
}

static void
call_clear(struct view_call *c)
{
	for (size_t i = 0; i < c->nst; i++) {
		free(c->st[i].status);
		free(c->st[i].ended_by);
		free(c->st[i].reason);
	}
	for (size_t i = 0; i < c->nmsg; i++) {
		free(c->msg[i].key);
		free(c->msg[i].role);
		free(c->msg[i].text);
		free(c->msg[i].extra);
	}
	for (size_t i = 0; i < c->nalert; i++)
		free(c->alert[i].details);
	free(c->st);
	free(c->msg);
	free(c->msg_index);
	free(c->alert);
	free(c->raw);
	free(c->report);
	free(c->customer);
	char *id = c->id;
	size_t id_len = c->id_len;
	uint64_t h = c->hash;
	struct view_call *older = c->older, *newer = c->newer, *act_older = c->act_older, *act_newer = c->act_newer;
	size_t pos = c->pos;
	memset(c, 0, sizeof(*c));
	c->act_older = act_older;
	c->act_newer = act_newer;
	c->id = id;
	c->id_len = id_len;
	c->hash = h;
	c->older = older;
	c->newer = newer;
	c->pos = pos;
}

static void
call_free(struct view *v, struct view_call *c)
{
	list_unlink(v, c);
	act_unlink(v, c);
	call_clear(c);
	free(c->id);
	free(c);
}

void
view_init(struct view *v)
{
	memset(v, 0, sizeof(*v));
}

void
view_clear(struct view *v)
{
	while (v->ncalls)
		call_free(v, v->calls[--v->ncalls]);
	free(v->calls);
	free(v->index);
	free(v->unattributed_raw);
	memset(v, 0, sizeof(*v));
}

/* --- open-addressing indexes ------------------------------------------------------------------ */

static bool
index_rebuild_calls(struct view *v, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return false;
	for (size_t i = 0; i < v->ncalls; i++) {
		size_t j = v->calls[i]->hash & (cap - 1);
		while (idx[j])
			j = (j + 1) & (cap - 1);
		idx[j] = (uint32_t)i + 1;
	}
	free(v->index);
	v->index = idx;
	v->index_cap = cap;
	return true;
}

struct view_call *
view_find(const struct view *v, const char *id, size_t len)
{
	if (!v->index_cap)
		return NULL;
	uint64_t h = hash_bytes(id, len);
	for (size_t j = h & (v->index_cap - 1);; j = (j + 1) & (v->index_cap - 1)) {
		uint32_t k = v->index[j];
		if (!k || k > v->ncalls)
			return NULL;
		struct view_call *c = v->calls[k - 1];
		if (c->hash == h && c->id_len == len && memcmp(c->id, id, len) == 0)
			return c;
	}
}

static bool
msg_index_rebuild(struct view_call *c, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return false;
	for (size_t i = 0; i < c->nmsg; i++) {
		size_t j = c->msg[i].hash & (cap - 1);
		while (idx[j])
			j = (j + 1) & (cap - 1);
		idx[j] = (uint32_t)i + 1;
	}
	free(c->msg_index);
	c->msg_index = idx;
	c->msg_index_cap = cap;
	return true;
}

static struct view_msg *
msg_find_h(const struct view_call *c, const char *key, size_t len, uint64_t h)
{
	if (!c->msg_index_cap)
		return NULL;
	for (size_t j = h & (c->msg_index_cap - 1);; j = (j + 1) & (c->msg_index_cap - 1)) {
		uint32_t k = c->msg_index[j];
		if (!k)
			return NULL;
		struct view_msg *m = &c->msg[k - 1];
		if (m->hash == h && m->key_len == len && memcmp(m->key, key, len) == 0)
			return m;
	}
}

const struct view_msg *
view_msg_find(const struct view_call *c, const char *key, size_t len)
{
	return msg_find_h(c, key, len, hash_bytes(key, len));
}

/* --- applying facts ----------------------------------------------------------------------------- */

static struct view_call *
call_get(struct view *v, const struct event_str *id, uint64_t seq, uint64_t time_ns)
{
	struct view_call *c = view_find(v, id->p, id->len);
	if (c)
		return c;
	if ((v->ncalls + 1) * 2 > v->index_cap &&
	    !index_rebuild_calls(v, v->index_cap ? v->index_cap * 2 : VIEW_MIN_INDEX))
		return NULL;
	if (!grow((void **)&v->calls, &v->capcalls, v->ncalls + 1, sizeof(*v->calls)))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->id = dupn(id->p, id->len))) {
		free(c);
		return NULL;
	}
	c->id_len = id->len;
	c->hash = hash_bytes(id->p, id->len);
	c->first_seq = c->changed_seq = seq;
	c->first_ns = c->changed_ns = time_ns;
	c->base_seq = seq;
	list_append(v, c);
	c->pos = v->ncalls;
	v->calls[v->ncalls] = c;
	size_t j = c->hash & (v->index_cap - 1);
	while (v->index[j])
		j = (j + 1) & (v->index_cap - 1);
	v->index[j] = (uint32_t)v->ncalls + 1;
	v->ncalls++;
	return c;
}

/* The fact an item came from: a snapshot keeps the original one. */
static uint64_t
origin_of(const struct event_item *it, uint64_t seq)
{
	return it->origin == EVENT_ORIGIN_SELF ? seq : it->origin;
}

static int
add_status(struct view_call *c, const struct event_item *it, uint64_t seq)
{
	seq = origin_of(it, seq);
	if (!grow((void **)&c->st, &c->capst, c->nst + 1, sizeof(*c->st)))
		return -1;
	char *s = dupn(it->a.p, it->a.len);
	char *by = it->b.len ? dupn(it->b.p, it->b.len) : NULL;
	char *why = it->c.len ? dupn(it->c.p, it->c.len) : NULL;
	if (!s || (it->b.len && !by) || (it->c.len && !why)) {
		free(s);
		free(by);
		free(why);
		return -1;
	}
	int64_t last = c->nst ? c->st[c->nst - 1].sort_key : INT64_MIN;
	int64_t key = it->ts == EVENT_TS_NONE ? last : it->ts;
	/* Insert after every pill whose key is <= ours: equal keys keep arrival order, and a late
	 * status that happened earlier lands where it happened. */
	size_t pos = c->nst;
	while (pos > 0 && c->st[pos - 1].sort_key > key)
		pos--;
	memmove(&c->st[pos + 1], &c->st[pos], (c->nst - pos) * sizeof(*c->st));
	c->st[pos] = (struct view_status){
		.status = s, .ended_by = by, .reason = why, .ts = it->ts, .sort_key = key, .seq = seq
	};
	c->nst++;
	if (view_status_is_terminal(s))
		c->ended = true;
	return 0;
}

static void
note_msgs_ts(struct view_call *c, int64_t evt_ts)
{
	if (evt_ts != EVENT_TS_NONE && (!c->has_msgs_ts || evt_ts > c->msgs_ts)) {
		c->msgs_ts = evt_ts;
		c->has_msgs_ts = true;
	}
}

static int
add_message(struct view_call *c, const struct event_item *it, uint64_t seq)
{
	uint64_t origin = origin_of(it, seq);
	int64_t evt_ts = it->evt_ts;
	uint64_t h = hash_bytes(it->a.p, it->a.len);
	struct view_msg *m = msg_find_h(c, it->a.p, it->a.len, h);
	if (m) {
		if (!(it->iflags & EVENT_MSG_UPDATE))
			return 0; /* already known: union by key */
		char *t = dupn(it->c.p, it->c.len);
		char *x = it->d.len ? dupn(it->d.p, it->d.len) : NULL;
		if (!t || (it->d.len && !x)) {
			free(t);
			free(x);
			return -1;
		}
		free(m->text);
		m->text = t;
		m->text_len = it->c.len;
		if (x) {
			free(m->extra);
			m->extra = x;
			m->extra_len = it->d.len;
		}
		m->evt_ts = evt_ts;
		m->upd_seq = origin;
		note_msgs_ts(c, evt_ts);
		return 0;
	}
	if ((c->nmsg + 1) * 2 > c->msg_index_cap &&
	    !msg_index_rebuild(c, c->msg_index_cap ? c->msg_index_cap * 2 : VIEW_MIN_INDEX))
		return -1;
	if (!grow((void **)&c->msg, &c->capmsg, c->nmsg + 1, sizeof(*c->msg)))
		return -1;
	struct view_msg nm = {
		.key = dupn(it->a.p, it->a.len),
		.role = dupn(it->b.p, it->b.len),
		.text = dupn(it->c.p, it->c.len),
		.extra = it->d.len ? dupn(it->d.p, it->d.len) : NULL,
		.key_len = it->a.len,
		.text_len = it->c.len,
		.extra_len = it->d.len,
		.hash = h,
		.ts = it->ts,
		.evt_ts = evt_ts,
		.seq = origin,
		.upd_seq = it->updated == EVENT_ORIGIN_SELF ? origin : it->updated,
	};
	if (!nm.key || !nm.role || !nm.text || (it->d.len && !nm.extra)) {
		free(nm.key);
		free(nm.role);
		free(nm.text);
		free(nm.extra);
		return -1;
	}
	c->msg[c->nmsg] = nm;
	note_msgs_ts(c, evt_ts);
	size_t j = h & (c->msg_index_cap - 1);
	while (c->msg_index[j])
		j = (j + 1) & (c->msg_index_cap - 1);
	c->msg_index[j] = (uint32_t)c->nmsg + 1;
	c->nmsg++;
	return 0;
}

static int
add_alert(struct view_call *c, const struct event_item *it, uint64_t seq)
{
	seq = origin_of(it, seq);
	if (!grow((void **)&c->alert, &c->capalert, c->nalert + 1, sizeof(*c->alert)))
		return -1;
	char *d = NULL;
	if (it->a.len && !(d = dupn(it->a.p, it->a.len)))
		return -1;
	c->alert[c->nalert++] = (struct view_alert){ .type = it->alert_type, .ts = it->ts, .seq = seq, .details = d };
	return 0;
}

static int
set_str(char **dst, const struct event_str *s)
{
	char *p = dupn(s->p, s->len);
	if (!p)
		return -1;
	free(*dst);
	*dst = p;
	return 0;
}

static int
set_rawrefs(struct view_call *c, const struct event_item *it)
{
	free(c->raw);
	c->raw = NULL;
	c->nraw = c->capraw = 0;
	if (!it->nrefs)
		return 0;
	if (!(c->raw = malloc((size_t)it->nrefs * sizeof(*c->raw))))
		return -1;
	for (uint32_t i = 0; i < it->nrefs; i++)
		c->raw[i] = event_item_ref(it, i);
	c->nraw = c->capraw = it->nrefs;
	return 0;
}

static int apply_items(struct view *v, struct view_call *c, uint64_t seq, uint64_t time_ns, uint64_t raw_seq,
                       const struct event_fact *f, bool snapshot, bool starts);

int
view_apply(struct view *v, uint64_t seq, uint64_t time_ns, uint64_t raw_seq, const struct event_fact *f)
{
	v->next_seq = seq + 1;
	v->applied++;
	if ((f->flags & EVENT_F_UNATTRIBUTED) || f->call_id.len == 0) {
		v->unattributed++;
		if (raw_seq != UINT64_MAX) {
			if (!v->unattributed_raw && !(v->unattributed_raw = calloc(VIEW_UNATTRIBUTED_KEEP, sizeof(uint64_t))))
				return -1;
			v->unattributed_raw[v->nunattr_raw++ % VIEW_UNATTRIBUTED_KEEP] = raw_seq;
		}
		return 0;
	}
	bool snapshot = f->flags & EVENT_F_SNAPSHOT;
	bool starts = snapshot || f->call_base == seq;
	struct view_call *c = view_find(v, f->call_id.p, f->call_id.len);
	if (!starts && (!c || c->base_seq != f->call_base)) {
		/* This call's history begins at a record this view never applied: it was overwritten, so
		 * the call is gone whole, not shown from the middle. */
		v->skipped++;
		return 0;
	}
	bool created = !c;
	if (!c && !(c = call_get(v, &f->call_id, seq, time_ns)))
		return -1;
	uint64_t changed_before = created ? UINT64_MAX : c->changed_seq;
	int rc = apply_items(v, c, seq, time_ns, raw_seq, f, snapshot, starts);
	if (c->changed_seq != changed_before)
		act_place(v, c);
	return rc;
}

static int
apply_items(struct view *v, struct view_call *c, uint64_t seq, uint64_t time_ns, uint64_t raw_seq,
            const struct event_fact *f, bool snapshot, bool starts)
{
	if (starts) {
		/* A snapshot holds the whole call; a new history replaces what came before it. */
		call_clear(c);
		c->base_seq = seq;
		c->first_seq = c->changed_seq = seq;
		c->first_ns = c->changed_ns = time_ns;
		list_unlink(v, c);
		list_append(v, c);
		if (!snapshot && (f->flags & EVENT_F_RESUMED))
			c->resumed = true;
		if (!snapshot && (f->flags & EVENT_F_WAS_ENDED))
			c->ended = true;
	}
	c->last_seq = seq;
	if (!snapshot && f->nitems) {
		c->changed_seq = seq;
		c->changed_ns = time_ns;
		/* A call older than the writer's cursor that changes may be live again. */
		if (v->live_from && c->base_seq < v->live_from->base_seq)
			v->live_from = c;
	}
	if (raw_seq != UINT64_MAX) {
		if (!grow((void **)&c->raw, &c->capraw, c->nraw + 1, sizeof(*c->raw)))
			return -1;
		c->raw[c->nraw++] = raw_seq;
	}
	size_t cur = 0;
	struct event_item it;
	int rc;
	while ((rc = event_fact_next(f, &cur, &it)) == 1) {
		int r = 0;
		switch (it.kind) {
		case EVENT_ITEM_STATUS:
			r = add_status(c, &it, seq);
			break;
		case EVENT_ITEM_MESSAGE:
			r = add_message(c, &it, seq);
			break;
		case EVENT_ITEM_CALLINFO:
			r = set_str(&c->customer, &it.a);
			break;
		case EVENT_ITEM_REPORT:
			r = set_str(&c->report, &it.a);
			c->report_seq = origin_of(&it, seq);
			c->report_ts = it.ts;
			c->ended = true;
			break;
		case EVENT_ITEM_ALERT:
			r = add_alert(c, &it, seq);
			break;
		case EVENT_ITEM_RAWREFS:
			r = set_rawrefs(c, &it);
			break;
		case EVENT_ITEM_CALLMETA:
			c->resumed = it.iflags & EVENT_META_RESUMED;
			if (it.iflags & EVENT_META_ENDED)
				c->ended = true;
			c->first_seq = it.first_seq;
			c->first_ns = it.first_ns;
			c->changed_seq = it.changed_seq;
			c->changed_ns = it.changed_ns;
			break;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

const char *
view_call_status(const struct view_call *c)
{
	if (c->ended)
		for (size_t i = c->nst; i > 0; i--)
			if (view_status_is_terminal(c->st[i - 1].status))
				return c->st[i - 1].status;
	return c->nst ? c->st[c->nst - 1].status : NULL;
}

/* The index slot that holds the call at calls[pos] (its value is pos + 1). */
static size_t
index_slot(const struct view *v, const struct view_call *c, size_t pos)
{
	size_t mask = v->index_cap - 1, j = c->hash & mask;
	while (v->index[j] && v->index[j] != pos + 1)
		j = (j + 1) & mask;
	return j;
}

/* Deletion from a linear-probing table without tombstones: later entries of the same probe run
 * move back into the gap (Knuth's algorithm R). */
static void
index_delete(struct view *v, size_t i)
{
	size_t mask = v->index_cap - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		uint32_t k = v->index[j];
		if (!k)
			break;
		size_t home = v->calls[k - 1]->hash & mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (!stays) {
			v->index[i] = k;
			i = j;
		}
	}
	v->index[i] = 0;
}

/* Removes one call in constant time: out of the index, out of the array (the last call takes its
 * place), out of the list. */
static void
remove_call(struct view *v, struct view_call *c)
{
	size_t p = c->pos, last = v->ncalls - 1;
	if (v->index_cap) {
		size_t j = index_slot(v, c, p);
		if (v->index[j])
			index_delete(v, j);
	}
	if (p != last) {
		struct view_call *m = v->calls[last];
		if (v->index_cap) {
			size_t j = index_slot(v, m, last);
			if (v->index[j])
				v->index[j] = (uint32_t)p + 1;
		}
		v->calls[p] = m;
		m->pos = p;
	}
	v->ncalls--;
	call_free(v, c);
}

void
view_forget(struct view *v, struct view_call *c)
{
	remove_call(v, c);
}

uint64_t
view_min_base(const struct view *v)
{
	return v->oldest ? v->oldest->base_seq : UINT64_MAX;
}

size_t
view_prune(struct view *v, uint64_t tail_seq, void (*gone)(struct view_call *c, void *arg), void *arg)
{
	/* The calls that leave are exactly those at the oldest end of the list. */
	size_t dropped = 0;
	while (v->oldest && v->oldest->base_seq < tail_seq) {
		struct view_call *c = v->oldest;
		if (gone)
			gone(c, arg);
		remove_call(v, c);
		dropped++;
	}
	return dropped;
}
