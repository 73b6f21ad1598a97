/*
 * store_int.h — private layout of one store instance, shared by the files of
 * src/store only. Every structure here belongs to exactly one worker thread
 * (the one that called store_create); nothing is locked or atomic.
 *
 * Memory map of one store (all of it counted in mem_used):
 *
 *   fixed    struct store + segment/large/TTL tables + the ghost table
 *            (calloc, at create)
 *   index    primary buckets + overflow buckets, 64 B each (reserved address
 *            space, committed 4 KiB at a time as the index grows)
 *   arena    nsegs * seg_size (reserved PROT_NONE, a segment is committed the
 *            first time it is used, so resident memory grows with use)
 *   large    one private mmap per item too big for a segment, page rounded
 *
 * Item layout inside a segment (no alignment, no padding):
 *
 *   +------+------+-------------+---------+---------+--------+-----+-------+
 *   | klen | bits | vlen varint | [flags] | [exptm] | [cas]  | key | value |
 *   |  1   |  1   |    1..5     |   4?    |   4?    |   8?   |     |       |
 *   +------+------+-------------+---------+---------+--------+-----+-------+
 *
 * flags/exptime are present only when non-zero (IB_FLAGS, IB_EXP), cas only
 * when an item was relocated and had to keep its CAS (IB_CAS). A 20-byte key
 * with a 100-byte value and no flags/exptime therefore has a 3-byte header.
 *
 * Index entry (48 bits, kept in a uint64_t while in use; 0 = empty):
 *
 *   47   44 43          L L-1                       0
 *   | freq |    tag     |  loc = seg id << off_bits | offset  |
 *
 * L (loc_bits) is sized per store: the bits that name every segment, every
 * large-item slot and every offset in a segment, at least 32. The tag gets
 * what is left of 44 - L bits (12 for stores up to ~1 GiB). In a bucket the
 * entry is split in two: the top 16 bits (meta) in one array, the low 32
 * bits (loc, its low part) in another, so that a lookup compares the tags
 * of a whole bucket at once (index.c).
 *
 * seg id < nsegs names a regular segment; nsegs + i names large item i.
 */
#ifndef PERCORE_STORE_INT_H
#define PERCORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define NONE32     UINT32_MAX
#define EXP_NEVER  UINT32_MAX   /* seg->exp_max when an item never expires */
#define PAGE_SZ    4096u

/* item header bits (the low three are the meta-protocol ITEM_* bits) */
#define IB_MBITS   0x07u
#define IB_FLAGS   0x08u
#define IB_EXP     0x10u
#define IB_CAS     0x20u
#define IB_DEAD    0x40u
/* The item's CAS was handed out (store_view_cas, a write's cas_out, a
 * walk): a relocation must keep it, in an explicit CAS field. An item whose
 * CAS nobody has seen takes the CAS of wherever it moves to, which no
 * client can tell apart (CAS values stay unique: serials are never reused),
 * and saves the field's 8 bytes. */
#define IB_CASSEEN 0x80u

/* index entry fields (see the layout above) */
#define E_FREQ_SHIFT 44
#define E_FREQ_MAX   15u
#define E_FREQ_MASK  (UINT64_C(0xf) << E_FREQ_SHIFT)
#define E_LOC_MAX    38          /* loc bits: the tag keeps >= 6 bits */
#define SEG_SIZE_MAX (1u << 24)

/* A 64-byte bucket: 10 entries, each split into meta (tag and frequency,
 * with a store's loc bits past 32 at the bottom) and loc (low 32 bits),
 * plus the link to an overflow bucket (1-based, 0 = none). */
#define IDX_SLOTS 10
struct ibkt {
    uint16_t meta[IDX_SLOTS];
    uint32_t loc[IDX_SLOTS];
    uint32_t next;
};

/* An index slot is named by a pointer to its meta; buckets are 64-byte
 * aligned, so the bucket and the loc half follow from it. Entries move only
 * inside an insert (index.c), so a slot pointer is good until the next
 * write to the store. */
static inline struct ibkt *slot_bkt(const uint16_t *m)
{
    return (struct ibkt *)((uintptr_t)m & ~(uintptr_t)63);
}
static inline uint64_t slot_get(const uint16_t *m)
{
    const struct ibkt *b = slot_bkt(m);
    return ((uint64_t)*m << 32) | b->loc[m - b->meta];
}
static inline void slot_set(uint16_t *m, uint64_t e)
{
    struct ibkt *b = slot_bkt(m);
    *m = (uint16_t)(e >> 32);
    b->loc[m - b->meta] = (uint32_t)e;
}

