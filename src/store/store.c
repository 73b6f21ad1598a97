/*
 * store.c — the public store API (store.h): lookups, the write path with
 * memcached's set/add/replace/append/prepend/cas/incr/decr/touch semantics,
 * lazy expiry, CAS derivation, stats and sizing at create time. One store
 * per worker; only that worker's thread calls in, so nothing locks. Calls
 * down into index.c, seg.c, ttl.c, evict.c and large.c.
 *
 * CAS: an item's CAS is derived from where it was written,
 *   shard id (8 bits) | segment serial | offset within the segment,
 * so it costs no bytes: every write lands at a new (serial, offset) and
 * serials are never reused (until the serial field, 56 - log2(seg_size)
 * bits, wraps: 2^38 segment openings at the automatic size's 256 KiB cap,
 * 2^32 at the 16 MiB SEG_SIZE_MAX). touch and relocation on expiry keep the CAS
 * (stored explicitly, 8 bytes, in the moved copy); relocation by an eviction
 * merge changes it, so a later `cas` fails safely with EXISTS.
 */
#include <stdlib.h>

#include "util/numparse.h"
#include "store/snapshot.h"
#include "store/store_int.h"

/* --- hashing ---------------------------------------------------------------- */

static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Multiply to 128 bits and fold: every input bit reaches the middle bits of
 * the product, and the fold brings them to both ends (the index takes its
 * bucket from the low bits and its tag from the high ones). */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define HK0 UINT64_C(0x9e3779b97f4a7c15)
#define HK1 UINT64_C(0xc2b2ae3d27d4eb4f)
#define HK2 UINT64_C(0x165667b19e3779f9)

/* 64-bit key hash for the index. Deliberately unrelated to the server's
 * partition hash: every key a worker sees shares that hash's slot bits, so
 * reusing it would leave most index buckets empty. Sixteen bytes per
 * multiply, the last (possibly overlapping) sixteen read whole: a 32-byte
 * key costs two multiplies and a final one, about half the instructions
 * of the earlier 8-bytes-a-step hash (the index hashes every request's
 * key once). Nothing stores these hashes: a warm restart recomputes them. */
uint64_t store_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = HK0 ^ (len * HK1), a, b;
    if (len > 16) {
        size_t n = len;
        while (n > 16) {
            h = fold_mul(rd64(p) ^ HK1, rd64(p + 8) ^ h);
            p += 16;
            n -= 16;
        }
        a = rd64(p + n - 16);
        b = rd64(p + n - 8);
    } else if (len >= 8) {
        a = rd64(p);
        b = rd64(p + len - 8);
    } else if (len >= 4) {
        a = rd32(p);
        b = rd32(p + len - 4);
    } else {
        a = len ? ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1] : 0;
        b = 0;
    }
    h = fold_mul(a ^ HK1, b ^ h ^ HK2);
    return fold_mul(h ^ HK0, HK2 ^ len);
}

static uint64_t rng_next(struct store *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->rng = x;
}

/* --- create / destroy --------------------------------------------------------- */

static size_t pow2_floor(size_t v)
{
    size_t p = 1;
    while (p * 2 <= v)
        p *= 2;
    return p;
}

size_t store_mem_max(void)
{
    return ((size_t)1 << E_LOC_MAX) / 3;   /* 3 ids per segment (see store_create) */
}

