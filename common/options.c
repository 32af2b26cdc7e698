/* options: command-line parsing for liveeventsd (see options.h). */
#include "config.h"

#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "log.h"

static const char usage_text[] =
	"Usage: liveeventsd [OPTION]...\n"
	"Receive voice-AI call webhooks, keep them in shared memory, show every call live.\n"
	"\n"
	"  --webhook-listen ADDR:PORT    webhook port (default " CONFIG_DEFAULT_WEBHOOK_HOST ":$PORT, or "
	CONFIG_DEFAULT_WEBHOOK_HOST ":" CONFIG_DEFAULT_WEBHOOK_PORT ")\n"
	"  --dashboard-listen ADDR:PORT  dashboard and API (default " CONFIG_DEFAULT_DASHBOARD ")\n"
	"  --arena PATH                  the store: /dev/shm/NAME is a POSIX shared-memory object,\n"
	"                                any other path a file (default " CONFIG_DEFAULT_ARENA ")\n"
	"  --arena-size SIZE             total arena size, e.g. 64M (default 64M)\n"
	"  --webhook-secret-file FILE    accept only webhooks carrying one of the secrets in FILE (one\n"
	"                                per line) as x-interactly-secret or Authorization: Bearer\n"
	"  --dashboard-token-file FILE   the dashboard's access token, made at first start if FILE does\n"
	"                                not exist (default: the arena's path + " CONFIG_TOKEN_SUFFIX ")\n"
	"  --no-auth                     no token for the dashboard: only when it listens on loopback\n"
	"  --insecure-no-auth            no token for the dashboard, even on the LAN (anyone there can\n"
	"                                read every transcript)\n"
	"  --allowed-host NAME           a Host name the dashboard answers to besides IP addresses,\n"
	"                                localhost and this machine's name; .NAME also allows names under\n"
	"                                NAME, '*' any (repeatable, up to 16)\n"
	"  --log-text short|none|full    message text in event log lines: the first 80 characters\n"
	"                                (default), none, or all of it\n"
	"  --max-body SIZE               largest webhook body accepted, also once inflated (default 4M)\n"
	"  --max-headers SIZE            largest request header block (default 16K; more: 431)\n"
	"  --max-header-count N          most headers in a request (default 100; more: 431)\n"
	"  --max-connections N           open connections per port (default 1024; 0: no cap): past it\n"
	"                                the oldest idle one is closed, or if none is idle the new one\n"
	"                                gets 503\n"
	"  --max-client-connections N    the same per client address and port (default 256; 0: no cap)\n"
	"  --keepalive-timeout SECONDS   an idle connection is closed after this (default 120)\n"
	"  --webhook-rate N              webhooks a second per client address (default 1000; past it:\n"
	"                                429; 0: no limit); not with --webhook-secret-file\n"
	"  --webhook-burst N             webhooks at once per client address (default 2000)\n"
	"  --request-timeout SECONDS     time to send a whole request from its first byte (past it:\n"
	"                                408) (default 30)\n"
	"  --json-max-depth N            deepest JSON nesting accepted (default 64)\n"
	"  --json-max-tokens N           most JSON tokens accepted (default 262144)\n"
	"  --call-idle-timeout SECONDS   a call silent this long is no longer kept whole when the\n"
	"                                arena is full (default 7200)\n"
	"  --log-refusals N              log at most N refused requests of a kind per 10 s, then\n"
	"                                count the rest (default 10; 0: log every one)\n"
	"  --stream-clients N            open event streams (GET /api/stream) allowed (default 256)\n"
	"  --stream-backlog SIZE         unsent bytes a stream client may hold before it is dropped\n"
	"                                and told to reconnect (default 1M)\n"
	"  --stream-heartbeat SECONDS    a comment on idle streams this often (default 15)\n"
	"  --restart-backoff MS          delay before restarting a dead worker (default 100)\n"
	"  --restart-backoff-max MS      longest delay after repeated deaths (default 5000)\n"
	"  --restart-limit N             restarts allowed per worker per interval, 0 = no limit (default 10)\n"
	"  --restart-interval SECONDS    the interval of --restart-limit (default 60)\n"
	"  --help                        show this help and exit\n"
	"  --version                     show the version and exit\n"
	"\n"
	"The environment variable PORT sets the webhook port when --webhook-listen is not given.\n";

