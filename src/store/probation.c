/*
 * probation.c — S3-FIFO's small queue, made of segments. Client writes go
 * to probation segments (each TTL bucket's open segment); sealed ones queue
 * here, oldest first. While probation holds more than PROB_PCT percent of
 * the memory in use, eviction takes the oldest probation segment before
 * touching the main log: items read since they were written (index
 * frequency counter > 0) are promoted, appended to their bucket's
 * promotion segment (a main-log segment, linked just before the bucket's
 * open one) with their counter halved and their CAS kept; items never read
 * are dropped, and their key hashes go to the ghost table (ghost.c): if
 * such a key is written again soon, it starts as read once and is promoted
 * next time. One-hit wonders so cost at most the probation share of the
 * cache instead of a trip through the whole log, and the main log's merges
 * (evict.c) only weigh items that have proved themselves once.
 *
 * One segment per call, so its work is bounded by one segment: a first
 * pass sizes the survivors; when they fit in what is left of the promotion
 * segment plus the spare they are copied, else the segment itself becomes
 * a main-log segment where it stands (promote_in_place). The item walks are
 * seg.c's seg_walk, shared with the merges. State belongs to the store's
 * worker thread.
 */
#include "store/store_int.h"

#define PROB_PCT 10

void prob_opened(struct store *s, uint32_t id)
{
    s->segs[id].prob = 1;
    s->nprob++;
}

void prob_released(struct store *s, uint32_t id)
{
    if (s->segs[id].prob) {
        s->segs[id].prob = 0;
        s->nprob--;
    }
}

void prob_reset(struct store *s)
{
    s->probq_head = s->probq_n = 0;
}

/* Drop queue entries whose segment left probation (an entry is valid while
 * the segment it names is the same opening: same serial, still sealed,
 * still in probation). */
static bool probq_valid(const struct store *s, const struct probq_ent *q)
{
    const struct seg *g = &s->segs[q->id];
    return g->prob && g->state == SEG_SEALED && g->serial == q->serial;
}

static void probq_compact(struct store *s)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->probq_n; i++) {
        struct probq_ent q = s->probq[(s->probq_head + i) % s->probq_cap];
        if (probq_valid(s, &q))
            s->probq[k++] = q;
    }
    s->probq_head = 0;
    s->probq_n = k;
}

void prob_sealed(struct store *s, uint32_t id)
{
    if (!s->segs[id].prob)
        return;
    if (s->probq_n == s->probq_cap)
        probq_compact(s);   /* at most nsegs are valid: room for as many again */
    if (s->probq_n == s->probq_cap)
        return;
    s->probq[(s->probq_head + s->probq_n) % s->probq_cap] =
        (struct probq_ent){ .id = id, .serial = s->segs[id].serial };
    s->probq_n++;
}

/* The share is of all the memory in use, large items included: when they
 * take most of it, probation must not shrink to a sliver of the segments
 * (every small item would then be evicted within moments of its write). */
bool prob_over_share(const struct store *s)
{
    uint64_t share = store_mem_used(s) / s->seg_size * PROB_PCT / 100;
    return s->nprob > (share ? share : 1) && s->probq_n > 0;
}

/* The promotion target of bucket b with room for size bytes: its current
 * one, or the spare made into a new one (linked before the open segment). */
static uint32_t promo_target(struct store *s, unsigned b, size_t size)
{
    struct ttl_bucket *tb = &s->ttl[b];
    uint32_t t = tb->popen;
    if (t != NONE32 && s->segs[t].wpos + size <= s->seg_size)
        return t;
    if (t != NONE32) {
        s->segs[t].state = SEG_SEALED;
        tb->popen = NONE32;
    }
    t = s->spare;
    if (t == NONE32)
        return NONE32;
    s->spare = NONE32;
    seg_init_open(s, t);
    s->segs[t].atime = s->now;
    ttl_link_before(s, b, t, tb->open);
    tb->popen = t;
    return t;
}

/* Survivors that need more room than the promotion segment and the spare
 * have (a probation segment whose items were nearly all read: copies grow
 * by their CAS field): the segment itself joins the main log where it is,
 * its unread items dropped in place, nothing copied. */
