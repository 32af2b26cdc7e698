/* json: the JSON layer behind json.h. A strict RFC 8259 validator runs first, because jsmn accepts
 * JSON-shaped garbage; jsmn then tokenizes what the validator accepted into an array of exactly the
 * counted size. Strings are unescaped and repaired lazily, when they are read. All of this is on the
 * ingest hot path, so every function is a single pass over its input, plain ASCII is skipped eight
 * bytes at a time, and nothing is quadratic in the size, the token count or the nesting. */
#include "config.h"

#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Named limits. */
#define JSON_BOM "\xEF\xBB\xBF"
#define JSON_BOM_LEN 3
#define JSON_MAX_INPUT ((size_t)INT_MAX / 2) /* jsmn keeps offsets in int */
#define JSON_DEPTH_LOCAL 1024                /* nesting levels tracked before allocating (x64) */
#define JSON_NUM_LOCAL 64                    /* numbers up to this long are converted on the stack */
#define JSON_UNESC_LOCAL 1024                /* json_write_token unescapes short strings on the stack */
#define JSON_WRITE_CHUNK 4096                /* json_write_str reserves output per input chunk */
#define JSON_ESC_MAX 6                       /* longest output per input byte: \u00XX */
#define JSON_UTF8_MAX 4                      /* longest UTF-8 sequence */
#define JSON_STRDUP_SLACK 4096               /* json_strdup gives back more unused bytes than this */
#define JSON_REPL "\xEF\xBF\xBD"             /* U+FFFD REPLACEMENT CHARACTER */
#define JSON_REPL_LEN 3
#define JSON_REPL_ESC "\\ufffd"
#define UESC_LEN 6                           /* \uHHHH, four hex digits */
#define UPAIR_LEN (2 * UESC_LEN)             /* \uD83D\uDE00 */

#define LIT(s) (s), (sizeof(s) - 1) /* a string literal and its length */

/* --- byte classes ---------------------------------------------------------------------------- */

/* 256-entry tables built at compile time from a predicate on the byte value. */
#define T16(f, b) f((b) + 0), f((b) + 1), f((b) + 2), f((b) + 3), f((b) + 4), f((b) + 5), \
	f((b) + 6), f((b) + 7), f((b) + 8), f((b) + 9), f((b) + 10), f((b) + 11), f((b) + 12), \
	f((b) + 13), f((b) + 14), f((b) + 15)
#define T256(f) T16(f, 0x00), T16(f, 0x10), T16(f, 0x20), T16(f, 0x30), T16(f, 0x40), \
	T16(f, 0x50), T16(f, 0x60), T16(f, 0x70), T16(f, 0x80), T16(f, 0x90), T16(f, 0xA0), \
	T16(f, 0xB0), T16(f, 0xC0), T16(f, 0xD0), T16(f, 0xE0), T16(f, 0xF0)

/* Bytes inside a string that the validator and json_write_sanitized must look at. */
#define C_STR_SPECIAL(c) ((c) < 0x20 || (c) == '"' || (c) == '\\' || (c) >= 0x80)
/* Bytes json_unescape does not copy as they are (TAB, LF and CR are kept). */
#define C_UNESC_SPECIAL(c) (((c) < 0x20 && (c) != '\t' && (c) != '\n' && (c) != '\r') || \
	(c) == '\\' || (c) >= 0x80)
/* Bytes json_write_str does not copy as they are. */
#define C_WSTR_SPECIAL(c) ((c) < 0x20 || (c) == '"' || (c) == '\\' || (c) >= 0x7F)
#define C_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
/* Bytes that, right after a number or literal, mean the scalar itself is malformed (01, truex). */
#define C_SCALAR_TAIL(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || \
	((c) >= 'A' && (c) <= 'Z') || (c) == '.' || (c) == '+' || (c) == '-' || (c) == '_')
#define C_HEX(c) (((c) >= '0' && (c) <= '9') ? (c) - '0' : ((c) >= 'a' && (c) <= 'f') ? (c) - 'a' + 10 : \
	((c) >= 'A' && (c) <= 'F') ? (c) - 'A' + 10 : -1)

static const uint8_t str_special[256] = { T256(C_STR_SPECIAL) };
static const uint8_t unesc_special[256] = { T256(C_UNESC_SPECIAL) };
static const uint8_t wstr_special[256] = { T256(C_WSTR_SPECIAL) };
static const uint8_t is_ws[256] = { T256(C_WS) };
static const uint8_t scalar_tail[256] = { T256(C_SCALAR_TAIL) };
static const int8_t hexval[256] = { T256(C_HEX) };

/* --- eight bytes at a time ------------------------------------------------------------------- */

#define ONES ((uint64_t)0x0101010101010101ULL)
#define HIGHS (ONES * 0x80)

static inline uint64_t
load8(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof w); /* unaligned-safe; compiles to one load */
	return w;
}

/* Non-zero iff some byte of w is zero (exact as a boolean). */
static inline uint64_t
has_zero(uint64_t w)
{
	return (w - ONES) & ~w & HIGHS;
}

static inline uint64_t
has_byte(uint64_t w, uint8_t c)
{
	return has_zero(w ^ (ONES * c));
}

