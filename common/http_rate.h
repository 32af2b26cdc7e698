/* http_rate: the webhook request rate per client address, as a token bucket per address (rate
 * requests a second, up to burst at once), in a fixed table so a flood of addresses costs no memory:
 * an address not seen lately gives its slot up to a new one, and starts afresh when it comes back.
 * Behind a tunnel every webhook comes from the tunnel's address, so the rate is the tunnel's. */
#ifndef LIVEEVENTS_HTTP_RATE_H
#define LIVEEVENTS_HTTP_RATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_RATE_SLOTS 4096 /* addresses followed at once */
#define HTTP_RATE_PROBE 8    /* slots looked at for an address; the stalest is taken over */

struct http_rate_slot {
	unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d, so one address is one key either way */
	uint64_t last_ms;       /* 0 = unused */
	uint64_t milli;         /* tokens, in thousandths */
};

struct http_rate {
	unsigned rate, burst; /* rate 0: no limit */
	struct http_rate_slot slot[HTTP_RATE_SLOTS];
};

void http_rate_init(struct http_rate *r, unsigned rate, unsigned burst);
/* Takes one request's token for the address sa at now_ms: 0 when it may go on, else how many ms
 * until it could (at least 1). */
uint64_t http_rate_take(struct http_rate *r, const struct sockaddr *sa, uint64_t now_ms);

#endif
