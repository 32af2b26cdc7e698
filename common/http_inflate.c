/* http_inflate: gzip and deflate request bodies (see http_inflate.h). */
#include "config.h"

#include "http_inflate.h"

#include <string.h>
#include <strings.h>
#include <zlib.h>

enum http_encoding
http_encoding_parse(const char *value)
{
	if (!value)
		return HTTP_ENC_IDENTITY;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 8 && strncasecmp(value, "identity", 8) == 0)) /* an empty header names no coding */
		return HTTP_ENC_IDENTITY;
	if ((n == 4 && strncasecmp(value, "gzip", 4) == 0) || (n == 6 && strncasecmp(value, "x-gzip", 6) == 0))
		return HTTP_ENC_GZIP;
	if (n == 7 && strncasecmp(value, "deflate", 7) == 0)
		return HTTP_ENC_DEFLATE;
	return HTTP_ENC_UNKNOWN;
}

enum http_inflate_status
http_inflate(enum http_encoding enc, const void *in, size_t n, size_t cap, struct buf *out)
{
	buf_reset(out);
	if (enc != HTTP_ENC_GZIP && enc != HTTP_ENC_DEFLATE)
		return HTTP_INFLATE_BAD;
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* 16 + MAX_WBITS: gzip wrapper; MAX_WBITS: zlib wrapper, which "deflate" names; some senders
	 * send the bare stream instead (-MAX_WBITS), told apart by the zlib header's check bits, as
	 * browsers do. */
	const unsigned char *h = in;
	bool zlib_header = n >= 2 && (h[0] & 0x0f) == Z_DEFLATED && ((unsigned)h[0] << 8 | h[1]) % 31 == 0;
	int bits = enc == HTTP_ENC_GZIP ? 16 + MAX_WBITS : zlib_header ? MAX_WBITS : -MAX_WBITS;
	if (inflateInit2(&z, bits) != Z_OK)
		return HTTP_INFLATE_NOMEM;
	enum http_inflate_status st = HTTP_INFLATE_OK;
	const unsigned char *p = in;
	size_t left = n;
	bool ended = false;
	for (;;) {
		/* zlib counts in uInt: feed at most UINT_MAX at a time (bodies are far smaller anyway). */
		if (z.avail_in == 0 && left) {
			z.next_in = (unsigned char *)p;
			z.avail_in = left > 0x40000000u ? 0x40000000u : (uInt)left;
			p += z.avail_in;
			left -= z.avail_in;
		}
		/* One byte beyond the cap tells "exactly cap bytes" from "more than cap". */
		if (out->len > cap) {
			st = HTTP_INFLATE_TOO_LARGE;
			break;
		}
		size_t room = cap + 1 - out->len < HTTP_INFLATE_CHUNK ? cap + 1 - out->len : HTTP_INFLATE_CHUNK;
		if (!buf_reserve(out, room)) {
			st = HTTP_INFLATE_NOMEM;
			break;
		}
		z.next_out = (unsigned char *)out->data + out->len;
		z.avail_out = (uInt)room;
		int r = inflate(&z, Z_NO_FLUSH);
		out->len += room - z.avail_out;
		if (r == Z_STREAM_END) {
			ended = true;
			/* gzip allows several members one after the other; anything else after the end is
			 * not part of the body. */
			if (z.avail_in == 0 && left == 0)
				break;
			if (enc != HTTP_ENC_GZIP || inflateReset(&z) != Z_OK) {
				st = HTTP_INFLATE_BAD;
				break;
			}
			ended = false;
			continue;
		}
		if (r == Z_MEM_ERROR) {
			st = HTTP_INFLATE_NOMEM;
			break;
		}
		if (r != Z_OK && !(r == Z_BUF_ERROR && z.avail_out == 0)) {
			st = HTTP_INFLATE_BAD; /* Z_DATA_ERROR, or Z_BUF_ERROR: the input ended mid-stream */
			break;
		}
		if (r == Z_OK && z.avail_in == 0 && left == 0 && z.avail_out != 0) {
			st = HTTP_INFLATE_BAD; /* all input used, stream not finished: truncated */
			break;
		}
	}
	if (st == HTTP_INFLATE_OK && out->len > cap)
		st = HTTP_INFLATE_TOO_LARGE;
	if (st == HTTP_INFLATE_OK && !ended)
		st = HTTP_INFLATE_BAD;
	inflateEnd(&z);
	return st;
}
