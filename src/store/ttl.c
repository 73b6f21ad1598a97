/*
 * ttl.c — TTL buckets. Items whose remaining TTL falls in the same bucket
 * are appended to the same open segment, so a segment holds items that die
 * at about the same time and can be freed whole once its latest exptime
 * (seg->exp_max) has passed, without scanning the index. Bucket width grows
 * with the TTL (as in Segcache):
 *
 *   TTL (s)              width   buckets
 *   [0, 2048)              8 s   0 .. 255
 *   [2048, 32768)        128 s   256 .. 495
 *   [32768, 524288)     2048 s   496 .. 735
 *   [524288, 8388608)  32768 s   736 .. 975
 *   >= 8388608          one      976
 *   never expires       one      977 (TTL_NEVER)
 *
 * Each bucket chains its segments oldest first; the tail is normally the
 * open one. State belongs to the store's worker thread.
 */
#include "store/store_int.h"

/* Expired segments freed per reclaim: up to 8 in idle-time maintenance,
 * 2 (a merge window's worth of walking) inside a write that needs memory. */
#define RECLAIM_IDLE  8
#define RECLAIM_WRITE 2

unsigned ttl_bucket_of(const struct store *s, uint32_t exptime)
{
    if (exptime == 0)
        return TTL_NEVER;
    uint32_t ttl = exptime > s->now ? exptime - s->now : 0;
    if (ttl < 2048)
        return ttl / 8;
    if (ttl < 32768)
        return 256 + (ttl - 2048) / 128;
    if (ttl < 524288)
        return 496 + (ttl - 32768) / 2048;
    if (ttl < 8388608)
        return 736 + (ttl - 524288) / 32768;
    return 976;
}

static bool class_counted(const struct class_ctr *cc)
{
    static const struct class_ctr zero;
    return memcmp(cc, &zero, sizeof zero) != 0;
}

static void mark_busy(struct store *s, uint32_t b)
{
    s->ttl_busy[b / 64] |= UINT64_C(1) << (b % 64);
    cls_mark(s, b);
}

unsigned ttl_next_busy(const struct store *s, unsigned b, unsigned end)
{
    while (b < end) {
        uint64_t w = s->ttl_busy[b / 64] >> (b % 64);
        if (w) {
            b += (unsigned)__builtin_ctzll(w);
            return b < end ? b : end;
        }
        b = (b / 64 + 1) * 64;
    }
    return end;
}

void ttl_marks_rebuild(struct store *s)
{
    memset(s->ttl_busy, 0, sizeof s->ttl_busy);
    for (unsigned b = 0; b < TTL_NBUCKETS; b++)
        if (s->ttl[b].head != NONE32)
            mark_busy(s, b);
    for (unsigned b = 0; b <= TTL_NBUCKETS; b++)
        if (class_counted(&s->cls[b]))
            cls_mark(s, b);
}

void ttl_link_tail(struct store *s, uint32_t b, uint32_t id)
{
    struct ttl_bucket *tb = &s->ttl[b];
    struct seg *g = &s->segs[id];
    g->bucket = (uint16_t)b;
    g->next = NONE32;
    g->prev = tb->tail;
    if (tb->tail != NONE32) {
        s->segs[tb->tail].next = id;
    } else {
        tb->head = id;
        mark_busy(s, b);
    }
    tb->tail = id;
    tb->nseg++;
}

void ttl_link_before(struct store *s, uint32_t b, uint32_t id, uint32_t before)
{
    if (before == NONE32) {
        ttl_link_tail(s, b, id);
        return;
    }
    struct ttl_bucket *tb = &s->ttl[b];
    struct seg *g = &s->segs[id], *n = &s->segs[before];
    g->bucket = (uint16_t)b;
    g->next = before;
    g->prev = n->prev;
    if (n->prev != NONE32)
        s->segs[n->prev].next = id;
    else
        tb->head = id;
    n->prev = id;
    tb->nseg++;
}

void ttl_unlink(struct store *s, uint32_t id)
{
    struct seg *g = &s->segs[id];
    struct ttl_bucket *tb = &s->ttl[g->bucket];
    if (g->prev != NONE32)
        s->segs[g->prev].next = g->next;
    else
        tb->head = g->next;
    if (g->next != NONE32)
        s->segs[g->next].prev = g->prev;
    else
        tb->tail = g->prev;
    if (tb->head == NONE32)
        s->ttl_busy[g->bucket / 64] &= ~(UINT64_C(1) << (g->bucket % 64));
    if (tb->open == id)
        tb->open = NONE32;
    if (tb->popen == id)
        tb->popen = NONE32;
    if (tb->cursor == id)
        tb->cursor = g->next;
    g->prev = g->next = NONE32;
    tb->nseg--;
}

/* Reserve size bytes for an item expiring at exptime: in the open segment of
 * its TTL bucket, or a new one (which may evict). NULL if out of memory. */
