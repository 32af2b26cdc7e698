/* arena: the shared-memory store, the single source of truth of liveevents (DESIGN.md §3).
 *
 * One fixed-size mapping, written by exactly one process (ingest) and read by any number of others
 * (query, liveeventsctl) that map it read-only. No locks: the writer publishes with release stores,
 * readers copy and then verify that what they copied was not overwritten meanwhile (the seqlock
 * "copy then check" of Varnish's VSL and PostgreSQL's st_changecount). A reader never blocks the
 * writer; a reader that falls behind gets an explicit overrun.
 *
 * LAYOUT (layout version ARENA_LAYOUT_VERSION). All integers are native-endian (the ABI word
 * records which); there are no pointers, only offsets from the start of the mapping.
 *
 *   offset 0      struct arena_header (ARENA_HEADER_SIZE = 4096 bytes)  written once at init,
 *                 immutable afterwards; `magic` is written last, after a release fence, so a
 *                 half-initialised file never carries a valid magic.
 *                   at 0   char[8] magic           "LVEVARNA"
 *                   at 8   u32 layout_version      ARENA_LAYOUT_VERSION; any other is refused, never misread
 *                   at 12  u32 header_size         sizeof(struct arena_header) = 112
 *                   at 16  u64 file_size           must equal the size of the file/shm object (fstat)
 *                   at 24  u64 abi                 ARENA_ABI: byte-order mark and the shared structs' sizes
 *                   at 32  u64 created_ns          CLOCK_REALTIME at init
 *                   at 40  u32 control_off         offset of struct arena_control (= ARENA_HEADER_SIZE)
 *                   at 44  u32 ring_count          ARENA_RINGS (2)
 *                   at 48  ring[r], 32 bytes each  geometry of ring r: u64 slots_off at +0, u64 data_off
 *                                          at +8, u64 data_size at +16 (a power of two), u32
 *                                          slot_count at +24 (a power of two), u32 slot_size at +28
 *                                          (= 48). It is arena_geometry(2 × raw data_size): any
 *                                          other geometry is damage, refused.
 *   offset 4096   struct arena_control (ARENA_CONTROL_SIZE = 4096 bytes), writer-owned; every field
 *                 a lock-free atomic u64, each group on its own 64-byte line:
 *                   at 0   generation      random 64-bit nonce; changes when the data is reset or the
 *                                          structure is re-initialised. Readers compare it on every batch.
 *                   at 8   writer_pid, at 16 writer_start_ns, at 24 heartbeat_ns (CLOCK_REALTIME),
 *                   at 32  recoveries; 40..63 reserved (zero)
 *                   at 64 + 64 r, ring[r]:
 *                          +0  head_seq        next sequence number to publish; records
 *                                              [tail_seq, head_seq) are readable
 *                          +8  tail_seq        oldest readable sequence number
 *                          +16 data_head, +24 data_tail  monotonic byte counters into the data ring;
 *                                              a position p lives at data[p & (data_size - 1)]
 *                          +32 evicted, +40 evicted_bytes  records overwritten to make room
 *                          +48..63 reserved
 *                   at 192 counters[24]    enum arena_counter, monotonic event counters (the unused
 *                                          ones zero)
 *   then, for each ring r (r = ARENA_FACTS, then ARENA_RAW), page aligned:
 *                 slots   slot_count × struct arena_slot; the record with sequence s lives in
 *                         slot[s & (slot_count - 1)]
 *                 data    data_size bytes of payload; a record occupies ARENA_ALIGN(len) bytes from
 *                         its slot's pos and may wrap around the end of the ring
 *
 * RECORD: struct arena_slot (48 bytes), in this order: seq u64 at 0 (stored last, with release),
 * pos u64 at 8 (data position), time_ns u64 at 16 (CLOCK_REALTIME at commit), ref u64 at 24 (facts:
 * the raw record's sequence; raw: the fact's; ARENA_NO_REF for none), len u32 at 32, crc u32 at 36,
 * kind u16 at 40, flags u16 at 42, reserved u32 at 44 (zero). crc is the CRC-32C
 * (Castagnoli) of a 32-byte preamble — seq, time_ns, ref (u64 each), len (u32), kind, flags (u16
 * each), native-endian — followed by the payload: a slot that was never written or was wiped (all
 * zeros) never passes, and neither does a record whose metadata was damaged.
 * Kind 0 (ARENA_KIND_HOLE) is the arena's own: an empty record standing for one lost to damage.
 * The arena treats payloads as bytes; their formats are specified in event_record.h:
 *   facts ring, kind 1: one record per accepted event (what it changed) or one snapshot of a call's
 *     whole state; each names its call's base, the record from which the call's history is
 *     complete. A call whose base is below tail_seq has left the arena whole: show none of it.
 *   raw ring, kind 2: the event's metadata (JSON) and its body as received, secrets redacted.
 * All payload integers are native-endian like the rest; strings are length-prefixed and
 * NUL-terminated, and every length is checked against the record's own length when decoding.
 *
 * WRITER (one process): append = evict from the tail until the record fits (tail_seq and data_tail
 * are release-stored, then a release fence, before any evicted byte is reused), copy the payload in,
 * fill the slot, store slot.seq. publish = store head_seq with release (the commit point), then
 * data_head. A writer killed at any moment leaves only invisible bytes beyond head_seq. The next
 * writer's recovery (arena_recover) takes no counter on its word, since the control block is memory
 * anyone with write access can change: head_seq stands when record head_seq - 1 is whole, and is
 * moved forward when whole records continue from it exactly to data_head (a head moved back), or
 * rebuilt as 1 + the newest whole record in any slot; tail_seq stands when its record starts at
 * data_tail, and otherwise moves to the record that does (records older than the true tail are
 * evicted ones that must not come back). It then walks [tail_seq, head_seq) checking each slot's
 * seq, bounds and CRC, and sets data_head to the end of the last record (what an interrupted append
 * wrote beyond it is reused). A record below head_seq was complete when published, so one that fails
 * validation is damage: damaged records at the tail are let go (the tail moves past them); one
 * inside the ring is replaced by a hole — an empty record of kind ARENA_KIND_HOLE with a valid CRC,
 * which readers skip — and the walk resumes at the next record that validates where its slot says it
 * starts (never past the end of the newest whole record), so later records are kept and sequence
 * numbers never go back. Every correction is logged and counted (counters[ARENA_C_DAMAGED]). Only
 * counters that point at no valid record at all re-initialise the arena with a new generation.
 *
 * READER: read(s): s >= head_seq → end; s < tail_seq → overrun. Copy slot and payload (every
 * offset and length bounds-checked against the geometry), acquire fence, re-load tail_seq: if it
 * passed s the copy may be torn → overrun. Then verify slot.seq and the CRC.
 */
