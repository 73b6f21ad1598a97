/*
 * snapshot.c — save and restore of one store for warm restart (see
 * snapshot.h and docs/storage.md "Warm restart"). The section written by
 * store_save is:
 *
 *   struct snap_hdr                  layout sizes, config, CAS serial, counters
 *   struct ttl_bucket[TTL_NBUCKETS]  chains of segments, oldest first
 *   struct seg[nsegs]                the segment table (pins cleared)
 *   uint64_t[nsegs]                  checksum of each live segment's bytes
 *   per large item: struct snap_large + its bytes, padded to 8
 *
 * A restore trusts nothing it has not checked: the table and the chains are
 * validated, each segment's bytes must match their checksum, every item
 * must decode inside its segment, and no key may be live twice. The store
 * runs on the calling thread; nothing here is shared.
 */
#include <stdio.h>
#include <stdlib.h>

#include "store/snapshot.h"
#include "store/store_int.h"

#define SNAP_MAGIC   UINT64_C(0x31504e5345524f54)   /* "TORESNP1" */
#define SNAP_VERSION 1u

struct snap_hdr {
    uint64_t magic;
    uint32_t version, hdr_size;
    uint32_t seg_struct, ttl_struct, ctr_struct, nbuckets;
    uint64_t mem_limit, item_max, seg_size;
    uint32_t nsegs, nlarge_cap, shard_id, use_cas;
    uint64_t next_serial;
    uint32_t seg_fresh, spare, now, nlarge;
    struct store_counters c;
};

struct snap_large {
    uint64_t serial, sum;
    uint32_t create_at, atime, size, pad;
};

/* --- checksum ---------------------------------------------------------------
 * 64-bit, four independent lanes so it runs near memory speed; it guards
 * against bytes changed behind our back, not against an adversary. */

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
#define K1 UINT64_C(0x9e3779b185ebca87)
#define K2 UINT64_C(0xc2b2ae3d27d4eb4f)

static inline uint64_t lane(uint64_t acc, uint64_t w)
{
    return rotl(acc + w * K2, 31) * K1;
}

uint64_t snapshot_sum(const void *v, size_t n)
{
    const uint8_t *p = v;
    uint64_t a = K1, b = K2, c = ~K1, d = ~K2 ^ n;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        a = lane(a, w[0]);
        b = lane(b, w[1]);
        c = lane(c, w[2]);
        d = lane(d, w[3]);
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
    for (; i < n; i++)
        h = lane(h, p[i]);
    h ^= h >> 33;
    h *= K2;
    h ^= h >> 29;
    return h;
}

static uint8_t *seg_base(const struct store *s, uint32_t id)
{
    return s->arena + (size_t)id * s->seg_size;
}

static bool seg_live(const struct seg *g)
{
    return g->state == SEG_OPEN || g->state == SEG_SEALED;
}

static uint64_t copy_cas(const struct store *s, uint32_t sid, uint32_t off, const struct item *it)
{
    if (!s->cfg.use_cas)
        return 0;
    if (it->bits & IB_CAS)
        return it->cas;
    return ((uint64_t)s->cfg.shard_id << 56)
           | ((seg_loc_serial(s, sid) & s->serial_mask) << s->off_bits) | off;
}

/* Decode the item at p only if its header, key and value lie within the
 * avail bytes that follow p (seg_item_decode itself trusts the bytes). */
static bool decode_within(uint8_t *p, size_t avail, struct item *it)
{
    if (avail < 3)
        return false;
    size_t i = 2;
    uint64_t v = 0;
    for (unsigned sh = 0;; sh += 7) {
        if (i >= avail || sh > 28)
            return false;
        uint8_t b = p[i++];
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            break;
    }
    if (v > UINT32_MAX)
        return false;
    uint8_t bits = p[1];
    i += ((bits & IB_FLAGS) ? 4 : 0) + ((bits & IB_EXP) ? 4 : 0) + ((bits & IB_CAS) ? 8 : 0);
    if (i + p[0] + v > avail)
        return false;
    seg_item_decode(p, it);
    return true;
}

/* --- save ------------------------------------------------------------------------ */

