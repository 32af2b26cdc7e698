/* http_access: who may use the dashboard port. The dashboard serves health data to a LAN, so its
 * data (the API, the stream, the metrics) needs a token, as Jupyter's does: the daemon makes one at
 * its first start, keeps it in a file, and logs the dashboard URL carrying it. Opening that URL turns
 * the token into an HttpOnly, SameSite=Strict cookie; scripts send "Authorization: Bearer TOKEN".
 *
 * Two browser-side doors are closed here too. DNS rebinding: a page on evil.example whose name is
 * made to resolve to our address would be same-origin with us, so only Host headers naming us are
 * answered (an IP literal, localhost, this machine's name, or an --allowed-host name). Cross-site
 * requests: a page on another origin of the same site (another port of this host) would carry the
 * cookie, so a state-changing request must come from our own origin or carry the bearer token.
 *
 * Everything here is pure (no I/O except the token file), so the unit tests drive it directly. */
#ifndef LIVEEVENTS_HTTP_ACCESS_H
#define LIVEEVENTS_HTTP_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_TOKEN_BYTES 32       /* random bytes in a generated token: 256 bits */
#define HTTP_TOKEN_MIN 16         /* a token file's token is at least this long ... */
#define HTTP_TOKEN_MAX 256        /* ... and at most this */
#define HTTP_TOKEN_FILE_MAX 4096  /* a larger file is not a token file */
#define HTTP_COOKIE_MAX_AGE 2592000 /* 30 days: a dashboard tab kept open across restarts stays signed in */
#define HTTP_ALLOWED_HOSTS_MAX 16
#define HTTP_HOST_MAX 255         /* a DNS name's length limit */

struct http_access {
	bool auth;                                 /* false with --no-auth: no token is asked for */
	char token[HTTP_TOKEN_MAX + 1];
	size_t token_len;
	char cookie[32];                           /* "liveevents_PORT": two daemons on one host keep apart */
	char hostname[HTTP_HOST_MAX + 1];          /* this machine's name: answered like localhost */
	char allowed[HTTP_ALLOWED_HOSTS_MAX][HTTP_HOST_MAX + 1];
	int nallowed;
	bool any_host;                             /* --allowed-host '*' */
};

/* How a request identified itself. */
enum http_credential {
	HTTP_CRED_NONE,   /* nothing offered */
	HTTP_CRED_BAD,    /* something offered, and wrong */
	HTTP_CRED_COOKIE,
	HTTP_CRED_BEARER,
	HTTP_CRED_QUERY,  /* ?token= on the page's URL */
	HTTP_CRED_OPEN,   /* --no-auth */
};

/* Reads the token in path, or when there is no such file, makes one and writes it there (mode 0600,
 * never replacing a file another process made meanwhile). *created tells which. The token is 16 to
 * 256 characters of A-Z a-z 0-9 - _ . ~ (so it fits a URL and a cookie unescaped). -1 with a
 * one-line reason in err. *loose is set when the file is readable by other users. */
int http_token_load(const char *path, char *token, size_t tokenlen, bool *created, bool *loose, char *err,
                    size_t errlen);

/* Whether Host (NULL: absent, as from an HTTP/1.0 client) is one this dashboard answers to. */
bool http_access_host_ok(const struct http_access *a, const char *host);
/* The credential a request carries: its Authorization and Cookie headers (either may be NULL) and,
 * for the page itself, the ?token= value (NULL when absent or not looked at). The first present of
 * ?token=, bearer and cookie decides, right or wrong: a script sending a wrong bearer is told so
 * rather than let in by a cookie, and a browser holding an old cookie signs in with a new token URL.
 * Of several cookies of ours, any one holding the token will do. An Authorization of another scheme
 * (a proxy's Basic) is not looked at. cookie is every Cookie header, joined with "; ". Compared in time that
 * depends on the token's length only. */
enum http_credential http_access_credential(const struct http_access *a, const char *authorization,
                                            const char *cookie, const char *query_token);
/* Whether a request that changes state may go on: a bearer token always may; otherwise an Origin,
 * when present, must be this very origin ("http://" or "https://" followed by Host), and a browser
 * request (one with the cookie) must carry one. */
bool http_access_origin_ok(enum http_credential cred, const char *origin, const char *host);

#endif