/* Non-zero iff some byte of w is below n (n <= 0x80). */
static inline uint64_t
has_less(uint64_t w, uint8_t n)
{
	return (w - ONES * n) & ~w & HIGHS;
}

static inline bool
str_special8(uint64_t w)
{
	return ((w & HIGHS) | has_less(w, 0x20) | has_byte(w, '"') | has_byte(w, '\\')) != 0;
}

/* Conservative: TAB, LF and CR take the slow path, which keeps them. */
static inline bool
unesc_special8(uint64_t w)
{
	return ((w & HIGHS) | has_less(w, 0x20) | has_byte(w, '\\')) != 0;
}

static inline bool
wstr_special8(uint64_t w)
{
	return ((w & HIGHS) | has_less(w, 0x20) | has_byte(w, '"') | has_byte(w, '\\') |
	    has_byte(w, 0x7F)) != 0;
}

/* --- UTF-8 ----------------------------------------------------------------------------------- */

/* Examines the sequence starting at p (p < end). When it is valid UTF-8 (Unicode Table 3-7: no
 * overlong forms, no surrogates, nothing above U+10FFFF), sets *ok and returns its length.
 * Otherwise returns the length of its maximal subpart (at least 1), the bytes that one U+FFFD
 * replaces, so that a following valid character is never swallowed. */
static inline size_t
utf8_seq(const uint8_t *p, const uint8_t *end, bool *ok)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xBF;
	size_t avail = (size_t)(end - p), need;

	*ok = false;
	if (c < 0x80) {
		*ok = true;
		return 1;
	}
	if (c < 0xC2)
		return 1;
	if (c < 0xE0) {
		need = 2;
	} else if (c < 0xF0) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c < 0xF5) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 1;
	}
	if (avail < 2 || p[1] < lo || p[1] > hi)
		return 1;
	if (need > 2) {
		if (avail < 3 || (p[2] & 0xC0) != 0x80)
			return 2;
		if (need > 3 && (avail < 4 || (p[3] & 0xC0) != 0x80))
			return 3;
	}
	*ok = true;
	return need;
}

static inline size_t
utf8_encode(uint32_t cp, uint8_t *o)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | (cp >> 18));
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/* Value of four hex digits at p (all four bytes must be readable), or -1. */
static inline int
hex4(const uint8_t *p)
{
	int a = hexval[p[0]], b = hexval[p[1]], c = hexval[p[2]], d = hexval[p[3]];

	if ((a | b | c | d) < 0)
		return -1;
	return a << 12 | b << 8 | c << 4 | d;
}

static inline bool
is_high_surrogate(int cp)
{
	return cp >= 0xD800 && cp <= 0xDBFF;
}

static inline bool
is_low_surrogate(int cp)
{
	return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* When the UESC_LEN bytes at p are \uHHHH with a high surrogate, returns the low surrogate that
 * pairs with it (the escape right after), or -1 when there is none. */
static inline int
paired_low(const uint8_t *p, const uint8_t *end)
{
	int lo;

	if (end - p < UPAIR_LEN || p[UESC_LEN] != '\\' || p[UESC_LEN + 1] != 'u')
		return -1;
	lo = hex4(p + UESC_LEN + 2);
	return is_low_surrogate(lo) ? lo : -1;
}

/* Decodes one unit of a JSON string at p (p < end): a plain byte, a backslash escape, a raw control
 * byte or a UTF-8 sequence. Writes its repaired UTF-8 (at most 4 bytes, never more than 3 per input
 * byte) to out, sets *olen and returns the input bytes consumed. Every U+FFFD substitution is
 * counted in *rep. Any input is safe, including bad escapes, which the validator never lets through. */
static size_t
decode_unit(const uint8_t *p, const uint8_t *end, uint8_t *out, size_t *olen, unsigned *rep)
{
	uint8_t c = *p;
	size_t used = 1;
	int cp, lo;
	bool ok;

	if (c >= 0x80) {
		used = utf8_seq(p, end, &ok);
		if (!ok)
			goto repl;
		memcpy(out, p, used);
		*olen = used;
		return used;
	}
	if (c != '\\') {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			goto repl;
		out[0] = c;
		*olen = 1;
		return 1;
	}
	if (end - p < 2)
		goto repl;
	switch (p[1]) {
	case '"':
	case '\\':
	case '/':
		out[0] = p[1];
		break;
	case 'b':
		out[0] = '\b';
		break;
	case 'f':
		out[0] = '\f';
		break;
	case 'n':
		out[0] = '\n';
		break;
	case 'r':
		out[0] = '\r';
		break;
	case 't':
		out[0] = '\t';
		break;
	case 'u':
		if (end - p < UESC_LEN || (cp = hex4(p + 2)) < 0)
			goto repl;
		used = UESC_LEN;
		if (is_high_surrogate(cp)) {
			if ((lo = paired_low(p, end)) < 0)
				goto repl;
			used = UPAIR_LEN;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		} else if (is_low_surrogate(cp) || cp == 0) {
			goto repl; /* \u0000 too, so that the result stays a C string */
		}
		*olen = utf8_encode((uint32_t)cp, out);
		return used;
	default:
		goto repl;
	}
	*olen = 1;
	return 2;
repl:
	memcpy(out, JSON_REPL, JSON_REPL_LEN);
	*olen = JSON_REPL_LEN;
	(*rep)++;
	return used;
}

/* --- the validator --------------------------------------------------------------------------- */

struct vresult {
	unsigned ntok;    /* tokens jsmn will produce */
	unsigned repairs; /* string tokens that need repair */
	unsigned nul_escapes; /* \u0000 escapes */
	bool has_nul;     /* a raw NUL inside a string */
	size_t root;      /* offset of the root value */
	size_t root_end;  /* offset just after it */
	size_t err;       /* offset of the problem */
};

static inline const uint8_t *
skip_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && is_ws[*p]) {
		p++;
		/* pretty-printed bodies indent with runs of spaces */
		while (end - p >= 8 && load8(p) == ONES * ' ')
			p += 8;
	}
	return p;
}

