/* http_inflate: a request body sent with Content-Encoding gzip (or deflate) is inflated before it is
 * parsed, under a cap on the inflated size: a few kilobytes of gzip can inflate to gigabytes, so
 * the cap is checked as the output grows, never after. */
#ifndef LIVEEVENTS_HTTP_INFLATE_H
#define LIVEEVENTS_HTTP_INFLATE_H

#include <stddef.h>

#include "buf.h"

#define HTTP_INFLATE_CHUNK 65536 /* output grown by this much at a time */

enum http_encoding {
	HTTP_ENC_IDENTITY = 0,
	HTTP_ENC_GZIP,    /* gzip, x-gzip: RFC 1952, one member or several */
	HTTP_ENC_DEFLATE, /* deflate: RFC 1950 (zlib), as HTTP means it */
	HTTP_ENC_UNKNOWN,
};

enum http_inflate_status {
	HTTP_INFLATE_OK = 0,
	HTTP_INFLATE_TOO_LARGE, /* the inflated body would exceed the cap */
	HTTP_INFLATE_BAD,       /* not a valid stream: corrupt, truncated, or followed by other bytes */
	HTTP_INFLATE_NOMEM,
};

/* The Content-Encoding header's value (NULL: none). A list of codings ("gzip, br") is unknown:
 * nobody sends one to a webhook. */
enum http_encoding http_encoding_parse(const char *value);
/* Inflates in[0..n) into out (reset first). At most cap bytes are produced. */
enum http_inflate_status http_inflate(enum http_encoding enc, const void *in, size_t n, size_t cap, struct buf *out);

#endif
