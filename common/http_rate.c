/* http_rate: a token bucket per client address (see http_rate.h). */
#include "config.h"

#include "http_rate.h"

#include <netinet/in.h>
#include <string.h>

#include "hash.h"
#include "http.h"

void
http_rate_init(struct http_rate *r, unsigned rate, unsigned burst)
{
	memset(r, 0, sizeof(*r));
	r->rate = rate;
	r->burst = burst ? burst : rate;
}

static void
addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		http_addr_group(key);
	}
}

uint64_t
http_rate_take(struct http_rate *r, const struct sockaddr *sa, uint64_t now_ms)
{
	if (!r->rate)
		return 0;
	unsigned char key[16];
	addr_key(sa, key);
	size_t h = (size_t)hash_bytes(key, sizeof(key)) % HTTP_RATE_SLOTS;
	struct http_rate_slot *s = NULL, *stalest = NULL;
	for (size_t i = 0; i < HTTP_RATE_PROBE && !s; i++) {
		struct http_rate_slot *c = &r->slot[(h + i) % HTTP_RATE_SLOTS];
		if (c->last_ms && memcmp(c->addr, key, 16) == 0)
			s = c;
		else if (!stalest || c->last_ms < stalest->last_ms)
			stalest = c;
	}
	uint64_t full = (uint64_t)r->burst * 1000;
	if (!s) { /* a new address, or one whose slot was given up: a full bucket */
		s = stalest;
		memcpy(s->addr, key, 16);
		s->milli = full;
		s->last_ms = now_ms ? now_ms : 1;
	}
	if (now_ms > s->last_ms) {
		uint64_t add = (now_ms - s->last_ms) * r->rate; /* ms × per second = thousandths */
		s->milli = add >= full - s->milli ? full : s->milli + add;
		s->last_ms = now_ms;
	}
	if (s->milli >= 1000) {
		s->milli -= 1000;
		return 0;
	}
	return (1000 - s->milli + r->rate - 1) / r->rate;
}
