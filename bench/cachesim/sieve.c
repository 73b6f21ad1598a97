/*
 * sieve.c — SIEVE (Zhang et al., NSDI '24): one FIFO queue, a visited bit
 * per object set on a hit, and a hand that moves from the oldest object
 * towards the newest, clearing visited bits and evicting the first object
 * it finds unvisited. New objects enter at the head; survivors never move.
 * Charges key + value bytes. Single-threaded.
 */
#include <stdlib.h>

#include "objtab.h"

struct sieve {
    struct objtab o;
    struct dlist  l;
    uint32_t hand;
};

static void *sieve_create(uint64_t cap, const struct cs_trace *tr)
{
    struct sieve *p = calloc(1, sizeof(*p));
    if (!p || !objtab_init(&p->o, cap, tr->nobj)) {
        free(p);
        return NULL;
    }
    dl_init(&p->l, &p->o);
    p->hand = CS_NONE;
    return p;
}

static void sieve_drop(struct sieve *p, uint32_t id)
{
    if (p->hand == id)
        p->hand = p->l.prev[id];
    dl_remove(&p->l, id, p->o.charge[id]);
    objtab_evict(&p->o, id);
}

static void sieve_evict(struct sieve *p)
{
    uint32_t v = p->hand != CS_NONE ? p->hand : p->l.tail;
    while (p->o.flag[v]) {
        p->o.flag[v] = 0;
        v = p->l.prev[v];
        if (v == CS_NONE)
            v = p->l.tail;
    }
    p->hand = p->l.prev[v];
    dl_remove(&p->l, v, p->o.charge[v]);
    objtab_evict(&p->o, v);
}

static bool sieve_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct sieve *p = pp;
    const struct cs_req *q = &tr->r[i];
    if (objtab_fresh(&p->o, q)) {
        p->o.flag[q->id] = 1;
        return true;
    }
    if (p->o.charge[q->id])
        sieve_drop(p, q->id);
    if (q->size > CS_ITEM_MAX || q->size > p->o.cap)
        return false;
    objtab_admit(&p->o, q, q->size);
    p->o.flag[q->id] = 0;
    dl_push_head(&p->l, q->id, q->size);
    while (p->o.used > p->o.cap)
        sieve_evict(p);
    return false;
}

static void sieve_destroy(void *pp)
{
    struct sieve *p = pp;
    objtab_free(&p->o);
    free(p);
}

const struct cs_policy cs_sieve = { "sieve", sieve_create, sieve_access, sieve_destroy };