struct store *store_create(const struct store_config *cfg)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (s->cfg.item_max == 0)
        s->cfg.item_max = 1024 * 1024;
    s->now = 1;
    s->rng = UINT64_C(0x2545f4914f6cdd1d) ^ ((uint64_t)cfg->shard_id << 32);
    size_t mem = cfg->mem_limit;

    size_t seg = cfg->seg_size;
    if (seg == 0) {
        /* 512 segments or more: eviction frees and probation vets memory
         * a segment at a time, and finer steps miss less (bench/cachesim,
         * Zipf 0.99 at 32 MiB: 256 KiB segments 0.1304, 64 KiB 0.1295;
         * docs/results/cachesim.md). */
        seg = pow2_floor(mem / 512);
        if (seg < 64 * 1024)
            seg = 64 * 1024;
        /* An eviction merge walks a few whole segments in one go; at 1 MiB
         * (the former cap) that took ~4 ms and showed as p99.9 write stalls
         * when full. 256 KiB keeps a merge under 1 ms with the same hit
         * ratio (docs/storage.md). */
        if (seg > 256 * 1024)
            seg = 256 * 1024;
        while (seg > 4096 && mem / seg < 16)
            seg /= 2;
    }
    if (seg < 1024)
        seg = 1024;
    if (seg > SEG_SIZE_MAX)
        seg = SEG_SIZE_MAX;
    s->seg_size = seg;
    s->large_min = seg / 2;
    s->off_bits = 0;
    while (((size_t)1 << s->off_bits) < seg)
        s->off_bits++;
    s->serial_mask = (UINT64_C(1) << (56 - s->off_bits)) - 1;
    s->next_serial = 1;

    /* fixed overhead depends on the segment count; size it for the upper
     * bound, then fit the segments in what is left */
    size_t nmax = mem / seg + 1;
    /* segment and large-item ids (3 per segment) must fit an index entry */
    size_t id_max = (((size_t)1 << (E_LOC_MAX - s->off_bits)) - 16) / 3;
    if (nmax > id_max)
        nmax = id_max;
    s->nsegs = (uint32_t)nmax;
    s->nlarge_cap = (uint32_t)(2 * nmax + 16);
    if (!index_layout(s, nmax + s->nlarge_cap)) {
        free(s);
        return NULL;
    }
    s->probq_cap = (uint32_t)(2 * nmax);
    size_t ghost_slots = ghost_slots_for(mem);
    s->fixed_bytes = sizeof(*s) + nmax * (sizeof(struct seg) + sizeof(uint32_t))
                     + s->nlarge_cap * sizeof(struct large)
                     + s->probq_cap * sizeof(struct probq_ent)
                     + ghost_slots * sizeof(*s->ghost);
    size_t index_min = 64 * 64;
    if (mem < s->fixed_bytes + index_min + 2 * seg) {
        free(s);
        return NULL;
    }
    s->mem_cap = s->mem_target = mem;
    s->nsegs = (uint32_t)((mem - s->fixed_bytes - index_min) / seg);
    if (s->nsegs > nmax)
        s->nsegs = (uint32_t)nmax;  /* past ~85 GiB: more than an entry can name */
    s->segs = calloc(nmax, sizeof(struct seg));
    s->dirty = calloc(nmax, sizeof(uint32_t));
    s->probq = calloc(s->probq_cap, sizeof(struct probq_ent));
    s->larges = calloc(s->nlarge_cap, sizeof(struct large));
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        s->ttl[b].head = s->ttl[b].tail = NONE32;
        s->ttl[b].open = s->ttl[b].cursor = s->ttl[b].popen = NONE32;
    }
    if (!s->segs || !s->dirty || !s->probq || !s->larges || !ghost_setup(s, ghost_slots) ||
        !index_setup(s) || !seg_large_setup(s) || !seg_setup(s)) {
        store_destroy(s);
        return NULL;
    }
    return s;
}

void store_destroy(struct store *s)
{
    if (!s)
        return;
    if (s->larges)
        seg_large_teardown(s);
    seg_teardown(s);
    index_teardown(s);
    free(s->segs);
    free(s->dirty);
    free(s->probq);
    free(s->larges);
    free(s->mslots);
    ghost_teardown(s);
    free(s);
}

void store_clock(struct store *s, uint32_t now)
{
    s->now = now;
}

bool store_make_room(struct store *s, size_t bytes)
{
    s->gen++;   /* may change what store_get_stats() reports */
    s->moves++;
    while (!store_room(s, bytes))
        if (!evict_one(s))
            return false;
    return true;
}

/* --- item helpers ----------------------------------------------------------- */

static inline uint64_t item_cas_at(const struct store *s, uint32_t sid, uint32_t off,
                            const struct item *it)
{
    if (!s->cfg.use_cas)
        return 0;
    if (it->bits & IB_CAS)
        return it->cas;
    return ((uint64_t)s->cfg.shard_id << 56)
           | ((seg_loc_serial(s, sid) & s->serial_mask) << s->off_bits) | off;
}

static inline uint64_t item_cas(const struct store *s, uint64_t e, const struct item *it)
{
    return item_cas_at(s, e_seg(s, e), e_off(s, e), it);
}

/* The item of entry e stops being live: mark it dead, account its bytes. The
 * slot itself is left for the caller (overwrite or index_delete). */
static void item_kill(struct store *s, uint64_t e, struct item *it)
{
    it->p[1] |= IB_DEAD;
    s->c.bytes -= it->size;
    if (loc_is_large(s, e_seg(s, e)))
        seg_large_free(s, e_seg(s, e));
    else
        seg_item_died(s, e_seg(s, e), it->size);
}

static void item_remove(struct store *s, uint64_t h, uint16_t *slot, struct item *it)
{
    item_kill(s, slot_get(slot), it);
    index_delete(s, h, slot);
    s->c.curr_items--;
}