#ifndef LIVEEVENTS_ARENA_H
#define LIVEEVENTS_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"

#define ARENA_MAGIC "LVEVARNA"
#define ARENA_LAYOUT_VERSION 1u
#define ARENA_HEADER_SIZE 4096u
#define ARENA_CONTROL_SIZE 4096u
#define ARENA_PAGE 4096u
#define ARENA_ALIGN(n) (((uint64_t)(n) + 7u) & ~(uint64_t)7u)
#define ARENA_NO_REF UINT64_MAX
#define ARENA_KIND_HOLE 0u /* see RECORD above */

/* Sizing: the default total size and the bounds any size must respect. */
#define ARENA_DEFAULT_SIZE (64u << 20)
#define ARENA_MIN_SIZE (1u << 20)
#define ARENA_MAX_SIZE ((uint64_t)1 << 40)
/* Average record sizes that decide how many slots each ring gets. */
#define ARENA_FACTS_BYTES_PER_SLOT 256u
#define ARENA_RAW_BYTES_PER_SLOT 1024u
/* A record may fill at most this fraction (1/N) of its data ring. */
#define ARENA_MAX_RECORD_DIVISOR 4u

enum arena_ring_id { ARENA_FACTS = 0, ARENA_RAW = 1, ARENA_RINGS = 2 };

/* Event counters kept in the control block; monotonic, reset only when the structure is
 * re-initialised. */