bool store_save(struct store *s, bool (*put)(void *ctx, const void *p, size_t n), void *ctx)
{
    struct snap_hdr h = {
        .magic = SNAP_MAGIC, .version = SNAP_VERSION, .hdr_size = sizeof h,
        .seg_struct = sizeof(struct seg), .ttl_struct = sizeof(struct ttl_bucket),
        .ctr_struct = sizeof(struct store_counters), .nbuckets = TTL_NBUCKETS,
        .mem_limit = s->mem_cap, .item_max = s->cfg.item_max, .seg_size = s->seg_size,
        .nsegs = s->nsegs, .nlarge_cap = s->nlarge_cap, .shard_id = s->cfg.shard_id,
        .use_cas = s->cfg.use_cas, .next_serial = s->next_serial, .seg_fresh = s->seg_fresh,
        .spare = s->spare, .now = s->now, .nlarge = s->nlarge, .c = s->c,
    };
    if (!put(ctx, &h, sizeof h) || !put(ctx, s->ttl, sizeof s->ttl))
        return false;
    /* A segment still pinned by a reply that will never finish (its
     * connection was closed at shut-down) holds only dead bytes: free. */
    for (uint32_t id = 0; id < s->nsegs; id++) {
        struct seg g = s->segs[id];
        g.pins = 0;
        g.dirty_queued = 0;
        g.decommitted = 0;
        if (g.state == SEG_HELD) {
            g.state = SEG_FREE;
            g.prev = g.next = NONE32;
        }
        if (!put(ctx, &g, sizeof g))
            return false;
    }
    for (uint32_t id = 0; id < s->nsegs; id++) {
        const struct seg *g = &s->segs[id];
        uint64_t sum = seg_live(g) ? snapshot_sum(seg_base(s, id), g->wpos) : 0;
        if (!put(ctx, &sum, sizeof sum))
            return false;
    }
    for (uint32_t i = s->large_head; i != NONE32; i = s->larges[i].next) {
        const struct large *l = &s->larges[i];
        struct item it;
        seg_item_decode(l->mem, &it);
        struct snap_large sl = { .serial = l->serial, .sum = snapshot_sum(l->mem, it.size),
                                 .create_at = l->create_at, .atime = l->atime, .size = it.size };
        static const uint8_t zero[8];
        if (!put(ctx, &sl, sizeof sl) || !put(ctx, l->mem, it.size) ||
            !put(ctx, zero, (8 - it.size % 8) % 8))
            return false;
    }
    return true;
}

/* --- restore --------------------------------------------------------------------- */

#define FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); goto fail; } while (0)

/* Scratch of one segment's walk: where each live item is and its hash. */
struct pending {
    uint32_t off, size;
    uint64_t h;
};

/* Walk segment id's items: each must decode inside wpos. Live ones go into
 * the index (a key already there means the file is not what was saved),
 * expired ones are marked dead. Two passes: decode, hash and prefetch the
 * buckets, then insert, so the index's cache misses overlap. */
static bool index_segment(struct store *s, uint32_t id, struct pending *pd, char *why,
                          size_t whylen)
{
    struct seg *g = &s->segs[id];
    uint8_t *base = seg_base(s, id);
    uint32_t live = 0, live_bytes = 0, np = 0;
    struct item it = {0};   /* printed by FAIL even when decode_within() gave up early */
    for (uint32_t off = 0; off < g->wpos; off += it.size) {
        if (!decode_within(base + off, g->wpos - off, &it) || it.klen == 0 ||
            it.klen > KEY_MAX_LENGTH)
            FAIL("segment %u: item at %u does not decode (key %u, size %u, end %u)", id, off,
                 it.klen, it.size, g->wpos);
        if (it.bits & IB_DEAD)
            continue;
        if (item_expired(s, it.exptime)) {
            it.p[1] |= IB_DEAD;
            s->c.expired_reclaimed++;
            continue;
        }
        uint64_t h = store_hash(it.key, it.klen);
        index_prefetch(s, h);
        pd[np++] = (struct pending){ off, it.size, h };
    }
    for (uint32_t i = 0; i < np; i++) {
        struct item old;
        seg_item_decode(base + pd[i].off, &it);
        if (index_find(s, it.key, it.klen, pd[i].h, &old))
            FAIL("segment %u: key at %u is live twice", id, pd[i].off);
        if (!index_prepare(s, pd[i].h))
            FAIL("no memory for the index");
        /* the frequency counters are not saved; an item read since it was
         * written (ITEM_FETCHED) counts as read once, so probation promotes
         * it rather than dropping it */
        index_insert(s, pd[i].h, e_make(s, hash_tag(s, pd[i].h), (it.bits & ITEM_FETCHED) ? 1 : 0,
                                        id, pd[i].off));
        live++;
        live_bytes += pd[i].size;
    }
    g->live_items = live;
    g->live_bytes = live_bytes;
    s->c.curr_items += live;
    s->c.bytes += live_bytes;
    return true;
fail:
    return false;
}