/* Find a live item; expired ones are removed on the way (unless peeking). */
static inline uint16_t *lookup(struct store *s, const char *key, size_t klen, uint64_t h,
                        struct item *it, bool remove_expired)
{
    uint16_t *slot = index_find(s, key, klen, h, it);
    if (slot && item_expired(s, it->exptime)) {
        if (remove_expired) {
            /* memcached counts get_expired in every lookup that finds the
             * key expired (get, touch, delete, incr, a store's check). */
            s->gen++;
            s->c.get_expired++;
            if (!(it->bits & ITEM_FETCHED))
                s->c.expired_unfetched++;
            item_remove(s, h, slot, it);
        }
        return NULL;
    }
    return slot;
}

/* The view of an item, but its atime (the caller's: store_get reads it
 * where it also writes it). */
static inline void fill_view_item(uint32_t sid, uint32_t off, const struct item *it,
                                  struct item_view *iv)
{
    iv->key = it->key;
    iv->val = it->val;
    iv->klen = it->klen;
    iv->vlen = it->vlen;
    iv->flags = it->flags;
    iv->exptime = it->exptime;
    iv->mbits = it->bits & IB_MBITS;
    iv->loc = sid;
    iv->off = off;
}

static inline void fill_view_at(const struct store *s, uint32_t sid, uint32_t off,
                         const struct item *it, struct item_view *iv)
{
    fill_view_item(sid, off, it, iv);
    iv->atime = seg_loc_atime(s, sid);
}

uint64_t store_view_cas(struct store *s, const struct item_view *iv)
{
    if (!s->cfg.use_cas)
        return 0;
    struct item it;
    seg_item_decode(seg_loc_ptr(s, iv->loc, iv->off), &it);
    it.p[1] |= IB_CASSEEN;
    return item_cas_at(s, iv->loc, iv->off, &it);
}

static inline void fill_view(const struct store *s, uint64_t e, const struct item *it,
                             struct item_view *iv)
{
    fill_view_at(s, e_seg(s, e), e_off(s, e), it, iv);
}

/* A read hit: fetched bit, atime, probabilistic frequency bump (exact up to
 * 3, then with probability 2^-(f-2), so 15 means "read thousands of times"). */
/* The frequency counter after one more access: +1 up to 3, then with
 * probability 2^-(f-2) (docs/storage.md, Eviction). */
static inline unsigned freq_bump(struct store *s, unsigned f)
{
    if (f < E_FREQ_MAX && (f < 3 || (rng_next(s) & ((UINT64_C(1) << (f - 2)) - 1)) == 0))
        return f + 1;
    return f;
}

/* A read hit's marks on the item: fetched bit, frequency. */
static inline void note_fetch(struct store *s, uint16_t *slot, struct item *it)
{
    it->p[1] |= ITEM_FETCHED;
    slot_set_freq(slot, freq_bump(s, slot_freq(slot)));
}

static inline void note_hit(struct store *s, uint16_t *slot, uint32_t sid, struct item *it)
{
    note_fetch(s, slot, it);
    seg_loc_touch_atime(s, sid);
}

struct wsrc {
    const void *a, *b;
    size_t alen, blen;
};

/*
 * Write key -> value (a || b) as a new item and point the index at it,
 * killing any old item of the key. keep_cas != 0 stores that CAS explicitly
 * (relocation that must keep it). May evict; never touches a value pointer
 * into this store after evicting, so callers copy such values first.
 */
/* What a write's caller found for its key just before (slot NULL: absent),
 * and s->moves then. */
struct found {
    uint16_t *slot;
    const struct item *it;
    uint64_t moves;
};

static int item_write(struct store *s, uint64_t h, const char *key, size_t klen,
                      const struct wsrc *v, uint32_t flags, uint32_t exptime,
                      uint64_t keep_cas, uint8_t mbits, unsigned freq, bool fresh,
                      uint64_t *cas_out, const struct found *f)
{
    size_t vlen = v->alen + v->blen;
    bool large = false;
    size_t size = seg_item_hdr_size((uint32_t)vlen, flags, exptime, false, keep_cas != 0)
                  + klen + vlen;
    if (size > s->large_min) {
        large = true;
        size = seg_item_hdr_size((uint32_t)vlen, flags, exptime, true, keep_cas != 0) + klen + vlen;
    }
    if (!index_prepare(s, h))
        return ST_NO_MEMORY;
    uint32_t sid, off = 0;
    uint8_t *p = large ? seg_large_alloc(s, size, &sid) : ttl_append(s, size, exptime, &sid, &off);
    if (!p)
        return ST_NO_MEMORY;
    seg_trim_resident(s);
    size_t hl = seg_item_encode(p, (uint32_t)klen, (uint32_t)vlen, mbits, flags, exptime, large,
                            keep_cas);
    memcpy(p + hl, key, klen);
    if (v->alen)
        memcpy(p + hl + klen, v->a, v->alen);
    if (v->blen)
        memcpy(p + hl + klen + v->alen, v->b, v->blen);
    s->c.bytes += size;
    if (fresh)
        s->c.total_items++;

    /* Found again unless nothing moved since the caller looked (the usual
     * set: room in the open segment, no split), which saves a second
     * lookup per set. */
    struct item old;
    uint16_t *slot;
    if (f && !large && f->moves == s->moves) {
        slot = f->slot;
        if (slot)
            old = *f->it;
    } else {
        slot = index_find(s, key, klen, h, &old);
    }
    uint64_t e = e_make(s, hash_tag(s, h), freq, sid, off);
    if (slot) {
        item_kill(s, slot_get(slot), &old);
        slot_set(slot, e);
    } else {
        index_insert(s, h, e);
        s->c.curr_items++;
    }
    if (cas_out) {
        struct item it;
        seg_item_decode(p, &it);
        *cas_out = item_cas(s, e, &it);
        if (s->cfg.use_cas)
            p[1] |= IB_CASSEEN;
    }
    return ST_OK;
}