enum arena_counter {
	ARENA_C_EVENTS,         /* events committed (accepted with 2xx) */
	ARENA_C_REPAIRED,       /* of which had broken text repaired */
	ARENA_C_UNATTRIBUTED,   /* of which named no call */
	ARENA_C_UNKNOWN_TYPE,   /* of which had a type we do not interpret */
	ARENA_C_REJECTED,       /* requests refused with 4xx (nothing stored) */
	ARENA_C_RESETS,         /* DELETE /api/conversations carried out */
	ARENA_C_RAW_BYTES,      /* raw body bytes committed */
	ARENA_C_RAW_DROPPED,    /* raw bodies too large for the raw ring (facts kept) */
	ARENA_C_SNAPSHOTS,      /* live calls re-appended whole before their oldest record was overwritten */
	ARENA_C_CALLS_EVICTED,  /* calls (ended or idle) that left the arena whole, oldest first */
	ARENA_C_LIVE_DROPPED,   /* live calls that could not be kept: the arena is too small for them */
	ARENA_C_DAMAGED,        /* records recovery found damaged (replaced by holes, or let go at the tail) */
	ARENA_C_UNAUTHORIZED,   /* webhooks refused for a missing or wrong secret (401; also in REJECTED) */
	ARENA_NCOUNTERS_USED,
	ARENA_NCOUNTERS = 24
};

struct arena_ring_geom {
	uint64_t slots_off;
	uint64_t data_off;
	uint64_t data_size;
	uint32_t slot_count;
	uint32_t slot_size;
};

struct arena_header {
	char magic[8];
	uint32_t layout_version;
	uint32_t header_size;
	uint64_t file_size;
	uint64_t abi;
	uint64_t created_ns;
	uint32_t control_off;
	uint32_t ring_count;
	struct arena_ring_geom ring[ARENA_RINGS];
};

struct arena_ring_ctl {
	_Atomic uint64_t head_seq;
	_Atomic uint64_t tail_seq;
	_Atomic uint64_t data_head;
	_Atomic uint64_t data_tail;
	_Atomic uint64_t evicted;
	_Atomic uint64_t evicted_bytes;
	uint64_t reserved[2];
};

struct arena_control {
	_Atomic uint64_t generation;
	_Atomic uint64_t writer_pid;
	_Atomic uint64_t writer_start_ns;
	_Atomic uint64_t heartbeat_ns;
	_Atomic uint64_t recoveries;
	uint64_t reserved0[3];
	struct arena_ring_ctl ring[ARENA_RINGS];
	_Atomic uint64_t counters[ARENA_NCOUNTERS];
};

struct arena_slot {
	_Atomic uint64_t seq;
	uint64_t pos;
	uint64_t time_ns;
	uint64_t ref;
	uint32_t len;
	uint32_t crc;
	uint16_t kind;
	uint16_t flags;
	uint32_t reserved;
};

/* The ABI word: a byte-order probe in the low 16 bits, then the sizes of the shared structs. */
#define ARENA_ABI                                                                                \
	((uint64_t)0x1234u | ((uint64_t)sizeof(struct arena_header) << 16) |                      \
	 ((uint64_t)sizeof(struct arena_control) << 32) | ((uint64_t)sizeof(struct arena_slot) << 48))