uint8_t *ttl_append(struct store *s, size_t size, uint32_t exptime, uint32_t *sid,
                    uint32_t *off)
{
    unsigned b = ttl_bucket_of(s, exptime);
    struct ttl_bucket *tb = &s->ttl[b];
    uint32_t id = tb->open;
    if (id == NONE32 || s->segs[id].wpos + size > s->seg_size) {
        s->moves++;   /* sealing and opening may promote, merge or evict */
        if (id != NONE32) {
            s->segs[id].state = SEG_SEALED;
            tb->open = NONE32;
            prob_sealed(s, id);
            if ((size_t)(s->segs[id].wpos - s->segs[id].live_bytes) * 4 >= s->seg_size * 3)
                evict_note_dirty(s, id);
        }
        id = seg_get(s);
        if (id == NONE32)
            return NULL;
        seg_init_open(s, id);
        prob_opened(s, id);
        ttl_link_tail(s, b, id);
        tb->open = id;
    }
    struct seg *g = &s->segs[id];
    *sid = id;
    *off = g->wpos;
    g->wpos += (uint32_t)size;
    g->live_bytes += (uint32_t)size;
    g->live_items++;
    uint32_t e = exptime ? exptime : EXP_NEVER;
    if (e > g->exp_max)
        g->exp_max = e;
    return s->arena + (size_t)id * s->seg_size + *off;
}

static bool seg_expired(const struct store *s, uint32_t id)
{
    const struct seg *g = &s->segs[id];
    return g->exp_max != EXP_NEVER && g->exp_max <= s->now && g->wpos > 0;
}

/* Reclaim the run of expired segments at the head of bucket b (at most 8).
 * Items touched to live longer than their segment are relocated. */
