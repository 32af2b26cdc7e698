/* arena: creation, validation, the single-writer append/publish protocol, recovery after a crashed
 * writer, and the copy-then-verify reader. The layout and the protocol are specified in arena.h. */
#include "config.h"

#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#ifdef ARENA_KILL_POINTS
void (*arena_kill_point)(const char *name);
#define KILL_POINT(name)                                                                         \
	do {                                                                                     \
		if (arena_kill_point)                                                            \
			arena_kill_point(name);                                                  \
	} while (0)
#else
#define KILL_POINT(name) ((void)0)
#endif

#define SHM_DIR "/dev/shm/"

static const char *const ring_names[ARENA_RINGS] = { "facts", "raw" };

uint64_t
arena_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- CRC-32C (Castagnoli): hardware instruction when the CPU has it, table otherwise ---------- */

static uint32_t crc_table[256];

static void
crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc_soft(uint32_t crc, const unsigned char *p, size_t n)
{
	if (crc_table[1] == 0)
		crc_table_init();
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t c = crc;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}

static int crc_have_hw = -1;
#endif

uint32_t
arena_crc32c(uint32_t crc, const void *p, size_t n)
{
	crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
	if (crc_have_hw < 0)
		crc_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (crc_have_hw)
		return ~crc_hw(crc, p, n);
#endif
	return ~crc_soft(crc, p, n);
}

/* The CRC's 32-byte preamble (see arena.h): the record's identity and metadata. */
static uint32_t
record_crc_start(uint64_t seq, uint64_t time_ns, uint64_t ref, uint32_t len, uint16_t kind, uint16_t flags)
{
	unsigned char m[32];
	memcpy(m, &seq, 8);
	memcpy(m + 8, &time_ns, 8);
	memcpy(m + 16, &ref, 8);
	memcpy(m + 24, &len, 4);
	memcpy(m + 28, &kind, 2);
	memcpy(m + 30, &flags, 2);
	return arena_crc32c(0, m, sizeof(m));
}

/* --- geometry and header ---------------------------------------------------------------------- */

static uint64_t
pow2floor(uint64_t v)
{
	uint64_t p = 1;
	while (p <= v / 2)
		p *= 2;
	return p;
}

static uint64_t
page_up(uint64_t v)
{
	return (v + ARENA_PAGE - 1) & ~(uint64_t)(ARENA_PAGE - 1);
}

int
arena_geometry(uint64_t total, struct arena_geometry *g)
{
	if (total < ARENA_MIN_SIZE || total > ARENA_MAX_SIZE)
		return -1;
	memset(g, 0, sizeof(*g));
	/* Raw payloads are bulky and may age out first; facts are compact and must outlive them. */
	uint64_t data[ARENA_RINGS] = { pow2floor(total / 4), pow2floor(total / 2) };
	uint64_t per_slot[ARENA_RINGS] = { ARENA_FACTS_BYTES_PER_SLOT, ARENA_RAW_BYTES_PER_SLOT };
	uint64_t off = ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE;
	for (int r = 0; r < ARENA_RINGS; r++) {
		struct arena_ring_geom *rg = &g->ring[r];
		rg->slot_count = (uint32_t)pow2floor(data[r] / per_slot[r]);
		rg->slot_size = sizeof(struct arena_slot);
		rg->slots_off = off;
		off = page_up(off + (uint64_t)rg->slot_count * rg->slot_size);
		rg->data_off = off;
		rg->data_size = data[r];
		off = page_up(off + rg->data_size);
	}
	g->file_size = off;
	return 0;
}

static bool
is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The geometry is a function of the size asked for, which the raw ring's size gives back (twice
 * it asks for the same rings): any other layout in a header is damage, and reading with it would
 * misread every record. */
static bool
geometry_matches(const struct arena_header *h)
{
	struct arena_geometry g;
	return h->ring[ARENA_RAW].data_size <= ARENA_MAX_SIZE / 2 && arena_geometry(h->ring[ARENA_RAW].data_size * 2, &g) == 0 &&
	       g.file_size == h->file_size && memcmp(g.ring, h->ring, sizeof(g.ring)) == 0;
}

/* Validates a header that is already a private copy. */
static int
check_header_copy(const struct arena_header *h, size_t size, char *err, size_t errlen)
{
	if (size < ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE) {
		snprintf(err, errlen, "too small to be an arena (%zu bytes)", size);
		return -1;
	}
	if (memcmp(h->magic, ARENA_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a liveevents arena (no magic)");
		return -1;
	}
	if (h->layout_version != ARENA_LAYOUT_VERSION) {
		snprintf(err, errlen, "arena layout version %u, this program reads version %u",
		         h->layout_version, ARENA_LAYOUT_VERSION);
		return -1;
	}
	if (h->abi != ARENA_ABI) {
		snprintf(err, errlen, "arena ABI %#llx, this program uses %#llx (another byte order or build)",
		         (unsigned long long)h->abi, (unsigned long long)ARENA_ABI);
		return -1;
	}
	if (h->header_size != sizeof(struct arena_header)) {
		snprintf(err, errlen, "arena header size %u, this program uses %zu: the header is damaged", h->header_size,
		         sizeof(struct arena_header));
		return -1;
	}
	if (h->file_size != size) {
		snprintf(err, errlen, "arena header says %llu bytes but the object has %zu",
		         (unsigned long long)h->file_size, size);
		return -1;
	}
	if (h->control_off != ARENA_HEADER_SIZE || h->ring_count != ARENA_RINGS) {
		snprintf(err, errlen, "arena header is inconsistent (control offset %u, %u rings)", h->control_off,
		         h->ring_count);
		return -1;
	}
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct arena_ring_geom *rg = &h->ring[r];
		if (rg->slot_size != sizeof(struct arena_slot) || !is_pow2(rg->slot_count) ||
		    !is_pow2(rg->data_size) || rg->slots_off % 64 || rg->data_off % 64 ||
		    rg->slots_off < ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE ||
		    rg->slots_off > size || (uint64_t)rg->slot_count * rg->slot_size > size - rg->slots_off ||
		    rg->data_off > size || rg->data_size > size - rg->data_off) {
			snprintf(err, errlen, "arena %s ring geometry is out of bounds", ring_names[r]);
			return -1;
		}
	}
	if (!geometry_matches(h)) {
		snprintf(err, errlen, "the header's ring geometry does not match its size of %llu bytes: the header is damaged",
		         (unsigned long long)h->file_size);
		return -1;
	}
	return 0;
}