static bool check_chains(struct store *s, uint32_t nlive, char *why, size_t whylen)
{
    uint32_t seen = 0;
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        struct ttl_bucket *tb = &s->ttl[b];
        uint32_t n = 0, prev = NONE32;
        bool open_seen = tb->open == NONE32, cursor_seen = tb->cursor == NONE32;
        bool popen_seen = tb->popen == NONE32;
        for (uint32_t id = tb->head; id != NONE32; id = s->segs[id].next) {
            if (id >= s->seg_fresh || n > nlive)
                FAIL("TTL bucket %u: chain leaves the segment table", b);
            struct seg *g = &s->segs[id];
            if (!seg_live(g) || g->bucket != b || g->prev != prev)
                FAIL("TTL bucket %u: segment %u is not linked as saved", b, id);
            if ((g->state == SEG_OPEN) != (id == tb->open))
                FAIL("TTL bucket %u: open segment %u does not match", b, id);
            open_seen |= id == tb->open;
            cursor_seen |= id == tb->cursor;
            popen_seen |= id == tb->popen && g->state == SEG_SEALED && !g->prob;
            prev = id;
            n++;
        }
        if (prev != tb->tail || n != tb->nseg || !open_seen)
            FAIL("TTL bucket %u: chain of %u segments does not end as saved", b, n);
        if (!cursor_seen)
            tb->cursor = NONE32;    /* a stale clock hand only restarts the sweep */
        if (!popen_seen)
            tb->popen = NONE32;     /* a new promotion segment is opened when needed */
        seen += n;
    }
    if (seen != nlive)
        FAIL("%u live segments but %u in TTL chains", nlive, seen);
    return true;
fail:
    return false;
}

static int by_serial(const void *a, const void *b)
{
    uint64_t x = ((const struct probq_ent *)a)->serial, y = ((const struct probq_ent *)b)->serial;
    return x < y ? -1 : x > y;
}

/* Probation (probation.c): the flag travels in the segment table; the
 * count and the queue of sealed probation segments are rebuilt, the oldest
 * opening first (the queue's own order is not saved). */
static void rebuild_probation(struct store *s)
{
    prob_reset(s);
    s->nprob = 0;
    uint32_t n = 0;
    for (uint32_t id = 0; id < s->seg_fresh; id++) {
        struct seg *g = &s->segs[id];
        if (!g->prob)
            continue;
        s->nprob++;
        if (g->state == SEG_SEALED && n < s->probq_cap)
            s->probq[n++] = (struct probq_ent){ .id = id, .serial = g->serial };
    }
    qsort(s->probq, n, sizeof *s->probq, by_serial);
    s->probq_head = 0;
    s->probq_n = n;
}