static void delete_key(struct store *s, const char *key, size_t klen, uint64_t h)
{
    struct item it;
    uint16_t *slot = index_find(s, key, klen, h, &it);
    if (slot)
        item_remove(s, h, slot, &it);
}

static __attribute__((noinline)) void
notify_get_event(const struct store *s, const char *key, size_t klen, const uint16_t *slot,
                 const struct item *it)
{
    struct store_event ev = { .kind = SEV_GET, .status = slot ? ST_OK : ST_MISS, .key = key,
                              .klen = (uint32_t)klen };
    if (slot) {
        ev.vlen = it->vlen;
        ev.exptime = it->exptime;
        ev.cls = store_class_of_bucket(entry_class(s, slot_get(slot))) + 1;
    }
    s->obs(s->obs_arg, &ev);
}

/* Tell a watcher (if any) about a get: the test inline, the event out of
 * line, so a store without one pays a load and a branch. */
static inline void notify_get(const struct store *s, const char *key, size_t klen,
                              const uint16_t *slot, const struct item *it)
{
    if (s->obs)
        notify_get_event(s, key, klen, slot, it);
}

/* --- public API ------------------------------------------------------------------ */

int store_get(struct store *s, const char *key, size_t klen, struct item_view *iv)
{
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot) {
        notify_get(s, key, klen, NULL, NULL);
        return ST_MISS;
    }
    uint64_t e = slot_get(slot);
    uint32_t sid = e_seg(s, e);
    notify_get(s, key, klen, slot, &it);
    fill_view_item(sid, e_off(s, e), &it, iv);
    /* note_hit with the segment found once for its class counter, the
     * view's atime and the touch (each helper would index it again). */
    note_fetch(s, slot, &it);
    if (sid < s->nsegs) {
        struct seg *sg = &s->segs[sid];
        s->cls[sg->bucket].get_hits++;
        iv->atime = sg->atime;
        sg->atime = s->now;
    } else {
        s->cls[TTL_NBUCKETS].get_hits++;
        iv->atime = s->larges[sid - s->nsegs].atime;
        s->larges[sid - s->nsegs].atime = s->now;
    }
    return ST_OK;
}

int store_peek(struct store *s, const char *key, size_t klen, struct item_view *iv)
{
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, false);
    if (!slot)
        return ST_MISS;
    fill_view(s, slot_get(slot), &it, iv);
    return ST_OK;
}

/* Set a live item's exptime: in place when it has the field, else by
 * rewriting it with the field (and its CAS kept). Returns the slot of the
 * item afterwards (NULL if it could not be rewritten: then it is gone). */
static uint16_t *set_exptime(struct store *s, const char *key, size_t klen, uint64_t h,
                             uint16_t *slot, struct item *it, uint32_t exptime)
{
    if (it->bits & IB_EXP) {
        uint8_t *f = it->p + it->hlen - 4 - ((it->bits & IB_CAS) ? 8 : 0);
        memcpy(f, &exptime, 4);
        it->exptime = exptime;
        /* the segment may now be reclaimed before the item dies: reclaim
         * relocates items that outlive their segment */
        return slot;
    }
    if (exptime == 0)
        return slot;
    /* rewrite with an exptime field; copy first, the write may evict */
    uint64_t cas = item_cas(s, slot_get(slot), it);
    size_t n = (size_t)it->klen + it->vlen;
    char *tmp = malloc(n ? n : 1);
    if (!tmp) {
        item_remove(s, h, slot, it);
        return NULL;
    }
    memcpy(tmp, it->key, n);
    struct wsrc v = {tmp + klen, NULL, it->vlen, 0};
    uint32_t flags = it->flags;
    uint8_t mbits = it->bits & IB_MBITS;
    unsigned freq = slot_freq(slot);
    int rc = item_write(s, h, tmp, klen, &v, flags, exptime, cas, mbits, freq, false, NULL, NULL);
    free(tmp);
    if (rc != ST_OK) {
        delete_key(s, key, klen, h);
        return NULL;
    }
    return index_find(s, key, klen, h, it);
}