int
arena_check_header(const void *base, size_t size, char *err, size_t errlen)
{
	struct arena_header h;
	if (size < sizeof(h)) {
		snprintf(err, errlen, "too small to be an arena (%zu bytes)", size);
		return -1;
	}
	memcpy(&h, base, sizeof(h));
	return check_header_copy(&h, size, err, errlen);
}

static uint64_t
new_generation(uint64_t old)
{
	uint64_t g = 0;
	while (g == 0 || g == old) {
		if (getrandom(&g, sizeof(g), 0) != sizeof(g))
			g = arena_now_ns() ^ ((uint64_t)getpid() << 32) ^ (old * 0x9E3779B97F4A7C15ull);
	}
	return g;
}

/* Writes a fresh header and control block; the magic goes last. */
static void
init_fresh(void *base, const struct arena_geometry *g)
{
	struct arena_header *h = base;
	struct arena_control *c = (struct arena_control *)((char *)base + ARENA_HEADER_SIZE);
	memset(base, 0, ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE);
	h->layout_version = ARENA_LAYOUT_VERSION;
	h->header_size = sizeof(struct arena_header);
	h->file_size = g->file_size;
	h->abi = ARENA_ABI;
	h->created_ns = arena_now_ns();
	h->control_off = ARENA_HEADER_SIZE;
	h->ring_count = ARENA_RINGS;
	memcpy(h->ring, g->ring, sizeof(h->ring));
	atomic_store_explicit(&c->generation, new_generation(0), memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(h->magic, ARENA_MAGIC, 8);
}

static bool
is_shm_path(const char *path, const char **name)
{
	size_t n = strlen(SHM_DIR);
	if (strncmp(path, SHM_DIR, n) != 0 || path[n] == '\0' || strchr(path + n, '/'))
		return false;
	*name = path + n - 1; /* keeps the leading '/' that shm_open wants */
	return true;
}

static int
open_path(const char *path, int flags, mode_t mode)
{
	const char *name;
	if (is_shm_path(path, &name))
		return shm_open(name, flags | O_CLOEXEC, mode);
	return open(path, flags | O_CLOEXEC, mode);
}

/* An init interrupted before its magic was written leaves a file of exactly the planned size whose
 * header holds nothing but zeros or the values init writes. Anything else without our magic is
 * somebody else's file (a disk image, a swap file...), however many zeros it starts with. */
static bool
interrupted_init(const struct arena_header *h, uint64_t size, const struct arena_geometry *g)
{
	static const char zero[8];
	return size == g->file_size && memcmp(h->magic, zero, 8) == 0 &&
	       (h->layout_version == 0 || h->layout_version == ARENA_LAYOUT_VERSION) &&
	       (h->header_size == 0 || h->header_size == sizeof(*h)) && (h->file_size == 0 || h->file_size == size) &&
	       (h->abi == 0 || h->abi == ARENA_ABI);
}

int
arena_create_or_open(const char *path, uint64_t size, int *ro_fd, char *err, size_t errlen)
{
	struct arena_geometry g;
	if (arena_geometry(size, &g) < 0) {
		snprintf(err, errlen, "arena size %llu is outside [%u, %llu]", (unsigned long long)size,
		         ARENA_MIN_SIZE, (unsigned long long)ARENA_MAX_SIZE);
		return -1;
	}
	int fd = open_path(path, O_RDWR | O_CREAT | O_NONBLOCK, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open arena %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st0;
	if (fstat(fd, &st0) < 0 || !S_ISREG(st0.st_mode)) {
		snprintf(err, errlen, "arena %s is not a regular file; refusing to use it", path);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "arena %s is in use by another liveeventsd (%s; the workers of a daemon whose master "
		         "was killed let go of it within a second)",
		         path, errno == EWOULDBLOCK ? "locked" : strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat arena %s: %s", path, strerror(errno));
		goto fail;
	}
	bool fresh = st.st_size == 0;
	if (!fresh) {
		/* An existing object: ours only if it carries our magic, or all zeros where the magic goes
		 * (an init that was interrupted before the magic was written). Anything else is refused
		 * rather than overwritten: the path may point at somebody's file. */
		struct arena_header h;
		ssize_t n = pread(fd, &h, sizeof(h), 0);
		if (n == (ssize_t)sizeof(h) && interrupted_init(&h, (uint64_t)st.st_size, &g)) {
			/* ...unless records were ever published: then the magic was damaged, not unwritten. */
			static struct arena_control c;
			if (pread(fd, &c, sizeof(c), ARENA_HEADER_SIZE) != (ssize_t)sizeof(c) ||
			    atomic_load_explicit(&c.ring[ARENA_FACTS].head_seq, memory_order_relaxed) != 0 ||
			    atomic_load_explicit(&c.ring[ARENA_RAW].head_seq, memory_order_relaxed) != 0) {
				snprintf(err, errlen,
				         "%s has no magic but holds records: a damaged arena; refusing to overwrite it (move it "
				         "away to start a new one)",
				         path);
				goto fail;
			}
			fresh = true;
		} else if (n != (ssize_t)sizeof(h) || memcmp(h.magic, ARENA_MAGIC, 8) != 0) {
			snprintf(err, errlen, "%s exists and is not a liveevents arena; refusing to overwrite it", path);
			goto fail;
		}
	}
	if (fresh) {
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)g.file_size) < 0) {
			snprintf(err, errlen, "cannot size arena %s: %s", path, strerror(errno));
			goto fail;
		}
		/* Allocate every block now, so a full disk or tmpfs fails here and not as SIGBUS later. */
		int rc = posix_fallocate(fd, 0, (off_t)g.file_size);
		if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
			snprintf(err, errlen, "cannot allocate %llu bytes for arena %s: %s",
			         (unsigned long long)g.file_size, path, strerror(rc));
			(void)ftruncate(fd, 0);
			goto fail;
		}
		void *base = mmap(NULL, ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			snprintf(err, errlen, "cannot map arena %s: %s", path, strerror(errno));
			goto fail;
		}
		init_fresh(base, &g);
		msync(base, ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE, MS_SYNC);
		munmap(base, ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE);
	} else {
		size_t maplen = (size_t)st.st_size;
		if ((uint64_t)st.st_size < ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE) {
			snprintf(err, errlen, "arena %s: too small (%lld bytes)", path, (long long)st.st_size);
			goto fail;
		}
		void *base = mmap(NULL, ARENA_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			snprintf(err, errlen, "cannot map arena %s: %s", path, strerror(errno));
			goto fail;
		}
		char why[160];
		/* Check the header as if it were the whole object; file_size is compared below. */
		const struct arena_header *h = base;
		int bad = 0;
		if (h->layout_version != ARENA_LAYOUT_VERSION) {
			snprintf(err, errlen, "arena %s has layout version %u, this program needs version %u",
			         path, h->layout_version, ARENA_LAYOUT_VERSION);
			bad = 1;
		} else if (h->file_size != (uint64_t)st.st_size) {
			snprintf(err, errlen,
			         "arena %s is damaged: its header says %llu bytes but the file has %llu; move it away to "
			         "start a new one",
			         path, (unsigned long long)h->file_size, (unsigned long long)st.st_size);
			bad = 1;
		} else if (!geometry_matches(h)) {
			snprintf(err, errlen,
			         "arena %s: the header's ring geometry does not match its size: the header is damaged; move "
			         "it away to start a new one",
			         path);
			bad = 1;
		} else if (h->file_size != g.file_size || memcmp(h->ring, g.ring, sizeof(g.ring)) != 0) {
			/* Sizes are rounded to powers of two: name an --arena-size that gives this arena. */
			unsigned long long made = (unsigned long long)h->ring[ARENA_RAW].data_size * 2;
			snprintf(err, errlen,
			         "arena %s was made with --arena-size %lluM (a %llu-byte file), but this start asks for "
			         "--arena-size %lluM (%llu bytes): use the same size, or move the file away",
			         path, made >> 20, (unsigned long long)h->file_size, (unsigned long long)(size >> 20),
			         (unsigned long long)g.file_size);
			bad = 1;
		}
		munmap(base, ARENA_HEADER_SIZE);
		if (bad)
			goto fail;
		base = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			snprintf(err, errlen, "cannot map arena %s: %s", path, strerror(errno));
			goto fail;
		}
		int rc = arena_check_header(base, maplen, why, sizeof(why));
		munmap(base, maplen);
		if (rc < 0) {
			snprintf(err, errlen, "arena %s: %s", path, why);
			goto fail;
		}
	}
	if (!fresh) {
		/* An existing file may be sparse (copied, restored): allocate it now, so that a full disk or
		 * tmpfs fails here and not as SIGBUS in a worker later. */
		int rc = posix_fallocate(fd, 0, (off_t)g.file_size);
		if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
			snprintf(err, errlen, "cannot allocate the %llu bytes of arena %s: %s", (unsigned long long)g.file_size,
			         path, strerror(rc));
			goto fail;
		}
	}
	*ro_fd = open_path(path, O_RDONLY, 0);
	if (*ro_fd < 0) {
		snprintf(err, errlen, "cannot reopen arena %s read-only: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
arena_open_readonly(const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. */
	int fd = open_path(path, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open arena %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "arena %s is not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
arena_map(struct arena *a, int fd, bool writable, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->fd = fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat arena: %s", strerror(errno));
		return -1;
	}
	if (st.st_size < (off_t)(ARENA_HEADER_SIZE + ARENA_CONTROL_SIZE)) {
		snprintf(err, errlen, "arena too small (%lld bytes)", (long long)st.st_size);
		return -1;
	}
	a->size = (size_t)st.st_size;
	struct statfs sfs;
	a->file_backed = fstatfs(fd, &sfs) == 0 && sfs.f_type != TMPFS_MAGIC;
	a->base = mmap(NULL, a->size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (a->base == MAP_FAILED) {
		a->base = NULL;
		snprintf(err, errlen, "cannot map arena: %s", strerror(errno));
		return -1;
	}
	/* One copy, validated and then used: never the mapping's header again. */
	memcpy(&a->header, a->base, sizeof(a->header));
	if (check_header_copy(&a->header, a->size, err, errlen) < 0) {
		arena_unmap(a);
		return -1;
	}
	a->writable = writable;
	a->hdr = &a->header;
	a->ctl = (struct arena_control *)((char *)a->base + ARENA_HEADER_SIZE);
	for (int r = 0; r < ARENA_RINGS; r++) {
		const struct arena_ring_geom *rg = &a->hdr->ring[r];
		struct arena_ring *ring = &a->ring[r];
		ring->slots = (struct arena_slot *)((char *)a->base + rg->slots_off);
		ring->data = (unsigned char *)a->base + rg->data_off;
		ring->data_size = rg->data_size;
		ring->data_mask = rg->data_size - 1;
		ring->slot_count = rg->slot_count;
		ring->slot_mask = rg->slot_count - 1;
		ring->max_record = rg->data_size / ARENA_MAX_RECORD_DIVISOR;
		if (ring->max_record > UINT32_MAX)
			ring->max_record = UINT32_MAX;
		ring->pend_head_seq = atomic_load_explicit(&a->ctl->ring[r].head_seq, memory_order_acquire);
		ring->pend_data_head = atomic_load_explicit(&a->ctl->ring[r].data_head, memory_order_acquire);
	}
	return 0;
}

void
arena_unmap(struct arena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	a->base = NULL;
	a->hdr = NULL;
	a->ctl = NULL;
}

/* --- writer ------------------------------------------------------------------------------------ */

static void
wipe_ring(struct arena *a, int r)
{
	struct arena_ring *ring = &a->ring[r];
	memset(ring->slots, 0, ring->slot_count * sizeof(struct arena_slot));
	memset(ring->data, 0, ring->data_size);
}

static void
sync_if_file(struct arena *a)
{
	/* Health data must not linger on disk: push the overwritten pages out now. */
	if (a->file_backed)
		msync(a->base, a->size, MS_SYNC);
}

/* Re-initialises the control block and wipes the records: used when recovery finds the structure
 * broken. Readers see the new generation and start over. */
static void
reinit(struct arena *a)
{
	struct arena_control *c = a->ctl;
	uint64_t old = atomic_load_explicit(&c->generation, memory_order_relaxed);
	uint64_t recoveries = atomic_load_explicit(&c->recoveries, memory_order_relaxed);
	for (int r = 0; r < ARENA_RINGS; r++) {
		struct arena_ring_ctl *rc = &c->ring[r];
		/* Everything becomes unreadable before a single byte is wiped. */
		uint64_t h = atomic_load_explicit(&rc->head_seq, memory_order_relaxed);
		atomic_store_explicit(&rc->tail_seq, h, memory_order_release);
	}
	atomic_thread_fence(memory_order_release);
	for (int r = 0; r < ARENA_RINGS; r++) {
		struct arena_ring_ctl *rc = &c->ring[r];
		wipe_ring(a, r);
		atomic_store_explicit(&rc->head_seq, 0, memory_order_relaxed);
		atomic_store_explicit(&rc->tail_seq, 0, memory_order_relaxed);
		atomic_store_explicit(&rc->data_head, 0, memory_order_relaxed);
		atomic_store_explicit(&rc->data_tail, 0, memory_order_relaxed);
		atomic_store_explicit(&rc->evicted, 0, memory_order_relaxed);
		atomic_store_explicit(&rc->evicted_bytes, 0, memory_order_relaxed);
		a->ring[r].pend_head_seq = 0;
		a->ring[r].pend_data_head = 0;
	}
	for (int i = 0; i < ARENA_NCOUNTERS; i++)
		atomic_store_explicit(&c->counters[i], 0, memory_order_relaxed);
	atomic_store_explicit(&c->recoveries, recoveries + 1, memory_order_relaxed);
	/* Announced last: a reader that sees the new generation also sees the new, empty counters. */
	atomic_store_explicit(&c->generation, new_generation(old), memory_order_release);
	sync_if_file(a);
}

static bool
slot_valid(const struct arena *a, int r, uint64_t s, uint64_t expect_pos)
{
	const struct arena_ring *ring = &a->ring[r];
	const struct arena_slot *sl = &ring->slots[s & ring->slot_mask];
	if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != s || sl->len > ring->max_record ||
	    sl->pos != expect_pos)
		return false;
	uint64_t off = sl->pos & ring->data_mask;
	uint64_t first = ring->data_size - off;
	uint32_t crc = record_crc_start(s, sl->time_ns, sl->ref, sl->len, sl->kind, sl->flags);
	if (first >= sl->len) {
		crc = arena_crc32c(crc, ring->data + off, sl->len);
	} else {
		crc = arena_crc32c(crc, ring->data + off, first);
		crc = arena_crc32c(crc, ring->data, sl->len - first);
	}
	return crc == sl->crc;
}

/* Whether slot s holds a valid record that starts where it says, inside [dtail, dhead]. */
static bool
slot_valid_in(const struct arena *a, int r, uint64_t s, uint64_t dtail, uint64_t dhead)
{
	const struct arena_ring *ring = &a->ring[r];
	uint64_t pos = ring->slots[s & ring->slot_mask].pos;
	return pos >= dtail && pos <= dhead && dhead - pos <= ring->data_size && slot_valid(a, r, s, pos);
}

/* Replaces damaged record s by a hole: an empty record of kind ARENA_KIND_HOLE at pos, valid, so
 * readers skip it knowingly and the records after it stay where they are. */
static void
make_hole(struct arena *a, int r, uint64_t s, uint64_t pos, uint64_t now_ns)
{
	struct arena_slot *sl = &a->ring[r].slots[s & a->ring[r].slot_mask];
	atomic_store_explicit(&sl->seq, UINT64_MAX, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	sl->pos = pos;
	sl->len = 0;
	sl->time_ns = now_ns;
	sl->ref = ARENA_NO_REF;
	sl->kind = ARENA_KIND_HOLE;
	sl->flags = 0;
	sl->reserved = 0;
	sl->crc = record_crc_start(s, now_ns, ARENA_NO_REF, 0, ARENA_KIND_HOLE, 0);
	atomic_store_explicit(&sl->seq, s, memory_order_release);
}

static void
add_reason(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
add_reason(char *why, size_t whylen, const char *fmt, ...)
{
	size_t n = strlen(why);
	if (n + 2 >= whylen)
		return;
	if (n) {
		memcpy(why + n, "; ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - n, fmt, ap);
	va_end(ap);
}

/* Whether slot s holds record s, whole, wherever it says it starts. */
static bool
slot_self_valid(const struct arena *a, int r, uint64_t s)
{
	const struct arena_ring *ring = &a->ring[r];
	return slot_valid(a, r, s, ring->slots[s & ring->slot_mask].pos);
}

/* 1 + the highest sequence number a slot holds whole, or 0 when no slot does. */
static uint64_t
scan_head(const struct arena *a, int r)
{
	const struct arena_ring *ring = &a->ring[r];
	uint64_t best = 0;
	for (uint64_t i = 0; i < ring->slot_count; i++) {
		uint64_t s = atomic_load_explicit(&ring->slots[i].seq, memory_order_relaxed);
		if (s != UINT64_MAX && (s & ring->slot_mask) == i && s + 1 > best && slot_self_valid(a, r, s))
			best = s + 1;
	}
	return best;
}

/* Recovers one ring: returns false when its structure is beyond repair. Nothing is taken on the
 * counters' word alone, because they live in memory anyone with write access can change: each is
 * checked against the records, and a counter that disagrees is rebuilt from them.
 *  - the head is right when the record before it is whole; otherwise it is 1 + the newest whole
 *    record in any slot (a head moved back would hide published records, one moved forward would
 *    point at nothing);
 *  - the tail is the record that starts where the data tail says (positions only grow, so exactly
 *    one record in the window can); a tail that disagrees is moved there, because records older
 *    than the true tail are evicted ones, still whole in their slots, that must not come back;
 *  - between them, a record that fails validation is damage, not an interrupted write (it was
 *    published): it becomes a hole, and the walk resumes at the next record that validates where
 *    it says it is, never beyond the end of the newest whole record, so one bad record never
 *    takes the good ones after it along;
 *  - the data head is where the walk ends; unpublished bytes of an interrupted append lie beyond
 *    it and are simply reused. */
static bool
recover_ring(struct arena *a, int r, char *why, size_t whylen)
{
	struct arena_ring *ring = &a->ring[r];
	struct arena_ring_ctl *rc = &a->ctl->ring[r];
	uint64_t head = atomic_load_explicit(&rc->head_seq, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&rc->tail_seq, memory_order_acquire);
	uint64_t dtail = atomic_load_explicit(&rc->data_tail, memory_order_acquire);
	const char *name = ring_names[r];
	uint64_t damaged = 0;

	/* The head. */
	if (head > 0 && !slot_self_valid(a, r, head - 1)) {
		uint64_t found = scan_head(a, r);
		/* found == 0: not one whole record anywhere; the head stays and the tail logic below
		 * lets every claimed record go, or finds the structure gone. */
		if (found && (found > head || head - found > ring->slot_count)) {
			add_reason(why, whylen, "%s ring: head counter %" PRIu64 " disagrees with the records; %" PRIu64
			           " by the newest whole record", name, head, found);
			damaged++;
			head = found;
		}
		/* else the newest records themselves are damaged: they become holes below */
	} else if (head > 0) {
		/* A head moved back would hide published records: when whole records continue from the
		 * head exactly up to the data head, they were published. (An interrupted append never
		 * reaches the data head: it is published after the record is written.) */
		const struct arena_slot *last = &ring->slots[(head - 1) & ring->slot_mask];
		uint64_t dhead = atomic_load_explicit(&rc->data_head, memory_order_relaxed);
		uint64_t pos = last->pos + ARENA_ALIGN(last->len), s = head;
		while (pos < dhead && s - head < ring->slot_count && slot_valid(a, r, s, pos)) {
			const struct arena_slot *sl = &ring->slots[s & ring->slot_mask];
			pos = sl->pos + ARENA_ALIGN(sl->len);
			s++;
		}
		if (s > head && pos == dhead) {
			add_reason(why, whylen, "%s ring: head counter %" PRIu64 " is behind the records, which end at %" PRIu64,
			           name, head, s);
			damaged++;
			head = s;
		}
	}

	/* The tail. */
	uint64_t lo = head > ring->slot_count ? head - ring->slot_count : 0;
	bool in_window = tail >= lo && tail <= head;
	bool agrees = in_window && (tail == head ? dtail == atomic_load_explicit(&rc->data_head, memory_order_relaxed)
	                                         : ring->slots[tail & ring->slot_mask].pos == dtail &&
	                                                   slot_self_valid(a, r, tail));
	if (!agrees) {
		uint64_t s = lo;
		while (s < head && !(ring->slots[s & ring->slot_mask].pos == dtail && slot_self_valid(a, r, s)))
			s++;
		if (s < head && s != tail) {
			add_reason(why, whylen, "%s ring: tail counter %" PRIu64 " disagrees with the data tail; moved to %" PRIu64,
			           name, tail, s);
			damaged++;
			tail = s;
		} else if (in_window) {
			/* The oldest records are damaged (or the data tail is): they are let go. */
			uint64_t t = tail;
			while (t < head && !slot_self_valid(a, r, t))
				t++;
			if (t > tail) {
				add_reason(why, whylen, "%s ring: %" PRIu64 " damaged oldest record(s) let go", name, t - tail);
				damaged += t - tail;
			}
			tail = t;
		} else {
			uint64_t t = lo;
			while (t < head && !slot_self_valid(a, r, t))
				t++;
			if (t == head && head > lo)
				return false; /* counters that point at nothing valid: the structure is gone */
			add_reason(why, whylen, "%s ring: tail counter %" PRIu64 " outside the window; the oldest whole record (%" PRIu64
			           ") is the tail", name, tail, t);
			damaged++;
			tail = t;
		}
	}

	/* No record may start after the end of the newest whole one. */
	uint64_t dend = 0;
	for (uint64_t s = head; s > tail; s--)
		if (slot_self_valid(a, r, s - 1)) {
			const struct arena_slot *sl = &ring->slots[(s - 1) & ring->slot_mask];
			dend = sl->pos + ARENA_ALIGN(sl->len);
			break;
		}

	/* The walk. */
	uint64_t s = tail;
	uint64_t first_pos = s < head ? ring->slots[s & ring->slot_mask].pos : atomic_load_explicit(&rc->data_head, memory_order_relaxed);
	uint64_t pos = first_pos, holes = 0, now = arena_now_ns();
	bool after_hole = false; /* a hole takes no bytes: the record after it starts where it says */
	while (s < head) {
		const struct arena_slot *sl = &ring->slots[s & ring->slot_mask];
		if (slot_valid(a, r, s, pos) || (after_hole && slot_valid_in(a, r, s, pos, dend))) {
			pos = sl->pos + ARENA_ALIGN(sl->len);
			after_hole = sl->kind == ARENA_KIND_HOLE;
			s++;
			continue;
		}
		uint64_t next = s + 1;
		while (next < head && !slot_valid_in(a, r, next, pos, dend))
			next++;
		for (; s < next; s++, holes++)
			make_hole(a, r, s, pos, now);
		after_hole = true;
	}
	if (holes) {
		add_reason(why, whylen, "%s ring: %" PRIu64 " damaged record(s) replaced by holes", name, holes);
		damaged += holes;
	}
	if (damaged)
		atomic_fetch_add_explicit(&a->ctl->counters[ARENA_C_DAMAGED], damaged, memory_order_relaxed);
	/* A data head behind the newest record is a publish that was cut short; one beyond it cannot be
	 * written by a writer: either way it is corrected, and said. */
	uint64_t old_dhead = atomic_load_explicit(&rc->data_head, memory_order_relaxed);
	if (old_dhead != pos)
		add_reason(why, whylen, "%s ring: data head %" PRIu64 " corrected to %" PRIu64 " (%s)", name, old_dhead, pos,
		           old_dhead < pos ? "a publish was cut short" : "it pointed past the newest record");
	atomic_store_explicit(&rc->tail_seq, tail, memory_order_release);
	atomic_store_explicit(&rc->data_tail, first_pos, memory_order_relaxed);
	atomic_store_explicit(&rc->data_head, pos, memory_order_relaxed);
	atomic_store_explicit(&rc->head_seq, head, memory_order_release);
	ring->pend_head_seq = head;
	ring->pend_data_head = pos;
	return true;
}

int
arena_recover(struct arena *a, char *why, size_t whylen)
{
	struct arena_control *c = a->ctl;
	why[0] = '\0';
	for (int r = 0; r < ARENA_RINGS; r++) {
		if (!recover_ring(a, r, why, whylen)) {
			add_reason(why, whylen, "%s ring: no valid record where the counters point; re-initialised with a new generation",
			           ring_names[r]);
			reinit(a);
			return 1;
		}
	}
	/* Counters of what the events were cannot exceed the events: damage, brought back in line. */
	static const enum arena_counter of_events[] = { ARENA_C_REPAIRED, ARENA_C_UNATTRIBUTED, ARENA_C_UNKNOWN_TYPE };
	static const char *const of_names[] = { "repaired", "unattributed", "unknown type" };
	uint64_t events = atomic_load_explicit(&c->counters[ARENA_C_EVENTS], memory_order_relaxed);
	for (size_t i = 0; i < sizeof(of_events) / sizeof(of_events[0]); i++) {
		uint64_t v = atomic_load_explicit(&c->counters[of_events[i]], memory_order_relaxed);
		if (v > events) {
			add_reason(why, whylen, "counter %s (%" PRIu64 ") exceeded the events (%" PRIu64 "): set to them",
			           of_names[i], v, events);
			atomic_store_explicit(&c->counters[of_events[i]], events, memory_order_relaxed);
		}
	}
	atomic_store_explicit(&c->writer_pid, (uint64_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&c->writer_start_ns, arena_now_ns(), memory_order_relaxed);
	arena_heartbeat(a);
	if (why[0])
		atomic_fetch_add_explicit(&c->recoveries, 1, memory_order_relaxed);
	return 0;
}

uint64_t
arena_next_seq(const struct arena *a, enum arena_ring_id r)
{
	return a->ring[r].pend_head_seq;
}

bool
arena_fits_before(const struct arena *a, enum arena_ring_id r, uint64_t keep_seq, uint64_t bytes, uint64_t nrec)
{
	const struct arena_ring *ring = &a->ring[r];
	uint64_t head = ring->pend_head_seq, tail = atomic_load_explicit(&a->ctl->ring[r].tail_seq, memory_order_relaxed);
	if (keep_seq >= head)
		return true; /* nothing of it to overwrite */
	if (keep_seq < tail || nrec > ring->slot_count || head - keep_seq > ring->slot_count - nrec)
		return false;
	uint64_t pos = ring->slots[keep_seq & ring->slot_mask].pos;
	if (pos > ring->pend_data_head || ring->pend_data_head - pos > ring->data_size)
		return false;
	return bytes <= ring->data_size - (ring->pend_data_head - pos);
}

/* The control block is the writer's own, but it lives in shared memory: a tail outside the possible
 * window (damage, or a bug) is brought back into it, so eviction never loops over billions of
 * sequence numbers. */
static void
clamp_window(const struct arena_ring *ring, uint64_t seq, uint64_t dhead, uint64_t *tail, uint64_t *dtail)
{
	if (*tail > seq || seq - *tail > ring->slot_count)
		*tail = seq > ring->slot_count ? seq - ring->slot_count : 0;
	if (*dtail > dhead || dhead - *dtail > ring->data_size)
		*dtail = dhead > ring->data_size ? dhead - ring->data_size : 0;
}

uint64_t
arena_evict_bound(const struct arena *a, enum arena_ring_id r, uint64_t bytes, uint64_t nrec)
{
	const struct arena_ring *ring = &a->ring[r];
	const struct arena_ring_ctl *rc = &a->ctl->ring[r];
	uint64_t seq = ring->pend_head_seq, dhead = ring->pend_data_head;
	uint64_t tail = atomic_load_explicit(&rc->tail_seq, memory_order_relaxed);
	uint64_t dtail = atomic_load_explicit(&rc->data_tail, memory_order_relaxed);
	clamp_window(ring, seq, dhead, &tail, &dtail);
	/* The same conditions arena_append applies, for all the records at once. */
	while (seq + nrec - tail > ring->slot_count || dhead + bytes - dtail > ring->data_size) {
		if (tail == seq)
			return seq;
		tail++;
		dtail = tail == seq ? dhead : ring->slots[tail & ring->slot_mask].pos;
	}
	return tail;
}

uint64_t
arena_append(struct arena *a, enum arena_ring_id r, uint16_t kind, uint16_t flags, uint64_t ref, uint64_t time_ns,
             const struct iovec *iov, int iovcnt)
{
	struct arena_ring *ring = &a->ring[r];
	struct arena_ring_ctl *rc = &a->ctl->ring[r];
	uint64_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > ring->max_record)
		return UINT64_MAX;
	uint64_t alen = ARENA_ALIGN(len);
	uint64_t seq = ring->pend_head_seq;
	uint64_t dhead = ring->pend_data_head;
	uint64_t tail = atomic_load_explicit(&rc->tail_seq, memory_order_relaxed);
	uint64_t dtail = atomic_load_explicit(&rc->data_tail, memory_order_relaxed);
	clamp_window(ring, seq, dhead, &tail, &dtail);
	uint64_t n_evicted = 0, bytes_evicted = 0;
	while (seq - tail >= ring->slot_count || dhead + alen - dtail > ring->data_size) {
		if (tail == seq) {
			dtail = dhead;
			break;
		}
		const struct arena_slot *old = &ring->slots[tail & ring->slot_mask];
		uint64_t end = old->pos + ARENA_ALIGN(old->len);
		bytes_evicted += end - dtail;
		tail++;
		dtail = tail == seq ? dhead : ring->slots[tail & ring->slot_mask].pos;
		n_evicted++;
	}
	if (n_evicted) {
		/* Readers check tail_seq after copying: it must be visible before any byte is reused. */
		atomic_store_explicit(&rc->tail_seq, tail, memory_order_release);
		atomic_store_explicit(&rc->data_tail, dtail, memory_order_relaxed);
		atomic_fetch_add_explicit(&rc->evicted, n_evicted, memory_order_relaxed);
		atomic_fetch_add_explicit(&rc->evicted_bytes, bytes_evicted, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
	}
	KILL_POINT("append:evicted");
	uint32_t crc = record_crc_start(seq, time_ns, ref, (uint32_t)len, kind, flags);
	uint64_t p = dhead;
	for (int i = 0; i < iovcnt; i++) {
		const unsigned char *src = iov[i].iov_base;
		uint64_t n = iov[i].iov_len;
		crc = arena_crc32c(crc, src, n);
		while (n) {
			uint64_t off = p & ring->data_mask;
			uint64_t chunk = ring->data_size - off;
			if (chunk > n)
				chunk = n;
			memcpy(ring->data + off, src, chunk);
			src += chunk;
			p += chunk;
			n -= chunk;
		}
		if (i == 0)
			KILL_POINT("append:data");
	}
	struct arena_slot *sl = &ring->slots[seq & ring->slot_mask];
	sl->pos = dhead;
	sl->len = (uint32_t)len;
	sl->crc = crc;
	sl->time_ns = time_ns;
	sl->ref = ref;
	sl->kind = kind;
	sl->flags = flags;
	KILL_POINT("append:slot");
	atomic_store_explicit(&sl->seq, seq, memory_order_release);
	ring->pend_head_seq = seq + 1;
	ring->pend_data_head = dhead + alen;
	return seq;
}

void
arena_rollback(struct arena *a)
{
	for (int r = 0; r < ARENA_RINGS; r++) {
		a->ring[r].pend_head_seq = atomic_load_explicit(&a->ctl->ring[r].head_seq, memory_order_relaxed);
		a->ring[r].pend_data_head = atomic_load_explicit(&a->ctl->ring[r].data_head, memory_order_relaxed);
	}
}

void
arena_publish(struct arena *a)
{
	/* Raw first: a fact that refers to a raw record is never visible before that record. */
	static const int order[ARENA_RINGS] = { ARENA_RAW, ARENA_FACTS };
	for (int i = 0; i < ARENA_RINGS; i++) {
		int r = order[i];
		struct arena_ring *ring = &a->ring[r];
		struct arena_ring_ctl *rc = &a->ctl->ring[r];
		if (atomic_load_explicit(&rc->head_seq, memory_order_relaxed) == ring->pend_head_seq)
			continue;
		/* The head first: data_head is the writer's bookkeeping (recovery derives it from the
		 * records), and a data_head that runs ahead of the head would let recovery mistake an
		 * unpublished record for a published one. */
		atomic_store_explicit(&rc->head_seq, ring->pend_head_seq, memory_order_release);
		KILL_POINT("publish:head");
		atomic_store_explicit(&rc->data_head, ring->pend_data_head, memory_order_release);
		if (i == 0)
			KILL_POINT("publish:between");
	}
}

void
arena_reset(struct arena *a)
{
	struct arena_control *c = a->ctl;
	/* Make every record unreadable first, then announce the new generation, then overwrite. */
	for (int r = 0; r < ARENA_RINGS; r++) {
		struct arena_ring *ring = &a->ring[r];
		struct arena_ring_ctl *rc = &c->ring[r];
		atomic_store_explicit(&rc->data_tail, ring->pend_data_head, memory_order_relaxed);
		atomic_store_explicit(&rc->data_head, ring->pend_data_head, memory_order_relaxed);
		atomic_store_explicit(&rc->head_seq, ring->pend_head_seq, memory_order_release);
		atomic_store_explicit(&rc->tail_seq, ring->pend_head_seq, memory_order_release);
	}
	uint64_t old = atomic_load_explicit(&c->generation, memory_order_relaxed);
	atomic_store_explicit(&c->generation, new_generation(old), memory_order_release);
	atomic_thread_fence(memory_order_release);
	KILL_POINT("reset:announced");
	for (int r = 0; r < ARENA_RINGS; r++)
		wipe_ring(a, r);
	atomic_fetch_add_explicit(&c->counters[ARENA_C_RESETS], 1, memory_order_relaxed);
	sync_if_file(a);
}

void
arena_count(struct arena *a, enum arena_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&a->ctl->counters[c], n, memory_order_relaxed);
}

void
arena_heartbeat(struct arena *a)
{
	atomic_store_explicit(&a->ctl->heartbeat_ns, arena_now_ns(), memory_order_relaxed);
}

/* --- reader ------------------------------------------------------------------------------------ */

uint64_t
arena_generation(const struct arena *a)
{
	return atomic_load_explicit(&a->ctl->generation, memory_order_acquire);
}

uint64_t
arena_head(const struct arena *a, enum arena_ring_id r)
{
	return atomic_load_explicit(&a->ctl->ring[r].head_seq, memory_order_acquire);
}

uint64_t
arena_tail(const struct arena *a, enum arena_ring_id r)
{
	return atomic_load_explicit(&a->ctl->ring[r].tail_seq, memory_order_acquire);
}

uint64_t
arena_counter_get(const struct arena *a, enum arena_counter c)
{
	if ((unsigned)c >= ARENA_NCOUNTERS)
		return 0;
	return atomic_load_explicit(&a->ctl->counters[c], memory_order_relaxed);
}

/* The one place that copies bytes the writer may be rewriting at the same moment. Whatever it
 * copies is only trusted after the caller's acquire fence and tail re-check. */
static void
racy_copy(void *dst, const volatile void *src, size_t n)
{
	memcpy(dst, (const void *)src, n);
}

bool
arena_window_ok(const struct arena *a, enum arena_ring_id r)
{
	uint64_t tail = atomic_load_explicit(&a->ctl->ring[r].tail_seq, memory_order_acquire);
	uint64_t head = atomic_load_explicit(&a->ctl->ring[r].head_seq, memory_order_acquire);
	/* tail loaded first: the writer moves both forward, so a consistent pair never fails this */
	return tail <= head && head - tail <= a->ring[r].slot_count;
}

enum arena_read_status
arena_read(const struct arena *a, enum arena_ring_id r, uint64_t seq, struct arena_rec *rec, struct buf *out)
{
	const struct arena_ring *ring = &a->ring[r];
	const struct arena_ring_ctl *rc = &a->ctl->ring[r];
	if (seq >= atomic_load_explicit(&rc->head_seq, memory_order_acquire))
		return ARENA_READ_END;
	if (seq < atomic_load_explicit(&rc->tail_seq, memory_order_acquire))
		return ARENA_READ_OVERRUN;
	const struct arena_slot *sl = &ring->slots[seq & ring->slot_mask];
	struct arena_slot copy;
	uint64_t sseq = atomic_load_explicit(&sl->seq, memory_order_acquire);
	racy_copy(&copy, sl, sizeof(copy));
	buf_reset(out);
	bool bad = copy.len > ring->max_record;
	if (!bad) {
		if (!buf_reserve(out, copy.len))
			return ARENA_READ_CORRUPT;
		uint64_t off = copy.pos & ring->data_mask;
		uint64_t first = ring->data_size - off;
		if (first >= copy.len) {
			racy_copy(out->data, ring->data + off, copy.len);
		} else {
			racy_copy(out->data, ring->data + off, first);
			racy_copy(out->data + first, ring->data, copy.len - first);
		}
		out->len = copy.len;
	}
	atomic_thread_fence(memory_order_acquire);
	if (seq < atomic_load_explicit(&rc->tail_seq, memory_order_relaxed)) {
		buf_reset(out);
		return ARENA_READ_OVERRUN;
	}
	if (bad || sseq != seq ||
	    arena_crc32c(record_crc_start(seq, copy.time_ns, copy.ref, copy.len, copy.kind, copy.flags), out->data,
	                 out->len) != copy.crc) {
		buf_reset(out);
		return ARENA_READ_CORRUPT;
	}
	rec->seq = seq;
	rec->time_ns = copy.time_ns;
	rec->ref = copy.ref;
	rec->len = copy.len;
	rec->kind = copy.kind;
	rec->flags = copy.flags;
	return ARENA_READ_OK;
}