bool store_restore(struct store *s, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    size_t lim = s->mem_cap;
    struct pending *pd = NULL;
    struct snap_hdr h;
    size_t need = sizeof h + sizeof s->ttl + (size_t)s->nsegs * (sizeof(struct seg) + 8);
    if (len < sizeof h)
        FAIL("store section is %zu bytes, shorter than its header", len);
    memcpy(&h, p, sizeof h);
    if (h.magic != SNAP_MAGIC || h.version != SNAP_VERSION || h.hdr_size != sizeof h ||
        h.seg_struct != sizeof(struct seg) || h.ttl_struct != sizeof(struct ttl_bucket) ||
        h.ctr_struct != sizeof(struct store_counters) || h.nbuckets != TTL_NBUCKETS)
        FAIL("store layout differs (saved by another percore version)");
    if (h.mem_limit != s->mem_cap || h.seg_size != s->seg_size || h.nsegs != s->nsegs ||
        h.item_max != s->cfg.item_max || h.nlarge_cap != s->nlarge_cap)
        FAIL("store geometry differs: saved %llu bytes in %u segments of %llu, item max %llu; "
             "now %zu bytes in %u segments of %zu, item max %zu",
             (unsigned long long)h.mem_limit, h.nsegs, (unsigned long long)h.seg_size,
             (unsigned long long)h.item_max, s->cfg.mem_limit, s->nsegs, s->seg_size,
             s->cfg.item_max);
    if (h.shard_id != s->cfg.shard_id || h.use_cas != (uint32_t)s->cfg.use_cas)
        FAIL("shard id or CAS setting differs");
    if (len < need || h.seg_fresh > s->nsegs || h.spare >= h.seg_fresh)
        FAIL("store section truncated or segment counts out of range");

    const uint8_t *q = p + sizeof h;
    memcpy(s->ttl, q, sizeof s->ttl);
    q += sizeof s->ttl;
    memcpy(s->segs, q, (size_t)s->nsegs * sizeof(struct seg));
    q += (size_t)s->nsegs * sizeof(struct seg);
    const uint8_t *sums = q;
    q += (size_t)s->nsegs * 8;

    /* The arena as it was: [0, seg_fresh) committed; the free list rebuilt
     * with the free segments' pages given back. */
    if (!store_commit(s->arena, (size_t)h.seg_fresh * s->seg_size))
        FAIL("cannot map the segments");
    s->seg_fresh = h.seg_fresh;
    s->free_head = NONE32;
    s->nfree = s->nfree_resident = 0;
    s->segs_used = 0;
    uint32_t nlive = 0, nspare = 0;
    for (uint32_t id = s->nsegs; id-- > 0;) {
        struct seg *g = &s->segs[id];
        if (id >= h.seg_fresh) {
            if (g->state != SEG_FREE)
                FAIL("segment %u is in use but was never committed", id);
            continue;
        }
        if (g->state > SEG_HELD || g->wpos > s->seg_size || g->pins)
            FAIL("segment %u: state %u, %u bytes written: not a saved segment", id, g->state,
                 g->wpos);
        g->dirty_queued = 0;
        g->decommitted = 0;
        if (g->state != SEG_OPEN && g->state != SEG_SEALED)
            g->prob = 0;
        if (g->state == SEG_FREE || g->state == SEG_HELD) {
            g->state = SEG_FREE;
            g->serial = 0;
            g->prev = NONE32;
            g->next = s->free_head;
            s->free_head = id;
            s->nfree++;
            seg_map_drop(s, id);
            g->decommitted = 1;
            continue;
        }
        s->segs_used++;
        if (g->state == SEG_SPARE)
            nspare++;
        else if (g->bucket >= TTL_NBUCKETS)
            FAIL("segment %u: TTL bucket %u out of range", id, g->bucket);
        else
            nlive++;
    }
    if (nspare != 1 || s->segs[h.spare].state != SEG_SPARE)
        FAIL("spare segment %u is not the one spare", h.spare);
    s->spare = h.spare;
    if (!check_chains(s, nlive, why, whylen))
        goto fail;
    ttl_marks_rebuild(s);
    rebuild_probation(s);

    /* Rebuild with the limit lifted: an eviction before the index is whole
     * would drop items it cannot see. The limit applies again at the end. */
    s->cfg.mem_limit = SIZE_MAX / 2;
    s->next_serial = h.next_serial;
    s->c = h.c;
    s->c.curr_items = s->c.bytes = 0;
    /* Grow the index to its saved size while it is empty: splits then move
     * nothing, where growing as it fills re-reads the keys of the entries
     * each split moves, at random places in the segments (half the time
     * of a restore). The count is a hint; the walk below recounts. */
    uint64_t hint = h.nlarge;
    for (uint32_t id = 0; id < s->seg_fresh; id++)
        if (seg_live(&s->segs[id]))
            hint += s->segs[id].live_items;
    s->idx.nitems = hint;
    while (index_grow_step(s))
        ;
    s->idx.nitems = 0;
    /* an item takes at least 3 bytes */
    pd = malloc((s->seg_size / 3 + 1) * sizeof *pd);
    if (!pd)
        FAIL("no memory for the restore's scratch");
    for (unsigned b = 0; b < TTL_NBUCKETS; b++)
        for (uint32_t id = s->ttl[b].head; id != NONE32; id = s->segs[id].next) {
            uint64_t sum;
            memcpy(&sum, sums + (size_t)id * 8, 8);
            if (sum != snapshot_sum(seg_base(s, id), s->segs[id].wpos))
                FAIL("segment %u: bytes differ from their checksum (the file changed after "
                     "the shut-down)", id);
            if (!index_segment(s, id, pd, why, whylen))
                goto fail;
        }
    free(pd);
    pd = NULL;

    for (uint32_t n = 0; n < h.nlarge; n++) {
        struct snap_large sl;
        if ((size_t)(p + len - q) < sizeof sl)
            FAIL("large item %u of %u: section truncated", n, h.nlarge);
        memcpy(&sl, q, sizeof sl);
        q += sizeof sl;
        size_t padded = ((size_t)sl.size + 7) & ~(size_t)7;
        if (sl.size < 3 || sl.size > lim || (size_t)(p + len - q) < padded ||
            snapshot_sum(q, sl.size) != sl.sum)
            FAIL("large item %u of %u: truncated or checksum differs", n, h.nlarge);
        uint32_t sid;
        uint8_t *m = seg_large_alloc(s, sl.size, &sid);
        if (!m)
            FAIL("large item %u: cannot allocate %u bytes", n, sl.size);
        memcpy(m, q, sl.size);
        q += padded;
        struct large *l = &s->larges[sid - s->nsegs];
        l->serial = sl.serial;
        l->create_at = sl.create_at;
        l->atime = sl.atime;
        struct item it;
        seg_item_decode(m, &it);
        if (it.size != sl.size || it.klen == 0 || it.klen > KEY_MAX_LENGTH ||
            (it.bits & IB_DEAD))
            FAIL("large item %u does not decode", n);
        if (item_expired(s, it.exptime)) {
            seg_large_free(s, sid);
            s->c.expired_reclaimed++;
            continue;
        }
        uint64_t hh = store_hash(it.key, it.klen);
        struct item old;
        if (index_find(s, it.key, it.klen, hh, &old))
            FAIL("large item %u: key is live twice", n);
        if (!index_prepare(s, hh))
            FAIL("no memory for the index");
        index_insert(s, hh, e_make(s, hash_tag(s, hh), (it.bits & ITEM_FETCHED) ? 1 : 0, sid, 0));
        s->c.curr_items++;
        s->c.bytes += it.size;
    }
    if (q != p + len)
        FAIL("store section has %zu bytes after its last item", (size_t)(p + len - q));
    s->next_serial = h.next_serial;   /* the large allocations above took serials */

    s->cfg.mem_limit = lim;
    for (uint32_t id = 0; id < s->seg_fresh; id++) {
        struct seg *g = &s->segs[id];
        if (g->state == SEG_SEALED && (size_t)(g->wpos - g->live_bytes) * 4 >= s->seg_size * 3)
            evict_note_dirty(s, id);
    }
    /* The index can come out a little larger than it was (another growth
     * history); make room the usual way, now that every item is indexed. */
    if (!store_make_room(s, 0))
        FAIL("restored items do not fit in the memory limit");
    return true;
fail:
    free(pd);
    s->cfg.mem_limit = lim;
    return false;
}