static inline bool
is_digit(uint8_t c)
{
	return (unsigned)(c - '0') < 10;
}

/* Scans the string whose opening quote is at *pp. On success *pp is just past the closing quote;
 * on failure it is where the problem is. Broken text is not an error, only counted. */
static enum json_status
scan_string(const uint8_t **pp, const uint8_t *end, struct vresult *r)
{
	const uint8_t *q = *pp + 1;
	bool bad = false, ok;
	int cp;

	for (;;) {
		while (end - q >= 8 && !str_special8(load8(q)))
			q += 8;
		while (q < end && !str_special[*q])
			q++;
		if (q == end)
			goto trunc;
		uint8_t c = *q;
		if (c == '"')
			break;
		if (c == '\\') {
			if (end - q < 2)
				goto trunc;
			switch (q[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				q += 2;
				continue;
			case 'u':
				break;
			default:
				*pp = q + 1;
				return JSON_ERR_SYNTAX;
			}
			for (int i = 2; i < UESC_LEN; i++) {
				if (q + i == end)
					goto trunc;
				if (hexval[q[i]] < 0) {
					*pp = q + i;
					return JSON_ERR_SYNTAX;
				}
			}
			cp = hex4(q + 2);
			if (is_high_surrogate(cp)) {
				if (paired_low(q, end) >= 0) {
					q += UPAIR_LEN;
					continue;
				}
				bad = true;
			} else if (is_low_surrogate(cp)) {
				bad = true;
			} else if (cp == 0) {
				r->nul_escapes++;
			}
			q += UESC_LEN;
			continue;
		}
		if (c < 0x20) {
			bad = true;
			if (c == 0)
				r->has_nul = true;
			q++;
			continue;
		}
		q += utf8_seq(q, end, &ok);
		if (!ok)
			bad = true;
	}
	if (bad)
		r->repairs++;
	*pp = q + 1;
	return JSON_OK;
trunc:
	*pp = end;
	return JSON_ERR_TRUNCATED;
}

static enum json_status
scan_number(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *q = *pp;

	if (*q == '-')
		q++;
	if (q == end)
		goto trunc;
	if (*q == '0') {
		q++;
	} else if (is_digit(*q)) {
		do
			q++;
		while (q < end && is_digit(*q));
	} else {
		goto syntax;
	}
	if (q < end && *q == '.') {
		if (++q == end)
			goto trunc;
		if (!is_digit(*q))
			goto syntax;
		do
			q++;
		while (q < end && is_digit(*q));
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		if (++q == end)
			goto trunc;
		if ((*q == '+' || *q == '-') && ++q == end)
			goto trunc;
		if (!is_digit(*q))
			goto syntax;
		do
			q++;
		while (q < end && is_digit(*q));
	}
	if (q < end && scalar_tail[*q])
		goto syntax;
	*pp = q;
	return JSON_OK;
trunc:
	*pp = end;
	return JSON_ERR_TRUNCATED;
syntax:
	*pp = q;
	return JSON_ERR_SYNTAX;
}

static enum json_status
scan_literal(const uint8_t **pp, const uint8_t *end, const char *lit, size_t n)
{
	const uint8_t *q = *pp;

	for (size_t i = 0; i < n; i++, q++) {
		if (q == end) {
			*pp = end;
			return JSON_ERR_TRUNCATED;
		}
		if (*q != (uint8_t)lit[i]) {
			*pp = q;
			return JSON_ERR_SYNTAX;
		}
	}
	*pp = q;
	return q < end && scalar_tail[*q] ? JSON_ERR_SYNTAX : JSON_OK;
}

/* Doubles the depth bit stack, moving it off the C stack the first time. */
static bool
grow_stack(uint64_t **stk, uint64_t *local, size_t *cap)
{
	size_t ncap = *cap * 2;
	uint64_t *n = *stk == local ? malloc(ncap / 8) : realloc(*stk, ncap / 8);

	if (n == NULL)
		return false;
	if (*stk == local)
		memcpy(n, local, *cap / 8);
	*stk = n;
	*cap = ncap;
	return true;
}

/* The grammar of RFC 8259 as an iterative state machine. The open containers are a bit stack
 * (1 = object), so nesting costs no recursion. Counts tokens exactly as jsmn will: every key, every
 * value and every container is one. */
static enum json_status
validate(const uint8_t *s, size_t len, unsigned max_depth, unsigned max_tokens, struct vresult *r)
{
	uint64_t local[JSON_DEPTH_LOCAL / 64];
	uint64_t *stk = local;
	size_t cap = JSON_DEPTH_LOCAL; /* levels stk holds */
	const uint8_t *p = s, *end = s + len;
	unsigned depth = 0, count = 0;
	bool in_obj = false;
	enum json_status st = JSON_OK;

	p = skip_ws(p, end);
	if (p == end) {
		st = JSON_ERR_EMPTY;
		goto out;
	}
	r->root = (size_t)(p - s);

value: /* p < end, at a non-blank byte where a value must start */
	switch (*p) {
	case '{':
	case '[': {
		bool obj = *p == '{';

		if (depth >= max_depth) {
			st = JSON_ERR_DEPTH;
			goto out;
		}
		if (++count > max_tokens) {
			st = JSON_ERR_TOKENS;
			goto out;
		}
		if (depth == cap && !grow_stack(&stk, local, &cap)) {
			st = JSON_ERR_NOMEM;
			goto out;
		}
		if (obj)
			stk[depth >> 6] |= (uint64_t)1 << (depth & 63);
		else
			stk[depth >> 6] &= ~((uint64_t)1 << (depth & 63));
		depth++;
		in_obj = obj;
		p = skip_ws(p + 1, end);
		if (p == end)
			goto trunc;
		if (*p == (obj ? '}' : ']')) {
			p++;
			goto close;
		}
		if (obj)
			goto key;
		goto value;
	}
	case '"':
		if (++count > max_tokens) {
			st = JSON_ERR_TOKENS;
			goto out;
		}
		if ((st = scan_string(&p, end, r)) != JSON_OK)
			goto out;
		goto after;
	case 't':
	case 'f':
	case 'n':
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		if (++count > max_tokens) {
			st = JSON_ERR_TOKENS;
			goto out;
		}
		if (*p == 't')
			st = scan_literal(&p, end, LIT("true"));
		else if (*p == 'f')
			st = scan_literal(&p, end, LIT("false"));
		else if (*p == 'n')
			st = scan_literal(&p, end, LIT("null"));
		else
			st = scan_number(&p, end);
		if (st != JSON_OK)
			goto out;
		goto after;
	default:
		st = JSON_ERR_SYNTAX;
		goto out;
	}

key: /* p < end, at a non-blank byte where a key must start */
	if (*p != '"') {
		st = JSON_ERR_SYNTAX;
		goto out;
	}
	if (++count > max_tokens) {
		st = JSON_ERR_TOKENS;
		goto out;
	}
	if ((st = scan_string(&p, end, r)) != JSON_OK)
		goto out;
	p = skip_ws(p, end);
	if (p == end)
		goto trunc;
	if (*p != ':') {
		st = JSON_ERR_SYNTAX;
		goto out;
	}
	p = skip_ws(p + 1, end);
	if (p == end)
		goto trunc;
	goto value;

close: /* a container just closed */
	depth--;
	in_obj = depth > 0 && (stk[(depth - 1) >> 6] >> ((depth - 1) & 63) & 1);
after: /* a value just ended */
	if (depth == 0) {
		r->root_end = (size_t)(p - s);
		p = skip_ws(p, end);
		if (p != end)
			st = JSON_ERR_TRAILING;
		goto out;
	}
	p = skip_ws(p, end);
	if (p == end)
		goto trunc;
	if (*p == ',') {
		p = skip_ws(p + 1, end);
		if (p == end)
			goto trunc;
		if (in_obj)
			goto key;
		goto value;
	}
	if (*p == (in_obj ? '}' : ']')) {
		p++;
		goto close;
	}
	st = JSON_ERR_SYNTAX;
	goto out;

trunc:
	st = JSON_ERR_TRUNCATED;
out:
	r->err = (size_t)(p - s);
	r->ntok = count;
	if (stk != local)
		free(stk);
	return st;
}

/* --- parse ----------------------------------------------------------------------------------- */

static enum json_status
parse_fail(struct json_doc *doc, enum json_status st, size_t err_offset)
{
	bool bom = doc->bom;

	json_free(doc);
	doc->bom = bom;
	doc->err_offset = err_offset;
	return st;
}

enum json_status
json_parse(struct json_doc *doc, const char *buf, size_t len, const struct json_limits *lim)
{
	/* a zero limit means "the default", so that a zeroed struct json_limits is usable */
	unsigned max_depth = lim != NULL && lim->max_depth ? lim->max_depth : JSON_DEFAULT_MAX_DEPTH;
	unsigned max_tokens = lim != NULL && lim->max_tokens ? lim->max_tokens : JSON_DEFAULT_MAX_TOKENS;
	struct vresult r = { 0 };
	size_t off = 0, n, ntok;
	enum json_status st;
	jsmn_parser jp;
	int rc;

	memset(doc, 0, sizeof *doc);
	if (buf == NULL || len == 0)
		return parse_fail(doc, JSON_ERR_EMPTY, 0);
	if (len >= JSON_BOM_LEN && memcmp(buf, JSON_BOM, JSON_BOM_LEN) == 0) {
		off = JSON_BOM_LEN;
		doc->bom = true;
	}
	n = len - off;
	if (n > JSON_MAX_INPUT)
		return parse_fail(doc, JSON_ERR_TOKENS, off + JSON_MAX_INPUT);

	st = validate((const uint8_t *)buf + off, n, max_depth, max_tokens, &r);
	if (st != JSON_OK)
		return parse_fail(doc, st, off + r.err);
	if (buf[off + r.root] != '{')
		return parse_fail(doc, JSON_ERR_NOT_OBJECT, off + r.root);

	doc->text = buf + off;
	doc->len = n;
	doc->repairs = r.repairs;
	doc->nul_escapes = r.nul_escapes;
	if (r.has_nul) {
		/* jsmn stops at NUL; 0x01 is repaired to U+FFFD exactly like NUL when read */
		char *c, *e;

		if ((doc->owned = malloc(n)) == NULL)
			return parse_fail(doc, JSON_ERR_NOMEM, off);
		memcpy(doc->owned, doc->text, n);
		for (c = doc->owned, e = c + n; (c = memchr(c, '\0', (size_t)(e - c))) != NULL; c++)
			*c = '\x01';
		doc->text = doc->owned;
	}

	/* tokens and next[] share one allocation */
	ntok = r.ntok;
	if (ntok > SIZE_MAX / (sizeof(jsmntok_t) + sizeof(int)))
		return parse_fail(doc, JSON_ERR_NOMEM, off);
	doc->tok = malloc(ntok * (sizeof(jsmntok_t) + sizeof(int)));
	if (doc->tok == NULL)
		return parse_fail(doc, JSON_ERR_NOMEM, off);
	doc->next = (int *)(doc->tok + ntok);
	doc->ntok = (int)ntok;

	jsmn_init(&jp);
	rc = jsmn_parse(&jp, doc->text, n, doc->tok, (unsigned)ntok);
	if (rc != (int)ntok || doc->tok[0].type != JSMN_OBJECT || doc->tok[0].parent != -1 ||
	    doc->tok[0].start != (int)r.root || doc->tok[0].end != (int)r.root_end)
		return parse_fail(doc, JSON_ERR_SYNTAX, off + r.root);

	/* Subtree ends in O(n): tokens are in document order, so every descendant of i has a larger
	 * index and is final by the time it is propagated to its parent. */
	for (int i = 0; i < doc->ntok; i++)
		doc->next[i] = i + 1;
	for (int j = doc->ntok - 1; j > 0; j--) {
		int par = doc->tok[j].parent;

		if (par < 0 || par >= j)
			return parse_fail(doc, JSON_ERR_SYNTAX, off + r.root);
		if (doc->next[j] > doc->next[par])
			doc->next[par] = doc->next[j];
	}
	return JSON_OK;
}

void
json_free(struct json_doc *doc)
{
	if (doc == NULL)
		return;
	free(doc->tok); /* next[] lives in the same block */
	free(doc->owned);
	memset(doc, 0, sizeof *doc);
}

const char *
json_strerror(enum json_status st)
{
	switch (st) {
	case JSON_OK:
		return "ok";
	case JSON_ERR_EMPTY:
		return "body is empty";
	case JSON_ERR_SYNTAX:
		return "body is not valid JSON";
	case JSON_ERR_TRUNCATED:
		return "body is truncated JSON";
	case JSON_ERR_TRAILING:
		return "body has data after the JSON value";
	case JSON_ERR_NOT_OBJECT:
		return "body is not a JSON object";
	case JSON_ERR_DEPTH:
		return "JSON nesting is too deep";
	case JSON_ERR_TOKENS:
		return "JSON document is too large";
	case JSON_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown JSON error";
}

const char *
json_errcode(enum json_status st)
{
	switch (st) {
	case JSON_OK:
		return "ok";
	case JSON_ERR_EMPTY:
		return "empty";
	case JSON_ERR_SYNTAX:
		return "syntax";
	case JSON_ERR_TRUNCATED:
		return "truncated";
	case JSON_ERR_TRAILING:
		return "trailing";
	case JSON_ERR_NOT_OBJECT:
		return "not_object";
	case JSON_ERR_DEPTH:
		return "depth";
	case JSON_ERR_TOKENS:
		return "tokens";
	case JSON_ERR_NOMEM:
		return "nomem";
	}
	return "unknown";
}

/* --- navigation ------------------------------------------------------------------------------ */

static inline bool
tok_ok(const struct json_doc *d, int t)
{
	return d != NULL && t >= 0 && t < d->ntok;
}

static inline bool
tok_is(const struct json_doc *d, int t, jsmntype_t type)
{
	return tok_ok(d, t) && d->tok[t].type == type;
}

/* Compares the unescaped, repaired value of raw[0..n) with s[0..slen) in one pass, stopping at the
 * first difference. Plain bytes are compared directly, so an unescaped key costs a memcmp. */
static bool
str_eq_raw(const uint8_t *p, size_t n, const uint8_t *s, size_t slen)
{
	const uint8_t *end = p + n, *send = s + slen;
	uint8_t u[JSON_UTF8_MAX];
	unsigned rep = 0;
	size_t ulen;

	while (p < end) {
		const uint8_t *run = p;

		while (p < end && !unesc_special[*p])
			p++;
		if (p > run) {
			if ((size_t)(send - s) < (size_t)(p - run) || memcmp(s, run, (size_t)(p - run)) != 0)
				return false;
			s += p - run;
			if (p == end)
				break;
		}
		p += decode_unit(p, end, u, &ulen, &rep);
		if ((size_t)(send - s) < ulen || memcmp(s, u, ulen) != 0)
			return false;
		s += ulen;
	}
	return s == send;
}

int
json_obj_get(const struct json_doc *d, int obj, const char *key)
{
	size_t klen;
	int end;

	if (!tok_is(d, obj, JSMN_OBJECT) || key == NULL)
		return -1;
	klen = strlen(key);
	end = d->next[obj];
	/* a key's subtree holds its value (jsmn makes the key the value's parent) */
	for (int k = obj + 1; k < end; k = d->next[k]) {
		const jsmntok_t *t = &d->tok[k];

		if (str_eq_raw((const uint8_t *)d->text + t->start, (size_t)(t->end - t->start),
		    (const uint8_t *)key, klen))
			return k + 1 < d->ntok ? k + 1 : -1;
	}
	return -1;
}

int
json_path(const struct json_doc *d, int from, ...)
{
	const char *key;
	va_list ap;
	int t = from;

	if (!tok_ok(d, from))
		return -1;
	va_start(ap, from);
	while (t >= 0 && (key = va_arg(ap, const char *)) != NULL)
		t = json_obj_get(d, t, key);
	va_end(ap);
	return t;
}

int
json_array_len(const struct json_doc *d, int arr)
{
	return tok_is(d, arr, JSMN_ARRAY) ? d->tok[arr].size : -1;
}

int
json_first(const struct json_doc *d, int container)
{
	if (!json_is_object(d, container) && !json_is_array(d, container))
		return -1;
	return d->next[container] > container + 1 ? container + 1 : -1;
}

int
json_after(const struct json_doc *d, int container, int elem)
{
	int n;

	if (!json_is_object(d, container) && !json_is_array(d, container))
		return -1;
	if (!tok_ok(d, elem) || d->tok[elem].parent != container)
		return -1;
	n = d->next[elem];
	return n < d->next[container] ? n : -1;
}

bool
json_is_object(const struct json_doc *d, int tok)
{
	return tok_is(d, tok, JSMN_OBJECT);
}

bool
json_is_array(const struct json_doc *d, int tok)
{
	return tok_is(d, tok, JSMN_ARRAY);
}

bool
json_is_string(const struct json_doc *d, int tok)
{
	return tok_is(d, tok, JSMN_STRING);
}

static inline char
prim_first(const struct json_doc *d, int tok)
{
	return tok_is(d, tok, JSMN_PRIMITIVE) ? d->text[d->tok[tok].start] : '\0';
}

bool
json_is_number(const struct json_doc *d, int tok)
{
	char c = prim_first(d, tok);

	return c == '-' || (c >= '0' && c <= '9');
}

bool
json_is_null(const struct json_doc *d, int tok)
{
	return prim_first(d, tok) == 'n';
}

bool
json_is_bool(const struct json_doc *d, int tok, bool *value)
{
	char c = prim_first(d, tok);

	if (c != 't' && c != 'f')
		return false;
	if (value != NULL)
		*value = c == 't';
	return true;
}

/* --- strings --------------------------------------------------------------------------------- */

size_t
json_unescape(const char *src, size_t n, char *dst, unsigned *repaired)
{
	const uint8_t *p = (const uint8_t *)src, *end = p + n;
	uint8_t *o = (uint8_t *)dst;
	unsigned rep = 0;
	size_t olen;

	while (p < end) {
		while (end - p >= 8 && !unesc_special8(load8(p))) {
			memcpy(o, p, 8);
			o += 8;
			p += 8;
		}
		while (p < end && !unesc_special[*p])
			*o++ = *p++;
		if (p == end)
			break;
		p += decode_unit(p, end, o, &olen, &rep);
		o += olen;
	}
	*o = '\0';
	if (repaired != NULL)
		*repaired += rep;
	return (size_t)(o - (uint8_t *)dst);
}

char *
json_strdup(const struct json_doc *d, int tok, size_t *outlen, unsigned *repaired)
{
	size_t n, cap, len;
	char *out, *shrunk;

	if (!json_is_string(d, tok))
		return NULL;
	n = (size_t)(d->tok[tok].end - d->tok[tok].start);
	cap = JSON_UNESCAPED_MAX(n) + 1;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	len = json_unescape(d->text + d->tok[tok].start, n, out, repaired);
	if (cap - (len + 1) > JSON_STRDUP_SLACK && (shrunk = realloc(out, len + 1)) != NULL)
		out = shrunk;
	if (outlen != NULL)
		*outlen = len;
	return out;
}

bool
json_str_eq(const struct json_doc *d, int tok, const char *s)
{
	if (!json_is_string(d, tok) || s == NULL)
		return false;
	return str_eq_raw((const uint8_t *)d->text + d->tok[tok].start,
	    (size_t)(d->tok[tok].end - d->tok[tok].start), (const uint8_t *)s, strlen(s));
}

bool
json_get_i64(const struct json_doc *d, int tok, int64_t *out)
{
	const char *p, *e;
	uint64_t v = 0, limit = INT64_MAX;
	bool neg = false;

	if (!json_is_number(d, tok))
		return false;
	p = d->text + d->tok[tok].start;
	e = d->text + d->tok[tok].end;
	if (*p == '-') {
		neg = true;
		limit = (uint64_t)INT64_MAX + 1;
		p++;
	}
	if (p == e)
		return false;
	for (; p < e; p++) {
		unsigned dig = (unsigned)(*p - '0');

		if (dig > 9 || v > (limit - dig) / 10)
			return false; /* a fraction, an exponent or out of range */
		v = v * 10 + dig;
	}
	if (out != NULL)
		*out = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	return true;
}

bool
json_get_double(const struct json_doc *d, int tok, double *out)
{
	char local[JSON_NUM_LOCAL], *b = local, *ep;
	size_t n;
	double v;
	bool ok;

	if (!json_is_number(d, tok))
		return false;
	n = (size_t)(d->tok[tok].end - d->tok[tok].start);
	if (n >= sizeof local && (b = malloc(n + 1)) == NULL)
		return false;
	memcpy(b, d->text + d->tok[tok].start, n);
	b[n] = '\0';
	errno = 0;
	v = strtod(b, &ep);
	/* underflow rounds towards zero and is fine; overflow does not fit */
	ok = ep == b + n && !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL));
	if (b != local)
		free(b);
	if (ok && out != NULL)
		*out = v;
	return ok;
}

