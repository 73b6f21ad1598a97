/*
 * index.c — the hash index of one store: 48-bit entries (tag, frequency,
 * location sized to the store) in 64-byte buckets of 10, each key with two
 * candidate buckets. An insert goes to the less loaded of the two; when
 * both are full it moves one entry of theirs to that entry's other
 * candidate (one cuckoo step), so the table runs at 9 entries per primary
 * bucket (90%) with few overflow buckets: ~7.4 bytes per item, where one
 * candidate bucket of 8-byte entries needed ~15. A lookup compares the 10
 * tags of a bucket at once (the meta halves of the entries sit together,
 * store_int.h) and reads an item only on a tag match.
 *
 * The table grows by linear hashing: one bucket is split whenever the
 * average load passes LOAD_X4 / 4 entries per primary bucket, so it never
 * stops the world to resize. A split re-reads the keys of the entries of
 * the bucket it splits and places each in the less loaded of its two
 * candidates, recomputed for the new table size. When neither candidate
 * nor the cuckoo step has room, an overflow bucket is linked, so an insert
 * never fails while memory allows one. Primary and overflow buckets live in
 * address space reserved at create time and are committed 4 KiB at a time,
 * each 4 KiB counted in mem_used before use.
 *
 * Chains keep holes: a delete zeroes the slot, and an overflow bucket that
 * becomes empty is unlinked. Entries move only inside an insert (a split or
 * a cuckoo step), so a slot pointer stays valid across deletes of other
 * entries (eviction merges rely on that). State belongs to the store's
 * worker thread.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "store/store_int.h"

#define LOAD_X4     36          /* target entries per primary bucket, x4 (9) */
#define NB_MIN      64
#define DISPLACE_TRIES 10        /* keys read per full candidate, at most */
#define CHUNK_BKTS  (PAGE_SZ / sizeof(struct ibkt))

_Static_assert(sizeof(struct ibkt) == 64, "a bucket is one cache line");

static inline struct ibkt *prim_bkt(const struct index *x, size_t b) { return x->prim + b; }
static inline struct ibkt *ovf_bkt(const struct index *x, uint32_t j) { return x->ovf + (j - 1); }
static inline struct ibkt *next_bkt(const struct index *x, const struct ibkt *b)
{
    return b->next ? ovf_bkt(x, b->next) : NULL;
}

/* Linear hashing: buckets below the split pointer use one more hash bit. */
static inline size_t addr_of(const struct index *x, uint64_t h)
{
    size_t b = h & x->mask_lo;
    if (b < x->split)
        b = h & (2 * x->mask_lo + 1);
    return b;
}

/* addr_of()'s terms, after nb or level change */
static void set_split(struct index *x)
{
    x->mask_lo = ((size_t)1 << x->level) - 1;
    x->split = x->nb - (x->mask_lo + 1);
}

/* The second candidate's hash: the high half of a product mixes every bit
 * of h, so it is unrelated to the first bucket's (low) bits and to the tag
 * (top) bits. */
static inline uint64_t hash2(uint64_t h)
{
    return (h * UINT64_C(0x9e3779b97f4a7c15)) >> 32;
}

/*
 * Slot masks: bit 2i stands for slot i. bkt_match() has the slots whose
 * tag (meta & mask) is want, bkt_holes() the empty ones. With SSE2 (every
 * x86-64) the 10 metas are two overlapping 8-lane loads (slots 0-7 and
 * 2-9), so a bucket costs about ten instructions whatever its fill.
 */
#if defined(__SSE2__) && !defined(PERCORE_INDEX_SCALAR)
#include <emmintrin.h>

static inline uint32_t lanes_eq(const struct ibkt *b, __m128i mask, __m128i want)
{
    __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)b->meta);
    __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(b->meta + 2));
    uint32_t m0 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(lo, mask), want));
    uint32_t m1 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(hi, mask), want));
    return (m0 | m1 << 4) & 0x55555u;
}

static inline uint32_t bkt_match(const struct ibkt *b, uint16_t mask, uint16_t want)
{
    return lanes_eq(b, _mm_set1_epi16((short)mask), _mm_set1_epi16((short)want));
}

static inline uint32_t bkt_holes(const struct ibkt *b)
{
    return lanes_eq(b, _mm_set1_epi16(-1), _mm_setzero_si128());
}
#else
static inline uint32_t bkt_match(const struct ibkt *b, uint16_t mask, uint16_t want)
{
    uint32_t m = 0;
    for (unsigned i = 0; i < IDX_SLOTS; i++)
        m |= (uint32_t)((b->meta[i] & mask) == want) << (2 * i);
    return m;
}

