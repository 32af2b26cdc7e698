/* http_access: the dashboard's token, Host and Origin checks (see http_access.h). */
#include "config.h"

#include "http_access.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c == '~';
}

/* Reads and validates the token file open on fd. */
static int
read_token(int fd, const char *path, char *token, size_t tokenlen, bool *loose, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > HTTP_TOKEN_FILE_MAX) {
		snprintf(err, errlen, "the dashboard token file %s is not a regular file of at most %d bytes", path,
		         HTTP_TOKEN_FILE_MAX);
		return -1;
	}
	*loose = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	char data[HTTP_TOKEN_FILE_MAX + 1];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(data) - 1 && (r = read(fd, data + n, sizeof(data) - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read the dashboard token file %s: %s", path, strerror(errno));
			return -1;
		}
		n += (size_t)r;
	}
	size_t b = 0, e = n;
	while (b < e && (data[b] == ' ' || data[b] == '\t' || data[b] == '\r' || data[b] == '\n'))
		b++;
	while (e > b && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r' || data[e - 1] == '\n'))
		e--;
	bool ok = e - b >= HTTP_TOKEN_MIN && e - b <= HTTP_TOKEN_MAX && e - b < tokenlen;
	for (size_t i = b; ok && i < e; i++)
		ok = token_char(data[i]);
	if (!ok) {
		snprintf(err, errlen,
		         "the dashboard token file %s must hold one token of %d to %d characters from A-Z a-z 0-9 - _ . ~ "
		         "(delete it to have a new one made)",
		         path, HTTP_TOKEN_MIN, HTTP_TOKEN_MAX);
		return -1;
	}
	memcpy(token, data + b, e - b);
	token[e - b] = '\0';
	explicit_bzero(data, sizeof(data));
	return 0;
}

/* base64url without padding: the URL- and cookie-safe alphabet. */
static void
make_token(const unsigned char *raw, size_t n, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = abc[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Writes a new token beside path and links it into place: link() never replaces a file, so a
 * daemon started at the same moment that made its own first wins, and both then read the same. */
static int
create_token(const char *path, char *err, size_t errlen)
{
	unsigned char raw[HTTP_TOKEN_BYTES];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
		if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "cannot make a dashboard token: getrandom: %s", strerror(errno));
			return -1;
		}
		if (r > 0)
			got += (size_t)r;
	}
	char token[HTTP_TOKEN_BYTES * 2];
	make_token(raw, sizeof(raw), token);
	explicit_bzero(raw, sizeof(raw));
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "the dashboard token file path is too long");
		return -1;
	}
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0) {
		snprintf(err, errlen, "cannot create the dashboard token file beside %s: %s", path, strerror(errno));
		return -1;
	}
	size_t len = strlen(token);
	token[len] = '\n';
	bool ok = write(fd, token, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
	explicit_bzero(token, sizeof(token));
	int e = errno;
	close(fd);
	if (!ok || (link(tmp, path) < 0 && errno != EEXIST)) {
		e = ok ? errno : e;
		unlink(tmp);
		snprintf(err, errlen, "cannot create the dashboard token file %s: %s", path, strerror(e));
		return -1;
	}
	unlink(tmp);
	return 0;
}

int
http_token_load(const char *path, char *token, size_t tokenlen, bool *created, bool *loose, char *err, size_t errlen)
{
	*created = false;
	*loose = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (create_token(path, err, errlen) < 0)
			return -1;
		*created = true;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the dashboard token file %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = read_token(fd, path, token, tokenlen, loose, err, errlen);
	close(fd);
	return rc;
}

/* --- Host ----------------------------------------------------------------------------------------- */

static bool
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static bool
names_us(const struct http_access *a, const char *name, size_t n)
{
	if ((n == 9 && memcmp(name, "localhost", 9) == 0) || ends_with(name, n, ".localhost"))
		return true; /* browsers resolve these to loopback themselves: no DNS to rebind */
	size_t hl = strlen(a->hostname);
	if (hl) {
		const char *dot = memchr(a->hostname, '.', hl);
		size_t short_len = dot ? (size_t)(dot - a->hostname) : hl;
		if ((n == hl && strncasecmp(name, a->hostname, n) == 0) ||
		    (n == short_len && strncasecmp(name, a->hostname, n) == 0) ||
		    (n == short_len + 6 && strncasecmp(name, a->hostname, short_len) == 0 &&
		     memcmp(name + short_len, ".local", 6) == 0))
			return true;
	}
	for (int i = 0; i < a->nallowed; i++) {
		const char *e = a->allowed[i];
		size_t el = strlen(e);
		if (e[0] == '.') { /* ".example.lan": the name and every name under it */
			if ((n == el - 1 && strncasecmp(name, e + 1, n) == 0) ||
			    (n > el && strncasecmp(name + n - el, e, el) == 0))
				return true;
		} else if (n == el && strncasecmp(name, e, n) == 0) {
			return true;
		}
	}
	return false;
}