/* --- output ---------------------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

/* Writes the escape for an ASCII byte that json_write_str does not copy. */
static inline uint8_t *
put_escape(uint8_t *o, uint8_t c)
{
	*o++ = '\\';
	switch (c) {
	case '"':
	case '\\':
		*o++ = c;
		return o;
	case '\b':
		*o++ = 'b';
		return o;
	case '\f':
		*o++ = 'f';
		return o;
	case '\n':
		*o++ = 'n';
		return o;
	case '\r':
		*o++ = 'r';
		return o;
	case '\t':
		*o++ = 't';
		return o;
	}
	*o++ = 'u';
	*o++ = '0';
	*o++ = '0';
	*o++ = (uint8_t)hexdig[c >> 4];
	*o++ = (uint8_t)hexdig[c & 0xF];
	return o;
}

void
json_write_str(struct buf *b, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	bool ok;

	buf_addc(b, '"');
	while (p < end) {
		size_t chunk = (size_t)(end - p) < JSON_WRITE_CHUNK ? (size_t)(end - p) : JSON_WRITE_CHUNK;
		const uint8_t *stop = p + chunk;
		uint8_t *o;

		/* the last sequence of a chunk may run JSON_UTF8_MAX - 1 bytes past it */
		if (!buf_reserve(b, (chunk + JSON_UTF8_MAX - 1) * JSON_ESC_MAX))
			return;
		o = (uint8_t *)b->data + b->len;
		while (p < stop) {
			while (stop - p >= 8 && !wstr_special8(load8(p))) {
				memcpy(o, p, 8);
				o += 8;
				p += 8;
			}
			while (p < stop && !wstr_special[*p])
				*o++ = *p++;
			if (p >= stop)
				break;
			if (*p < 0x80) {
				o = put_escape(o, *p++);
				continue;
			}
			size_t k = utf8_seq(p, end, &ok);
			if (!ok) {
				memcpy(o, JSON_REPL, JSON_REPL_LEN);
				o += JSON_REPL_LEN;
			} else if (k == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
				/* U+2028/U+2029 end lines in JavaScript */
				memcpy(o, p[2] == 0xA8 ? "\\u2028" : "\\u2029", UESC_LEN);
				o += UESC_LEN;
			} else {
				memcpy(o, p, k);
				o += k;
			}
			p += k;
		}
		b->len = (size_t)(o - (uint8_t *)b->data);
	}
	buf_addc(b, '"');
}

