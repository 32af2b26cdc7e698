/* sse_clients: light Server-Sent-Events clients for scripts/bench, and the webhook sender whose
 * events they time.
 *
 * It opens N streams (GET /api/stream on the dashboard port, HTTP/1.1, chunked or not) and waits
 * until each has said hello. Then, either:
 *   --events E   it POSTs E webhooks, one at a time, at least --interval-ms apart, each a new call
 *                (the body template's @CALL@ is PREFIX-NNNNNN), and times, for every stream, the
 *                first `event: call` whose summary.id is that call: webhook-to-stream latency,
 *                from just before the POST is written to the read that completes the event. It
 *                also times each POST's answer (the webhook's own round trip). --sends FILE keeps
 *                each call's send time (CLOCK_REALTIME, ns) for a browser timing the same calls.
 *   --listen     it only reads the streams until SIGTERM or SIGINT (scripts/bench holds 10 of them
 *                open under wrk's load), then says how much each received and whether any was told
 *                it overflowed or was closed.
 * It prints "RESULT key=value ..." lines and exits 0 whatever the figures; 1 only if it could not
 * run (a stream did not open, a webhook was refused).
 *
 *   sse_clients --stream-port P --clients N [--host 127.0.0.1] [--path /api/stream]
 *               (--listen | --events E --webhook-port W --body TEMPLATE [--interval-ms I]
 *                [--prefix STR] [--sends FILE] [--grace-ms G])
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SSE_MAX_CLIENTS 4096       /* streams one run may open */
#define SSE_MAX_EVENTS 1000000     /* webhooks one run may send */
#define SSE_OPEN_TIMEOUT_MS 10000  /* every stream must have said hello by then */
#define SSE_ACK_TIMEOUT_MS 10000   /* a webhook not answered by then ends the run */
#define SSE_DEFAULT_GRACE_MS 3000  /* after the last answer, wait this long for late events */
#define SSE_DEFAULT_INTERVAL_MS 20 /* between webhooks unless --interval-ms says otherwise */
#define SSE_READ_CHUNK 65536       /* bytes per read() */
#define SSE_MAX_LINE (8u << 20)    /* an SSE line longer than this is a broken stream */
#define SSE_MAX_HEAD 16384         /* an HTTP response head longer than this is a broken stream */
#define SSE_BASE_TS 1784041345600LL /* epoch ms for @TS@ of the first webhook */
#define SSE_SUMMARY_KEY "\"summary\":{\"id\":\""

/* --- small helpers ------------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		fprintf(stderr, "sse_clients: out of memory\n");
		exit(1);
	}
	return p;
}

struct strbuf {
	char *p;
	size_t len, cap;
};

static void
sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			fprintf(stderr, "sse_clients: out of memory\n");
			exit(1);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static int
connect_to(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "sse_clients: bad IPv4 address %s\n", host);
		exit(1);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "sse_clients: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "sse_clients: write: %s\n", strerror(errno));
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
pct_ms(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return -1;
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1e6;
}

static void
print_latency(const char *kind, size_t clients, size_t expected, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("RESULT kind=%s clients=%zu samples=%zu missing=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
	       kind, clients, n, expected - n, pct_ms(v, n, 50), pct_ms(v, n, 90), pct_ms(v, n, 99),
	       n ? (double)v[n - 1] / 1e6 : -1.0);
}

/* --- one stream ---------------------------------------------------------------------------------- */

enum chunk_state { CH_SIZE, CH_SIZE_EXT, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_DONE };

struct client {
	int fd;
	bool head_done, chunked, hello, closed;
	struct strbuf head;
	enum chunk_state cs;
	uint64_t chunk_left;
	struct strbuf line, data;
	char event[32];
	uint64_t events, calls, heartbeats, overflows, bytes;
	int64_t *arrival; /* per webhook: when this stream got its call (0: not yet) */
};

struct run {
	const char *prefix;
	size_t prefix_len;
	size_t nevents;
	size_t received; /* (stream, webhook) pairs seen */
	int64_t read_at; /* the time of the read being parsed */
};