static bool reclaim_bucket(struct store *s, unsigned b, unsigned max)
{
    struct ttl_bucket *tb = &s->ttl[b];
    uint32_t src[RECLAIM_IDLE];
    unsigned n = 0;
    for (uint32_t id = tb->head; id != NONE32 && n < max && seg_expired(s, id);
         id = s->segs[id].next)
        src[n++] = id;
    if (!n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (tb->open == src[i] || tb->popen == src[i]) {
            if (tb->open == src[i])
                tb->open = NONE32;
            else
                tb->popen = NONE32;
            s->segs[src[i]].state = SEG_SEALED;
        }
    evict_merge(s, src, n, MERGE_EXPIRE);
    return true;
}

/* Free one run of expired segments, if any bucket has one. This runs
 * inside a write that needs memory, so the run is as short as a main-log
 * merge's window (RECLAIM_WRITE segments walked): the write waits for no
 * more than an eviction would make it wait. */
bool ttl_reclaim_one(struct store *s)
{
    for (unsigned b = ttl_next_busy(s, 0, TTL_NEVER); b < TTL_NEVER;
         b = ttl_next_busy(s, b + 1, TTL_NEVER))
        if (seg_expired(s, s->ttl[b].head))
            return reclaim_bucket(s, b, RECLAIM_WRITE);
    return false;
}

/* Proactive expiry for store_maintain: looks at up to 64 buckets per unit of
 * budget, reclaiming expired heads; *more is set when work remains. */
unsigned ttl_reclaim_scan(struct store *s, unsigned budget, bool *more)
{
    unsigned used = 0, looked = 0;
    while (used < budget && looked < TTL_NEVER) {
        unsigned b = s->maint_bucket;
        if (s->ttl[b].head != NONE32 && seg_expired(s, s->ttl[b].head)) {
            reclaim_bucket(s, b, RECLAIM_IDLE);
            used++;
            continue;   /* the next head may be expired too */
        }
        /* On to the next bucket holding segments, round the ring; the
         * empty ones passed count as looked at, as if visited. */
        unsigned next = ttl_next_busy(s, b + 1, TTL_NEVER), step;
        if (next < TTL_NEVER) {
            step = next - b;
        } else {
            next = ttl_next_busy(s, 0, TTL_NEVER);
            step = next < TTL_NEVER ? TTL_NEVER - b + next : TTL_NEVER - looked;
            if (next == TTL_NEVER)
                next = (b + 1) % TTL_NEVER;
        }
        /* A walk that began on an empty bucket comes round past its start:
         * no more than the one circle is charged. */
        if (step > TTL_NEVER - looked)
            step = TTL_NEVER - looked;
        s->maint_bucket = next;
        used += (looked + step) / 64 - looked / 64;
        looked += step;
    }
    if (used >= budget) {
        for (unsigned b = ttl_next_busy(s, 0, TTL_NEVER); b < TTL_NEVER;
             b = ttl_next_busy(s, b + 1, TTL_NEVER))
            if (seg_expired(s, s->ttl[b].head)) {
                *more = true;
                break;
            }
    }
    return used;
}

/* TTL range [min, max) of bucket b, for stats; 0/0 for "never". */
static void bucket_range(unsigned b, uint32_t *lo, uint32_t *hi)
{
    if (b == TTL_NEVER) {
        *lo = *hi = 0;
    } else if (b < 256) {
        *lo = b * 8;
        *hi = *lo + 8;
    } else if (b < 496) {
        *lo = 2048 + (b - 256) * 128;
        *hi = *lo + 128;
    } else if (b < 736) {
        *lo = 32768 + (b - 496) * 2048;
        *hi = *lo + 2048;
    } else if (b < 976) {
        *lo = 524288 + (b - 736) * 32768;
        *hi = *lo + 32768;
    } else {
        *lo = 8388608;
        *hi = UINT32_MAX;
    }
}

/* Reported classes: memcached has at most 63 (ids 1..63), and tools loop
 * over that range (libmemcached's memcdump asks `stats cachedump` for ids
 * below 256), so TTL buckets are grouped 16 to a class. The tier edges of
 * ttl_bucket_of() (256, 496, 736, 976) are multiples of 16, so a class
 * spans one tier: ids 1-16 cover TTLs up to 2048 s in 128 s steps, 17-31 up
 * to 32768 s, 32-46 up to 524288 s, 47-61 the rest; 62 never expires, 63
 * holds large items. Returns the class index (id - 1). */
unsigned store_class_of_bucket(unsigned b)
{
    if (b == TTL_NBUCKETS)
        return STORE_CLASSES_MAX - 1;
    if (b == TTL_NEVER)
        return STORE_CLASSES_MAX - 2;
    return b >= 976 ? 60 : b / 16;
}

static void class_range(unsigned cls, uint32_t *lo, uint32_t *hi)
{
    uint32_t l2, h2;
    if (cls >= STORE_CLASSES_MAX - 2) {
        *lo = *hi = 0;
        return;
    }
    bucket_range(cls * 16, lo, &h2);
    bucket_range(cls == 60 ? 976 : cls * 16 + 15, &l2, hi);
}

static void class_add_counters(const struct class_ctr *cc, struct store_class_stats *c)
{
    if (cc->evicted_time > c->evicted_time)
        c->evicted_time = cc->evicted_time;
#define ADD(f) c->f += cc->f;
    ADD(get_hits) ADD(touch_hits) ADD(cmd_set) ADD(delete_hits) ADD(incr_hits) ADD(decr_hits)
    ADD(cas_hits) ADD(cas_badval) ADD(evicted) ADD(evicted_nonzero) ADD(evicted_unfetched)
    ADD(reclaimed) ADD(expired_unfetched)
#undef ADD
}

unsigned store_get_class_stats(const struct store *s, struct store_class_stats *out,
                               unsigned max)
{
    struct store_class_stats acc[STORE_CLASSES_MAX];
    uint32_t oldest[STORE_CLASSES_MAX];
    bool used[STORE_CLASSES_MAX] = {false};
    memset(acc, 0, sizeof acc);
    for (unsigned k = 0; k < STORE_CLASSES_MAX; k++)
        oldest[k] = s->now;
    for (unsigned w = 0; w < (TTL_NBUCKETS + 63) / 64; w++)
    for (uint64_t bits = s->cls_seen[w]; bits; bits &= bits - 1) {
        unsigned b = w * 64 + (unsigned)__builtin_ctzll(bits);
        if (b >= TTL_NBUCKETS)
            break;
        const struct ttl_bucket *tb = &s->ttl[b];
        if (tb->head == NONE32 && !class_counted(&s->cls[b]))
            continue;
        unsigned k = store_class_of_bucket(b);
        struct store_class_stats *c = &acc[k];
        used[k] = true;
        for (uint32_t id = tb->head; id != NONE32; id = s->segs[id].next) {
            const struct seg *g = &s->segs[id];
            c->segments++;
            c->live_items += g->live_items;
            c->live_bytes += g->live_bytes;
            if (g->create_at < oldest[k])
                oldest[k] = g->create_at;
        }
        c->mem_bytes = c->segments * s->seg_size;
        class_add_counters(&s->cls[b], c);
    }
    if (s->nlarge || class_counted(&s->cls[TTL_NBUCKETS])) {
        unsigned k = STORE_CLASSES_MAX - 1;
        struct store_class_stats *c = &acc[k];
        used[k] = true;
        c->large = true;
        for (uint32_t i = s->large_head; i != NONE32; i = s->larges[i].next) {
            struct item it;
            seg_item_decode(s->larges[i].mem, &it);
            c->segments++;
            c->live_items++;
            c->live_bytes += it.size;
            c->mem_bytes += s->larges[i].maplen;
            if (s->larges[i].create_at < oldest[k])
                oldest[k] = s->larges[i].create_at;
        }
        class_add_counters(&s->cls[TTL_NBUCKETS], c);
    }
    unsigned n = 0;
    for (unsigned k = 0; k < STORE_CLASSES_MAX && n < max; k++) {
        if (!used[k])
            continue;
        struct store_class_stats *c = &acc[k];
        c->id = k + 1;
        class_range(k, &c->ttl_min, &c->ttl_max);
        c->dead_bytes = c->mem_bytes - c->live_bytes;
        c->oldest_age = s->now - oldest[k];
        out[n++] = *c;
    }
    return n;
}