/* the frequency counter lives in meta alone */
static inline unsigned slot_freq(const uint16_t *m) { return *m >> 12; }
static inline void slot_set_freq(uint16_t *m, unsigned freq)
{
    *m = (uint16_t)((*m & 0x0fffu) | (freq << 12));
}

static inline unsigned e_freq(uint64_t e) { return (unsigned)(e >> E_FREQ_SHIFT) & 0xfu; }
static inline uint64_t e_with_freq(uint64_t e, unsigned freq)
{
    return (e & ~E_FREQ_MASK) | ((uint64_t)freq << E_FREQ_SHIFT);
}

/* SEG_HELD: released while replies still send from it (pins > 0); it goes
 * to the free list when the last pin is dropped, and counts as used until
 * then. */
enum seg_state { SEG_FREE = 0, SEG_OPEN, SEG_SEALED, SEG_SPARE, SEG_HELD };

struct seg {
    uint64_t serial;      /* opening number, mixed into CAS; 0 while free */
    uint32_t prev, next;  /* TTL bucket chain; next doubles as free list link */
    uint32_t wpos;        /* bytes appended */
    uint32_t live_bytes;  /* bytes of items still indexed */
    uint32_t live_items;
    uint32_t create_at;   /* relative second the segment was opened */
    uint32_t atime;       /* last read of any item in it */
    uint32_t exp_max;     /* latest exptime written here, EXP_NEVER if any 0 */
    uint16_t bucket;      /* TTL bucket while OPEN/SEALED */
    uint8_t  state;       /* enum seg_state */
    uint8_t  dirty_queued;
    uint8_t  decommitted; /* FREE and its pages given back (seg_trim_resident) */
    uint8_t  prob;        /* probation: holds client writes not yet vetted (probation.c) */
    uint32_t pins;        /* replies in flight that send from this segment */
};

struct large {
    uint8_t *mem;         /* NULL while the slot is free */
    size_t   maplen;      /* page-rounded length, counted in mem_used */
    uint64_t serial;
    uint32_t prev, next;  /* FIFO of live large items; next = free list link */
    uint32_t create_at, atime;
    uint32_t pins;        /* replies in flight that send from it */
    bool     held;        /* freed while pinned: unmapped at the last unpin */
};

#define TTL_NBUCKETS 978
#define TTL_NEVER    (TTL_NBUCKETS - 1)

struct ttl_bucket {
    uint32_t head, tail;  /* chain of segments, oldest first */
    uint32_t open;        /* segment receiving appends, NONE32 if none */
    uint32_t cursor;      /* where the next eviction merge starts */
    uint32_t popen;       /* main segment receiving promotions, NONE32 if none */
    uint32_t nseg;
};

struct index {
    struct ibkt *prim;    /* primary buckets */
    struct ibkt *ovf;     /* overflow bucket j (1-based) = ovf[j - 1] */
    size_t    nb;         /* primary buckets in use */
    size_t    nb_max;     /* reserved */
    size_t    nb_commit;  /* committed (readable/writable) */
    unsigned  level;      /* 2^level <= nb < 2^(level+1) */
    size_t    mask_lo;    /* 2^level - 1 */
    size_t    split;      /* nb - 2^level: buckets below it use level + 1 bits */
    uint32_t  ovf_hwm, ovf_max, ovf_commit;
    uint32_t  ovf_free, ovf_nfree;
    uint64_t  nitems;
    uint64_t *tmp;        /* scratch for splits */
    size_t    tmp_cap;
    unsigned  loc_bits;   /* entry layout (store_int.h), fixed at create */
    unsigned  tag_bits;
    uint64_t  loc_mask;
    uint64_t  tag_mask;   /* the tag field in place */
    uint64_t  off_mask;   /* the offset's bits in loc */
    uint16_t  tag_mask16; /* the tag's bits in meta */
    uint16_t  ext_mask16; /* loc's bits past 32, in meta */
};

struct mslot {
    uint16_t *slot;
    uint64_t  h;
};

struct store_counters {
    uint64_t total_items, evictions, evicted_segments, expired_reclaimed;
    uint64_t expired_unfetched, evicted_unfetched, reclaim_segments;
    uint64_t merged_items, flushes, bytes, curr_items;
    uint64_t get_expired;   /* lookups that found their key expired (memcached's get_expired) */
};