static inline uint32_t bkt_holes(const struct ibkt *b)
{
    return bkt_match(b, 0xffff, 0);
}
#endif

#define ALL_HOLES 0x55555u      /* bkt_holes() of an empty bucket */

/* the slot of the lowest bit of a slot mask */
static inline unsigned mask_slot(uint32_t m)
{
    return (unsigned)__builtin_ctz(m) >> 1;
}

/* the number of slots in a mask (no popcnt instruction in the baseline
 * x86-64 target: libgcc's is a call) */
static inline unsigned mask_count(uint32_t m)
{
    m = (m & 0x33333u) + (m >> 2 & 0x33333u);
    m = (m + (m >> 4)) & 0x0f0f0fu;
    return (m * 0x010101u) >> 16 & 0xffu;
}

size_t index_bytes(const struct store *s)
{
    return (s->idx.nb_commit + s->idx.ovf_commit) * sizeof(struct ibkt);
}

/* Size the entry's fields for nids segment and large-item ids of
 * 2^off_bits offsets each. False if they do not fit in E_LOC_MAX bits. */
bool index_layout(struct store *s, uint64_t nids)
{
    struct index *x = &s->idx;
    unsigned sb = 0;
    while ((UINT64_C(1) << sb) < nids)
        sb++;
    unsigned lb = sb + s->off_bits;
    if (lb > E_LOC_MAX)
        return false;
    if (lb < 32)
        lb = 32;
    x->loc_bits = lb;
    x->tag_bits = E_FREQ_SHIFT - lb;
    x->loc_mask = (UINT64_C(1) << lb) - 1;
    x->tag_mask = ((UINT64_C(1) << E_FREQ_SHIFT) - 1) & ~x->loc_mask;
    x->tag_mask16 = (uint16_t)(x->tag_mask >> 32);
    x->ext_mask16 = (uint16_t)((1u << (lb - 32)) - 1);
    x->off_mask = (UINT64_C(1) << s->off_bits) - 1;
    return true;
}