int store_gat(struct store *s, const char *key, size_t klen, uint32_t exptime,
              struct item_view *iv)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot) {
        notify_get(s, key, klen, NULL, NULL);
        return ST_MISS;
    }
    notify_get(s, key, klen, slot, &it);
    uint8_t mbits = it.bits & IB_MBITS;
    uint32_t atime = seg_loc_atime(s, e_seg(s, slot_get(slot)));
    s->cls[entry_class(s, slot_get(slot))].touch_hits++;
    slot = set_exptime(s, key, klen, h, slot, &it, exptime);
    if (!slot)
        return ST_MISS;
    fill_view(s, slot_get(slot), &it, iv);
    iv->mbits = mbits;
    iv->atime = atime;
    note_hit(s, slot, e_seg(s, slot_get(slot)), &it);
    return ST_OK;
}

int store_touch(struct store *s, const char *key, size_t klen, uint32_t exptime)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot)
        return ST_MISS;
    s->cls[entry_class(s, slot_get(slot))].touch_hits++;
    return set_exptime(s, key, klen, h, slot, &it, exptime) ? ST_OK : ST_MISS;
}

static int put_item(struct store *s, enum store_mode mode, const char *key, size_t klen,
                    const void *val, size_t vlen, uint32_t flags, uint32_t exptime,
                    uint64_t cas_in, uint64_t *cas_out)
{
    if (klen == 0 || klen > KEY_MAX_LENGTH)
        return ST_NOT_STORED;
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    uint64_t moves = s->moves;

    switch (mode) {
    case SM_ADD:
        if (slot) {
            /* memcached bumps an add-refused item in its LRU; count it as a
             * use, but it was not fetched */
            if (slot_freq(slot) < 3)
                slot_set_freq(slot, slot_freq(slot) + 1);
            return ST_NOT_STORED;
        }
        break;
    case SM_REPLACE:
    case SM_APPEND:
    case SM_PREPEND:
        if (!slot)
            return ST_NOT_STORED;
        break;
    case SM_CAS:
        if (!slot)
            return ST_NOT_FOUND;
        if (item_cas(s, slot_get(slot), &it) != cas_in) {
            s->cls[entry_class(s, slot_get(slot))].cas_badval++;
            return ST_EXISTS;
        }
        break;
    case SM_SET:
        break;
    }

    size_t total = klen + vlen;
    if (mode == SM_APPEND || mode == SM_PREPEND)
        total += it.vlen;
    if (total > s->cfg.item_max || total > UINT32_MAX / 2) {
        /* memcached: an append/prepend that would grow past the limit is
         * NOT_STORED and keeps the value; only a failed set drops it. */
        if (mode == SM_APPEND || mode == SM_PREPEND)
            return ST_NOT_STORED;
        if (slot && mode == SM_SET)
            item_remove(s, h, slot, &it);
        return ST_TOO_LARGE;
    }
    /* a write to a live item is an access too, as memcached bumps its LRU */
    /* a new key that probation dropped unread not long ago starts as read
     * once, so probation promotes it this time (ghost.c) */
    unsigned freq = slot ? freq_bump(s, slot_freq(slot)) : ghost_take(s, h) ? 1 : 0;
    struct wsrc v = {val, NULL, vlen, 0};
    char *tmp = NULL;
    if (mode == SM_APPEND || mode == SM_PREPEND) {
        flags = it.flags;
        exptime = it.exptime;
        tmp = malloc(it.vlen ? it.vlen : 1);
        if (!tmp) {
            item_remove(s, h, slot, &it);
            return ST_NO_MEMORY;
        }
        memcpy(tmp, it.val, it.vlen);
        if (mode == SM_APPEND)
            v = (struct wsrc){tmp, val, it.vlen, vlen};
        else
            v = (struct wsrc){val, tmp, vlen, it.vlen};
    }
    /* memcached counts a set in the class it allocates the item from */
    unsigned set_cls = klen + v.alen + v.blen + 16 > s->large_min ? TTL_NBUCKETS
                                                                  : ttl_bucket_of(s, exptime);
    s->cls[set_cls].cmd_set++;
    cls_mark(s, set_cls);
    if (mode == SM_CAS)
        s->cls[entry_class(s, slot_get(slot))].cas_hits++;
    const struct found f = {slot, &it, moves};
    int rc = item_write(s, h, key, klen, &v, flags, exptime, 0, 0, freq, true, cas_out, &f);
    free(tmp);
    if (rc != ST_OK && mode == SM_SET)
        delete_key(s, key, klen, h);
    if (rc != ST_OK && (mode == SM_APPEND || mode == SM_PREPEND))
        rc = ST_NOT_STORED;
    return rc;
}

