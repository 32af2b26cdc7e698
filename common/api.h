/* api: the JSON documents the dashboard port serves, rendered from a view (and, for raw events, from
 * the arena's raw ring). The tutorial's shapes (/api/conversations) keep every field it had, with its
 * meaning, and gain ended, report and alerts; our own endpoints (/api/calls) answer with what the
 * dashboard needs and no raw payloads. */
#ifndef LIVEEVENTS_API_H
#define LIVEEVENTS_API_H

#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "view.h"

/* {"statuses": [...], "messages": [...], "events": [raw bodies], "ended", "report", "alerts"} for one call. */
void api_conversation(struct buf *b, const struct view_call *c, const struct arena *a, struct buf *scratch);
/* {"conversations": {id: conversation, ...}} in order of creation. */
void api_conversations(struct buf *b, const struct view *v, const struct arena *a, struct buf *scratch);
/* "after" value meaning everything. */
#define API_ALL UINT64_MAX

/* One call's summary: id, status, ended, resumed, customer, first/last seq and activity, counts. */
void api_call_summary(struct buf *b, const struct view_call *c);
/* {"generation","seq","total","calls":[summary...],"next"} newest activity first: at most limit
 * calls whose latest change is older than before (UINT64_MAX: from the newest); next is the before
 * of the following page, or null. */
void api_calls(struct buf *b, const struct view *v, uint64_t generation, uint64_t seq, size_t limit, uint64_t before);
/* One call with statuses, messages, report and alerts. */
void api_call_detail(struct buf *b, const struct view_call *c, uint64_t generation, uint64_t seq);
/* The same with only what changed after sequence number after: the messages first carried or
 * updated later, the alerts added later, the report if newer (absent otherwise), and the status
 * timeline whole if any pill in it is newer (empty otherwise); status, ended and the rest as now. */
void api_call_delta(struct buf *b, const struct view_call *c, uint64_t generation, uint64_t seq, uint64_t after);
/* Appends the raw body of raw record seq as a JSON value; false if it is no longer stored. */
bool api_raw_body(struct buf *b, const struct arena *a, uint64_t seq, struct buf *scratch);

#endif