static bool
port_ok(const char *p)
{
	if (!*p)
		return true;
	if (*p++ != ':' || !*p || strlen(p) > 5)
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

bool
http_access_host_ok(const struct http_access *a, const char *host)
{
	if (!host)
		return true; /* HTTP/1.0 without Host: not a browser, which always sends one */
	if (a->any_host)
		return true;
	char h[HTTP_HOST_MAX + 16];
	size_t n = strlen(host);
	if (n == 0 || n >= sizeof(h))
		return false;
	for (size_t i = 0; i <= n; i++)
		h[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] - 'A' + 'a') : host[i];
	/* An address literal cannot be rebound: rebinding needs a name the attacker's DNS answers for. */
	unsigned char addr[16];
	if (h[0] == '[') {
		char *close = strchr(h, ']');
		if (!close || !port_ok(close + 1))
			return false;
		*close = '\0';
		return inet_pton(AF_INET6, h + 1, addr) == 1;
	}
	char *colon = strchr(h, ':');
	if (colon) {
		if (!port_ok(colon))
			return false;
		*colon = '\0';
	}
	size_t len = strlen(h);
	if (len && h[len - 1] == '.')
		h[--len] = '\0'; /* "name." is the same name, absolute */
	if (len == 0)
		return false;
	if (inet_pton(AF_INET, h, addr) == 1)
		return true;
	return names_us(a, h, len);
}

/* --- credentials ---------------------------------------------------------------------------------- */

/* Time depends on the token's length only, never on how much of v matches. */
static bool
token_eq(const struct http_access *a, const char *v, size_t n)
{
	unsigned char diff = n != a->token_len;
	for (size_t i = 0; i < a->token_len; i++)
		diff |= (unsigned char)(a->token[i] ^ (i < n ? v[i] : 0));
	return diff == 0 && a->token_len > 0;
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static size_t
trimmed_len(const char *p, size_t n)
{
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n;
}

/* The value of the next cookie named name in a Cookie header from *from on (advanced past it), or
 * NULL. */
static const char *
cookie_value(const char **from, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	for (const char *p = *from; *p;) {
		p = skip_ws(p);
		const char *end = strchr(p, ';');
		size_t pl = end ? (size_t)(end - p) : strlen(p);
		if (pl > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = trimmed_len(v, pl - nl - 1);
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			*len = vl;
			*from = end ? end + 1 : p + pl;
			return v;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return NULL;
}

enum http_credential
http_access_credential(const struct http_access *a, const char *authorization, const char *cookie,
                       const char *query_token)
{
	if (!a->auth)
		return HTTP_CRED_OPEN;
	/* The page's URL first: it is how a browser holding an old cookie signs in with a new token. */
	if (query_token)
		return token_eq(a, query_token, strlen(query_token)) ? HTTP_CRED_QUERY : HTTP_CRED_BAD;
	/* Another scheme (Basic, from a proxy in front that asks for a password) is not ours to judge. */
	const char *p = authorization ? skip_ws(authorization) : NULL;
	if (p && strncasecmp(p, "Bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t' || p[6] == '\0')) {
		p = skip_ws(p + 6);
		return token_eq(a, p, trimmed_len(p, strlen(p))) ? HTTP_CRED_BEARER : HTTP_CRED_BAD;
	}
	/* Any cookie of ours that holds the token will do: another service on this host (cookies are
	 * not kept apart by port) could plant a wrong one of the same name, with a longer path so that
	 * it comes first, and lock the browser out. Every one is compared. */
	size_t vl;
	bool seen = false, good = false;
	const char *from = cookie ? cookie : "";
	for (const char *v; (v = cookie_value(&from, a->cookie, &vl)) != NULL;) {
		seen = true;
		good |= token_eq(a, v, vl);
	}
	return good ? HTTP_CRED_COOKIE : seen ? HTTP_CRED_BAD : HTTP_CRED_NONE;
}

/* --- Origin --------------------------------------------------------------------------------------- */

bool
http_access_origin_ok(enum http_credential cred, const char *origin, const char *host)
{
	if (cred == HTTP_CRED_BEARER)
		return true; /* a page on another origin cannot read the token, so cannot send it */
	if (!origin)
		return cred != HTTP_CRED_COOKIE; /* browsers send Origin with every DELETE and POST */
	const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
	                   : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
	                                                             : NULL;
	return rest && host && *host && strcasecmp(rest, host) == 0;
}