int store_put(struct store *s, enum store_mode mode, const char *key, size_t klen,
              const void *val, size_t vlen, uint32_t flags, uint32_t exptime,
              uint64_t cas_in, uint64_t *cas_out)
{
    s->gen++;   /* may change what store_get_stats() reports */
    int st = put_item(s, mode, key, klen, val, vlen, flags, exptime, cas_in, cas_out);
    if (s->obs) {
        struct store_event ev = { .kind = SEV_STORE, .mode = (uint8_t)mode, .status = st,
                                  .key = key, .klen = (uint32_t)klen, .vlen = (uint32_t)vlen,
                                  .exptime = exptime };
        struct item it;
        uint16_t *slot = st == ST_OK ? lookup(s, key, klen, store_hash(key, klen), &it, false)
                                     : NULL;
        if (slot) {
            ev.vlen = it.vlen;
            ev.exptime = it.exptime;
            ev.cls = store_class_of_bucket(entry_class(s, slot_get(slot))) + 1;
        }
        s->obs(s->obs_arg, &ev);
    }
    /* Inside a flush hold the write succeeds and is flushed at once, as
     * memcached's oldest_live check treats it (see store_flush_hold). */
    if (st == ST_OK && s->flush_hold && s->now <= s->flush_hold)
        delete_key(s, key, klen, store_hash(key, klen));
    return st;
}

static bool walk_one(struct store *s, uint32_t sid, uint32_t off, const struct item *it,
                     unsigned cls, bool (*fn)(void *, const struct store_walk_item *),
                     void *arg)
{
    if (it->bits & IB_DEAD || item_expired(s, it->exptime))
        return true;
    uint16_t *slot = index_find_loc(s, store_hash(it->key, it->klen), sid, off);
    if (!slot)
        return true;
    if (s->cfg.use_cas)
        it->p[1] |= IB_CASSEEN;   /* metadump shows it */
    struct store_walk_item w = {
        .key = it->key, .klen = it->klen, .vlen = it->vlen, .size = it->size,
        .flags = it->flags, .exptime = it->exptime, .atime = seg_loc_atime(s, sid),
        .cls = store_class_of_bucket(cls) + 1, .cas = item_cas(s, slot_get(slot), it), .fetched = it->bits & ITEM_FETCHED,
    };
    return fn(arg, &w);
}

bool store_walk(struct store *s, uint32_t *cursor, unsigned budget,
                bool (*fn)(void *arg, const struct store_walk_item *it), void *arg)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint32_t end = s->nsegs + s->nlarge_cap;
    for (; *cursor < end && budget; budget--) {
        uint32_t sid = (*cursor)++;
        struct item it;
        if (sid >= s->nsegs) {
            uint32_t i = sid - s->nsegs;
            if (!s->larges[i].mem)
                continue;
            seg_item_decode(s->larges[i].mem, &it);
            if (!walk_one(s, sid, 0, &it, TTL_NBUCKETS, fn, arg))
                return true;
            continue;
        }
        const struct seg *g = &s->segs[sid];
        if (g->state != SEG_OPEN && g->state != SEG_SEALED)
            continue;
        uint8_t *base = s->arena + (size_t)sid * s->seg_size;
        for (uint32_t off = 0; off < g->wpos; off += it.size) {
            seg_item_decode(base + off, &it);
            if (!walk_one(s, sid, off, &it, g->bucket, fn, arg))
                return true;
        }
    }
    return *cursor >= end;
}

void store_set_observer(struct store *s, void (*fn)(void *arg, const struct store_event *ev),
                        void *arg)
{
    s->obs = fn;
    s->obs_arg = arg;
}

void store_reset_class_stats(struct store *s)
{
    memset(s->cls, 0, sizeof s->cls);
    s->c.get_expired = 0;
    s->gen++;   /* publish the zero */
}

void store_flush_hold(struct store *s, uint32_t until)
{
    s->gen++;   /* may change what store_get_stats() reports */
    s->flush_hold = until;
}

int store_delete(struct store *s, const char *key, size_t klen, uint64_t cas_in)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot)
        return ST_MISS;
    if (cas_in && item_cas(s, slot_get(slot), &it) != cas_in)
        return ST_EXISTS;
    s->cls[entry_class(s, slot_get(slot))].delete_hits++;
    item_remove(s, h, slot, &it);
    return ST_OK;
}

