/* json: the JSON layer. jsmn (Debian's libjsmn-dev 1.1.0, JSMN_STRICT + JSMN_PARENT_LINKS) is used as a
 * tokenizer only; everything jsmn does not check is checked here, because jsmn accepts invalid JSON
 * (`[1 2]`, `{"a":tru}`, `{}{}`, leading zeros) and never unescapes strings.
 *
 * Policy (DESIGN.md §4): the platform never retries, so only what is not JSON at all, or not a JSON
 * object, is refused. Broken *text* inside strings is accepted and repaired when the string is read:
 * invalid UTF-8 (including overlong forms, UTF-8-encoded surrogates, code points above U+10FFFF,
 * truncated sequences), lone surrogate escapes (\ud800 without its pair) and raw control characters
 * below 0x20 (NUL included) become U+FFFD, except raw TAB, LF and CR, which are kept as the characters
 * the sender evidently meant. The escaped \u0000 also becomes U+FFFD so that every unescaped string
 * is a valid C string. A leading UTF-8 byte-order mark is skipped. */
#ifndef LIVEEVENTS_JSON_H
#define LIVEEVENTS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSMN_HEADER
#include <jsmn.h>

#include "buf.h"

/* Named limits; the daemon's options override them. */
#define JSON_DEFAULT_MAX_DEPTH 64       /* nesting of objects and arrays */
#define JSON_DEFAULT_MAX_TOKENS 262144  /* a 220 KB, 163-message update needs about 8,000 */

enum json_status {
	JSON_OK = 0,
	JSON_ERR_EMPTY,      /* no value at all (empty or whitespace only) */
	JSON_ERR_SYNTAX,     /* not JSON: bad literal, bad number, bad escape, missing/extra separator ... */
	JSON_ERR_TRUNCATED,  /* the document ends inside a value */
	JSON_ERR_TRAILING,   /* something follows the top-level value (garbage or a second value) */
	JSON_ERR_NOT_OBJECT, /* valid JSON whose root is not an object */
	JSON_ERR_DEPTH,      /* nested deeper than max_depth */
	JSON_ERR_TOKENS,     /* more tokens than max_tokens */
	JSON_ERR_NOMEM,
};

struct json_limits {
	unsigned max_depth;
	unsigned max_tokens;
};

/* A parsed document. Token 0 is the root object. Tokens are in document order; for a string token,
 * [start, end) covers the bytes between the quotes, still escaped. */
struct json_doc {
	const char *text; /* bytes jsmn saw: the input after the BOM, or a private copy (see owned) */
	size_t len;
	jsmntok_t *tok;
	int ntok;
	int *next;          /* next[i]: index of the first token after i's whole subtree (ntok at the end) */
	unsigned repairs;   /* string tokens whose text needs repair (invalid UTF-8, lone surrogate,
	                     * control character, NUL) */
	unsigned nul_escapes; /* \u0000 escapes: valid JSON, but read as U+FFFD (strings stay C strings), so
	                       * the event's text was changed and is counted as repaired */
	bool bom;           /* a UTF-8 byte-order mark was skipped */
	size_t err_offset;  /* on failure: byte offset (in the caller's buffer) where the problem was found */
	char *owned;        /* a private copy, made only when the input holds NUL bytes (jsmn stops at NUL) */
};

/* Validates and tokenizes buf[0..len). buf need not be NUL-terminated and must outlive doc unless
 * doc->owned is set. On failure doc is left with no allocations and err_offset set.
 * lim may be NULL for the defaults. */
enum json_status json_parse(struct json_doc *doc, const char *buf, size_t len,
                            const struct json_limits *lim);
void json_free(struct json_doc *doc);
/* A short English phrase for the error body, e.g. "body is not valid JSON". */
const char *json_strerror(enum json_status st);
/* A stable machine code for the error body and metrics, e.g. "syntax", "truncated". */
const char *json_errcode(enum json_status st);