enum {
	OPT_WEBHOOK = 256,
	OPT_DASHBOARD,
	OPT_ARENA,
	OPT_ARENA_SIZE,
	OPT_MAX_BODY,
	OPT_MAX_HEADERS,
	OPT_REQ_TIMEOUT,
	OPT_JSON_DEPTH,
	OPT_JSON_TOKENS,
	OPT_IDLE,
	OPT_BACKOFF,
	OPT_BACKOFF_MAX,
	OPT_RESTART_LIMIT,
	OPT_RESTART_INTERVAL,
	OPT_SECRET_FILE,
	OPT_LOG_REFUSALS,
	OPT_STREAM_CLIENTS,
	OPT_STREAM_BACKLOG,
	OPT_STREAM_HEARTBEAT,
	OPT_TOKEN_FILE,
	OPT_NO_AUTH,
	OPT_INSECURE_NO_AUTH,
	OPT_ALLOWED_HOST,
	OPT_LOG_TEXT,
	OPT_MAX_HEADER_COUNT,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_CLIENT_CONNECTIONS,
	OPT_KEEPALIVE,
	OPT_WEBHOOK_RATE,
	OPT_WEBHOOK_BURST,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
	{ "webhook-listen", required_argument, NULL, OPT_WEBHOOK },
	{ "dashboard-listen", required_argument, NULL, OPT_DASHBOARD },
	{ "arena", required_argument, NULL, OPT_ARENA },
	{ "arena-size", required_argument, NULL, OPT_ARENA_SIZE },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "max-headers", required_argument, NULL, OPT_MAX_HEADERS },
	{ "request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT },
	{ "json-max-depth", required_argument, NULL, OPT_JSON_DEPTH },
	{ "json-max-tokens", required_argument, NULL, OPT_JSON_TOKENS },
	{ "call-idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "restart-backoff", required_argument, NULL, OPT_BACKOFF },
	{ "restart-backoff-max", required_argument, NULL, OPT_BACKOFF_MAX },
	{ "restart-limit", required_argument, NULL, OPT_RESTART_LIMIT },
	{ "restart-interval", required_argument, NULL, OPT_RESTART_INTERVAL },
	{ "webhook-secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "log-refusals", required_argument, NULL, OPT_LOG_REFUSALS },
	{ "stream-clients", required_argument, NULL, OPT_STREAM_CLIENTS },
	{ "stream-backlog", required_argument, NULL, OPT_STREAM_BACKLOG },
	{ "stream-heartbeat", required_argument, NULL, OPT_STREAM_HEARTBEAT },
	{ "dashboard-token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "no-auth", no_argument, NULL, OPT_NO_AUTH },
	{ "insecure-no-auth", no_argument, NULL, OPT_INSECURE_NO_AUTH },
	{ "allowed-host", required_argument, NULL, OPT_ALLOWED_HOST },
	{ "log-text", required_argument, NULL, OPT_LOG_TEXT },
	{ "max-header-count", required_argument, NULL, OPT_MAX_HEADER_COUNT },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "max-client-connections", required_argument, NULL, OPT_MAX_CLIENT_CONNECTIONS },
	{ "keepalive-timeout", required_argument, NULL, OPT_KEEPALIVE },
	{ "webhook-rate", required_argument, NULL, OPT_WEBHOOK_RATE },
	{ "webhook-burst", required_argument, NULL, OPT_WEBHOOK_BURST },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

int
options_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end || (shift && v > (ULLONG_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int
parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

bool
options_is_loopback(const struct listen_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(in6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127;
	}
	return false;
}

/* A DNS name (letters, digits, '-', '.', '_'), optionally with a leading dot, or '*'. */
static bool
allowed_host_ok(const char *s)
{
	size_t n = strlen(s);
	if (strcmp(s, "*") == 0)
		return true;
	if (n == 0 || n > CONFIG_HOST_MAX || (s[0] == '.' && n == 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || ch == '_'))
			return false;
	}
	return true;
}

int
options_parse_listen(const char *s, struct listen_addr *a, char *err, size_t errlen)
{
	char host[CONFIG_MAX_ADDR];
	const char *port;
	if (strlen(s) >= sizeof(a->text)) {
		snprintf(err, errlen, "listen address too long: %.40s...", s);
		return -1;
	}
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "bad listen address '%s' (expected [IPV6]:PORT)", s);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			snprintf(err, errlen, "bad listen address '%s' (expected ADDR:PORT)", s);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		port = colon + 1;
	}
	unsigned p;
	if (parse_uint(port, 65535, &p) < 0) {
		snprintf(err, errlen, "bad port in listen address '%s'", s);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	const char *h = (host[0] == '\0' || strcmp(host, "*") == 0) ? NULL : host;
	if (!h)
		hints.ai_family = AF_INET;
	int rc = getaddrinfo(h, port, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "cannot resolve listen address '%s': %s", s, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

enum options_result
options_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	const char *webhook = NULL, *dashboard = CONFIG_DEFAULT_DASHBOARD;
	snprintf(c->arena, sizeof(c->arena), "%s", CONFIG_DEFAULT_ARENA);
	c->arena_size = ARENA_DEFAULT_SIZE;
	c->max_body = CONFIG_DEFAULT_MAX_BODY;
	c->max_headers = CONFIG_DEFAULT_MAX_HEADERS;
	c->request_timeout = CONFIG_DEFAULT_REQUEST_TIMEOUT;
	c->json_max_depth = JSON_DEFAULT_MAX_DEPTH;
	c->json_max_tokens = JSON_DEFAULT_MAX_TOKENS;
	c->restart_backoff_ms = CONFIG_DEFAULT_RESTART_BACKOFF_MS;
	c->restart_backoff_max_ms = CONFIG_DEFAULT_RESTART_BACKOFF_MAX_MS;
	c->restart_limit = CONFIG_DEFAULT_RESTART_LIMIT;
	c->restart_interval = CONFIG_DEFAULT_RESTART_INTERVAL;
	c->reset_timeout_ms = CONFIG_DEFAULT_RESET_TIMEOUT_MS;
	c->call_idle_ms = (uint64_t)CONFIG_DEFAULT_CALL_IDLE_S * 1000;
	c->stop_timeout_ms = CONFIG_DEFAULT_STOP_TIMEOUT_MS;
	c->log_refusals = LOG_LIMIT_BURST;
	c->stream_clients = CONFIG_DEFAULT_STREAM_CLIENTS;
	c->stream_backlog = CONFIG_DEFAULT_STREAM_BACKLOG;
	c->stream_heartbeat = CONFIG_DEFAULT_STREAM_HEARTBEAT;
	c->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	c->max_client_connections = CONFIG_DEFAULT_MAX_CLIENT_CONNECTIONS;
	c->keepalive_timeout = CONFIG_DEFAULT_KEEPALIVE;
	c->max_header_count = CONFIG_DEFAULT_MAX_HEADER_COUNT;
	c->webhook_rate = CONFIG_DEFAULT_WEBHOOK_RATE;
	c->webhook_burst = CONFIG_DEFAULT_WEBHOOK_BURST;

	opterr = 0;
	optind = 1;
	int o;
	uint64_t v;
	while ((o = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		const char *name = (optind > 1 && optind - 1 < argc) ? argv[optind - 1] : "?";
		switch (o) {
		case OPT_WEBHOOK: webhook = optarg; break;
		case OPT_DASHBOARD: dashboard = optarg; break;
		case OPT_ARENA:
			if (!optarg[0] || strlen(optarg) >= sizeof(c->arena)) {
				snprintf(err, errlen, "bad --arena path");
				return CONFIG_ERROR;
			}
			snprintf(c->arena, sizeof(c->arena), "%s", optarg);
			break;
		case OPT_ARENA_SIZE:
			if (options_parse_size(optarg, &v) < 0 || v < ARENA_MIN_SIZE || v > ARENA_MAX_SIZE) {
				snprintf(err, errlen, "bad --arena-size '%s' (between 1M and 1T)", optarg);
				return CONFIG_ERROR;
			}
			c->arena_size = v;
			break;
		case OPT_MAX_BODY:
			if (options_parse_size(optarg, &v) < 0 || v < 1024 || v > (256u << 20)) {
				snprintf(err, errlen, "bad --max-body '%s' (between 1K and 256M)", optarg);
				return CONFIG_ERROR;
			}
			c->max_body = (size_t)v;
			break;
		case OPT_MAX_HEADERS:
			if (options_parse_size(optarg, &v) < 0 || v < 1024 || v > (1u << 20)) {
				snprintf(err, errlen, "bad --max-headers '%s' (between 1K and 1M)", optarg);
				return CONFIG_ERROR;
			}
			c->max_headers = (size_t)v;
			break;
		case OPT_REQ_TIMEOUT:
			if (parse_uint(optarg, 3600, &c->request_timeout) < 0 || c->request_timeout == 0) {
				snprintf(err, errlen, "bad --request-timeout '%s' (1 to 3600 seconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_STREAM_CLIENTS:
			if (parse_uint(optarg, 100000, &c->stream_clients) < 0) {
				snprintf(err, errlen, "bad --stream-clients '%s' (0 to 100000; 0 turns the stream off)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_STREAM_BACKLOG:
			if (options_parse_size(optarg, &v) < 0 || v < 4096 || v > (1u << 30)) {
				snprintf(err, errlen, "bad --stream-backlog '%s' (between 4K and 1G)", optarg);
				return CONFIG_ERROR;
			}
			c->stream_backlog = (size_t)v;
			break;
		case OPT_STREAM_HEARTBEAT:
			if (parse_uint(optarg, 3600, &c->stream_heartbeat) < 0 || c->stream_heartbeat == 0) {
				snprintf(err, errlen, "bad --stream-heartbeat '%s' (1 to 3600 seconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_JSON_DEPTH:
			if (parse_uint(optarg, 1024, &c->json_max_depth) < 0 || c->json_max_depth == 0) {
				snprintf(err, errlen, "bad --json-max-depth '%s' (1 to 1024)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_JSON_TOKENS:
			if (parse_uint(optarg, 1u << 26, &c->json_max_tokens) < 0 || c->json_max_tokens < 16) {
				snprintf(err, errlen, "bad --json-max-tokens '%s' (16 to 67108864)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_IDLE: {
			unsigned secs;
			if (parse_uint(optarg, 30u * 86400, &secs) < 0 || secs == 0) {
				snprintf(err, errlen, "bad --call-idle-timeout '%s' (1 s to 30 days)", optarg);
				return CONFIG_ERROR;
			}
			c->call_idle_ms = (uint64_t)secs * 1000;
			break;
		}
		case OPT_BACKOFF:
			if (parse_uint(optarg, 600000, &c->restart_backoff_ms) < 0) {
				snprintf(err, errlen, "bad --restart-backoff '%s' (milliseconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_BACKOFF_MAX:
			if (parse_uint(optarg, 600000, &c->restart_backoff_max_ms) < 0) {
				snprintf(err, errlen, "bad --restart-backoff-max '%s' (milliseconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_RESTART_LIMIT:
			if (parse_uint(optarg, 1000000, &c->restart_limit) < 0) {
				snprintf(err, errlen, "bad --restart-limit '%s'", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_RESTART_INTERVAL:
			if (parse_uint(optarg, 86400, &c->restart_interval) < 0 || c->restart_interval == 0) {
				snprintf(err, errlen, "bad --restart-interval '%s' (1 to 86400 seconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_SECRET_FILE:
			if (!optarg[0] || strlen(optarg) >= sizeof(c->webhook_secret_file)) {
				snprintf(err, errlen, "bad --webhook-secret-file path");
				return CONFIG_ERROR;
			}
			snprintf(c->webhook_secret_file, sizeof(c->webhook_secret_file), "%s", optarg);
			break;
		case OPT_LOG_REFUSALS:
			if (parse_uint(optarg, 1000000, &c->log_refusals) < 0) {
				snprintf(err, errlen, "bad --log-refusals '%s' (0 to 1000000)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_TOKEN_FILE:
			if (!optarg[0] || strlen(optarg) >= sizeof(c->dashboard_token_file)) {
				snprintf(err, errlen, "bad --dashboard-token-file path");
				return CONFIG_ERROR;
			}
			snprintf(c->dashboard_token_file, sizeof(c->dashboard_token_file), "%s", optarg);
			break;
		case OPT_NO_AUTH: c->no_auth = true; break;
		case OPT_INSECURE_NO_AUTH: c->no_auth = c->insecure_no_auth = true; break;
		case OPT_ALLOWED_HOST:
			if (!allowed_host_ok(optarg) || c->nallowed_hosts == CONFIG_ALLOWED_HOSTS_MAX) {
				snprintf(err, errlen,
				         "bad --allowed-host '%.64s' (a DNS name, .NAME for NAME and the names under it, or '*'; at "
				         "most %d)",
				         optarg, CONFIG_ALLOWED_HOSTS_MAX);
				return CONFIG_ERROR;
			}
			snprintf(c->allowed_hosts[c->nallowed_hosts++], CONFIG_HOST_MAX + 1, "%s", optarg);
			break;
		case OPT_LOG_TEXT:
			if (options_parse_log_text(optarg, &c->log_text) < 0) {
				snprintf(err, errlen, "bad --log-text '%.32s' (short, none or full)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_MAX_HEADER_COUNT:
			if (parse_uint(optarg, 10000, &c->max_header_count) < 0 || c->max_header_count < 8) {
				snprintf(err, errlen, "bad --max-header-count '%s' (8 to 10000)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_MAX_CONNECTIONS:
			if (parse_uint(optarg, 1000000, &c->max_connections) < 0 ||
			    (c->max_connections && c->max_connections < 4)) {
				snprintf(err, errlen, "bad --max-connections '%s' (4 to 1000000, or 0: no cap)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_MAX_CLIENT_CONNECTIONS:
			if (parse_uint(optarg, 1000000, &c->max_client_connections) < 0 ||
			    (c->max_client_connections && c->max_client_connections < 2)) {
				snprintf(err, errlen, "bad --max-client-connections '%s' (2 to 1000000, or 0: no cap)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_KEEPALIVE:
			if (parse_uint(optarg, 86400, &c->keepalive_timeout) < 0 || c->keepalive_timeout == 0) {
				snprintf(err, errlen, "bad --keepalive-timeout '%s' (1 to 86400 seconds)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_WEBHOOK_RATE:
			if (parse_uint(optarg, 10000000, &c->webhook_rate) < 0) {
				snprintf(err, errlen, "bad --webhook-rate '%s' (0 to 10000000 a second; 0: no limit)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_WEBHOOK_BURST:
			if (parse_uint(optarg, 10000000, &c->webhook_burst) < 0 || c->webhook_burst == 0) {
				snprintf(err, errlen, "bad --webhook-burst '%s' (1 to 10000000)", optarg);
				return CONFIG_ERROR;
			}
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return CONFIG_EXIT_OK;
		case OPT_VERSION:
			printf("liveeventsd %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT_OK;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value (try --help)", name);
			return CONFIG_ERROR;
		default:
			snprintf(err, errlen, "unknown option '%s' (try --help)", name);
			return CONFIG_ERROR;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (try --help)", argv[optind]);
		return CONFIG_ERROR;
	}
	if (c->restart_backoff_max_ms < c->restart_backoff_ms)
		c->restart_backoff_max_ms = c->restart_backoff_ms;
	char buf[CONFIG_MAX_ADDR];
	if (!webhook) {
		const char *port = getenv("PORT");
		unsigned p;
		if (port && *port) {
			if (parse_uint(port, 65535, &p) < 0 || p == 0) {
				snprintf(err, errlen, "bad PORT in the environment: '%.20s'", port);
				return CONFIG_ERROR;
			}
			snprintf(buf, sizeof(buf), "%s:%u", CONFIG_DEFAULT_WEBHOOK_HOST, p);
		} else {
			snprintf(buf, sizeof(buf), "%s:%s", CONFIG_DEFAULT_WEBHOOK_HOST, CONFIG_DEFAULT_WEBHOOK_PORT);
		}
		webhook = buf;
	}
	if (options_parse_listen(webhook, &c->webhook, err, errlen) < 0 ||
	    options_parse_listen(dashboard, &c->dashboard, err, errlen) < 0)
		return CONFIG_ERROR;
	if (c->no_auth && !c->insecure_no_auth && !options_is_loopback(&c->dashboard)) {
		snprintf(err, errlen,
		         "--no-auth needs the dashboard on loopback only (e.g. --dashboard-listen 127.0.0.1:8080): on %s "
		         "anyone who can reach it could read every transcript (--insecure-no-auth if that is really meant)",
		         c->dashboard.text);
		return CONFIG_ERROR;
	}
	if (!c->dashboard_token_file[0])
		snprintf(c->dashboard_token_file, sizeof(c->dashboard_token_file), "%s" CONFIG_TOKEN_SUFFIX, c->arena);
	return CONFIG_OK;
}

int
options_parse_log_text(const char *s, enum log_text_mode *out)
{
	static const char *const words[] = { [LOG_TEXT_SHORT] = "short", [LOG_TEXT_NONE] = "none", [LOG_TEXT_FULL] = "full" };
	for (size_t m = 0; m < sizeof(words) / sizeof(words[0]); m++)
		if (strcmp(s, words[m]) == 0) {
			*out = (enum log_text_mode)m;
			return 0;
		}
	return -1;
}
