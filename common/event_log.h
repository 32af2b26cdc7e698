/* event_log: the one-line description of a committed event, in the words the tutorial's console
 * used (time, shortened call id, the status in upper case, or the latest message's role and first
 * characters). It is made from the fact record alone, so the daemon's log and `liveeventsctl tail`
 * say exactly the same thing about the same event. */
#ifndef LIVEEVENTS_EVENT_LOG_H
#define LIVEEVENTS_EVENT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event_record.h"
#include "options.h"

#define EVENT_LOG_SHORT_ID 12 /* characters of the call id shown, as the tutorial printed */
#define EVENT_LOG_STATUS_MAX 40
#define EVENT_LOG_ROLE_MAX 20

#define EVENT_LOG_TEXT_HIDDEN 0        /* text_chars: say how long the message is, not what it says */
#define EVENT_LOG_TEXT_ALL SIZE_MAX    /* text_chars: all of it (the log line's own cap still applies) */

/* Appends the description of fact f (committed at time_ns if it carries no timestamp of its own),
 * with the first LOG_TEXT_CHARS characters of its latest message. */
void event_describe(struct buf *b, const struct event_fact *f, uint64_t time_ns);
/* The same with text_chars characters of the message: --log-text short, none or full. Hidden text
 * also hides the other free text a sender writes: an error's type and code, the report's evaluation
 * (call ids and statuses stay: the line would say nothing without them). */
void event_describe_text(struct buf *b, const struct event_fact *f, uint64_t time_ns, size_t text_chars);
/* The text_chars of a --log-text mode. */
size_t event_log_text_chars(enum log_text_mode m);

#endif