/* Per-class counters behind `stats slabs` / `stats items` (a class is a TTL
 * bucket; index TTL_NBUCKETS is the large-item class). */
struct class_ctr {
    uint64_t get_hits, touch_hits, cmd_set, delete_hits, incr_hits, decr_hits;
    uint64_t cas_hits, cas_badval, evicted, evicted_nonzero, evicted_unfetched;
    uint64_t reclaimed, expired_unfetched;
    uint32_t evicted_time;   /* seconds the last evicted item had not been read */
};

struct store {
    struct store_config cfg;
    uint32_t now;
    uint32_t flush_hold;  /* items written while now <= this vanish (flush_all) */
    uint64_t rng;
    uint64_t gen;         /* store_stats_gen_at(): bumped by every call that may mutate */
    uint64_t moves;       /* bumped where index entries may move or die beyond one
                           * write's own (splits, eviction, a new segment): a slot
                           * found before a write stays valid while it is unchanged */

    size_t   seg_size;
    size_t   large_min;   /* items bigger than this go to a large allocation */
    unsigned off_bits;    /* CAS: bits for the offset */
    uint64_t serial_mask; /* CAS: bits for the segment serial */
    uint64_t next_serial;

    uint8_t    *arena;
    size_t      arena_len;
    uint32_t    nsegs;
    uint32_t    seg_fresh;   /* segments [0, seg_fresh) have been committed */
    uint32_t    free_head;
    uint32_t    nfree;
    uint32_t    nfree_resident; /* free segments whose pages are still resident */
    uint32_t    spare;       /* empty segment kept as eviction merge target */
    uint64_t    segs_used;   /* not FREE (includes the spare) */
    struct seg *segs;

    struct large *larges;
    uint32_t      nlarge_cap, seg_large_free, large_head, large_tail, nlarge;
    uint64_t      large_bytes;

    struct ttl_bucket ttl[TTL_NBUCKETS];
    uint32_t          maint_bucket;
    /* Buckets holding segments (ttl_busy), and buckets whose class counters
     * may be other than zero (cls_seen: ever held a segment or counted a
     * set): the once-a-second walks (TTL reclaim, class stats) visit only
     * these instead of all 978. */
    uint64_t          ttl_busy[(TTL_NBUCKETS + 63) / 64];
    uint64_t          cls_seen[(TTL_NBUCKETS + 1 + 63) / 64];

    uint32_t *dirty;         /* ring of (seg id) whose bytes are mostly dead */
    uint32_t  dirty_head, dirty_n;
    uint32_t  dirty_lone;    /* a dirty segment no neighbour could join (evict.c) */
    uint64_t  dirty_lone_serial;   /* its opening; 0 = none */

    struct probq_ent { uint32_t id; uint32_t pad; uint64_t serial; } *probq;
    uint32_t  probq_cap, probq_head, probq_n;   /* sealed probation segments, oldest first */
    uint32_t  nprob;         /* probation segments in use (open or sealed) */

    uint8_t  *ghost;         /* fingerprints of keys probation dropped (ghost.c) */
    uint32_t  ghost_mask;
    uint64_t  ghost_hits;    /* writes that found their ghost (not snapshotted) */

    struct index idx;

    size_t fixed_bytes;
    size_t mem_cap;          /* the limit at creation: what the arena, index and
                              * tables are sized for; store_set_limit() stays below */
    size_t mem_target;       /* store_set_limit()'s limit; cfg.mem_limit (enforced)
                              * steps down to it in maintenance slices */
    struct store_counters c;
    uint64_t pins;           /* pins held by replies in flight */
    uint64_t held_bytes;     /* memory freed but still pinned (counted as used) */
    struct class_ctr cls[TTL_NBUCKETS + 1];
    void (*obs)(void *arg, const struct store_event *ev);   /* watch, or NULL */
    void *obs_arg;

    /* transient scratch (not counted: freed size-bounded buffers) */
    struct mslot *mslots;    /* per-item index slot during a merge */
    size_t     mslots_cap;
};

/* decoded item header */
struct item {
    uint8_t  *p;          /* first byte */
    uint32_t  hlen, size;
    uint32_t  klen, vlen;
    uint32_t  flags, exptime;
    uint64_t  cas;        /* explicit CAS (IB_CAS), else 0 */
    uint8_t   bits;
    char     *key, *val;
};