/* uint64_t is unsigned long on LP64 and unsigned long long elsewhere: both must be lock-free for an
 * atomic in shared memory to work across processes (a lock would live in one process only). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared across processes");
_Static_assert(sizeof(uint64_t) != sizeof(long) || ATOMIC_LONG_LOCK_FREE == 2,
               "uint64_t atomics must be lock-free to be shared across processes");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8, "atomic u64 must be 8 bytes, aligned");
_Static_assert(sizeof(struct arena_ring_geom) == 32, "ring geometry layout");
_Static_assert(offsetof(struct arena_ring_geom, slots_off) == 0 && offsetof(struct arena_ring_geom, data_off) == 8 &&
                   offsetof(struct arena_ring_geom, data_size) == 16 &&
                   offsetof(struct arena_ring_geom, slot_count) == 24 &&
                   offsetof(struct arena_ring_geom, slot_size) == 28,
               "ring geometry layout, as LAYOUT specifies it");
_Static_assert(offsetof(struct arena_header, header_size) == 12 && offsetof(struct arena_header, ring_count) == 44,
               "header layout");
_Static_assert(offsetof(struct arena_header, layout_version) == 8, "header layout");
_Static_assert(offsetof(struct arena_header, file_size) == 16, "header layout");
_Static_assert(offsetof(struct arena_header, abi) == 24, "header layout");
_Static_assert(offsetof(struct arena_header, created_ns) == 32, "header layout");
_Static_assert(offsetof(struct arena_header, control_off) == 40, "header layout");
_Static_assert(offsetof(struct arena_header, ring) == 48, "header layout");
_Static_assert(sizeof(struct arena_header) == 112, "header layout");
_Static_assert(sizeof(struct arena_header) <= ARENA_HEADER_SIZE, "header fits its page");
_Static_assert(sizeof(struct arena_ring_ctl) == 64, "one ring's control fills one cache line");
_Static_assert(offsetof(struct arena_ring_ctl, head_seq) == 0 && offsetof(struct arena_ring_ctl, tail_seq) == 8 &&
                   offsetof(struct arena_ring_ctl, data_head) == 16 && offsetof(struct arena_ring_ctl, data_tail) == 24 &&
                   offsetof(struct arena_ring_ctl, evicted) == 32 && offsetof(struct arena_ring_ctl, evicted_bytes) == 40,
               "ring control layout, as LAYOUT specifies it");
_Static_assert(offsetof(struct arena_control, generation) == 0 && offsetof(struct arena_control, writer_pid) == 8 &&
                   offsetof(struct arena_control, writer_start_ns) == 16 &&
                   offsetof(struct arena_control, heartbeat_ns) == 24 && offsetof(struct arena_control, recoveries) == 32,
               "control layout, as LAYOUT specifies it");
_Static_assert(offsetof(struct arena_control, ring) == 64, "ring control starts on its own line");
_Static_assert(offsetof(struct arena_control, counters) == 64 + 64 * ARENA_RINGS, "counters layout");
_Static_assert(sizeof(struct arena_control) == 64 + 64 * ARENA_RINGS + 8 * ARENA_NCOUNTERS, "control layout");
_Static_assert(sizeof(struct arena_control) <= ARENA_CONTROL_SIZE, "control fits its page");
_Static_assert(ARENA_NCOUNTERS_USED <= ARENA_NCOUNTERS, "room for the counters");
_Static_assert(sizeof(struct arena_slot) == 48, "slot layout");
_Static_assert(offsetof(struct arena_slot, seq) == 0 && offsetof(struct arena_slot, pos) == 8 &&
                   offsetof(struct arena_slot, time_ns) == 16 && offsetof(struct arena_slot, ref) == 24 &&
                   offsetof(struct arena_slot, len) == 32 && offsetof(struct arena_slot, crc) == 36 &&
                   offsetof(struct arena_slot, kind) == 40 && offsetof(struct arena_slot, flags) == 42 &&
                   offsetof(struct arena_slot, reserved) == 44,
               "slot layout, as the RECORD comment above specifies it");

/* Ring geometry derived from a total size: computed by arena_geometry. */
struct arena_geometry {
	uint64_t file_size;
	struct arena_ring_geom ring[ARENA_RINGS];
};

/* A process-local handle on a mapped arena. */
struct arena_ring {
	struct arena_slot *slots;
	unsigned char *data;
	uint64_t data_size, data_mask;
	uint64_t slot_count, slot_mask;
	uint64_t max_record;
	/* writer-only: appended but not yet published */
	uint64_t pend_head_seq, pend_data_head;
};

struct arena {
	int fd;
	bool writable;
	bool file_backed;    /* a regular file (not /dev/shm): msync after a reset */
	void *base;
	size_t size;
	/* A private copy of the header, validated once: the geometry is never read again from the
	 * mapping, where it could have changed since it was checked. */
	struct arena_header header;
	const struct arena_header *hdr; /* = &header */
	struct arena_control *ctl;
	struct arena_ring ring[ARENA_RINGS];
};

/* A record as a reader sees it. */
struct arena_rec {
	uint64_t seq;
	uint64_t time_ns;
	uint64_t ref;
	uint32_t len;
	uint16_t kind;
	uint16_t flags;
};

enum arena_read_status {
	ARENA_READ_OK = 0,
	ARENA_READ_END,       /* nothing at this sequence yet */
	ARENA_READ_OVERRUN,   /* already overwritten: continue at tail_seq */
	ARENA_READ_CORRUPT,   /* the slot or payload failed validation; skip it */
};

/* Computes the layout for a total size (rounded so that every ring is a power of two). */
int arena_geometry(uint64_t total, struct arena_geometry *g);

