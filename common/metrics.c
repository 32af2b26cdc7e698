/* metrics: shared counters and their Prometheus text exposition (see metrics.h). */
#include "config.h"

#include "metrics.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

static const char *const reason_names[METRICS_REASONS] = {
	[METRICS_R_EMPTY] = "empty",
	[METRICS_R_TRUNCATED] = "truncated",
	[METRICS_R_SYNTAX] = "syntax",
	[METRICS_R_TRAILING] = "trailing",
	[METRICS_R_NOT_OBJECT] = "not_object",
	[METRICS_R_DEPTH] = "depth",
	[METRICS_R_TOKENS] = "tokens",
	[METRICS_R_TOO_LARGE] = "too_large",
	[METRICS_R_TOO_LARGE_FOR_ARENA] = "too_large_for_arena",
	[METRICS_R_TOO_LARGE_INFLATED] = "too_large_inflated",
	[METRICS_R_BAD_ENCODING] = "bad_encoding",
	[METRICS_R_UNSUPPORTED_ENCODING] = "unsupported_encoding",
	[METRICS_R_UNAUTHORIZED] = "unauthorized",
	[METRICS_R_METHOD_NOT_ALLOWED] = "method_not_allowed",
	[METRICS_R_NOT_FOUND] = "not_found",
	[METRICS_R_AMBIGUOUS_FRAMING] = "ambiguous_framing",
	[METRICS_R_BAD_REQUEST] = "bad_request",
	[METRICS_R_TIMEOUT] = "timeout",
	[METRICS_R_RATE_LIMITED] = "rate_limited",
	[METRICS_R_TOO_MANY_HEADERS] = "too_many_headers",
	[METRICS_R_HEADERS_TOO_LARGE] = "headers_too_large",
	[METRICS_R_URI_TOO_LONG] = "uri_too_long",
	[METRICS_R_METHOD_NOT_IMPLEMENTED] = "method_not_implemented",
	[METRICS_R_BROWSER_REQUEST] = "browser_request",
	[METRICS_R_NO_MEMORY] = "no_memory",
	[METRICS_R_OTHER] = "other",
};

static const uint64_t bucket_us[METRICS_NBUCKETS - 1] = { METRICS_BUCKETS_US };
_Static_assert(sizeof(bucket_us) / sizeof(bucket_us[0]) == METRICS_NBUCKETS - 1,
               "METRICS_NBUCKETS must be the number of bounds plus one");