void
json_write_cstr(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_add(b, LIT("null"));
	else
		json_write_str(b, s, strlen(s));
}

/* A string token: unescape and repair, then escape again. Strings without backslashes or control
 * bytes come out of json_write_str exactly as they would after unescaping, so they skip the copy. */
static void
write_string_tok(struct buf *b, const struct json_doc *d, int t)
{
	const uint8_t *raw = (const uint8_t *)d->text + d->tok[t].start;
	size_t n = (size_t)(d->tok[t].end - d->tok[t].start), i = 0, len;
	char local[JSON_UNESC_LOCAL], *tmp = local;

	while (n - i >= 8 && !(has_less(load8(raw + i), 0x20) | has_byte(load8(raw + i), '\\')))
		i += 8;
	while (i < n && raw[i] >= 0x20 && raw[i] != '\\')
		i++;
	if (i == n) {
		json_write_str(b, (const char *)raw, n);
		return;
	}
	if (JSON_UNESCAPED_MAX(n) + 1 > sizeof local && (tmp = malloc(JSON_UNESCAPED_MAX(n) + 1)) == NULL) {
		b->failed = true;
		return;
	}
	len = json_unescape((const char *)raw, n, tmp, NULL);
	json_write_str(b, tmp, len);
	if (tmp != local)
		free(tmp);
}