/* store.c */
static inline size_t store_mem_used(const struct store *s)
{
    return s->fixed_bytes + (size_t)(s->idx.nb_commit + s->idx.ovf_commit) * sizeof(struct ibkt)
           + (size_t)s->segs_used * s->seg_size + s->large_bytes;
}
static inline bool store_room(const struct store *s, size_t bytes)
{
    return store_mem_used(s) + bytes <= s->cfg.mem_limit;
}
bool store_make_room(struct store *s, size_t bytes);
/* The store is not logically full: at most LIVE_FULL_PCT percent of the
 * segment memory in use holds live items (the rest is dead: overwritten or
 * deleted, or room not yet written). Making room must then reclaim the
 * dead bytes and drop no live item (probation.c keeps unread items,
 * seg.c queues half-dead segments for compaction). Large items' bytes
 * count as live too (conservative: they are not in segments). Under a
 * cache's usual load (fill on miss, nothing overwritten) segments are
 * ~98% live, far from this. */
#define LIVE_FULL_PCT 60
/* Whether moving this item needs an explicit CAS field to keep its CAS. */
static inline bool item_move_needs_cas(const struct store *s, uint8_t bits)
{
    return s->cfg.use_cas && (bits & (IB_CAS | IB_CASSEEN)) == IB_CASSEEN;
}
static inline bool store_mostly_dead(const struct store *s)
{
    return s->c.bytes * 100 <= (uint64_t)s->segs_used * s->seg_size * LIVE_FULL_PCT;
}
uint64_t store_hash(const void *key, size_t len);
/* Key equality without a call: index look-ups compare one key per request,
 * and for the common 10-64 byte keys glibc's memcmp spent more on its call
 * and size dispatch than on comparing. Reads stay inside both keys: the
 * last (possibly overlapping) 16, 8 or 4 bytes are read whole. */
static inline bool key_eq(const void *x, const void *y, size_t n)
{
    const uint8_t *a = x, *b = y;
    if (n >= 16) {
#if defined(__SSE2__)
        for (size_t i = 0; i + 16 < n; i += 16) {
            __m128i d = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(a + i)),
                                       _mm_loadu_si128((const __m128i *)(b + i)));
            if (_mm_movemask_epi8(d) != 0xffff)
                return false;
        }
        __m128i d = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(a + n - 16)),
                                   _mm_loadu_si128((const __m128i *)(b + n - 16)));
        return _mm_movemask_epi8(d) == 0xffff;
#else
        return memcmp(a, b, n) == 0;
#endif
    }
    uint64_t u, v, w, z;
    if (n >= 8) {
        memcpy(&u, a, 8); memcpy(&v, b, 8);
        memcpy(&w, a + n - 8, 8); memcpy(&z, b + n - 8, 8);
        return ((u ^ v) | (w ^ z)) == 0;
    }
    if (n >= 4) {
        uint32_t u4, v4, w4, z4;
        memcpy(&u4, a, 4); memcpy(&v4, b, 4);
        memcpy(&w4, a + n - 4, 4); memcpy(&z4, b + n - 4, 4);
        return ((u4 ^ v4) | (w4 ^ z4)) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}
static inline bool item_expired(const struct store *s, uint32_t exptime)
{
    return exptime != 0 && exptime <= s->now;
}

/* index entry fields that depend on the store's layout */
static inline uint32_t e_seg(const struct store *s, uint64_t e)
{
    return (uint32_t)((e & s->idx.loc_mask) >> s->off_bits);
}
static inline uint32_t e_off(const struct store *s, uint64_t e)
{
    return (uint32_t)(e & s->idx.off_mask);
}
static inline uint64_t e_loc(const struct store *s, uint32_t sid, uint32_t off)
{
    return ((uint64_t)sid << s->off_bits) | off;
}
/* The tag for key hash h, in meta's bits: bits 48 + ext .. 59 of the hash
 * (ext = loc_bits - 32, the meta bits the location borrows), never 0 so
 * that 0 means "empty" (a zero tag becomes all ones). */
static inline uint16_t hash_tag16(const struct store *s, uint64_t h)
{
    uint16_t t = (uint16_t)(h >> 48) & s->idx.tag_mask16;
    return t ? t : s->idx.tag_mask16;
}
/* the same as an entry's tag field, in place */
static inline uint64_t hash_tag(const struct store *s, uint64_t h)
{
    return (uint64_t)hash_tag16(s, h) << 32;
}
static inline uint64_t e_make(const struct store *s, uint64_t tag, unsigned freq, uint32_t sid,
                              uint32_t off)
{
    return tag | ((uint64_t)freq << E_FREQ_SHIFT) | e_loc(s, sid, off);
}
/* e moved to sid/off with counter freq; the tag stays */
static inline uint64_t e_moved(const struct store *s, uint64_t e, unsigned freq, uint32_t sid,
                               uint32_t off)
{
    return e_make(s, e & s->idx.tag_mask, freq, sid, off);
}