static void
dispatch(struct run *r, struct client *c)
{
	if (strcmp(c->event, "hello") == 0) {
		c->hello = true;
	} else if (strcmp(c->event, "overflow") == 0) {
		c->overflows++;
	} else if (strcmp(c->event, "call") == 0 && c->data.p) {
		c->calls++;
		const char *k = strstr(c->data.p, SSE_SUMMARY_KEY);
		if (k && r->nevents) {
			k += sizeof(SSE_SUMMARY_KEY) - 1;
			if (strncmp(k, r->prefix, r->prefix_len) == 0 && k[r->prefix_len] == '-') {
				char *end;
				unsigned long long idx = strtoull(k + r->prefix_len + 1, &end, 10);
				if (*end == '"' && idx < r->nevents && c->arrival[idx] == 0) {
					c->arrival[idx] = r->read_at;
					r->received++;
				}
			}
		}
	}
	if (c->event[0])
		c->events++;
	c->event[0] = '\0';
	c->data.len = 0;
	if (c->data.p)
		c->data.p[0] = '\0';
}

static void
sse_line(struct run *r, struct client *c, char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		s[--n] = '\0';
	if (n == 0) {
		dispatch(r, c);
	} else if (s[0] == ':') {
		c->heartbeats++;
	} else if (strncmp(s, "event:", 6) == 0) {
		const char *v = s + 6 + (s[6] == ' ');
		snprintf(c->event, sizeof(c->event), "%s", v);
	} else if (strncmp(s, "data:", 5) == 0) {
		const char *v = s + 5 + (s[5] == ' ');
		if (c->data.len)
			sb_add(&c->data, "\n", 1);
		sb_add(&c->data, v, strlen(v));
	}
}

static void
sse_bytes(struct run *r, struct client *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (!c->line.p)
				sb_add(&c->line, "", 0);
			sse_line(r, c, c->line.p, c->line.len);
			c->line.len = 0;
			c->line.p[0] = '\0';
		} else {
			size_t j = i;
			while (j < n && p[j] != '\n')
				j++;
			sb_add(&c->line, p + i, j - i);
			if (c->line.len > SSE_MAX_LINE) {
				fprintf(stderr, "sse_clients: an SSE line over %u bytes\n", SSE_MAX_LINE);
				exit(1);
			}
			i = j - 1;
		}
	}
}

static void
body_bytes(struct run *r, struct client *c, const char *p, size_t n)
{
	if (!c->chunked) {
		sse_bytes(r, c, p, n);
		return;
	}
	size_t i = 0;
	while (i < n) {
		char ch = p[i];
		switch (c->cs) {
		case CH_SIZE:
			i++;
			if (ch >= '0' && ch <= '9')
				c->chunk_left = c->chunk_left * 16 + (uint64_t)(ch - '0');
			else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
				c->chunk_left = c->chunk_left * 16 + (uint64_t)((ch | 0x20) - 'a' + 10);
			else if (ch == '\n')
				c->cs = c->chunk_left ? CH_DATA : CH_DONE;
			else
				c->cs = CH_SIZE_EXT;
			break;
		case CH_SIZE_EXT:
			i++;
			if (ch == '\n')
				c->cs = c->chunk_left ? CH_DATA : CH_DONE;
			break;
		case CH_DATA: {
			size_t take = n - i;
			if (take > c->chunk_left)
				take = (size_t)c->chunk_left;
			sse_bytes(r, c, p + i, take);
			i += take;
			c->chunk_left -= take;
			if (c->chunk_left == 0)
				c->cs = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			i++;
			c->cs = ch == '\r' ? CH_DATA_LF : CH_SIZE;
			if (ch == '\n')
				c->cs = CH_SIZE;
			break;
		case CH_DATA_LF:
			i++;
			c->cs = CH_SIZE;
			break;
		case CH_DONE:
			return;
		}
	}
}

/* Reads what is there; false when the stream has ended. */
static bool
client_read(struct run *r, struct client *c)
{
	static char buf[SSE_READ_CHUNK];
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		r->read_at = now_ns();
		c->bytes += (uint64_t)n;
		const char *p = buf;
		size_t len = (size_t)n;
		if (!c->head_done) {
			sb_add(&c->head, p, len);
			char *end = strstr(c->head.p, "\r\n\r\n");
			if (!end) {
				if (c->head.len > SSE_MAX_HEAD) {
					fprintf(stderr, "sse_clients: no end to the response head\n");
					exit(1);
				}
				continue;
			}
			if (strncmp(c->head.p, "HTTP/1.1 200", 12) != 0 && strncmp(c->head.p, "HTTP/1.0 200", 12) != 0) {
				fprintf(stderr, "sse_clients: the stream answered %.*s\n", (int)strcspn(c->head.p, "\r"), c->head.p);
				exit(1);
			}
			c->head_done = true;
			c->chunked = strcasestr(c->head.p, "\ntransfer-encoding: chunked") != NULL;
			size_t used = (size_t)(end + 4 - c->head.p);
			size_t rest = c->head.len - used;
			/* The bytes after the head are the end of this read. */
			p = buf + (len - rest);
			len = rest;
		}
		body_bytes(r, c, p, len);
	}
}

