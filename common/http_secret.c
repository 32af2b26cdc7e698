/* http_secret: loading, watching and matching the webhook secrets (see http_secret.h). */
#include "config.h"

#include "http_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A memset the compiler may not drop as a dead store. */
static void
wipe(void *p, size_t n)
{
	volatile unsigned char *q = p;
	while (n--)
		*q++ = 0;
}

void
http_secrets_clear(struct http_secrets *s)
{
	wipe(s, sizeof(*s));
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int
http_secrets_load(struct http_secrets *s, const char *path, char *err, size_t errlen)
{
	static struct http_secrets next; /* large: kept off the stack; only ingest's loop uses it */
	char buf[HTTP_SECRET_FILE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read --webhook-secret-file %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--webhook-secret-file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read --webhook-secret-file %s: %s", path, strerror(errno));
			close(fd);
			wipe(buf, len);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == sizeof(buf))
			break;
	}
	close(fd);
	if (len > HTTP_SECRET_FILE_MAX) {
		snprintf(err, errlen, "--webhook-secret-file %s is larger than %d bytes: not a secrets file", path,
		         HTTP_SECRET_FILE_MAX);
		wipe(buf, len);
		return -1;
	}
	wipe(&next, sizeof(next));
	int line = 0, rc = 0;
	for (size_t p = 0; p < len && rc == 0;) {
		size_t e = p;
		while (e < len && buf[e] != '\n')
			e++;
		line++;
		size_t a = p, b = e;
		p = e + 1;
		while (a < b && is_blank(buf[a]))
			a++;
		while (b > a && is_blank(buf[b - 1]))
			b--;
		if (a == b || buf[a] == '#')
			continue;
		if (b - a > HTTP_SECRET_MAX_LEN) {
			snprintf(err, errlen, "--webhook-secret-file %s, line %d: a secret longer than %d bytes", path, line,
			         HTTP_SECRET_MAX_LEN);
			rc = -1;
		} else if (memchr(buf + a, '\0', b - a)) {
			snprintf(err, errlen, "--webhook-secret-file %s, line %d: a NUL byte in a secret", path, line);
			rc = -1;
		} else if (next.n == HTTP_SECRET_MAX) {
			snprintf(err, errlen, "--webhook-secret-file %s holds more than %d secrets", path, HTTP_SECRET_MAX);
			rc = -1;
		} else {
			memcpy(next.v[next.n], buf + a, b - a);
			next.len[next.n++] = b - a;
		}
	}
	wipe(buf, len);
	if (rc == 0 && next.n == 0) {
		snprintf(err, errlen, "--webhook-secret-file %s holds no secret: every webhook would be refused", path);
		rc = -1;
	}
	if (rc == 0) {
		next.dev = st.st_dev;
		next.ino = st.st_ino;
		next.size = st.st_size;
		next.mtime = st.st_mtim;
		next.world_readable = (st.st_mode & S_IROTH) != 0;
		*s = next;
	}
	wipe(&next, sizeof(next));
	return rc;
}

int
http_secrets_changed(const struct http_secrets *s, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return st.st_dev != s->dev || st.st_ino != s->ino || st.st_size != s->size ||
	       st.st_mtim.tv_sec != s->mtime.tv_sec || st.st_mtim.tv_nsec != s->mtime.tv_nsec;
}

bool
http_secrets_match(const struct http_secrets *s, const char *value, size_t n)
{
	unsigned ok = 0;
	for (int i = 0; i < s->n; i++) {
		/* Walks the whole secret whatever the guess is: the time depends on the secret's length
		 * alone. A guess of another length differs through the length term. */
		size_t len = s->len[i];
		uint64_t diff = (uint64_t)(len ^ n);
		for (size_t j = 0; j < len; j++) {
			unsigned char g = n ? (unsigned char)value[j % n] : 0;
			diff |= (unsigned char)s->v[i][j] ^ g;
		}
		ok |= (unsigned)(diff == 0);
	}
	return ok != 0;
}