/* Opens (or creates) the arena at path, for the master: a single name directly under /dev/shm/
 * names a POSIX shared-memory object; anything else is a regular file. Creates and initialises it when absent (sized and allocated up front); an
 * existing arena is validated, and one of another layout version or size is refused (-1, err set).
 * Takes an exclusive flock (a second daemon on the same arena gets -1 and err naming it).
 * Returns the read-write fd (the lock holder) and stores a read-only fd in *ro_fd. */
int arena_create_or_open(const char *path, uint64_t size, int *ro_fd, char *err, size_t errlen);

/* Opens the arena at path read-only (same path rule), for readers that need no daemon. Returns the
 * descriptor, or -1 with a one-line reason in err. */
int arena_open_readonly(const char *path, char *err, size_t errlen);
/* Maps fd and validates the header against the object's size. writable selects PROT_WRITE.
 * struct arena points into itself (hdr): map into the struct you keep, never copy one. */
int arena_map(struct arena *a, int fd, bool writable, char *err, size_t errlen);
void arena_unmap(struct arena *a);
/* Validates only the header of a mapping of `size` bytes (used by arena_map and tests). */
int arena_check_header(const void *base, size_t size, char *err, size_t errlen);

/* Writer side (ingest only). */
/* Validates the control block and the records (see WRITER above): damaged records become holes,
 * an unfinished append is dropped, and the arena is re-initialised with a new generation only if
 * its structure is broken. Writes a one-line reason into why (empty when nothing had to be done).
 * Returns 0, or 1 when it re-initialised. */
int arena_recover(struct arena *a, char *why, size_t whylen);
/* Appends a record (payload gathered from iov) to ring r without publishing it, stamped with
 * time_ns (the writer's commit time: one clock for the whole commit). Returns its sequence number,
 * or UINT64_MAX when the payload exceeds the ring's max_record. */
uint64_t arena_append(struct arena *a, enum arena_ring_id r, uint16_t kind, uint16_t flags, uint64_t ref,
                      uint64_t time_ns, const struct iovec *iov, int iovcnt);
/* The sequence number the next append to ring r will get. */
uint64_t arena_next_seq(const struct arena *a, enum arena_ring_id r);
/* Whether appending nrec records of bytes in all (each rounded up with ARENA_ALIGN) to ring r leaves
 * record keep_seq in place (they would overwrite only older records, or none). Nothing is changed. */
bool arena_fits_before(const struct arena *a, enum arena_ring_id r, uint64_t keep_seq, uint64_t bytes,
                       uint64_t nrec);
/* The tail ring r will have after appending nrec more records of bytes aligned bytes in all (see
 * ARENA_ALIGN): every record below it would be overwritten. Nothing is changed. */
uint64_t arena_evict_bound(const struct arena *a, enum arena_ring_id r, uint64_t bytes, uint64_t nrec);
/* Forgets appends not yet published (their space is simply reused). */
void arena_rollback(struct arena *a);
/* Publishes everything appended so far (raw ring first, then facts): the commit point. */
void arena_publish(struct arena *a);
/* Clears all records, overwriting their bytes, and changes the generation. */
void arena_reset(struct arena *a);
void arena_count(struct arena *a, enum arena_counter c, uint64_t n);
void arena_heartbeat(struct arena *a);

/* Reader side (anyone). */
uint64_t arena_generation(const struct arena *a);
uint64_t arena_head(const struct arena *a, enum arena_ring_id r);
uint64_t arena_tail(const struct arena *a, enum arena_ring_id r);
/* Whether [tail, head) is a window the ring can hold: damaged counters can claim billions of
 * records, and a reader that believed them would read garbage for ever. */
bool arena_window_ok(const struct arena *a, enum arena_ring_id r);
uint64_t arena_counter_get(const struct arena *a, enum arena_counter c);
/* Reads record seq of ring r: the payload is copied into out_payload (replacing its contents). */
enum arena_read_status arena_read(const struct arena *a, enum arena_ring_id r, uint64_t seq, struct arena_rec *rec,
                                  struct buf *out_payload);

uint32_t arena_crc32c(uint32_t crc, const void *p, size_t n);
uint64_t arena_now_ns(void);

/* Test hook: a test build (-DARENA_KILL_POINTS) calls this at named points inside append and
 * publish so that a crash test can kill the writer there. */
#ifdef ARENA_KILL_POINTS
extern void (*arena_kill_point)(const char *name);
#endif

#endif