/* The container that holds token t: its parent, or its key's parent for an object member value. */
static inline int
enclosing(const struct json_doc *d, int t)
{
	int par = d->tok[t].parent;

	if (par >= 0 && d->tok[par].type == JSMN_STRING)
		par = d->tok[par].parent;
	return par;
}

void
json_write_token(struct buf *b, const struct json_doc *d, int tok)
{
	int end, cur = -1;

	if (!tok_ok(d, tok)) {
		buf_add(b, LIT("null"));
		return;
	}
	if (d->tok[tok].type == JSMN_STRING) {
		write_string_tok(b, d, tok); /* a key alone, without its value */
		return;
	}
	/* Iterative walk in document order: cur is the innermost open container; containers are closed
	 * once the walk passes their subtree. */
	end = d->next[tok];
	for (int i = tok; i < end; i++) {
		const jsmntok_t *t = &d->tok[i];

		while (cur >= 0 && d->next[cur] <= i) {
			buf_addc(b, d->tok[cur].type == JSMN_OBJECT ? '}' : ']');
			cur = enclosing(d, cur);
		}
		if (cur >= 0) {
			if (t->parent != cur)
				buf_addc(b, ':'); /* an object member's value */
			else if (i != cur + 1)
				buf_addc(b, ',');
		}
		switch (t->type) {
		case JSMN_OBJECT:
		case JSMN_ARRAY:
			buf_addc(b, t->type == JSMN_OBJECT ? '{' : '[');
			cur = i;
			break;
		case JSMN_STRING:
			write_string_tok(b, d, i);
			break;
		default:
			buf_add(b, d->text + t->start, (size_t)(t->end - t->start));
			break;
		}
	}
	while (cur >= 0) {
		buf_addc(b, d->tok[cur].type == JSMN_OBJECT ? '}' : ']');
		if (cur == tok)
			break;
		cur = enclosing(d, cur);
	}
}

