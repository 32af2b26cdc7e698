/* metrics: the daemon's process-lifetime counters and latency histograms, and their rendering in the
 * Prometheus text format (GET /metrics on the dashboard port).
 *
 * What the arena holds (events accepted, repaired, evictions, fill) is read from the arena. What it
 * does not (refusals by reason, request latencies, worker restarts) lives in one small shared
 * mapping the master creates before it forks: each field has exactly one writing process (ingest
 * its refusals and webhook latencies, query its API latencies, the master the restarts), every
 * field is a relaxed 64-bit atomic, and the mapping outlives worker restarts. It is not persistent:
 * like any Prometheus counter, these start from zero with the daemon. */
#ifndef LIVEEVENTS_METRICS_H
#define LIVEEVENTS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "view.h"

/* Why a webhook was refused: the JSON error codes of the README's table. */
enum metrics_reason {
	METRICS_R_EMPTY,
	METRICS_R_TRUNCATED,
	METRICS_R_SYNTAX,
	METRICS_R_TRAILING,
	METRICS_R_NOT_OBJECT,
	METRICS_R_DEPTH,
	METRICS_R_TOKENS,
	METRICS_R_TOO_LARGE,
	METRICS_R_TOO_LARGE_FOR_ARENA,
	METRICS_R_TOO_LARGE_INFLATED,
	METRICS_R_BAD_ENCODING,
	METRICS_R_UNSUPPORTED_ENCODING,
	METRICS_R_UNAUTHORIZED,
	METRICS_R_METHOD_NOT_ALLOWED,
	METRICS_R_NOT_FOUND,
	METRICS_R_AMBIGUOUS_FRAMING,
	METRICS_R_BAD_REQUEST,
	METRICS_R_TIMEOUT,
	METRICS_R_RATE_LIMITED,
	METRICS_R_TOO_MANY_HEADERS,
	METRICS_R_HEADERS_TOO_LARGE,
	METRICS_R_URI_TOO_LONG,
	METRICS_R_METHOD_NOT_IMPLEMENTED,
	METRICS_R_BROWSER_REQUEST,
	METRICS_R_NO_MEMORY,
	METRICS_R_OTHER,
	METRICS_REASONS
};

/* Upper bounds of the latency buckets, in microseconds (the last bucket, +Inf, is implied). */
#define METRICS_BUCKETS_US 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000
#define METRICS_NBUCKETS 13 /* the bounds above, plus +Inf */

struct metrics_hist {
	_Atomic uint64_t bucket[METRICS_NBUCKETS]; /* not cumulative: rendered cumulative */
	_Atomic uint64_t count, sum_us;
};

enum metrics_worker { METRICS_INGEST, METRICS_QUERY, METRICS_WORKERS };

/* Why the dashboard port refused a request before looking at what it asked (http_access.h). */
enum metrics_access {
	METRICS_A_UNAUTHORIZED,
	METRICS_A_HOST_NOT_ALLOWED,
	METRICS_A_BAD_HOST,
	METRICS_A_CROSS_ORIGIN,
	/* and the limits every port applies */
	METRICS_A_TIMEOUT,
	METRICS_A_TOO_LARGE,
	METRICS_A_BAD_REQUEST,
	METRICS_A_TOO_MANY_HEADERS,
	METRICS_A_HEADERS_TOO_LARGE,
	METRICS_A_URI_TOO_LONG,
	METRICS_ACCESS
};

struct metrics_shared {
	_Atomic uint64_t rejected[METRICS_REASONS];  /* ingest */
	struct metrics_hist webhook;                 /* ingest: POST /webhook, read to answered */
	struct metrics_hist api;                     /* query: every answered dashboard request */
	_Atomic uint64_t restarts[METRICS_WORKERS];  /* master */
	_Atomic uint64_t started_ns;                 /* master: when the daemon started (CLOCK_REALTIME) */
	_Atomic uint64_t access_refused[METRICS_ACCESS]; /* query */
	/* each worker its own port's (http_conn.h) */
	_Atomic uint64_t conn_open[METRICS_WORKERS], conn_refused[METRICS_WORKERS], conn_evicted[METRICS_WORKERS],
	        conn_idle_closed[METRICS_WORKERS];
};

/* A zeroed shared anonymous mapping (NULL on failure): created by the master before it forks. */
struct metrics_shared *metrics_shared_new(void);
void metrics_shared_free(struct metrics_shared *m);

/* The reason for an error code ("too_large"...); METRICS_R_OTHER when it is not one. */
enum metrics_reason metrics_reason_of(const char *code);
const char *metrics_reason_name(enum metrics_reason r);
void metrics_reject(struct metrics_shared *m, enum metrics_reason r); /* m may be NULL */
void metrics_observe(struct metrics_hist *h, uint64_t us);

/* What only query knows, for the rendering. */
struct metrics_query {
	const struct view *view;
	size_t stream_clients;
	uint64_t stream_opened, stream_overflowed, stream_events, stream_refused;
};

/* Appends the whole exposition (text format 0.0.4). */
void metrics_render(struct buf *b, const struct metrics_shared *m, const struct arena *a, const struct metrics_query *q);

#endif
