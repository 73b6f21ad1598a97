/*
 * lru.c — LRU and FIFO. "lru" charges an object its key + value bytes
 * only; "lru-mc" charges what memcached 1.6 spends on it (header, CAS,
 * slab-class rounding), so it stands for memcached at the same memory
 * limit. memcached itself runs a segmented LRU (hot/warm/cold) per slab
 * class; with one object size, as in the generated traces, that is one
 * class, and bench/hit_ratio.sh measures the real thing. "fifo" never
 * moves an object on a hit. Single-threaded.
 */
#include <stdlib.h>

#include "objtab.h"

struct lru {
    struct objtab o;
    struct dlist  l;
    bool mc, fifo;
};

uint64_t cs_memcached_charge(uint32_t size)
{
    uint64_t need = 56 + (uint64_t)size + 3, c = 96;
    while (c < need && c < CS_ITEM_MAX / 2)
        c = (c * 5 / 4 + 7) & ~UINT64_C(7);
    return need <= c ? c : need;   /* past the largest class: chunked, ~exact */
}

static void *make(uint64_t cap, const struct cs_trace *tr, bool mc, bool fifo)
{
    struct lru *p = calloc(1, sizeof(*p));
    if (!p || !objtab_init(&p->o, cap, tr->nobj)) {
        free(p);
        return NULL;
    }
    dl_init(&p->l, &p->o);
    p->mc = mc;
    p->fifo = fifo;
    return p;
}

static void *lru_create(uint64_t cap, const struct cs_trace *tr) { return make(cap, tr, false, false); }
static void *lru_mc_create(uint64_t cap, const struct cs_trace *tr) { return make(cap, tr, true, false); }
static void *fifo_create(uint64_t cap, const struct cs_trace *tr) { return make(cap, tr, false, true); }

static bool lru_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct lru *p = pp;
    const struct cs_req *q = &tr->r[i];
    uint32_t id = q->id;
    if (objtab_fresh(&p->o, q)) {
        if (!p->fifo) {
            dl_remove(&p->l, id, p->o.charge[id]);
            dl_push_head(&p->l, id, p->o.charge[id]);
        }
        return true;
    }
    if (p->o.charge[id]) {
        dl_remove(&p->l, id, p->o.charge[id]);
        objtab_evict(&p->o, id);
    }
    uint64_t c = p->mc ? cs_memcached_charge(q->size) : q->size;
    if (q->size > CS_ITEM_MAX || c > p->o.cap)
        return false;
    objtab_admit(&p->o, q, (uint32_t)c);
    dl_push_head(&p->l, id, (uint32_t)c);
    while (p->o.used > p->o.cap) {
        uint32_t v = p->l.tail;
        dl_remove(&p->l, v, p->o.charge[v]);
        objtab_evict(&p->o, v);
    }
    return false;
}

static void lru_destroy(void *pp)
{
    struct lru *p = pp;
    objtab_free(&p->o);
    free(p);
}

const struct cs_policy cs_lru = { "lru", lru_create, lru_access, lru_destroy };
const struct cs_policy cs_lru_mc = { "lru-mc", lru_mc_create, lru_access, lru_destroy };
const struct cs_policy cs_fifo = { "fifo", fifo_create, lru_access, lru_destroy };