int store_arith(struct store *s, const char *key, size_t klen, bool incr,
                uint64_t delta, uint64_t *result, uint64_t *cas_out)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot)
        return ST_MISS;
    uint64_t v;
    if (!parse_u64(it.val, it.vlen, &v))
        return ST_NON_NUMERIC;
    if (incr)
        s->cls[entry_class(s, slot_get(slot))].incr_hits++;
    else
        s->cls[entry_class(s, slot_get(slot))].decr_hits++;
    if (incr)
        v += delta;     /* wraps at 2^64 */
    else
        v = v > delta ? v - delta : 0;
    char buf[24];
    size_t n = 0;
    char rev[24];
    uint64_t t = v;
    do {
        rev[n++] = (char)('0' + t % 10);
        t /= 10;
    } while (t);
    for (size_t i = 0; i < n; i++)
        buf[i] = rev[n - 1 - i];
    /* memcached rewrites a shorter result in place, padded with spaces to
     * the old length ("10" decr 1 reads back as "9 "); clients see that. */
    char padded[64];
    const char *src = buf;
    if (n < it.vlen && it.vlen <= sizeof padded) {
        memcpy(padded, buf, n);
        memset(padded + n, ' ', it.vlen - n);
        n = it.vlen;
        src = padded;
    }
    struct wsrc w = {src, NULL, n, 0};
    /* A result longer than the old value is a new item in memcached, and
     * counts in total_items. */
    int rc = item_write(s, h, key, klen, &w, it.flags, it.exptime, 0,
                        it.bits & IB_MBITS, freq_bump(s, slot_freq(slot)), n > it.vlen, cas_out,
                        NULL);
    if (rc != ST_OK) {
        delete_key(s, key, klen, h);
        return rc;
    }
    if (result)
        *result = v;
    return ST_OK;
}

int store_set_mbits(struct store *s, const char *key, size_t klen, uint8_t set, uint8_t clear)
{
    s->gen++;   /* may change what store_get_stats() reports */
    uint64_t h = store_hash(key, klen);
    struct item it;
    uint16_t *slot = lookup(s, key, klen, h, &it, true);
    if (!slot)
        return ST_MISS;
    it.p[1] = (uint8_t)((it.p[1] & ~(clear & IB_MBITS)) | (set & IB_MBITS));
    return ST_OK;
}

void store_flush(struct store *s)
{
    s->gen++;   /* may change what store_get_stats() reports */
    for (uint32_t i = 0; i < s->nlarge_cap; i++)
        if (s->larges[i].mem && !s->larges[i].held)
            seg_large_free(s, s->nsegs + i);
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        struct ttl_bucket *tb = &s->ttl[b];
        while (tb->head != NONE32) {
            uint32_t id = tb->head;
            ttl_unlink(s, id);
            seg_release(s, id);
        }
        tb->open = tb->cursor = tb->popen = NONE32;
    }
    prob_reset(s);
    ghost_reset(s);
    s->dirty_n = 0;
    for (uint32_t i = 0; i < s->nsegs; i++)
        s->segs[i].dirty_queued = 0;
    index_reset(s);
    s->c.curr_items = 0;
    s->c.bytes = 0;
    s->c.flushes++;
}

size_t store_limit_min(const struct store *s)
{
    return s->fixed_bytes + 64 * 64 + 2 * s->seg_size;
}

size_t store_set_limit(struct store *s, size_t bytes)
{
    s->gen++;
    if (bytes < store_limit_min(s))
        bytes = store_limit_min(s);
    if (bytes > s->mem_cap)
        bytes = s->mem_cap;
    s->mem_target = bytes;
    /* Shrinking: enforce what is in use now, so that a write evicts no more
     * than it would have anyway; store_maintain() lowers it a slice at a
     * time (a drop to the target at once would have the next write evict
     * the whole difference inside one request). */
    size_t used = store_mem_used(s);
    s->cfg.mem_limit = used > bytes ? used : bytes;
    return bytes;
}

/* One slice of a shrink: evict one window, then enforce the lower usage. */
static bool shrink_step(struct store *s)
{
    bool evicted = store_mem_used(s) > s->mem_target && evict_one(s);
    size_t used = store_mem_used(s);
    size_t lim = used > s->mem_target ? used : s->mem_target;
    if (lim < s->cfg.mem_limit)
        s->cfg.mem_limit = lim;
    seg_trim_resident(s);   /* give the freed segments' pages back */
    return evicted && s->cfg.mem_limit > s->mem_target;
}

bool store_maintain(struct store *s, unsigned budget)
{
    s->gen++;   /* may change what store_get_stats() reports */
    bool more = false;
    if (budget == 0)
        return true;
    if (s->cfg.mem_limit > s->mem_target) {
        for (unsigned i = 0; i < 2; i++)
            if (!(more = shrink_step(s)))
                break;
        if (more)
            return true;   /* the rest of this slice's budget went to evicting */
    }
    unsigned used = ttl_reclaim_scan(s, budget, &more);
    if (used < budget)
        used += seg_large_reclaim_expired(s, budget - used);
    /* Keep a free segment ready while the worker is idle, so that a write
     * rarely has to run an eviction merge itself (that merge is the store's
     * only multi-millisecond step; done here it costs no request latency). */
    if (used < budget && store_wants_room(s) && evict_one(s)) {
        used += budget / 2 + 1;
        more = true;
    }
    while (used < budget && index_grow_step(s))
        used++;
    if (used >= budget && index_grow_due(s))
        more = true;
    return more;
}

