/*
 * evict.c — making room. Memory is freed a whole segment at a time, but hot
 * items survive: eviction merges N (N_MERGE, 2) consecutive sealed segments of one TTL
 * bucket into the spare segment (Segcache's merge-based eviction). From each
 * source segment the items with the highest index frequency counters are
 * copied, at most 1/N of a segment per source, with a per-segment cutoff
 * chosen from a histogram of the counters; items never read (counter 0) only
 * fill what the read ones leave free, so a merged segment is not left part
 * empty (space lost until its next merge: about 20% of the cache under Zipf
 * with fill-on-miss, docs/storage.md "Measured"); the copies' counters are halved,
 * so an item must keep being read to keep surviving. Dead bytes (deleted or
 * overwritten items) and expired items are simply not copied. A per-bucket
 * cursor walks the chain like a clock hand; the bucket whose next window is
 * oldest is merged first, and segments that are at least 3/4 dead are queued
 * and merged first, as they give back the most memory for the least copying.
 * The same merge routine reclaims expired segments (keeping items touched to
 * live longer, with their CAS) and drops segments outright as a last resort.
 * New items wait in probation segments (probation.c), which merges step
 * over: while probation is over its share, evict_one() takes a probation
 * segment first. State belongs to the store's worker thread.
 */
#include <stdlib.h>

#include "store/store_int.h"

/* Two sources per merge: each merge evicts at most half of its window.
 * With probation and the ghost table (ghost.c) feeding the main log, a
 * 4-way merge (evicting three quarters of a window, warm items included)
 * missed more: bench/cachesim Zipf 0.99 at 32 MiB 0.146 vs 0.139 here
 * (docs/results/cachesim.md). It also halves the longest step a write may
 * have to wait for (two segments walked instead of four). */
#define N_MERGE 2

void evict_note_dirty(struct store *s, uint32_t id)
{
    struct seg *g = &s->segs[id];
    if (g->dirty_queued || s->dirty_n >= s->nsegs)
        return;
    g->dirty_queued = 1;
    s->dirty[(s->dirty_head + s->dirty_n) % s->nsegs] = id;
    s->dirty_n++;
}

uint64_t evict_cas_of_loc(const struct store *s, uint32_t sid, uint32_t off)
{
    return ((uint64_t)s->cfg.shard_id << 56)
           | ((seg_loc_serial(s, sid) & s->serial_mask) << s->off_bits) | off;
}

/* Count a live item that is being dropped. */
void evict_drop_stats(struct store *s, const struct item *it, bool expired, uint32_t id)
{
    struct class_ctr *cc = &s->cls[s->segs[id].bucket];
    if (expired) {
        s->c.expired_reclaimed++;
        cc->reclaimed++;
        if (!(it->bits & ITEM_FETCHED)) {
            s->c.expired_unfetched++;
            cc->expired_unfetched++;
        }
    } else {
        s->c.evictions++;
        cc->evicted++;
        if (it->exptime)
            cc->evicted_nonzero++;
        cc->evicted_time = s->now - s->segs[id].atime;
        struct store_event ev = {
            .kind = SEV_EVICT, .fetched = it->bits & ITEM_FETCHED, .key = it->key,
            .klen = it->klen, .vlen = it->vlen, .exptime = it->exptime,
            .atime = s->segs[id].atime, .cls = store_class_of_bucket(s->segs[id].bucket) + 1,
        };
        store_notify(s, &ev);
        if (!(it->bits & ITEM_FETCHED)) {
            s->c.evicted_unfetched++;
            cc->evicted_unfetched++;
        }
    }
    s->c.bytes -= it->size;
    s->c.curr_items--;
}

static bool mslots_reserve(struct store *s, size_t n)
{
    if (n <= s->mslots_cap)
        return true;
    size_t cap = s->mslots_cap ? s->mslots_cap : 256;
    while (cap < n)
        cap *= 2;
    struct mslot *p = realloc(s->mslots, cap * sizeof(*p));
    if (!p)
        return false;
    s->mslots = p;
    s->mslots_cap = cap;
    return true;
}

