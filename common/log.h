/* log: one line per write(2) on stderr, shared by master, ingest and query. Under systemd (stderr is
 * the journal, detected through $JOURNAL_STREAM) each line carries a kernel-style <N> priority prefix
 * that journald turns into the entry's priority; on a terminal it carries the local time instead.
 * Every line names the role that wrote it. Payload text must go through log_text() first. */
#ifndef LIVEEVENTS_LOG_H
#define LIVEEVENTS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "buf.h"

#define LOG_LINE_MAX 2048      /* longer lines are cut: one event never floods the journal */
#define LOG_TEXT_CHARS 80      /* message text shown in event lines, as the tutorial did */
#define LOG_PATH_CHARS 60      /* of a refused request's path */

void log_init(const char *role);
void log_set_role(const char *role);
bool log_to_journal(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A rate limit for one kind of line (a flood of bad requests must not flood the journal): at most
 * LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW_MS, then one line saying how many were suppressed. */
#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_WINDOW_MS 10000
struct log_limit {
	uint64_t window_start_ms;
	unsigned count, suppressed;
};
void log_limited(struct log_limit *l, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Lines per window for every limit (--log-refusals); 0 lifts the limit. */
void log_set_burst(unsigned burst);
/* Appends at most max_chars characters of s[0..n) to b, on one line: control characters become
 * visible symbols (newline ⏎, tab →), nothing can forge a second log line, and a cut is marked …. */
void log_text(struct buf *b, const char *s, size_t n, size_t max_chars);
/* log_text with every occurrence of each of the nsecrets secrets (lens[i] bytes; empty ones are
 * skipped) shown as [redacted]: for what a client may have put a credential into by mistake, a
 * request path. */
void log_text_redacted(struct buf *b, const char *s, size_t n, size_t max_chars, const char *const *secrets,
                       const size_t *lens, size_t nsecrets);

#endif
