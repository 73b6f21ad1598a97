/*
 * large.c — items too big for a segment (more than half of one, up to
 * item_max). Each gets its own private anonymous mapping, page rounded, and
 * the rounded length is counted in mem_used. Large items form one FIFO that
 * eviction treats like a segment of its own: the oldest goes first unless
 * its frequency counter shows it was read since it was last considered
 * (second chance, counter halved). A large item always carries an exptime
 * field so touch updates it in place; it never moves, so its CAS (serial,
 * offset 0) never changes. State belongs to the store's worker thread.
 */
#include <sys/mman.h>

#include "store/store_int.h"

bool seg_large_setup(struct store *s)
{
    s->seg_large_free = NONE32;
    s->large_head = s->large_tail = NONE32;
    for (uint32_t i = s->nlarge_cap; i-- > 0;) {
        s->larges[i].mem = NULL;
        s->larges[i].next = s->seg_large_free;
        s->seg_large_free = i;
    }
    return true;
}

void seg_large_teardown(struct store *s)
{
    for (uint32_t i = 0; i < s->nlarge_cap; i++)
        if (s->larges[i].mem)
            munmap(s->larges[i].mem, s->larges[i].maplen);
}

uint8_t *seg_large_alloc(struct store *s, size_t size, uint32_t *sid)
{
    size_t len = (size + PAGE_SZ - 1) & ~(size_t)(PAGE_SZ - 1);
    if (len > s->cfg.mem_limit)
        return NULL;
    while (s->seg_large_free == NONE32)     /* table full: make a slot */
        if (!seg_large_evict_one(s))
            return NULL;
    if (!store_make_room(s, len))
        return NULL;
    if (s->seg_large_free == NONE32)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint32_t i = s->seg_large_free;
    struct large *l = &s->larges[i];
    s->seg_large_free = l->next;
    l->mem = p;
    l->maplen = len;
    l->serial = seg_next_serial(s);
    l->create_at = l->atime = s->now;
    l->pins = 0;
    l->held = false;
    l->next = NONE32;
    l->prev = s->large_tail;
    if (s->large_tail != NONE32)
        s->larges[s->large_tail].next = i;
    else
        s->large_head = i;
    s->large_tail = i;
    s->nlarge++;
    s->large_bytes += len;
    *sid = s->nsegs + i;
    return p;
}

static void fifo_unlink(struct store *s, uint32_t i)
{
    struct large *l = &s->larges[i];
    if (l->prev != NONE32)
        s->larges[l->prev].next = l->next;
    else
        s->large_head = l->next;
    if (l->next != NONE32)
        s->larges[l->next].prev = l->prev;
    else
        s->large_tail = l->prev;
}

/* Free large item sid (its index entry is already gone). */
void seg_large_free(struct store *s, uint32_t sid)
{
    uint32_t i = sid - s->nsegs;
    struct large *l = &s->larges[i];
    fifo_unlink(s, i);
    l->prev = l->next = NONE32;
    if (l->pins) {
        /* A reply still sends from it: unmapped at the last unpin. */
        l->held = true;
        s->held_bytes += l->maplen;
        s->nlarge--;    /* no longer an item: only its memory waits */
        return;
    }
    munmap(l->mem, l->maplen);
    s->large_bytes -= l->maplen;
    l->mem = NULL;
    l->serial = 0;
    l->next = s->seg_large_free;
    s->seg_large_free = i;
    s->nlarge--;
}

void seg_large_unheld(struct store *s, uint32_t sid)
{
    struct large *l = &s->larges[sid - s->nsegs];
    l->held = false;
    s->held_bytes -= l->maplen;
    munmap(l->mem, l->maplen);
    s->large_bytes -= l->maplen;
    l->mem = NULL;
    l->serial = 0;
    l->next = s->seg_large_free;
    s->seg_large_free = sid - s->nsegs;
}

/* Drop large item i and its index entry; expired says how to count it. */
static void large_drop(struct store *s, uint32_t i, bool expired)
{
    struct item it;
    uint32_t sid = s->nsegs + i;
    seg_item_decode(s->larges[i].mem, &it);
    uint64_t h = store_hash(it.key, it.klen);
    uint16_t *slot = index_find_loc(s, h, sid, 0);
    if (slot) {
        index_delete(s, h, slot);
        struct class_ctr *cc = &s->cls[TTL_NBUCKETS];
        if (expired) {
            s->c.expired_reclaimed++;
            cc->reclaimed++;
            if (!(it.bits & ITEM_FETCHED)) {
                s->c.expired_unfetched++;
                cc->expired_unfetched++;
            }
        } else {
            s->c.evictions++;
            cc->evicted++;
            if (it.exptime)
                cc->evicted_nonzero++;
            cc->evicted_time = s->now - s->larges[i].atime;
            struct store_event ev = {
                .kind = SEV_EVICT, .fetched = it.bits & ITEM_FETCHED, .key = it.key,
                .klen = it.klen, .vlen = it.vlen, .exptime = it.exptime,
                .atime = s->larges[i].atime, .cls = STORE_CLASSES_MAX,
            };
            store_notify(s, &ev);
            if (!(it.bits & ITEM_FETCHED)) {
                s->c.evicted_unfetched++;
                cc->evicted_unfetched++;
            }
        }
        s->c.bytes -= it.size;
        s->c.curr_items--;
    }
    seg_large_free(s, sid);
}

bool seg_large_evict_one(struct store *s)
{
    if (s->cfg.no_evict)
        return false;   /* -M: large items are never evicted either */
    for (uint64_t tries = 0; s->large_head != NONE32 && tries < 16 * (uint64_t)s->nlarge + 16;
         tries++) {
        uint32_t i = s->large_head;
        struct item it;
        seg_item_decode(s->larges[i].mem, &it);
        uint64_t h = store_hash(it.key, it.klen);
        uint16_t *slot = index_find_loc(s, h, s->nsegs + i, 0);
        bool expired = item_expired(s, it.exptime);
        if (slot && !expired && slot_freq(slot) > 0 && s->nlarge > 1) {
            slot_set_freq(slot, slot_freq(slot) >> 1);
            fifo_unlink(s, i);      /* second chance: to the tail */
            struct large *l = &s->larges[i];
            l->next = NONE32;
            l->prev = s->large_tail;
            if (s->large_tail != NONE32)
                s->larges[s->large_tail].next = i;
            else
                s->large_head = i;
            s->large_tail = i;
            l->create_at = s->now;
            continue;
        }
        large_drop(s, i, expired);
        return true;
    }
    return false;
}

/* Proactive expiry of large items: checks up to budget of them. */
unsigned seg_large_reclaim_expired(struct store *s, unsigned budget)
{
    unsigned n = 0;
    uint32_t i = s->large_head;
    while (i != NONE32 && n < budget) {
        uint32_t nx = s->larges[i].next;
        struct item it;
        seg_item_decode(s->larges[i].mem, &it);
        if (item_expired(s, it.exptime))
            large_drop(s, i, true);
        n++;
        i = nx;
    }
    return n;
}