bool store_wants_room(const struct store *s)
{
    return s->segs_used > 0 &&
           !(store_room(s, s->seg_size) && (s->nfree > 0 || s->seg_fresh < s->nsegs));
}

/* Pins are counted per segment (or large item), not per item: an item can
 * die and its segment be merged away while a reply still sends from it, and
 * only the memory's reuse has to wait. */
void store_pin(struct store *s, uint32_t loc)
{
    s->gen++;   /* may change what store_get_stats() reports */
    if (loc_is_large(s, loc))
        s->larges[loc - s->nsegs].pins++;
    else
        s->segs[loc].pins++;
    s->pins++;
}

void store_unpin(struct store *s, uint32_t loc)
{
    s->gen++;   /* may change what store_get_stats() reports */
    s->pins--;
    if (loc_is_large(s, loc)) {
        struct large *l = &s->larges[loc - s->nsegs];
        if (--l->pins == 0 && l->held)
            seg_large_unheld(s, loc);
    } else {
        struct seg *g = &s->segs[loc];
        if (--g->pins == 0 && g->state == SEG_HELD)
            seg_unheld(s, loc);
    }
}

const uint64_t *store_stats_gen_at(const struct store *s)
{
    return &s->gen;
}

/* Every field of struct store_stats and where it comes from: one list for
 * the copy and the publication, and the assertion below that it names them
 * all. */
#define STORE_STATS_FIELDS(X)                                       \
    X(curr_items, s->c.curr_items)                                  \
    X(total_items, s->c.total_items)                                \
    X(bytes, s->c.bytes)                                            \
    X(mem_limit, s->cfg.mem_limit)                                  \
    X(mem_used, store_mem_used(s))                                  \
    X(index_bytes, index_bytes(s))                                  \
    X(seg_size, s->seg_size)                                        \
    X(segs_total, s->nsegs)                                         \
    X(segs_used, s->segs_used)                                      \
    X(evictions, s->c.evictions)                                    \
    X(evicted_segments, s->c.evicted_segments)                      \
    X(expired_reclaimed, s->c.expired_reclaimed)                    \
    X(expired_unfetched, s->c.expired_unfetched)                    \
    X(evicted_unfetched, s->c.evicted_unfetched)                    \
    X(reclaim_segments, s->c.reclaim_segments)                      \
    X(merged_items, s->c.merged_items)                              \
    X(large_items, s->nlarge)                                       \
    X(flushes, s->c.flushes)                                        \
    X(hash_power, s->idx.level)                                     \
    X(hash_expanding, s->idx.nb != ((size_t)1 << s->idx.level))     \
    X(pins, s->pins)                                                \
    X(held_bytes, s->held_bytes)                                    \
    X(get_expired, s->c.get_expired)

#define STATS_COUNT(f, v) + 1
_Static_assert((0 STORE_STATS_FIELDS(STATS_COUNT)) * sizeof(uint64_t) == sizeof(struct store_stats),
               "STORE_STATS_FIELDS names every field of struct store_stats");
#undef STATS_COUNT

void store_get_stats(const struct store *s, struct store_stats *o)
{
#define STATS_GET(f, v) o->f = (uint64_t)(v);
    STORE_STATS_FIELDS(STATS_GET)
#undef STATS_GET
}

void store_publish_stats(const struct store *s, _Atomic uint64_t *out)
{
#define STATS_PUB(f, v) \
    atomic_store_explicit(&out[offsetof(struct store_stats, f) / sizeof(uint64_t)], (uint64_t)(v), \
                          memory_order_relaxed);
    STORE_STATS_FIELDS(STATS_PUB)
#undef STATS_PUB
}

/* Warm restart onto another worker count (snapshot.h): an item moved in
 * from another store keeps its CAS as an explicit field. */
int store_restore_put(struct store *s, const struct store_copy *c)
{
    if (c->klen == 0 || c->klen > KEY_MAX_LENGTH)
        return ST_NOT_STORED;
    if ((size_t)c->klen + c->vlen > s->cfg.item_max)
        return ST_TOO_LARGE;
    struct wsrc v = {c->val, NULL, c->vlen, 0};
    return item_write(s, store_hash(c->key, c->klen), c->key, c->klen, &v, c->flags, c->exptime,
                      c->cas, c->mbits, (c->mbits & ITEM_FETCHED) ? 1 : 0, false, NULL, NULL);
}
