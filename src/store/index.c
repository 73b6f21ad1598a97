/*
 * index.c — the hash index of one store: 8-byte entries (tag, frequency,
 * segment id, offset) in 64-byte buckets of 7 entries plus a link to an
 * overflow bucket. The table grows by linear hashing: one bucket is split
 * whenever the average load passes LOAD entries per primary bucket, so it
 * never stops the world to resize and the load stays near its target, which
 * keeps the index's share per item small (~13-15 bytes). Primary and
 * overflow buckets live in address space reserved at create time and are
 * committed 4 KiB at a time, each 4 KiB counted in mem_used before use.
 *
 * Chains keep holes: a delete zeroes the slot, and an overflow bucket that
 * becomes empty is unlinked. Entries therefore never move except in a split,
 * so a slot pointer stays valid across deletes of other entries (eviction
 * merges rely on that). State belongs to the store's worker thread.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "store/store_int.h"

#define SLOTS       7           /* entries per bucket; slot 7 links */
#define LOAD        5           /* target entries per primary bucket */
#define NB_MIN      64
#define CHUNK_BKTS  (PAGE_SZ / 64)

static inline uint64_t *prim_bkt(const struct index *x, size_t b) { return x->prim + 8 * b; }
static inline uint64_t *ovf_bkt(const struct index *x, uint32_t j) { return x->ovf + 8 * (size_t)(j - 1); }
static inline uint64_t *next_bkt(const struct index *x, const uint64_t *b)
{
    return b[SLOTS] ? ovf_bkt(x, (uint32_t)b[SLOTS]) : NULL;
}

static size_t addr_of(const struct index *x, uint64_t h)
{
    size_t half = (size_t)1 << x->level;
    size_t b = h & (half - 1);
    if (b < x->nb - half)
        b = h & (2 * half - 1);
    return b;
}

size_t index_bytes(const struct store *s)
{
    return (s->idx.nb_commit + s->idx.ovf_commit) * 64;
}

bool index_setup(struct store *s)
{
    struct index *x = &s->idx;
    size_t maxb = s->cfg.mem_limit / 64 + 1;
    x->nb_max = NB_MIN;
    while (x->nb_max < maxb)
        x->nb_max *= 2;
    x->ovf_max = (uint32_t)(maxb > UINT32_MAX - 1 ? UINT32_MAX - 1 : maxb);
    void *p = mmap(NULL, x->nb_max * 64, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return false;
    x->prim = p;
    p = mmap(NULL, (size_t)x->ovf_max * 64, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        munmap(x->prim, x->nb_max * 64);
        x->prim = NULL;
        return false;
    }
    x->ovf = p;
    if (!store_commit(x->prim, NB_MIN * 64))
        return false;
    x->nb_commit = NB_MIN;
    x->nb = NB_MIN;
    x->level = 6;
    return true;
}

void index_teardown(struct store *s)
{
    struct index *x = &s->idx;
    if (x->prim)
        munmap(x->prim, x->nb_max * 64);
    if (x->ovf)
        munmap(x->ovf, (size_t)x->ovf_max * 64);
    free(x->tmp);
    memset(x, 0, sizeof(*x));
}

/* Drop every entry; keep the committed memory (flush_all). */
void index_reset(struct store *s)
{
    struct index *x = &s->idx;
    memset(x->prim, 0, x->nb * 64);
    x->ovf_free = 0;
    x->ovf_nfree = 0;
    for (uint32_t j = x->ovf_hwm; j >= 1; j--) {
        ovf_bkt(x, j)[SLOTS] = x->ovf_free;
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
        x->ovf_free = (uint32_t)ovf_bkt(x, j)[SLOTS];
        x->ovf_nfree--;
    } else {
        if (x->ovf_hwm == x->ovf_commit) {
            if (x->ovf_commit + CHUNK_BKTS > x->ovf_max || !store_room(s, PAGE_SZ) ||
                !store_commit(x->ovf + 8 * (size_t)x->ovf_commit, PAGE_SZ))
                return 0;
            x->ovf_commit += CHUNK_BKTS;
        }
        j = ++x->ovf_hwm;
    }
    memset(ovf_bkt(x, j), 0, 64);
    return j;
}

static void ovf_put(struct index *x, uint32_t j)
{
    ovf_bkt(x, j)[SLOTS] = x->ovf_free;
    x->ovf_free = j;
    x->ovf_nfree++;
}

/* Put e in the first hole of chain b. False only if no overflow bucket can
 * be had (prepare guarantees one for a normal insert). */
static bool chain_add(struct store *s, size_t b, uint64_t e)
{
    struct index *x = &s->idx;
    uint64_t *bk = prim_bkt(x, b);
    for (;;) {
        for (int i = 0; i < SLOTS; i++)
            if (!bk[i]) {
                bk[i] = e;
                return true;
            }
        uint64_t *nx = next_bkt(x, bk);
        if (!nx)
            break;
        bk = nx;
    }
    uint32_t j = ovf_alloc(s);
    if (!j)
        return false;
    bk[SLOTS] = j;
    ovf_bkt(x, j)[0] = e;
    return true;
}

static bool chain_has_hole(const struct index *x, size_t b)
{
    for (const uint64_t *bk = prim_bkt(x, b); bk; bk = next_bkt(x, bk))
        for (int i = 0; i < SLOTS; i++)
            if (!bk[i])
                return true;
    return false;
}

static uint64_t entry_hash(struct store *s, uint64_t e)
{
    struct item it;
    seg_item_decode(seg_loc_ptr(s, e_seg(e), e_off(e)), &it);
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
    uint64_t *bk = prim_bkt(x, p);
    for (uint64_t *c = bk; c; c = next_bkt(x, c)) {
        if (n + SLOTS > x->tmp_cap) {
            size_t cap = x->tmp_cap ? x->tmp_cap * 2 : 64;
            uint64_t *t = realloc(x->tmp, cap * sizeof(*t));
            if (!t)
                return false;
            x->tmp = t;
            x->tmp_cap = cap;
        }
        for (int i = 0; i < SLOTS; i++)
            if (c[i])
                x->tmp[n++] = c[i];
    }
    /* free the overflow buckets of p, then clear it */
    uint32_t j = (uint32_t)bk[SLOTS];
    while (j) {
        uint32_t nj = (uint32_t)ovf_bkt(x, j)[SLOTS];
        ovf_put(x, j);
        j = nj;
    }
    memset(bk, 0, 64);
    memset(prim_bkt(x, x->nb), 0, 64);
    x->nb++;
    if (x->nb == 2 * half)
        x->level++;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = x->tmp[i];
        if (!chain_add(s, addr_of(x, entry_hash(s, e)), e)) {
            /* cannot happen (a split never needs more overflow buckets
             * than it freed), but stay consistent if it does */
            struct item it;
            seg_item_decode(seg_loc_ptr(s, e_seg(e), e_off(e)), &it);
            it.p[1] |= IB_DEAD;
            if (loc_is_large(s, e_seg(e)))
                seg_large_free(s, e_seg(e));
            else
                seg_item_died(s, e_seg(e), it.size);
            s->c.bytes -= it.size;
            s->c.curr_items--;
            s->c.evictions++;
            x->nitems--;
        }
    }
    return true;
}