/* the class (TTL bucket, or TTL_NBUCKETS for large items) of segment or
 * large item sid, and of an index entry */
static inline unsigned sid_class(const struct store *s, uint32_t sid)
{
    return sid >= s->nsegs ? TTL_NBUCKETS : s->segs[sid].bucket;
}
static inline unsigned entry_class(const struct store *s, uint64_t e)
{
    return sid_class(s, e_seg(s, e));
}

/* Tell the observer (if any) about an event. */
static inline void store_notify(const struct store *s, const struct store_event *ev)
{
    if (s->obs)
        s->obs(s->obs_arg, ev);
}

/* seg.c — arena, segments, item encoding */
bool     seg_setup(struct store *s);
void     seg_teardown(struct store *s);
uint32_t seg_get(struct store *s);                   /* may evict; NONE32 on failure */
uint32_t seg_take_free(struct store *s);             /* never evicts */
void     seg_init_open(struct store *s, uint32_t id);
void     seg_release(struct store *s, uint32_t id);  /* back to the free list (or held) */
void     seg_unheld(struct store *s, uint32_t id);   /* last pin of a held one gone */
void     seg_trim_resident(struct store *s); /* free pages of free segments over the limit */
void     seg_item_died(struct store *s, uint32_t sid, uint32_t size);
uint64_t seg_next_serial(struct store *s);

size_t   seg_item_hdr_size(uint32_t vlen, uint32_t flags, uint32_t exptime, bool exp_field,
                       bool cas_field);

/* A walk over one segment's items not marked dead, in write order (merges
 * and probation evictions): with find_slot, each one's hash and the index
 * slot that points at it (NULL when the index no longer does). The caller
 * may mark items dead and rewrite or delete their slots as it goes; the
 * segment itself must not be written. */
struct seg_walk {
    struct store *s;
    uint8_t  *base;
    uint32_t  id, off, next;
    bool      find_slot;
    struct item it;       /* the current item, at off */
    uint64_t  h;
    uint16_t *slot;
};
void     seg_walk_start(struct seg_walk *w, struct store *s, uint32_t id, bool find_slot);
bool     seg_walk_next(struct seg_walk *w);
size_t   seg_item_encode(uint8_t *p, uint32_t klen, uint32_t vlen, uint8_t bits,
                     uint32_t flags, uint32_t exptime, bool exp_field, uint64_t cas);

/* seg_map.c — where the arena's pages come from (anonymous, or -e's file) */
bool     seg_map_arena(struct store *s);             /* sets arena, arena_len */
void     seg_map_unmap(struct store *s);
void     seg_map_drop(struct store *s, uint32_t id); /* give a free segment's pages back */

/* large.c */
bool     seg_large_setup(struct store *s);
void     seg_large_teardown(struct store *s);
uint8_t *seg_large_alloc(struct store *s, size_t size, uint32_t *sid);
void     seg_large_free(struct store *s, uint32_t sid);
void     seg_large_unheld(struct store *s, uint32_t sid);
bool     seg_large_evict_one(struct store *s);
unsigned seg_large_reclaim_expired(struct store *s, unsigned budget);
static inline bool loc_is_large(const struct store *s, uint32_t sid) { return sid >= s->nsegs; }

/* ttl.c */
unsigned ttl_bucket_of(const struct store *s, uint32_t exptime);
unsigned store_class_of_bucket(unsigned b);   /* class index (id - 1) */
void     ttl_link_tail(struct store *s, uint32_t b, uint32_t id);
void     ttl_link_before(struct store *s, uint32_t b, uint32_t id, uint32_t before);
void     ttl_unlink(struct store *s, uint32_t id);
/* The first bucket at or after b, below `end`, that holds segments (ttl_busy),
 * or `end`. */
unsigned ttl_next_busy(const struct store *s, unsigned b, unsigned end);
/* ttl_busy and cls_seen from the chains and counters (after a restore). */
void     ttl_marks_rebuild(struct store *s);
static inline void cls_mark(struct store *s, unsigned b)
{
    s->cls_seen[b / 64] |= UINT64_C(1) << (b % 64);
}
uint8_t *ttl_append(struct store *s, size_t size, uint32_t exptime, uint32_t *sid, uint32_t *off);
bool     ttl_reclaim_one(struct store *s);
unsigned ttl_reclaim_scan(struct store *s, unsigned budget, bool *more);