struct metrics_shared *
metrics_shared_new(void)
{
	void *p = mmap(NULL, sizeof(struct metrics_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p; /* anonymous mappings start zeroed */
}

void
metrics_shared_free(struct metrics_shared *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

enum metrics_reason
metrics_reason_of(const char *code)
{
	for (int r = 0; r < METRICS_REASONS; r++)
		if (code && strcmp(code, reason_names[r]) == 0)
			return (enum metrics_reason)r;
	if (code && strcmp(code, "nomem") == 0)
		return METRICS_R_NO_MEMORY;
	return METRICS_R_OTHER;
}

const char *
metrics_reason_name(enum metrics_reason r)
{
	return r >= 0 && r < METRICS_REASONS ? reason_names[r] : "other";
}

void
metrics_reject(struct metrics_shared *m, enum metrics_reason r)
{
	if (m && r >= 0 && r < METRICS_REASONS)
		atomic_fetch_add_explicit(&m->rejected[r], 1, memory_order_relaxed);
}

void
metrics_observe(struct metrics_hist *h, uint64_t us)
{
	size_t i = 0;
	while (i < METRICS_NBUCKETS - 1 && us > bucket_us[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* --- exposition ------------------------------------------------------------------------------------ */

static uint64_t
ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(struct buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	head(b, name, type, help);
	buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void
hist(struct buf *b, const char *name, const char *help, const struct metrics_hist *h)
{
	head(b, name, "histogram", help);
	uint64_t cum = 0;
	for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
		cum += ld(&h->bucket[i]);
		if (i < METRICS_NBUCKETS - 1)
			buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double)bucket_us[i] / 1e6, cum);
		else
			buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	}
	buf_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, (double)ld(&h->sum_us) / 1e6, name, cum);
}

void
metrics_render(struct buf *b, const struct metrics_shared *m, const struct arena *a, const struct metrics_query *q)
{
	head(b, "liveevents_build_info", "gauge", "The running version.");
	buf_printf(b, "liveevents_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	if (m)
		one(b, "liveevents_start_time_seconds", "gauge", "When the daemon started, in seconds since the epoch.",
		    ld(&m->started_ns) / 1000000000u);

	/* From the arena: what was stored, kept across restarts of the daemon (reset by DELETE). */
	static const struct {
		enum arena_counter c;
		const char *name, *help;
	} stored[] = {
		{ ARENA_C_EVENTS, "liveevents_events_accepted_total", "Webhook events committed and answered 200." },
		{ ARENA_C_REPAIRED, "liveevents_events_repaired_total", "Accepted events whose broken text was repaired." },
		{ ARENA_C_UNATTRIBUTED, "liveevents_events_unattributed_total", "Accepted events that named no call." },
		{ ARENA_C_UNKNOWN_TYPE, "liveevents_events_unknown_type_total", "Accepted events of a type not interpreted." },
		{ ARENA_C_RAW_DROPPED, "liveevents_raw_bodies_dropped_total", "Raw bodies too large for the raw ring (facts kept)." },
		{ ARENA_C_SNAPSHOTS, "liveevents_snapshots_total", "Live calls re-appended whole before their oldest record was overwritten." },
		{ ARENA_C_CALLS_EVICTED, "liveevents_calls_evicted_total", "Ended or idle calls that left the full arena whole." },
		{ ARENA_C_LIVE_DROPPED, "liveevents_live_calls_dropped_total", "Live calls the arena was too small to keep." },
		{ ARENA_C_DAMAGED, "liveevents_damaged_records_total", "Records recovery found damaged." },
		{ ARENA_C_RESETS, "liveevents_resets_total", "DELETE /api/conversations carried out." },
	};
	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
		one(b, stored[i].name, "counter", stored[i].help, arena_counter_get(a, stored[i].c));

	if (m) {
		head(b, "liveevents_webhooks_rejected_total", "counter",
		     "Webhook requests refused (nothing stored), by the JSON error code of the answer.");
		for (int r = 0; r < METRICS_REASONS; r++)
			buf_printf(b, "liveevents_webhooks_rejected_total{reason=\"%s\"} %" PRIu64 "\n", reason_names[r],
			           ld(&m->rejected[r]));
	}

	static const char *const ring_names[ARENA_RINGS] = { "facts", "raw" };
	head(b, "liveevents_arena_size_bytes", "gauge", "Data bytes of each arena ring.");
	for (int r = 0; r < ARENA_RINGS; r++)
		buf_printf(b, "liveevents_arena_size_bytes{ring=\"%s\"} %" PRIu64 "\n", ring_names[r], a->ring[r].data_size);
	head(b, "liveevents_arena_used_bytes", "gauge", "Data bytes held by each ring's records.");
	for (int r = 0; r < ARENA_RINGS; r++) {
		uint64_t h = ld(&a->ctl->ring[r].data_head), t = ld(&a->ctl->ring[r].data_tail);
		buf_printf(b, "liveevents_arena_used_bytes{ring=\"%s\"} %" PRIu64 "\n", ring_names[r],
		           h >= t && h - t <= a->ring[r].data_size ? h - t : 0);
	}
	head(b, "liveevents_arena_records", "gauge", "Records held by each ring.");
	for (int r = 0; r < ARENA_RINGS; r++) {
		uint64_t h = arena_head(a, (enum arena_ring_id)r), t = arena_tail(a, (enum arena_ring_id)r);
		buf_printf(b, "liveevents_arena_records{ring=\"%s\"} %" PRIu64 "\n", ring_names[r], h >= t ? h - t : 0);
	}
	head(b, "liveevents_arena_evicted_records_total", "counter", "Records overwritten to make room, by ring.");
	for (int r = 0; r < ARENA_RINGS; r++)
		buf_printf(b, "liveevents_arena_evicted_records_total{ring=\"%s\"} %" PRIu64 "\n", ring_names[r],
		           ld(&a->ctl->ring[r].evicted));

	if (q && q->view) {
		size_t live = 0, msgs = 0;
		for (size_t i = 0; i < q->view->ncalls; i++) {
			live += !q->view->calls[i]->ended;
			msgs += q->view->calls[i]->nmsg;
		}
		one(b, "liveevents_calls", "gauge", "Calls stored.", q->view->ncalls);
		one(b, "liveevents_calls_live", "gauge", "Stored calls not ended.", live);
		one(b, "liveevents_messages", "gauge", "Messages of the stored calls.", msgs);
	}
	if (q) {
		one(b, "liveevents_stream_clients", "gauge", "Open event streams (GET /api/stream).", q->stream_clients);
		one(b, "liveevents_stream_opened_total", "counter", "Event streams opened.", q->stream_opened);
		one(b, "liveevents_stream_dropped_total", "counter", "Event streams dropped for falling too far behind.",
		    q->stream_overflowed);
		one(b, "liveevents_stream_events_total", "counter", "Events sent on event streams.", q->stream_events);
		one(b, "liveevents_stream_refused_total", "counter", "Event streams refused (503): --stream-clients were open.",
		    q->stream_refused);
	}
	if (m) {
		head(b, "liveevents_worker_restarts_total", "counter", "Workers restarted by the master after they died or hung.");
		buf_printf(b, "liveevents_worker_restarts_total{worker=\"ingest\"} %" PRIu64 "\n", ld(&m->restarts[METRICS_INGEST]));
		buf_printf(b, "liveevents_worker_restarts_total{worker=\"query\"} %" PRIu64 "\n", ld(&m->restarts[METRICS_QUERY]));
		static const char *const access_names[METRICS_ACCESS] = {
			[METRICS_A_UNAUTHORIZED] = "unauthorized",
			[METRICS_A_HOST_NOT_ALLOWED] = "host_not_allowed",
			[METRICS_A_BAD_HOST] = "bad_host",
			[METRICS_A_CROSS_ORIGIN] = "cross_origin",
			[METRICS_A_TIMEOUT] = "timeout",
			[METRICS_A_TOO_LARGE] = "too_large",
			[METRICS_A_BAD_REQUEST] = "bad_request",
			[METRICS_A_TOO_MANY_HEADERS] = "too_many_headers",
			[METRICS_A_HEADERS_TOO_LARGE] = "headers_too_large",
			[METRICS_A_URI_TOO_LONG] = "uri_too_long",
		};
		head(b, "liveevents_dashboard_refused_total", "counter",
		     "Dashboard port requests refused: no or wrong token, a Host not answered to, a state-changing "
		     "request from another origin, or a limit (408, 413, 414, 431, 400).");
		for (int r = 0; r < METRICS_ACCESS; r++)
			buf_printf(b, "liveevents_dashboard_refused_total{reason=\"%s\"} %" PRIu64 "\n", access_names[r],
			           ld(&m->access_refused[r]));
		static const char *const ports[METRICS_WORKERS] = { "webhook", "dashboard" };
		static const struct {
			const char *name, *type, *help;
			size_t off;
		} conn[] = {
			{ "liveevents_connections_open", "gauge", "Open connections, by port.",
			  offsetof(struct metrics_shared, conn_open) },
			{ "liveevents_connections_refused_total", "counter",
			  "Connections answered 503 and closed: a --max-connections or --max-client-connections cap was "
			  "reached and none was idle.",
			  offsetof(struct metrics_shared, conn_refused) },
			{ "liveevents_connections_evicted_total", "counter",
			  "Idle connections closed to make room under a connection cap.",
			  offsetof(struct metrics_shared, conn_evicted) },
			{ "liveevents_connections_idle_closed_total", "counter",
			  "Idle connections closed after --keepalive-timeout.", offsetof(struct metrics_shared, conn_idle_closed) },
		};
		for (size_t i = 0; i < sizeof(conn) / sizeof(conn[0]); i++) {
			head(b, conn[i].name, conn[i].type, conn[i].help);
			const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)m + conn[i].off);
			for (int w = 0; w < METRICS_WORKERS; w++)
				buf_printf(b, "%s{port=\"%s\"} %" PRIu64 "\n", conn[i].name, ports[w], ld(&v[w]));
		}
		hist(b, "liveevents_webhook_duration_seconds", "POST /webhook handling, from the request read to the answer.",
		     &m->webhook);
		hist(b, "liveevents_api_duration_seconds", "Dashboard port requests, from the request read to the answer.",
		     &m->api);
	}
}