/*
 * Merge src[0..n) into the spare segment and free them. MERGE_EVICT keeps
 * frequently read items (n >= 2), MERGE_EXPIRE keeps every unexpired item
 * (adding an explicit CAS field so the relocation keeps the item's CAS),
 * MERGE_DROP keeps nothing. The sources must be sealed members of TTL
 * chains. Kept items that do not fit are dropped.
 */
void evict_merge(struct store *s, const uint32_t *src, unsigned n, enum merge_mode mode)
{
    if (s->spare == NONE32) {
        s->spare = seg_take_free(s);
        if (s->spare != NONE32)
            s->segs[s->spare].state = SEG_SPARE;
    }
    if (s->spare == NONE32)
        mode = MERGE_DROP;      /* no target: keep nothing */
    uint32_t d = s->spare;
    struct seg dummy;
    struct seg *dg = d != NONE32 ? &s->segs[d] : &dummy;
    uint8_t *dbase = d != NONE32 ? s->arena + (size_t)d * s->seg_size : NULL;
    if (d != NONE32) {
        seg_init_open(s, d);
        dg->state = SEG_SPARE;
    } else {
        memset(&dummy, 0, sizeof(dummy));
    }
    /* when every live byte fits in the target, this is plain compaction:
     * keep everything, leave the counters alone */
    bool compact = false;
    if (mode == MERGE_EVICT) {
        size_t live = 0;
        for (unsigned i = 0; i < n; i++)   /* + room for CAS fields kept items gain */
            live += s->segs[src[i]].live_bytes + (s->cfg.use_cas ? 8u * s->segs[src[i]].live_items : 0);
        compact = live <= s->seg_size;
    }
    size_t per_src = mode == MERGE_EVICT && !compact ? s->seg_size / n : s->seg_size;
    uint64_t kept = 0;
    uint32_t atime = 0;

    for (unsigned i = 0; i < n; i++) {
        uint32_t id = src[i];
        struct seg *g = &s->segs[id];
        struct seg_walk w;
        struct mslot *ms = s->mslots;
        if (g->atime > atime)
            atime = g->atime;
        mslots_reserve(s, g->live_items + 1);

        /* pass 1: find each live item's slot, histogram of counters */
        uint64_t hist[E_FREQ_MAX + 1] = {0};
        size_t k = 0;
        for (seg_walk_start(&w, s, id, true); seg_walk_next(&w);) {
            if (k >= s->mslots_cap && !mslots_reserve(s, k + 1)) {
                /* cannot remember it (out of heap): drop it now */
                w.it.p[1] |= IB_DEAD;
                if (w.slot) {
                    evict_drop_stats(s, &w.it, item_expired(s, w.it.exptime), id);
                    index_delete(s, w.h, w.slot);
                }
                continue;
            }
            ms = s->mslots;
            ms[k].slot = w.slot;
            ms[k].h = w.h;
            k++;
            if (w.slot && !item_expired(s, w.it.exptime))
                hist[slot_freq(w.slot)] += w.it.size;
        }
        /* this source's share of what is left in the target; a source
         * that used less leaves more to the next */
        if (mode == MERGE_EVICT && !compact)
            per_src = (s->seg_size - dg->wpos) / (n - i);
        unsigned cut = E_FREQ_MAX + 1;
        size_t partial = 0;     /* bytes allowed from level cut - 1 */
        if (compact)
            cut = 0;
        else if (mode == MERGE_EVICT) {
            uint64_t acc = 0;
            for (int f = E_FREQ_MAX; f >= 0; f--) {
                if (!hist[f])
                    continue;
                if (acc + hist[f] > per_src) {
                    partial = per_src - acc;
                    cut = (unsigned)f + 1;
                    break;
                }
                acc += hist[f];
                cut = (unsigned)f;
            }
        }

        /* pass 2: copy the keepers, drop the rest */
        size_t kept_here = 0;
        size_t kk = 0;
        for (seg_walk_start(&w, s, id, false); seg_walk_next(&w);) {
            struct item it = w.it;
            uint32_t off = w.off;
            if (kk >= k)
                break;
            uint16_t *slot = ms[kk].slot;
            uint64_t h = ms[kk].h;
            kk++;
            if (!slot)
                continue;
            uint64_t e = slot_get(slot);
            unsigned f = e_freq(e);
            bool expired = item_expired(s, it.exptime);
            bool keep = false;
            bool add_cas = false;
            if (!expired) {
                if (mode == MERGE_EVICT) {
                    /* a kept item keeps its CAS, wherever it moves */
                    add_cas = item_move_needs_cas(s, it.bits);
                    if (f >= cut)
                        keep = kept_here + it.size <= per_src;
                    else if (f + 1 == cut && it.size <= partial) {
                        keep = kept_here + it.size <= per_src;
                        if (keep)
                            partial -= it.size;
                    }
                }
                else if (mode == MERGE_EXPIRE) {
                    keep = true;
                    add_cas = item_move_needs_cas(s, it.bits);
                }
            }
            size_t nsize = it.size + (add_cas ? 8 : 0);
            if (keep && dg->wpos + nsize <= s->seg_size) {
                uint8_t *dst = dbase + dg->wpos;
                if (add_cas) {
                    size_t hl = seg_item_encode(dst, it.klen, it.vlen, it.bits, it.flags,
                                            it.exptime, it.bits & IB_EXP,
                                            evict_cas_of_loc(s, id, off));
                    memcpy(dst + hl, it.key, (size_t)it.klen + it.vlen);
                    s->c.bytes += 8;
                } else {
                    memcpy(dst, it.p, it.size);
                }
                unsigned nf = mode == MERGE_EVICT && !compact ? f >> 1 : f;
                slot_set(slot, e_moved(s, e, nf, d, dg->wpos));
                dg->wpos += (uint32_t)nsize;
                dg->live_bytes += (uint32_t)nsize;
                dg->live_items++;
                uint32_t ex = it.exptime ? it.exptime : EXP_NEVER;
                if (ex > dg->exp_max)
                    dg->exp_max = ex;
                kept_here += nsize;
                kept++;
            } else {
                evict_drop_stats(s, &it, expired, id);
                index_delete(s, h, slot);
            }
        }
    }

    /* splice: the merged segment takes the sources' place in the chain */
    uint32_t bucket = s->segs[src[0]].bucket;
    uint32_t after = s->segs[src[n - 1]].next;
    /* sources need not be adjacent nor in chain order (pair_lone): the
     * cursor must not be left on one of them */
    for (unsigned i = 0; i < n && after != NONE32; i++)
        if (after == src[i]) {
            after = s->segs[after].next;
            i = (unsigned)-1;
        }
    if (dg->wpos > 0) {
        dg->state = SEG_SEALED;
        dg->atime = atime;
        if (mode == MERGE_EVICT) {
            ttl_link_before(s, bucket, d, src[0]);
        } else {
            unsigned b2 = ttl_bucket_of(s, dg->exp_max == EXP_NEVER ? 0 : dg->exp_max);
            ttl_link_before(s, b2, d, s->ttl[b2].open);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        ttl_unlink(s, src[i]);
        s->segs[src[i]].dirty_queued = 0;
        seg_release(s, src[i]);
    }
    if (mode == MERGE_EVICT) {
        s->ttl[bucket].cursor = after;
        s->c.merged_items += kept;
    }
    if (mode == MERGE_EXPIRE)
        s->c.reclaim_segments += n;
    else
        s->c.evicted_segments += n;
    if (dg->wpos > 0) {
        s->spare = seg_take_free(s);   /* room: n segments were just freed */
        if (s->spare != NONE32)
            s->segs[s->spare].state = SEG_SPARE;
    } else {
        dg->serial = 0;
        dg->state = SEG_SPARE;
    }
}

/* Main-log segments a merge may take. Probation segments (probation.c)
 * leave by promotion instead, except under -M, where nothing is dropped
 * and compaction is all eviction may do. */
static bool mergeable(const struct store *s, uint32_t id)
{
    return s->segs[id].state == SEG_SEALED && (!s->segs[id].prob || s->cfg.no_evict);
}

static uint32_t first_sealed(const struct store *s, uint32_t id)
{
    while (id != NONE32 && !mergeable(s, id))
        id = s->segs[id].next;
    return id;
}

/* Up to N_MERGE mergeable segments in chain order from id, stepping over
 * probation segments and open ones (the merged segment takes the first
 * one's place). */
static unsigned window_from(const struct store *s, uint32_t id, uint32_t *w)
{
    unsigned n = 0;
    while (id != NONE32 && n < N_MERGE) {
        if (mergeable(s, id))
            w[n++] = id;
        id = s->segs[id].next;
    }
    return n;
}

/* Bytes a segment's live items may take once moved: a relocated item may
 * gain a CAS field, counted for every item (an upper bound; evict_merge
 * makes the same count). */
static size_t moved_bytes(const struct store *s, uint32_t id)
{
    return s->segs[id].live_bytes + (s->cfg.use_cas ? 8u * s->segs[id].live_items : 0);
}

/* A window around a mostly-dead segment: it and as many sealed neighbours
 * as still fit, live bytes together (CAS fields they gain included), in
 * one segment (so the merge only compacts, evicting nothing). */
static unsigned dirty_window(const struct store *s, uint32_t id, uint32_t *w)
{
    uint32_t first = id, last = id;
    size_t live = moved_bytes(s, id);
    unsigned n = 1;
    while (n < N_MERGE) {
        uint32_t nx = s->segs[last].next, pv = s->segs[first].prev;
        if (nx != NONE32 && mergeable(s, nx) && live + moved_bytes(s, nx) <= s->seg_size) {
            live += moved_bytes(s, nx);
            last = nx;
        } else if (pv != NONE32 && mergeable(s, pv) && live + moved_bytes(s, pv) <= s->seg_size) {
            live += moved_bytes(s, pv);
            first = pv;
        } else {
            break;
        }
        n++;
    }
    return window_from(s, first, w) >= n ? n : 0;
}

/* Whether merging these segments keeps every live item (the merge is then
 * plain compaction): evict_merge() makes the same test, CAS fields that
 * moved items gain included. */
static bool merge_keeps_all(const struct store *s, const uint32_t *w, unsigned n)
{
    size_t live = 0;
    for (unsigned i = 0; i < n; i++)
        live += moved_bytes(s, w[i]);
    return n >= 2 && live <= s->seg_size;
}

/* A dirty segment whose neighbours hold too much to join it (half-dead
 * segments next to fuller ones, as overwrite churn leaves them) waits as
 * the lone one; the next such segment of its TTL bucket is compacted with
 * it when both fit in one segment, wherever they stand in the chain. */
static bool pair_lone(struct store *s, uint32_t id)
{
    uint32_t l = s->dirty_lone;
    bool valid = s->dirty_lone_serial && l != id && s->segs[l].serial == s->dirty_lone_serial &&
                 mergeable(s, l) && s->segs[l].bucket == s->segs[id].bucket;
    if (valid) {
        uint32_t w[2] = { l, id };
        if (merge_keeps_all(s, w, 2)) {
            s->dirty_lone_serial = 0;
            evict_merge(s, w, 2, MERGE_EVICT);
            return true;
        }
    }
    if (!valid || s->segs[id].live_bytes < s->segs[l].live_bytes) {
        s->dirty_lone = id;
        s->dirty_lone_serial = s->segs[id].serial;
    }
    return false;
}

/* With -M (cfg.no_evict) only what drops no live item runs: reclaiming
 * expired segments and compacting windows whose live items fit in one
 * segment. When neither frees anything, this fails and the write gets
 * SERVER_ERROR out of memory, as memcached -M answers. */
bool evict_one(struct store *s)
{
    uint32_t w[N_MERGE];
    unsigned n;
    bool no_evict = s->cfg.no_evict;

    if (s->spare == NONE32) {
        /* only after a failed re-take of the spare; take it back first */
        s->spare = seg_take_free(s);
        if (s->spare != NONE32)
            s->segs[s->spare].state = SEG_SPARE;
    }
    if (s->spare != NONE32 && ttl_reclaim_one(s))
        return true;

    while (s->dirty_n && s->spare != NONE32) {
        uint32_t id = s->dirty[s->dirty_head];
        s->dirty_head = (s->dirty_head + 1) % s->nsegs;
        s->dirty_n--;
        struct seg *g = &s->segs[id];
        if (!g->dirty_queued)
            continue;
        g->dirty_queued = 0;
        if (!mergeable(s, id))
            continue;
        n = dirty_window(s, id, w);
        if (n >= 2 && (!no_evict || merge_keeps_all(s, w, n))) {
            evict_merge(s, w, n, MERGE_EVICT);
            return true;
        }
        if (pair_lone(s, id))
            return true;
    }

    /* new items wait in probation until it outgrows its share */
    if (!no_evict && prob_over_share(s) && prob_evict_one(s))
        return true;

    /* the bucket whose next window is the oldest */
    uint32_t best = NONE32;
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        struct ttl_bucket *tb = &s->ttl[b];
        if (tb->head == NONE32)
            continue;
        uint32_t st = first_sealed(s, tb->cursor);
        if (st == NONE32)
            st = first_sealed(s, tb->head);
        if (st == NONE32)
            continue;
        tb->cursor = st;
        if (best == NONE32 || s->segs[st].create_at < s->segs[best].create_at)
            best = st;
    }
    if (s->nlarge && (best == NONE32 ||
                      s->larges[s->large_head].create_at <= s->segs[best].create_at))
        if (seg_large_evict_one(s))
            return true;
    if (best != NONE32 && s->spare == NONE32 && !no_evict) {
        /* No merge target: the segments just freed may all still be held by
         * replies in flight (store_pin). Drop the oldest window whole
         * rather than refuse every write until those sends complete. */
        n = window_from(s, best, w);
        evict_merge(s, w, n, MERGE_DROP);
        return true;
    }
    if (best != NONE32) {
        n = window_from(s, best, w);
        if (n < N_MERGE) {
            uint32_t h = first_sealed(s, s->ttl[s->segs[best].bucket].head);
            if (h != best) {
                uint32_t w2[N_MERGE];
                unsigned n2 = window_from(s, h, w2);
                if (n2 > n) {
                    memcpy(w, w2, sizeof(w));
                    n = n2;
                }
            }
        }
        if (!no_evict || merge_keeps_all(s, w, n)) {
            evict_merge(s, w, n, n >= 2 ? MERGE_EVICT : MERGE_DROP);
            return true;
        }
    }
    if (no_evict)
        return false;
    if (s->nlarge && seg_large_evict_one(s))
        return true;
    if (prob_evict_one(s))
        return true;

    /* last resort: the oldest open segment (client writes or promotions) */
    uint32_t old = NONE32;
    for (unsigned b = 0; b < TTL_NBUCKETS; b++) {
        uint32_t os[2] = { s->ttl[b].open, s->ttl[b].popen };
        for (unsigned k = 0; k < 2; k++) {
            uint32_t o = os[k];
            if (o != NONE32 && (old == NONE32 || s->segs[o].create_at < s->segs[old].create_at))
                old = o;
        }
    }
    if (old != NONE32) {
        struct ttl_bucket *tb = &s->ttl[s->segs[old].bucket];
        if (tb->open == old)
            tb->open = NONE32;
        else
            tb->popen = NONE32;
        s->segs[old].state = SEG_SEALED;
        evict_merge(s, &old, 1, MERGE_DROP);
        return true;
    }
    return false;
}
