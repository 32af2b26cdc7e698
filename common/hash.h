/* hash: SipHash-1-3 with a per-process random key, for the in-memory indexes (calls by id, messages
 * by key). Call ids and message ids come from the internet, so an unkeyed hash would let a sender
 * degrade every lookup to a linear scan. */
#ifndef LIVEEVENTS_HASH_H
#define LIVEEVENTS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Seeds the process key from getrandom(); call once at start (and again after fork if wanted). */
void hash_seed(void);
uint64_t hash_bytes(const void *p, size_t n);

#endif