/* Navigation. Every function accepts tok == -1 (meaning "absent") and then returns -1 / false. */
int json_obj_get(const struct json_doc *d, int obj, const char *key);  /* value token of key, or -1 */
/* json_path(d, 0, "message", "call", "id", NULL): follows object keys; -1 if any step is absent. */
int json_path(const struct json_doc *d, int from, ...) __attribute__((sentinel));
int json_array_len(const struct json_doc *d, int arr);                 /* -1 if not an array */
int json_first(const struct json_doc *d, int container);               /* first element/key or -1 */
int json_after(const struct json_doc *d, int container, int elem);     /* next sibling in container or -1 */
bool json_is_object(const struct json_doc *d, int tok);
bool json_is_array(const struct json_doc *d, int tok);
bool json_is_string(const struct json_doc *d, int tok);
bool json_is_number(const struct json_doc *d, int tok);  /* a primitive that is a number */
bool json_is_null(const struct json_doc *d, int tok);
bool json_is_bool(const struct json_doc *d, int tok, bool *value);

/* Strings. The unescaped, repaired UTF-8 never holds NUL. */
/* Worst-case output size of json_unescape for n escaped input bytes (excluding the NUL). */
#define JSON_UNESCAPED_MAX(n) ((n) * 3)
/* Unescapes src[0..n) into dst (capacity >= JSON_UNESCAPED_MAX(n) + 1), NUL-terminates,
 * returns the output length. *repaired (may be NULL) is incremented once per repaired sequence. */
size_t json_unescape(const char *src, size_t n, char *dst, unsigned *repaired);
/* Malloc'd unescaped copy of a string token (NULL if tok is not a string or on ENOMEM).
 * *outlen may be NULL. */
char *json_strdup(const struct json_doc *d, int tok, size_t *outlen, unsigned *repaired);
/* True when tok is a string whose unescaped value equals s exactly. */
bool json_str_eq(const struct json_doc *d, int tok, const char *s);
/* Numbers: false unless tok is a number that fits. json_get_i64 accepts integers only (no fraction or
 * exponent); json_get_double accepts any number. */
bool json_get_i64(const struct json_doc *d, int tok, int64_t *out);
bool json_get_double(const struct json_doc *d, int tok, double *out);

/* Output. */
/* Appends s[0..n) as a quoted JSON string. Invalid UTF-8 in s becomes U+FFFD; control characters are
 * escaped (\n \r \t \b \f, others \u00XX); U+2028 and U+2029 are escaped as \u2028 \u2029. */
void json_write_str(struct buf *b, const char *s, size_t n);
void json_write_cstr(struct buf *b, const char *s); /* NULL writes null */
/* Re-serialises token tok and its subtree compactly; strings are unescaped, repaired and re-escaped,
 * numbers and literals are copied digit for digit. The output is always valid JSON and UTF-8. */
void json_write_token(struct buf *b, const struct json_doc *d, int tok);
/* Appends a copy of text[0..n), a document that json_parse accepted, with its string contents repaired
 * so that the result is valid JSON and valid UTF-8, keeping everything else byte for byte (layout,
 * numbers of any length, escapes). Used to serve raw bodies that needed repair. */
void json_write_sanitized(struct buf *b, const char *text, size_t n);

/* UTF-8 helpers shared with logging. */
/* Length of the longest prefix of s[0..n) holding at most max_chars code points, never cutting a
 * multi-byte sequence. */
size_t json_utf8_prefix(const char *s, size_t n, size_t max_chars);
/* Length of the longest prefix of s[0..n) of at most max_bytes bytes that ends where a character of
 * s ends: a limit in bytes never keeps half of a sequence that straddles it. */
size_t json_utf8_cut(const char *s, size_t n, size_t max_bytes);
/* True when s[0..n) is entirely valid UTF-8 (no overlong forms, surrogates or > U+10FFFF). */
bool json_utf8_valid(const char *s, size_t n);
/* The sequence at s[0..n) (n > 0): its length, with *ok set when it is valid UTF-8; when not, the
 * length of the bytes one U+FFFD replaces (at least 1). */
size_t json_utf8_seq(const char *s, size_t n, bool *ok);

#endif