void
json_write_sanitized(struct buf *b, const char *text, size_t n)
{
	const uint8_t *p = (const uint8_t *)text, *end = p + n, *q, *run;
	char esc[JSON_ESC_MAX];
	bool ok;
	int cp;

	if (n >= JSON_BOM_LEN && memcmp(text, JSON_BOM, JSON_BOM_LEN) == 0)
		p += JSON_BOM_LEN;
	while (p < end) {
		/* outside strings everything is copied, up to and including the next opening quote */
		if ((q = memchr(p, '"', (size_t)(end - p))) == NULL) {
			buf_add(b, p, (size_t)(end - p));
			return;
		}
		buf_add(b, p, (size_t)(q + 1 - p));
		p = q + 1;
		for (;;) {
			run = p;
			while (end - p >= 8 && !str_special8(load8(p)))
				p += 8;
			while (p < end && !str_special[*p])
				p++;
			buf_add(b, run, (size_t)(p - run));
			if (p == end)
				return;
			if (*p == '"') {
				buf_addc(b, '"');
				p++;
				break;
			}
			if (*p == '\\') {
				size_t k = end - p < 2 ? 1 : 2;

				if (k == 2 && p[1] == 'u' && end - p >= UESC_LEN && (cp = hex4(p + 2)) >= 0) {
					k = UESC_LEN;
					if (is_high_surrogate(cp) && paired_low(p, end) >= 0) {
						k = UPAIR_LEN;
					} else if (is_high_surrogate(cp) || is_low_surrogate(cp)) {
						buf_add(b, LIT(JSON_REPL_ESC));
						p += k;
						continue;
					}
				}
				buf_add(b, p, k); /* a valid escape, kept as it was written */
				p += k;
				continue;
			}
			if (*p < 0x20) {
				buf_add(b, esc, (size_t)(put_escape((uint8_t *)esc, *p) - (uint8_t *)esc));
				p++;
				continue;
			}
			size_t k = utf8_seq(p, end, &ok);
			if (ok)
				buf_add(b, p, k);
			else
				buf_add(b, LIT(JSON_REPL_ESC));
			p += k;
		}
	}
}