/* One step of growth if the load calls for it; used by store_maintain. */
bool index_grow_step(struct store *s)
{
    struct index *x = &s->idx;
    if (x->nitems <= (uint64_t)LOAD * x->nb || x->nb >= x->nb_max)
        return false;
    if (x->nb == x->nb_commit && !store_room(s, PAGE_SZ))
        return false;   /* wait for a write to make room */
    return split_one(s);
}

/* Before inserting key hash h: grow if due, and make sure the insert will
 * find a hole or a free overflow bucket. May evict. False if no memory. */
bool index_prepare(struct store *s, uint64_t h)
{
    struct index *x = &s->idx;
    if (x->nitems + 1 > (uint64_t)LOAD * x->nb && x->nb < x->nb_max) {
        if (x->nb < x->nb_commit || store_make_room(s, PAGE_SZ))
            split_one(s);
    }
    if (chain_has_hole(x, addr_of(x, h)) || x->ovf_free)
        return true;
    if (x->ovf_hwm < x->ovf_commit)
        return true;
    if (!store_make_room(s, PAGE_SZ))
        return false;
    /* eviction may have opened a hole or freed a bucket */
    if (chain_has_hole(x, addr_of(x, h)) || x->ovf_free)
        return true;
    uint32_t j = ovf_alloc(s);
    if (!j)
        return false;
    ovf_put(x, j);
    return true;
}

void index_insert(struct store *s, uint64_t h, uint64_t e)
{
    if (chain_add(s, addr_of(&s->idx, h), e))
        s->idx.nitems++;
}

uint64_t *index_find(struct store *s, const char *key, size_t klen, uint64_t h,
                     struct item *it)
{
    struct index *x = &s->idx;
    unsigned tag = hash_tag(h);
    for (uint64_t *bk = prim_bkt(x, addr_of(x, h)); bk; bk = next_bkt(x, bk)) {
        for (int i = 0; i < SLOTS; i++) {
            uint64_t e = bk[i];
            if (!e || e_tag(e) != tag)
                continue;
            seg_item_decode(seg_loc_ptr(s, e_seg(e), e_off(e)), it);
            if (it->klen == klen && memcmp(it->key, key, klen) == 0)
                return &bk[i];
        }
    }
    return NULL;
}

uint64_t *index_find_loc(struct store *s, uint64_t h, uint32_t sid, uint32_t off)
{
    struct index *x = &s->idx;
    uint64_t want = ((uint64_t)hash_tag(h) << E_TAG_SHIFT) | e_loc(sid, off);
    uint64_t mask = ~(UINT64_C(0xf) << E_FREQ_SHIFT);
    for (uint64_t *bk = prim_bkt(x, addr_of(x, h)); bk; bk = next_bkt(x, bk))
        for (int i = 0; i < SLOTS; i++)
            if ((bk[i] & mask) == want)
                return &bk[i];
    return NULL;
}

void index_delete(struct store *s, uint64_t h, uint64_t *slot)
{
    struct index *x = &s->idx;
    *slot = 0;
    x->nitems--;
    /* unlink the overflow bucket holding slot if it became empty */
    uint64_t *prev = prim_bkt(x, addr_of(x, h));
    uint64_t *bk = next_bkt(x, prev);
    while (bk) {
        if (slot >= bk && slot < bk + SLOTS) {
            for (int i = 0; i < SLOTS; i++)
                if (bk[i])
                    return;
            uint32_t j = (uint32_t)prev[SLOTS];
            prev[SLOTS] = bk[SLOTS];
            ovf_put(x, j);
            return;
        }
        prev = bk;
        bk = next_bkt(x, bk);
    }
}

/* Warm restart inserts millions of entries at random buckets: hashing a
 * segment's keys first and prefetching their buckets lets the misses
 * overlap (store/snapshot.c). */
void index_prefetch(const struct store *s, uint64_t h)
{
    __builtin_prefetch(prim_bkt(&s->idx, addr_of(&s->idx, h)), 1);
}