/* --- the webhook sender -------------------------------------------------------------------------- */

struct sender {
	int fd;
	const char *host;
	int port;
	char *tmpl;
	struct strbuf req, resp;
	bool waiting;
	size_t next;      /* the next webhook to send */
	int64_t *sent_at, *acked_at;
};

static void
append_body(struct strbuf *b, const char *tmpl, const char *prefix, size_t idx)
{
	char call[128], msg[160], ts[32];
	snprintf(call, sizeof(call), "%s-%06zu", prefix, idx);
	snprintf(msg, sizeof(msg), "%s-msg-%zu", prefix, idx);
	snprintf(ts, sizeof(ts), "%lld", SSE_BASE_TS + (long long)idx);
	const char *p = tmpl;
	while (*p) {
		const char *at = strchr(p, '@');
		if (!at) {
			sb_add(b, p, strlen(p));
			break;
		}
		sb_add(b, p, (size_t)(at - p));
		if (strncmp(at, "@CALL@", 6) == 0) {
			sb_add(b, call, strlen(call));
			p = at + 6;
		} else if (strncmp(at, "@MSG@", 5) == 0) {
			sb_add(b, msg, strlen(msg));
			p = at + 5;
		} else if (strncmp(at, "@TS@", 4) == 0) {
			sb_add(b, ts, strlen(ts));
			p = at + 4;
		} else {
			sb_add(b, "@", 1);
			p = at + 1;
		}
	}
}

static void
sender_send(struct sender *s, const char *prefix)
{
	struct strbuf body = { 0 };
	append_body(&body, s->tmpl, prefix, s->next);
	s->req.len = 0;
	char head[256];
	int hn = snprintf(head, sizeof(head),
	                  "POST /webhook HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
	                  "Content-Length: %zu\r\n\r\n",
	                  s->host, s->port, body.len);
	sb_add(&s->req, head, (size_t)hn);
	sb_add(&s->req, body.p, body.len);
	free(body.p);
	s->resp.len = 0;
	s->sent_at[s->next] = now_ns();
	write_all(s->fd, s->req.p, s->req.len);
	s->waiting = true;
}

/* Reads the answer; true once a whole one is in. */
static bool
sender_read(struct sender *s)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			fprintf(stderr, "sse_clients: the webhook connection closed\n");
			exit(1);
		}
		sb_add(&s->resp, buf, (size_t)n);
	}
	if (!s->resp.p)
		return false;
	char *end = strstr(s->resp.p, "\r\n\r\n");
	if (!end)
		return false;
	const char *cl = strcasestr(s->resp.p, "\ncontent-length:");
	size_t blen = cl ? strtoul(cl + 16, NULL, 10) : 0;
	if (s->resp.len < (size_t)(end + 4 - s->resp.p) + blen)
		return false;
	if (strncmp(s->resp.p, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "sse_clients: the webhook was answered %.*s\n", (int)strcspn(s->resp.p, "\r"), s->resp.p);
		exit(1);
	}
	s->acked_at[s->next] = now_ns();
	s->next++;
	s->waiting = false;
	return true;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "sse_clients: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	struct strbuf b = { 0 };
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&b, buf, n);
	fclose(f);
	while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r'))
		b.p[--b.len] = '\0';
	return b.p;
}