/* --- UTF-8 helpers --------------------------------------------------------------------------- */

size_t
json_utf8_prefix(const char *s, size_t n, size_t max_chars)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	size_t chars = 0;
	bool ok;

	/* an invalid maximal subpart counts as the one U+FFFD it becomes */
	while (p < end && chars < max_chars) {
		p += *p < 0x80 ? 1 : utf8_seq(p, end, &ok);
		chars++;
	}
	return (size_t)(p - (const uint8_t *)s);
}

size_t
json_utf8_seq(const char *s, size_t n, bool *ok)
{
	return utf8_seq((const uint8_t *)s, (const uint8_t *)s + n, ok);
}

size_t
json_utf8_cut(const char *s, size_t n, size_t max_bytes)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	size_t k;
	bool ok;

	if (n <= max_bytes)
		return n;
	/* sequences are measured against the whole string, so one that the limit splits is seen whole */
	while (p < end) {
		k = *p < 0x80 ? 1 : utf8_seq(p, end, &ok);
		if ((size_t)(p - (const uint8_t *)s) + k > max_bytes)
			break;
		p += k;
	}
	return (size_t)(p - (const uint8_t *)s);
}

bool
json_utf8_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	bool ok;

	while (p < end) {
		while (end - p >= 8 && (load8(p) & HIGHS) == 0)
			p += 8;
		while (p < end && *p < 0x80)
			p++;
		if (p == end)
			break;
		p += utf8_seq(p, end, &ok);
		if (!ok)
			return false;
	}
	return true;
}
