/* buf: a growable byte buffer for building JSON replies, records and log lines.
 * Allocation failure is sticky (buf->failed) so long chains of appends need one check at the end. */
#ifndef LIVEEVENTS_BUF_H
#define LIVEEVENTS_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed; contents are truncated */
};

#define BUF_INIT { NULL, 0, 0, false }

void buf_free(struct buf *b);
void buf_reset(struct buf *b);
bool buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* NUL-terminates without counting the NUL in len. */
const char *buf_cstr(struct buf *b);

#endif
