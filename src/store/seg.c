/*
 * seg.c — the segment arena and the item encoding. One arena per store,
 * reserved as PROT_NONE address space at create time; a segment is made
 * readable/writable (committed) the first time it is handed out, so resident
 * memory only grows as segments are used. Freed segments go to a LIFO free
 * list and are reused before fresh ones are committed. The state belongs to
 * the store's worker thread.
 */
#include <sys/mman.h>

#include "store/store_int.h"

bool store_commit(void *p, size_t len)
{
    return mprotect(p, len, PROT_READ | PROT_WRITE) == 0;
}

bool seg_setup(struct store *s)
{
    if (!seg_map_arena(s))
        return false;
    void *a = s->arena;
    /* -L: as memcached's large pages, fewer TLB misses on a large cache.
     * Advice only: the kernel may decline (THP off), which costs nothing. */
    if (s->cfg.huge_pages)
        (void)madvise(a, s->arena_len, MADV_HUGEPAGE);
    s->free_head = NONE32;
    for (uint32_t i = 0; i < s->nsegs; i++) {
        s->segs[i].state = SEG_FREE;
        s->segs[i].prev = s->segs[i].next = NONE32;
    }
    s->spare = seg_take_free(s);
    if (s->spare == NONE32)
        return false;
    s->segs[s->spare].state = SEG_SPARE;
    return true;
}

void seg_teardown(struct store *s)
{
    seg_map_unmap(s);
}

uint64_t seg_next_serial(struct store *s)
{
    uint64_t v = s->next_serial++;
    if ((v & s->serial_mask) == 0)      /* never produce CAS 0 */
        v = s->next_serial++;
    return v;
}

/* A free segment if the memory limit allows one, without evicting. */
uint32_t seg_take_free(struct store *s)
{
    if (!store_room(s, s->seg_size))
        return NONE32;
    uint32_t id;
    if (s->free_head != NONE32) {
        id = s->free_head;
        s->free_head = s->segs[id].next;
        s->nfree--;
        if (!s->segs[id].decommitted)
            s->nfree_resident--;
    } else if (s->seg_fresh < s->nsegs) {
        id = s->seg_fresh;
        if (!store_commit(s->arena + (size_t)id * s->seg_size, s->seg_size))
            return NONE32;
        s->seg_fresh++;
    } else {
        return NONE32;
    }
    struct seg *g = &s->segs[id];
    memset(g, 0, sizeof(*g));
    g->prev = g->next = NONE32;
    g->state = SEG_SPARE;       /* caller decides */
    s->segs_used++;
    return id;
}

uint32_t seg_get(struct store *s)
{
    for (;;) {
        uint32_t id = seg_take_free(s);
        if (id != NONE32)
            return id;
        if (!evict_one(s))
            return NONE32;
    }
}

void seg_init_open(struct store *s, uint32_t id)
{
    struct seg *g = &s->segs[id];
    g->serial = seg_next_serial(s);
    g->wpos = g->live_bytes = g->live_items = 0;
    g->create_at = g->atime = s->now;
    g->exp_max = 0;
    g->dirty_queued = 0;
    g->prob = 0;
    g->state = SEG_OPEN;
}

void seg_release(struct store *s, uint32_t id)
{
    struct seg *g = &s->segs[id];
    prob_released(s, id);
    if (g->pins) {
        /* A reply still sends from here: reuse waits for the last unpin. */
        g->state = SEG_HELD;
        g->prev = g->next = NONE32;
        s->held_bytes += s->seg_size;
        return;
    }
    g->state = SEG_FREE;
    g->serial = 0;
    g->prev = NONE32;
    g->next = s->free_head;
    g->decommitted = 0;
    s->free_head = id;
    s->nfree++;
    s->nfree_resident++;
    s->segs_used--;
}

void seg_unheld(struct store *s, uint32_t id)
{
    s->held_bytes -= s->seg_size;
    seg_release(s, id);
}

/* Free segments keep their pages, so reusing one costs no page faults, and
 * resident memory is mem_used + nfree_resident segments. That stays within
 * the limit while only segments use memory (a segment is freed as another is
 * taken), but not when large items or index growth take the budget the free
 * segments' pages stood for: then give pages of free segments back until it
 * fits again. Called after every write's allocation. */
void seg_trim_resident(struct store *s)
{
    uint32_t id = s->free_head;
    while (s->nfree_resident && id != NONE32 &&
           store_mem_used(s) + (size_t)s->nfree_resident * s->seg_size > s->cfg.mem_limit) {
        struct seg *g = &s->segs[id];
        if (!g->decommitted) {
            seg_map_drop(s, id);
            g->decommitted = 1;
            s->nfree_resident--;
        }
        id = g->next;
    }
}

/* An item in segment sid stopped being live (overwritten, deleted, expired
 * lazily): its bytes become dead; a mostly-dead segment is queued so that
 * eviction reclaims it early: 3/4 dead, or half dead while the store as a
 * whole is (store_mostly_dead: two such segments compact into one, so
 * room is made without evicting). */
void seg_item_died(struct store *s, uint32_t sid, uint32_t size)
{
    struct seg *g = &s->segs[sid];
    g->live_bytes -= size;
    g->live_items--;
    if (g->state == SEG_SEALED && !g->dirty_queued &&
        ((size_t)(g->wpos - g->live_bytes) * 4 >= s->seg_size * 3 ||
         ((size_t)(g->wpos - g->live_bytes) * 2 >= s->seg_size && store_mostly_dead(s))))
        evict_note_dirty(s, sid);
}

/* --- item encoding --------------------------------------------------------- */

static unsigned varint_len(uint32_t v)
{
    unsigned n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t seg_item_hdr_size(uint32_t vlen, uint32_t flags, uint32_t exptime, bool exp_field,
                     bool cas_field)
{
    return 2 + varint_len(vlen) + (flags ? 4 : 0) + ((exptime || exp_field) ? 4 : 0)
           + (cas_field ? 8 : 0);
}

size_t seg_item_encode(uint8_t *p, uint32_t klen, uint32_t vlen, uint8_t bits,
                   uint32_t flags, uint32_t exptime, bool exp_field, uint64_t cas)
{
    size_t i = 2;
    bits &= IB_MBITS;
    uint32_t v = vlen;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    if (flags) {
        bits |= IB_FLAGS;
        memcpy(p + i, &flags, 4);
        i += 4;
    }
    if (exptime || exp_field) {
        bits |= IB_EXP;
        memcpy(p + i, &exptime, 4);
        i += 4;
    }
    if (cas) {
        bits |= IB_CAS;
        memcpy(p + i, &cas, 8);
        i += 8;
    }
    p[0] = (uint8_t)klen;
    p[1] = bits;
    return i;
}

void seg_walk_start(struct seg_walk *w, struct store *s, uint32_t id, bool find_slot)
{
    w->s = s;
    w->base = s->arena + (size_t)id * s->seg_size;
    w->id = id;
    w->off = 0;
    w->next = 0;
    w->find_slot = find_slot;
    w->h = 0;
    w->slot = NULL;
}

bool seg_walk_next(struct seg_walk *w)
{
    const struct seg *g = &w->s->segs[w->id];
    while (w->next < g->wpos) {
        w->off = w->next;
        seg_item_decode(w->base + w->off, &w->it);
        w->next = w->off + w->it.size;
        if (w->it.bits & IB_DEAD)
            continue;
        if (w->find_slot) {
            w->h = store_hash(w->it.key, w->it.klen);
            w->slot = index_find_loc(w->s, w->h, w->id, w->off);
        }
        return true;
    }
    return false;
}