/* --- main ---------------------------------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr, "usage: sse_clients --stream-port P --clients N [--host H] [--path P]\n"
	                "       (--listen | --events E --webhook-port W --body TEMPLATE [--interval-ms I]\n"
	                "        [--prefix STR] [--sends FILE] [--grace-ms G])\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = "/api/stream", *body = NULL, *prefix = "lat", *sends = NULL;
	long stream_port = 0, webhook_port = 0, nclients = 0, nevents = 0;
	long interval_ms = SSE_DEFAULT_INTERVAL_MS, grace_ms = SSE_DEFAULT_GRACE_MS;
	bool listen_only = false;
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },        { "path", required_argument, NULL, 'a' },
		{ "stream-port", required_argument, NULL, 's' }, { "webhook-port", required_argument, NULL, 'w' },
		{ "clients", required_argument, NULL, 'c' },     { "events", required_argument, NULL, 'e' },
		{ "interval-ms", required_argument, NULL, 'i' }, { "grace-ms", required_argument, NULL, 'g' },
		{ "body", required_argument, NULL, 'b' },        { "prefix", required_argument, NULL, 'p' },
		{ "sends", required_argument, NULL, 'o' },       { "listen", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h': host = optarg; break;
		case 'a': path = optarg; break;
		case 's': stream_port = strtol(optarg, NULL, 10); break;
		case 'w': webhook_port = strtol(optarg, NULL, 10); break;
		case 'c': nclients = strtol(optarg, NULL, 10); break;
		case 'e': nevents = strtol(optarg, NULL, 10); break;
		case 'i': interval_ms = strtol(optarg, NULL, 10); break;
		case 'g': grace_ms = strtol(optarg, NULL, 10); break;
		case 'b': body = optarg; break;
		case 'p': prefix = optarg; break;
		case 'o': sends = optarg; break;
		case 'l': listen_only = true; break;
		default: usage();
		}
	}
	if (stream_port <= 0 || nclients < 0 || nclients > SSE_MAX_CLIENTS || nevents < 0 || nevents > SSE_MAX_EVENTS ||
	    interval_ms < 0 || grace_ms < 0 || (listen_only == (nevents > 0)) ||
	    (nevents > 0 && (webhook_port <= 0 || !body)))
		usage();

	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct run r = { .prefix = prefix, .prefix_len = strlen(prefix), .nevents = (size_t)nevents };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		fprintf(stderr, "sse_clients: epoll: %s\n", strerror(errno));
		return 1;
	}
	struct client *cl = xmalloc(sizeof(*cl) * (size_t)(nclients ? nclients : 1));
	for (long i = 0; i < nclients; i++) {
		struct client *c = &cl[i];
		c->fd = connect_to(host, (int)stream_port);
		c->arrival = xmalloc(sizeof(int64_t) * (size_t)(nevents ? nevents : 1));
		char req[512];
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%ld\r\nAccept: text/event-stream\r\n\r\n",
		                 path, host, stream_port);
		write_all(c->fd, req, (size_t)n);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}

	struct sender s = { .fd = -1, .host = host, .port = (int)webhook_port };
	const uint64_t sender_tag = UINT64_MAX;
	if (nevents > 0) {
		s.tmpl = read_file(body);
		s.sent_at = xmalloc(sizeof(int64_t) * (size_t)nevents);
		s.acked_at = xmalloc(sizeof(int64_t) * (size_t)nevents);
		s.fd = connect_to(host, (int)webhook_port);
		fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = sender_tag };
		epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
	}

	/* Phases: 0 opening the streams, 1 sending, 2 waiting for the last events, 3 done. */
	int phase = 0;
	int64_t phase_deadline = now_ns() + (int64_t)SSE_OPEN_TIMEOUT_MS * 1000000;
	int64_t next_send = 0;
	size_t opened = 0, closed = 0;
	const size_t expected = (size_t)nclients * (size_t)nevents;
	struct epoll_event evs[64];
	while (phase < 3) {
		int64_t t = now_ns();
		if (phase == 0 && opened == (size_t)nclients) {
			if (listen_only) {
				printf("READY clients=%ld\n", nclients);
				fflush(stdout);
				phase = 2;
				phase_deadline = INT64_MAX;
			} else {
				phase = 1;
				next_send = t;
			}
		}
		if (phase == 1 && !s.waiting && s.next == (size_t)nevents) {
			phase = 2;
			phase_deadline = t + (int64_t)grace_ms * 1000000;
		}
		if (phase == 1 && !s.waiting && t >= next_send) {
			sender_send(&s, prefix);
			next_send = s.sent_at[s.next] + (int64_t)interval_ms * 1000000;
			phase_deadline = t + (int64_t)SSE_ACK_TIMEOUT_MS * 1000000;
		}
		if (phase == 2 && ((!listen_only && r.received == expected) || stop_flag || closed == (size_t)nclients))
			break;
		if (stop_flag && phase < 2)
			break;
		if (t > phase_deadline) {
			if (phase == 0) {
				fprintf(stderr, "sse_clients: only %zu of %ld streams opened\n", opened, nclients);
				return 1;
			}
			if (phase == 1) {
				fprintf(stderr, "sse_clients: webhook %zu not answered\n", s.next);
				return 1;
			}
			break;
		}
		int64_t wake = phase_deadline;
		if (phase == 1 && !s.waiting && next_send < wake)
			wake = next_send;
		int64_t wait_ns = wake - t;
		int timeout = wait_ns <= 0 ? 0 : wait_ns > 1000000000 ? 1000 : (int)((wait_ns + 999999) / 1000000);
		int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "sse_clients: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 == sender_tag) {
				if (s.waiting)
					sender_read(&s);
				continue;
			}
			struct client *c = &cl[evs[k].data.u64];
			bool had_hello = c->hello;
			if (!client_read(&r, c)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				c->closed = true;
				closed++;
				if (phase == 0) {
					fprintf(stderr, "sse_clients: a stream closed before its hello\n");
					return 1;
				}
			}
			if (!had_hello && c->hello)
				opened++;
		}
	}

	if (listen_only || nevents == 0) {
		uint64_t emin = UINT64_MAX, emax = 0, bytes = 0, overflows = 0, beats = 0;
		for (long i = 0; i < nclients; i++) {
			emin = cl[i].calls < emin ? cl[i].calls : emin;
			emax = cl[i].calls > emax ? cl[i].calls : emax;
			bytes += cl[i].bytes;
			overflows += cl[i].overflows;
			beats += cl[i].heartbeats;
		}
		printf("RESULT kind=listen clients=%ld call_events_min=%" PRIu64 " call_events_max=%" PRIu64
		       " bytes=%" PRIu64 " overflows=%" PRIu64 " closed=%zu heartbeats=%" PRIu64 "\n",
		       nclients, nclients ? emin : 0, emax, bytes, overflows, closed, beats);
		return 0;
	}

	int64_t *lat = xmalloc(sizeof(int64_t) * (expected ? expected : 1));
	size_t nl = 0;
	for (long i = 0; i < nclients; i++)
		for (long e = 0; e < nevents; e++)
			if (cl[i].arrival[e])
				lat[nl++] = cl[i].arrival[e] - s.sent_at[e];
	print_latency("stream", (size_t)nclients, expected, lat, nl);
	nl = 0;
	for (long e = 0; e < nevents; e++)
		lat[nl++] = s.acked_at[e] - s.sent_at[e];
	print_latency("webhook_answer", 1, (size_t)nevents, lat, nl);
	uint64_t overflows = 0;
	for (long i = 0; i < nclients; i++)
		overflows += cl[i].overflows;
	printf("RESULT kind=streams clients=%ld overflows=%" PRIu64 " closed=%zu\n", nclients, overflows, closed);
	if (sends) {
		FILE *f = fopen(sends, "w");
		if (!f) {
			fprintf(stderr, "sse_clients: cannot write %s: %s\n", sends, strerror(errno));
			return 1;
		}
		for (long e = 0; e < nevents; e++)
			fprintf(f, "%s-%06ld %" PRId64 " %" PRId64 "\n", prefix, e, s.sent_at[e], s.acked_at[e]);
		fclose(f);
	}
	return 0;
}
