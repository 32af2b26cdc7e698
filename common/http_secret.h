/* http_secret: the webhook senders' shared secrets (--webhook-secret-file). One accepted secret per
 * line, so a secret can be rotated without a moment when neither works: add the new one, move the
 * platform over, remove the old one. The file is re-read when it changes (checked about once a
 * second), so rotating needs no restart. A request is accepted when its x-interactly-secret (or
 * x-vapi-secret) header or its "Authorization: Bearer" value equals one of them, compared in time
 * that depends on the secrets' lengths only, never on how much of a guess was right. */
#ifndef LIVEEVENTS_HTTP_SECRET_H
#define LIVEEVENTS_HTTP_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define HTTP_SECRET_MAX 16          /* secrets per file: enough for any rotation */
#define HTTP_SECRET_MAX_LEN 1024    /* bytes per secret */
#define HTTP_SECRET_FILE_MAX 65536  /* a larger file is not a secrets file */
#define HTTP_SECRET_RECHECK_MS 1000 /* how often the file is looked at for changes */
/* Shorter secrets are warned about: nothing slows guessing (a wrong guess is a cheap 401, and the
 * rate limit steps aside when a secret is set), and the scrubbing of shorter ones is weaker. */
#define HTTP_SECRET_ADVISED_LEN 16

struct http_secrets {
	int n;
	char v[HTTP_SECRET_MAX][HTTP_SECRET_MAX_LEN + 1];
	size_t len[HTTP_SECRET_MAX];
	/* what the file was when read: a change of any of these re-reads it */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool world_readable;
};

/* Reads path into s (replacing its contents only on success). Blank lines and lines starting with
 * '#' are skipped; spaces, tabs and CR around a secret are not part of it. Fails, with a one-line
 * reason in err, when the file cannot be read, is too large, holds a secret that is too long, or
 * holds no secret at all (every webhook would be refused). */
int http_secrets_load(struct http_secrets *s, const char *path, char *err, size_t errlen);
/* 1 when the file at path differs from what s was read from, 0 when not, -1 when it cannot be
 * looked at. */
int http_secrets_changed(const struct http_secrets *s, const char *path);
/* True when value (n bytes) equals one of the secrets. Every secret is compared, whatever matched. */
bool http_secrets_match(const struct http_secrets *s, const char *value, size_t n);
/* Wipes the secrets from memory. */
void http_secrets_clear(struct http_secrets *s);

#endif