/* --- moving items to other stores ---------------------------------------------- */

static bool copy_one(struct store *s, uint32_t sid, uint32_t off, const struct item *it,
                     bool (*fn)(void *, const struct store_copy *), void *arg)
{
    if ((it->bits & IB_DEAD) || item_expired(s, it->exptime))
        return true;
    struct store_copy c = {
        .key = it->key, .val = it->val, .klen = it->klen, .vlen = it->vlen,
        .flags = it->flags, .exptime = it->exptime, .cas = copy_cas(s, sid, off, it),
        .mbits = it->bits & IB_MBITS,
    };
    return fn(arg, &c);
}

bool store_restore_each(struct store *s, bool (*fn)(void *arg, const struct store_copy *c),
                        void *arg)
{
    for (unsigned b = 0; b < TTL_NBUCKETS; b++)
        for (uint32_t id = s->ttl[b].head; id != NONE32; id = s->segs[id].next) {
            struct seg *g = &s->segs[id];
            struct item it;
            for (uint32_t off = 0; off < g->wpos; off += it.size) {
                seg_item_decode(seg_base(s, id) + off, &it);
                if (!copy_one(s, id, off, &it, fn, arg))
                    return false;
            }
            seg_map_drop(s, id);
        }
    for (uint32_t i = s->large_head; i != NONE32; i = s->larges[i].next) {
        struct item it;
        seg_item_decode(s->larges[i].mem, &it);
        if (!copy_one(s, s->nsegs + i, 0, &it, fn, arg))
            return false;
    }
    return true;
}

uint64_t store_cas_floor(const struct store *s)
{
    return (s->next_serial & s->serial_mask) << s->off_bits;
}

void store_cas_raise(struct store *s, uint64_t floor)
{
    uint64_t serial = (floor >> s->off_bits) + 1;
    if (s->next_serial < serial)
        s->next_serial = serial;
}