/* evict.c */
bool     evict_one(struct store *s);
void     evict_note_dirty(struct store *s, uint32_t id);
enum merge_mode { MERGE_EVICT, MERGE_EXPIRE, MERGE_DROP };
void     evict_merge(struct store *s, const uint32_t *src, unsigned n, enum merge_mode mode);

/* probation.c */
void     prob_opened(struct store *s, uint32_t id);
void     prob_sealed(struct store *s, uint32_t id);
void     prob_released(struct store *s, uint32_t id);
bool     prob_over_share(const struct store *s);
bool     prob_evict_one(struct store *s);
void     prob_reset(struct store *s);
/* ghost.c */
size_t   ghost_slots_for(size_t mem);
bool     ghost_setup(struct store *s, size_t slots);
void     ghost_teardown(struct store *s);
void     ghost_reset(struct store *s);
void     ghost_add(struct store *s, uint64_t h);
bool     ghost_take(struct store *s, uint64_t h);
void     evict_drop_stats(struct store *s, const struct item *it, bool expired, uint32_t id);
uint64_t evict_cas_of_loc(const struct store *s, uint32_t sid, uint32_t off);

/* index.c */
bool      index_setup(struct store *s);
void      index_teardown(struct store *s);
void      index_reset(struct store *s);
bool      index_layout(struct store *s, uint64_t nids);
uint16_t *index_find(struct store *s, const char *key, size_t klen, uint64_t h, struct item *it);
uint16_t *index_find_loc(struct store *s, uint64_t h, uint32_t sid, uint32_t off);
bool      index_prepare(struct store *s, uint64_t h);
void      index_insert(struct store *s, uint64_t h, uint64_t entry);
void      index_delete(struct store *s, uint64_t h, uint16_t *slot);
bool      index_grow_step(struct store *s);
bool      index_grow_due(const struct store *s);
void      index_prefetch(const struct store *s, uint64_t h);
size_t    index_bytes(const struct store *s);

/* commit a PROT_NONE range for read/write; false if the OS refuses */
bool store_commit(void *p, size_t len);

/* Where an item lives and its segment's serial and access time, and the
 * decoding of its header: every lookup runs them, so they are inline here
 * rather than calls into seg.c. */
static inline uint8_t *seg_loc_ptr(const struct store *s, uint32_t sid, uint32_t off)
{
    if (sid < s->nsegs)
        return s->arena + (size_t)sid * s->seg_size + off;
    return s->larges[sid - s->nsegs].mem;
}

static inline uint64_t seg_loc_serial(const struct store *s, uint32_t sid)
{
    return sid < s->nsegs ? s->segs[sid].serial : s->larges[sid - s->nsegs].serial;
}

static inline uint32_t seg_loc_atime(const struct store *s, uint32_t sid)
{
    return sid < s->nsegs ? s->segs[sid].atime : s->larges[sid - s->nsegs].atime;
}

static inline void seg_loc_touch_atime(struct store *s, uint32_t sid)
{
    if (sid < s->nsegs)
        s->segs[sid].atime = s->now;
    else
        s->larges[sid - s->nsegs].atime = s->now;
}

static inline void seg_item_decode(uint8_t *p, struct item *it)
{
    size_t i = 2;
    uint32_t v = 0;
    unsigned sh = 0;
    uint8_t b;
    do {
        b = p[i++];
        v |= (uint32_t)(b & 0x7f) << sh;
        sh += 7;
    } while (b & 0x80);
    it->p = p;
    it->klen = p[0];
    it->bits = p[1];
    it->vlen = v;
    it->flags = 0;
    it->exptime = 0;
    it->cas = 0;
    if (it->bits & IB_FLAGS) {
        memcpy(&it->flags, p + i, 4);
        i += 4;
    }
    if (it->bits & IB_EXP) {
        memcpy(&it->exptime, p + i, 4);
        i += 4;
    }
    if (it->bits & IB_CAS) {
        memcpy(&it->cas, p + i, 8);
        i += 8;
    }
    it->hlen = (uint32_t)i;
    it->key = (char *)p + i;
    it->val = it->key + it->klen;
    it->size = (uint32_t)(i + it->klen + v);
}

#endif