static bool promote_in_place(struct store *s, uint32_t id, bool keep_unread)
{
    uint64_t kept = 0;
    struct seg_walk w;
    prob_released(s, id);
    for (seg_walk_start(&w, s, id, true); seg_walk_next(&w);) {
        if (!w.slot)
            continue;
        bool expired = item_expired(s, w.it.exptime);
        if (!expired && (slot_freq(w.slot) > 0 || keep_unread)) {
            slot_set_freq(w.slot, slot_freq(w.slot) >> 1);
            kept++;
            continue;
        }
        if (!expired)
            ghost_add(s, w.h);
        evict_drop_stats(s, &w.it, expired, id);
        index_delete(s, w.h, w.slot);
        w.it.p[1] |= IB_DEAD;
        seg_item_died(s, id, w.it.size);
    }
    s->c.merged_items += kept;
    return true;
}

bool prob_evict_one(struct store *s)
{
    uint32_t id = NONE32;
    while (s->probq_n) {
        struct probq_ent q = s->probq[s->probq_head];
        s->probq_head = (s->probq_head + 1) % s->probq_cap;
        s->probq_n--;
        if (probq_valid(s, &q)) {
            id = q.id;
            break;
        }
    }
    if (id == NONE32)
        return false;
    if (s->spare == NONE32) {
        s->spare = seg_take_free(s);
        if (s->spare != NONE32)
            s->segs[s->spare].state = SEG_SPARE;
    }
    struct seg *g = &s->segs[id];
    unsigned b = g->bucket;
    struct seg_walk w;
    /* Memory full of dead bytes (overwrite churn on a working set smaller
     * than -m): unread items are not the cache's excess, keep them too;
     * the main log's merges then compact the dead bytes away. */
    bool keep_unread = store_mostly_dead(s);

    /* pass 1: how many bytes the survivors need where they go */
    size_t need = 0;
    for (seg_walk_start(&w, s, id, true); seg_walk_next(&w);)
        if (w.slot && (slot_freq(w.slot) > 0 || keep_unread) && !item_expired(s, w.it.exptime))
            need += w.it.size + (item_move_needs_cas(s, w.it.bits) ? 8 : 0);
    uint32_t po = s->ttl[b].popen;
    size_t room = (po != NONE32 ? s->seg_size - s->segs[po].wpos : 0)
                  + (s->spare != NONE32 ? s->seg_size : 0);
    if (need > room)
        return promote_in_place(s, id, keep_unread);

    uint64_t kept = 0;
    for (seg_walk_start(&w, s, id, true); seg_walk_next(&w);) {
        struct item it = w.it;
        uint64_t h = w.h;
        uint16_t *slot = w.slot;
        uint32_t off = w.off;
        if (!slot)
            continue;
        uint64_t e = slot_get(slot);
        bool expired = item_expired(s, it.exptime);
        uint32_t t = NONE32;
        bool add_cas = item_move_needs_cas(s, it.bits);
        size_t nsize = it.size + (add_cas ? 8 : 0);
        if (!expired && (e_freq(e) > 0 || keep_unread))
            t = promo_target(s, b, nsize);
        if (t == NONE32) {
            if (!expired && e_freq(e) == 0)
                ghost_add(s, h);
            evict_drop_stats(s, &it, expired, id);
            index_delete(s, h, slot);
            continue;
        }
        struct seg *dg = &s->segs[t];
        uint8_t *dst = s->arena + (size_t)t * s->seg_size + dg->wpos;
        if (add_cas) {
            size_t hl = seg_item_encode(dst, it.klen, it.vlen, it.bits, it.flags, it.exptime,
                                        it.bits & IB_EXP, evict_cas_of_loc(s, id, off));
            memcpy(dst + hl, it.key, (size_t)it.klen + it.vlen);
            s->c.bytes += 8;
        } else {
            memcpy(dst, it.p, it.size);
        }
        slot_set(slot, e_moved(s, e, e_freq(e) >> 1, t, dg->wpos));
        dg->wpos += (uint32_t)nsize;
        dg->live_bytes += (uint32_t)nsize;
        dg->live_items++;
        uint32_t ex = it.exptime ? it.exptime : EXP_NEVER;
        if (ex > dg->exp_max)
            dg->exp_max = ex;
        if (g->atime > dg->atime)
            dg->atime = g->atime;
        kept++;
    }
    ttl_unlink(s, id);
    g->dirty_queued = 0;
    seg_release(s, id);
    s->c.evicted_segments++;
    s->c.merged_items += kept;
    if (s->spare == NONE32) {
        s->spare = seg_take_free(s);
        if (s->spare != NONE32)
            s->segs[s->spare].state = SEG_SPARE;
    }
    return true;
}
