/* options: the daemon's command line and its defaults. Every limit the daemon enforces is a field
 * here with a named default, so nothing is a magic number in the code that uses it. */
#ifndef LIVEEVENTS_OPTIONS_H
#define LIVEEVENTS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_DEFAULT_WEBHOOK_HOST "0.0.0.0"
#define CONFIG_DEFAULT_WEBHOOK_PORT "8000"
#define CONFIG_DEFAULT_DASHBOARD "0.0.0.0:8080"
#define CONFIG_DEFAULT_ARENA "/dev/shm/liveevents"
#define CONFIG_DEFAULT_MAX_BODY (4u << 20)       /* a 163-message update is 220 KB */
#define CONFIG_DEFAULT_MAX_HEADERS (16u << 10)
#define CONFIG_DEFAULT_REQUEST_TIMEOUT 30        /* seconds to send a request, and idle keep-alive */
#define CONFIG_DEFAULT_RESTART_BACKOFF_MS 100    /* first restart of a dead worker */
#define CONFIG_DEFAULT_RESTART_BACKOFF_MAX_MS 5000
#define CONFIG_DEFAULT_RESTART_LIMIT 10          /* restarts per worker within the interval ... */
#define CONFIG_DEFAULT_RESTART_INTERVAL 60       /* ... seconds; beyond it the daemon exits 1 */
#define CONFIG_DEFAULT_RESET_TIMEOUT_MS 3000     /* how long query waits for ingest to reset */
#define CONFIG_DEFAULT_STOP_TIMEOUT_MS 10000     /* workers' grace period on SIGTERM */
#define CONFIG_DEFAULT_CALL_IDLE_S 7200     /* two hours: far longer than any phone call */
#define CONFIG_DEFAULT_STREAM_CLIENTS 256        /* open event streams; more get 503 */
#define CONFIG_DEFAULT_STREAM_BACKLOG (1u << 20) /* unsent bytes a stream client may hold */
#define CONFIG_DEFAULT_STREAM_HEARTBEAT 15       /* seconds between comments on an idle stream */
#define CONFIG_DEFAULT_MAX_CONNECTIONS 1024       /* per port */
#define CONFIG_DEFAULT_MAX_CLIENT_CONNECTIONS 256 /* per client address per port: a quarter of the port */
/* Longer than the idle timeouts of the tunnels and proxies in front (cloudflared's is 90 s): the one
 * that closes an idle connection first should be the client, or a webhook sent on it just as we
 * close it is lost (a POST is not retried). */
#define CONFIG_DEFAULT_KEEPALIVE 120
#define CONFIG_DEFAULT_MAX_HEADER_COUNT 100      /* as Apache's LimitRequestFields */
/* Per client address. Far above what a platform sends through one tunnel address (a hundred calls at
 * once send a few hundred events a second), far below what one sender can push (15,000 a second). */
#define CONFIG_DEFAULT_WEBHOOK_RATE 1000
#define CONFIG_DEFAULT_WEBHOOK_BURST 2000
#define CONFIG_MAX_ADDR 256
#define CONFIG_TOKEN_SUFFIX ".token"             /* the token file's default: the arena's path plus this */
#define CONFIG_ALLOWED_HOSTS_MAX 16              /* --allowed-host given this many times at most */
#define CONFIG_HOST_MAX 255

/* How much of a message's text an event's log line shows (--log-text). */
enum log_text_mode { LOG_TEXT_SHORT, LOG_TEXT_NONE, LOG_TEXT_FULL };

struct listen_addr {
	char text[CONFIG_MAX_ADDR]; /* as given, for messages */
	struct sockaddr_storage ss;
	socklen_t len;
};

struct config {
	struct listen_addr webhook, dashboard;
	char arena[4096];
	uint64_t arena_size;
	size_t max_body;
	size_t max_headers;
	unsigned request_timeout;
	unsigned json_max_depth, json_max_tokens;
	unsigned restart_backoff_ms, restart_backoff_max_ms;
	unsigned restart_limit, restart_interval;
	unsigned reset_timeout_ms;
	uint64_t call_idle_ms;      /* a call silent this long is no longer kept whole when the arena is full */
	unsigned stop_timeout_ms;
	unsigned log_refusals;          /* refusal lines per LOG_LIMIT_WINDOW_MS; 0 = all */
	unsigned stream_clients;        /* --stream-clients */
	size_t stream_backlog;          /* --stream-backlog */
	unsigned stream_heartbeat;      /* --stream-heartbeat, seconds */
	char webhook_secret_file[4096]; /* "" = webhooks are not authenticated */
	/* The dashboard's access (http_access.h). */
	char dashboard_token_file[4096 + sizeof(CONFIG_TOKEN_SUFFIX)];
	bool no_auth;                   /* --no-auth (loopback only) or --insecure-no-auth */
	bool insecure_no_auth;
	char allowed_hosts[CONFIG_ALLOWED_HOSTS_MAX][CONFIG_HOST_MAX + 1];
	int nallowed_hosts;
	enum log_text_mode log_text;    /* --log-text */
	unsigned max_connections, max_client_connections; /* per port; 0 = no cap */
	unsigned keepalive_timeout;     /* seconds an idle connection is kept */
	unsigned max_header_count;
	unsigned webhook_rate, webhook_burst; /* per client address; rate 0 = no limit */
};

enum options_result { CONFIG_OK = 0, CONFIG_EXIT_OK = 1, CONFIG_ERROR = 2 };

/* Parses argv (and $PORT). CONFIG_EXIT_OK after printing --help or --version; CONFIG_ERROR with a
 * one-line message in err. */
enum options_result options_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);
/* "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT" (all addresses); HOST may be a name. */
int options_parse_listen(const char *s, struct listen_addr *a, char *err, size_t errlen);
/* Whether a listen address accepts loopback connections only. */
bool options_is_loopback(const struct listen_addr *a);
/* "123", "64K", "64M", "1G" (binary multiples). */
int options_parse_size(const char *s, uint64_t *out);
/* --log-text's word (short, none, full) as its mode; -1 when it is none of them. */
int options_parse_log_text(const char *s, enum log_text_mode *out);

#endif