bool index_setup(struct store *s)
{
    struct index *x = &s->idx;
    size_t maxb = s->cfg.mem_limit / sizeof(struct ibkt) + 1;
    x->nb_max = NB_MIN;
    while (x->nb_max < maxb)
        x->nb_max *= 2;
    x->ovf_max = (uint32_t)(maxb > UINT32_MAX - 1 ? UINT32_MAX - 1 : maxb);
    void *p = mmap(NULL, x->nb_max * sizeof(struct ibkt), PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return false;
    x->prim = p;
    p = mmap(NULL, (size_t)x->ovf_max * sizeof(struct ibkt), PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        munmap(x->prim, x->nb_max * sizeof(struct ibkt));
        x->prim = NULL;
        return false;
    }
    x->ovf = p;
    if (!store_commit(x->prim, NB_MIN * sizeof(struct ibkt)))
        return false;
    x->nb_commit = NB_MIN;
    x->nb = NB_MIN;
    x->level = 6;
    set_split(x);
    return true;
}

void index_teardown(struct store *s)
{
    struct index *x = &s->idx;
    if (x->prim)
        munmap(x->prim, x->nb_max * sizeof(struct ibkt));
    if (x->ovf)
        munmap(x->ovf, (size_t)x->ovf_max * sizeof(struct ibkt));
    free(x->tmp);
    /* the layout stays: it belongs to the store, not to the table */
    struct index keep = { .loc_bits = x->loc_bits, .tag_bits = x->tag_bits,
                          .loc_mask = x->loc_mask, .tag_mask = x->tag_mask,
                          .tag_mask16 = x->tag_mask16, .ext_mask16 = x->ext_mask16,
                          .off_mask = x->off_mask };
    *x = keep;
}

/* Drop every entry; keep the committed memory (flush_all). */
void index_reset(struct store *s)
{
    struct index *x = &s->idx;
    memset(x->prim, 0, x->nb * sizeof(struct ibkt));
    x->ovf_free = 0;
    x->ovf_nfree = 0;
    for (uint32_t j = x->ovf_hwm; j >= 1; j--) {
        ovf_bkt(x, j)->next = x->ovf_free;
        x->ovf_free = j;
        x->ovf_nfree++;
    }
    x->nitems = 0;
}

/* A free overflow bucket, committing a page if the limit allows.
 * Never evicts: callers make room first. */
static uint32_t ovf_alloc(struct store *s)
{
    struct index *x = &s->idx;
    uint32_t j;
    if (x->ovf_free) {
        j = x->ovf_free;
        x->ovf_free = ovf_bkt(x, j)->next;
        x->ovf_nfree--;
    } else {
        if (x->ovf_hwm == x->ovf_commit) {
            if (x->ovf_commit + CHUNK_BKTS > x->ovf_max || !store_room(s, PAGE_SZ) ||
                !store_commit(x->ovf + x->ovf_commit, PAGE_SZ))
                return 0;
            x->ovf_commit += CHUNK_BKTS;
        }
        j = ++x->ovf_hwm;
    }
    memset(ovf_bkt(x, j), 0, sizeof(struct ibkt));
    return j;
}

static void ovf_put(struct index *x, uint32_t j)
{
    ovf_bkt(x, j)->next = x->ovf_free;
    x->ovf_free = j;
    x->ovf_nfree++;
}

static inline void bkt_put(struct ibkt *b, unsigned i, uint64_t e)
{
    b->meta[i] = (uint16_t)(e >> 32);
    b->loc[i] = (uint32_t)e;
}

/* Put e in the first hole of the overflow chain of bucket b. */
static bool chain_hole_add(const struct index *x, size_t b, uint64_t e)
{
    for (struct ibkt *bk = next_bkt(x, prim_bkt(x, b)); bk; bk = next_bkt(x, bk)) {
        uint32_t m = bkt_holes(bk);
        if (m) {
            bkt_put(bk, mask_slot(m), e);
            return true;
        }
    }
    return false;
}

static bool chain_has_hole(const struct index *x, size_t b)
{
    for (const struct ibkt *bk = prim_bkt(x, b); bk; bk = next_bkt(x, bk))
        if (bkt_holes(bk))
            return true;
    return false;
}

static uint64_t entry_hash(struct store *s, uint64_t e);

/* Both candidates of a new entry are full: move one entry of bucket b
 * (number a) to a hole in its other candidate and put e in its place, a
 * cuckoo step of depth one. Buckets split earlier in a linear-hashing
 * round hold half as much as those not split yet, so a hole is usually
 * a read or two away; this is what keeps overflow buckets rare at 90%. */
static bool displace(struct store *s, struct ibkt *b, size_t a, uint64_t e)
{
    struct index *x = &s->idx;
    for (unsigned i = 0; i < DISPLACE_TRIES; i++) {
        uint64_t o = ((uint64_t)b->meta[i] << 32) | b->loc[i];
        uint64_t h = entry_hash(s, o);
        size_t alt = addr_of(x, h);
        if (alt == a)
            alt = addr_of(x, hash2(h));
        if (alt == a)
            continue;
        struct ibkt *ab = prim_bkt(x, alt);
        uint32_t m = bkt_holes(ab);
        if (m) {
            bkt_put(ab, mask_slot(m), o);
            bkt_put(b, i, e);
            return true;
        }
    }
    return false;
}

/* Place e (key hash h): the primary candidate with more holes, else a hole
 * in either chain, else a new overflow bucket linked first in the chain of
 * bucket ovf_at. False only if no overflow bucket can be had. */
static bool place(struct store *s, uint64_t h, uint64_t e, size_t ovf_at)
{
    struct index *x = &s->idx;
    size_t a1 = addr_of(x, h), a2 = addr_of(x, hash2(h));
    struct ibkt *b1 = prim_bkt(x, a1), *b2 = prim_bkt(x, a2);
    uint32_t m1 = bkt_holes(b1), m2 = bkt_holes(b2);
    if (m1 | m2) {
        if (mask_count(m2) > mask_count(m1))
            bkt_put(b2, mask_slot(m2), e);
        else
            bkt_put(b1, mask_slot(m1), e);
        return true;
    }
    if (chain_hole_add(x, a1, e) || chain_hole_add(x, a2, e))
        return true;
    if (displace(s, b1, a1, e) || (a2 != a1 && displace(s, b2, a2, e)))
        return true;
    uint32_t j = ovf_alloc(s);
    if (!j)
        return false;
    struct ibkt *p = prim_bkt(x, ovf_at);
    ovf_bkt(x, j)->next = p->next;
    p->next = j;
    bkt_put(ovf_bkt(x, j), 0, e);
    return true;
}

static uint64_t entry_hash(struct store *s, uint64_t e)
{
    struct item it;
    seg_item_decode(seg_loc_ptr(s, e_seg(s, e), e_off(s, e)), &it);
    return store_hash(it.key, it.klen);
}

/* Split the next bucket of the linear-hashing round. The caller has made
 * room for a new primary page if one is needed. */
static bool split_one(struct store *s)
{
    struct index *x = &s->idx;
    if (x->nb >= x->nb_max)
        return false;
    if (x->nb == x->nb_commit) {
        if (!store_room(s, PAGE_SZ) || !store_commit(prim_bkt(x, x->nb_commit), PAGE_SZ))
            return false;
        x->nb_commit += CHUNK_BKTS;
    }
    size_t half = (size_t)1 << x->level;
    size_t p = x->nb - half;
    size_t n = 0;
    struct ibkt *bk = prim_bkt(x, p);
    for (struct ibkt *c = bk; c; c = next_bkt(x, c)) {
        if (n + IDX_SLOTS > x->tmp_cap) {
            size_t cap = x->tmp_cap ? x->tmp_cap * 2 : 64;
            uint64_t *t = realloc(x->tmp, cap * sizeof(*t));
            if (!t)
                return false;
            x->tmp = t;
            x->tmp_cap = cap;
        }
        for (int i = 0; i < IDX_SLOTS; i++)
            if (c->meta[i])
                x->tmp[n++] = ((uint64_t)c->meta[i] << 32) | c->loc[i];
    }
    /* free the overflow buckets of p, then clear it */
    uint32_t j = bk->next;
    while (j) {
        uint32_t nj = ovf_bkt(x, j)->next;
        ovf_put(x, j);
        j = nj;
    }
    size_t q = x->nb;
    memset(bk, 0, sizeof(*bk));
    memset(prim_bkt(x, q), 0, sizeof(struct ibkt));
    x->nb++;
    if (x->nb == 2 * half)
        x->level++;
    set_split(x);
    for (size_t i = 0; i < n; i++) {
        uint64_t e = x->tmp[i];
        uint64_t h = entry_hash(s, e);
        /* One candidate of each moved entry is p or q, whose chains held
         * no more than p's did: overflow there needs no more buckets than
         * were just freed. */
        size_t a1 = addr_of(x, h);
        if (place(s, h, e, a1 == p || a1 == q ? a1 : addr_of(x, hash2(h))))
            continue;
        /* cannot happen, but stay consistent if it does */
        struct item it;
        seg_item_decode(seg_loc_ptr(s, e_seg(s, e), e_off(s, e)), &it);
        it.p[1] |= IB_DEAD;
        if (loc_is_large(s, e_seg(s, e)))
            seg_large_free(s, e_seg(s, e));
        else
            seg_item_died(s, e_seg(s, e), it.size);
        s->c.bytes -= it.size;
        s->c.curr_items--;
        s->c.evictions++;
        x->nitems--;
    }
    return true;
}

bool index_grow_due(const struct store *s)
{
    const struct index *x = &s->idx;
    return x->nitems * 4 > (uint64_t)LOAD_X4 * x->nb && x->nb < x->nb_max;
}

/* One step of growth if the load calls for it; used by store_maintain. */
bool index_grow_step(struct store *s)
{
    struct index *x = &s->idx;
    if (!index_grow_due(s))
        return false;
    if (x->nb == x->nb_commit && !store_room(s, PAGE_SZ))
        return false;   /* wait for a write to make room */
    return split_one(s);
}

static bool has_room(const struct index *x, uint64_t h)
{
    return chain_has_hole(x, addr_of(x, h)) || chain_has_hole(x, addr_of(x, hash2(h))) ||
           x->ovf_free;
}

/* Before inserting key hash h: grow if due, and make sure the insert will
 * find a hole or a free overflow bucket. May evict. False if no memory. */
bool index_prepare(struct store *s, uint64_t h)
{
    struct index *x = &s->idx;
    if ((x->nitems + 1) * 4 > (uint64_t)LOAD_X4 * x->nb && x->nb < x->nb_max) {
        s->moves++;   /* a split moves entries */
        if (x->nb < x->nb_commit || store_make_room(s, PAGE_SZ))
            split_one(s);
    }
    if (has_room(x, h) || x->ovf_hwm < x->ovf_commit)
        return true;
    if (!store_make_room(s, PAGE_SZ))
        return false;
    /* eviction may have opened a hole or freed a bucket */
    if (has_room(x, h))
        return true;
    uint32_t j = ovf_alloc(s);
    if (!j)
        return false;
    ovf_put(x, j);
    return true;
}

void index_insert(struct store *s, uint64_t h, uint64_t e)
{
    if (place(s, h, e, addr_of(&s->idx, h)))
        s->idx.nitems++;
}

/* The slot whose key is key, or NULL: the chain of the first candidate,
 * then the second's. One loop for both keeps the get path short: the second
 * candidate's address is worked out only when the first does not have it. */
uint16_t *index_find(struct store *s, const char *key, size_t klen, uint64_t h,
                     struct item *it)
{
    const struct index *x = &s->idx;
    uint16_t want = hash_tag16(s, h);
    struct ibkt *bk = prim_bkt(x, addr_of(x, h));
    for (bool second = false;;) {
        for (uint32_t m = bkt_match(bk, x->tag_mask16, want); m; m &= m - 1) {
            unsigned i = mask_slot(m);
            uint64_t loc = ((uint64_t)(bk->meta[i] & x->ext_mask16) << 32) | bk->loc[i];
            uint32_t sid = (uint32_t)(loc >> s->off_bits);
            uint8_t *p = sid < s->nsegs
                ? s->arena + (size_t)sid * s->seg_size + (loc & x->off_mask)
                : s->larges[sid - s->nsegs].mem;
            seg_item_decode(p, it);
            if (it->klen == klen && key_eq(it->key, key, klen))
                return &bk->meta[i];
        }
        if (bk->next)
            bk = ovf_bkt(x, bk->next);
        else if (second)
            return NULL;
        else {
            second = true;
            bk = prim_bkt(x, addr_of(x, hash2(h)));
        }
    }
}

static uint16_t *chain_find_loc(const struct index *x, struct ibkt *bk, uint16_t tag16,
                                uint64_t want)
{
    do {
        for (uint32_t m = bkt_match(bk, x->tag_mask16, tag16); m; m &= m - 1) {
            unsigned i = mask_slot(m);
            uint64_t e = ((uint64_t)bk->meta[i] << 32) | bk->loc[i];
            if ((e & ~E_FREQ_MASK) == want)
                return &bk->meta[i];
        }
        bk = next_bkt(x, bk);
    } while (bk);
    return NULL;
}

uint16_t *index_find_loc(struct store *s, uint64_t h, uint32_t sid, uint32_t off)
{
    struct index *x = &s->idx;
    uint64_t want = hash_tag(s, h) | e_loc(s, sid, off);
    uint16_t t = hash_tag16(s, h);
    uint16_t *r = chain_find_loc(x, prim_bkt(x, addr_of(x, h)), t, want);
    return r ? r : chain_find_loc(x, prim_bkt(x, addr_of(x, hash2(h))), t, want);
}

/* Unlink overflow bucket bk from chain b if it is there. */
static bool chain_unlink(struct index *x, size_t b, struct ibkt *bk)
{
    for (struct ibkt *prev = prim_bkt(x, b), *c; (c = next_bkt(x, prev)); prev = c)
        if (c == bk) {
            uint32_t j = prev->next;
            prev->next = c->next;
            ovf_put(x, j);
            return true;
        }
    return false;
}

void index_delete(struct store *s, uint64_t h, uint16_t *slot)
{
    struct index *x = &s->idx;
    struct ibkt *bk = slot_bkt(slot);
    *slot = 0;
    bk->loc[slot - bk->meta] = 0;
    x->nitems--;
    /* unlink the overflow bucket holding slot if it became empty */
    if (bk >= x->prim && bk < x->prim + x->nb_max)
        return;
    if (bkt_holes(bk) != ALL_HOLES)
        return;
    if (!chain_unlink(x, addr_of(x, h), bk))
        chain_unlink(x, addr_of(x, hash2(h)), bk);
}

/* Warm restart inserts millions of entries at random buckets: hashing a
 * segment's keys first and prefetching their buckets lets the misses
 * overlap (store/snapshot.c). */
void index_prefetch(const struct store *s, uint64_t h)
{
    __builtin_prefetch(prim_bkt(&s->idx, addr_of(&s->idx, h)), 1);
    __builtin_prefetch(prim_bkt(&s->idx, addr_of(&s->idx, hash2(h))), 1);
}
