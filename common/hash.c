/* hash: SipHash-1-3 (Aumasson & Bernstein), keyed per process. */
#include "config.h"

#include "hash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t key0 = 0x736f6d6570736575ull, key1 = 0x646f72616e646f6dull;

void
hash_seed(void)
{
	uint64_t k[2];
	if (getrandom(k, sizeof(k), 0) != sizeof(k)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
		k[1] = (uint64_t)ts.tv_sec * 0xC2B2AE3D27D4EB4Full ^ (uintptr_t)&ts;
	}
	key0 = k[0];
	key1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                 \
	do {                                                                                     \
		v0 += v1;                                                                        \
		v1 = ROTL(v1, 13);                                                               \
		v1 ^= v0;                                                                        \
		v0 = ROTL(v0, 32);                                                               \
		v2 += v3;                                                                        \
		v3 = ROTL(v3, 16);                                                               \
		v3 ^= v2;                                                                        \
		v0 += v3;                                                                        \
		v3 = ROTL(v3, 21);                                                               \
		v3 ^= v0;                                                                        \
		v2 += v1;                                                                        \
		v1 = ROTL(v1, 17);                                                               \
		v1 ^= v2;                                                                        \
		v2 = ROTL(v2, 32);                                                               \
	} while (0)

uint64_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *in = p;
	uint64_t v0 = 0x736f6d6570736575ull ^ key0;
	uint64_t v1 = 0x646f72616e646f6dull ^ key1;
	uint64_t v2 = 0x6c7967656e657261ull ^ key0;
	uint64_t v3 = 0x7465646279746573ull ^ key1;
	uint64_t b = (uint64_t)n << 56;
	size_t full = n & ~(size_t)7;
	for (size_t i = 0; i < full; i += 8) {
		uint64_t m;
		memcpy(&m, in + i, 8);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t t = 0;
	memcpy(&t, in + full, n - full);
	b |= t;
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}
