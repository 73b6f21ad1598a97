/*
 * opt.c — Belady's MIN with bypass: knowing the whole trace, evict the
 * cached object whose next request lies furthest in the future, and never
 * admit an object that will not be requested again (or whose next request
 * comes after it expires, or with another size). With equal object sizes,
 * as in the generated traces, this is the optimum miss ratio. With
 * variable sizes the exact optimum is NP-hard; this size-oblivious MIN is
 * then only a reference point, not a bound (see bench/cachesim/README.md).
 * Charges key + value bytes. A max-heap of (next request, id) with lazy
 * deletion: an entry is stale once its object moved on or left.
 * Single-threaded.
 */
#include <stdlib.h>

#include "objtab.h"

struct opt {
    struct objtab o;
    uint64_t *heap;       /* next << 32 | id */
    size_t    hn, hcap;
    uint32_t *nextof;     /* the next request of each cached object */
    uint32_t  ncached, nobj;
};

static void *opt_create(uint64_t cap, const struct cs_trace *tr)
{
    struct opt *p = calloc(1, sizeof(*p));
    if (!p || !objtab_init(&p->o, cap, tr->nobj) ||
        !(p->nextof = calloc(tr->nobj ? tr->nobj : 1, 4))) {
        if (p)
            objtab_free(&p->o);
        free(p);
        return NULL;
    }
    p->nobj = tr->nobj;
    return p;
}

static void up(uint64_t *h, size_t i)
{
    while (i && h[(i - 1) / 2] < h[i]) {
        uint64_t t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void down(uint64_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, b = i;
        if (l < n && h[l] > h[b])
            b = l;
        if (l + 1 < n && h[l + 1] > h[b])
            b = l + 1;
        if (b == i)
            return;
        uint64_t t = h[i];
        h[i] = h[b];
        h[b] = t;
        i = b;
    }
}

static bool valid(const struct opt *p, uint64_t e)
{
    uint32_t id = (uint32_t)e;
    return p->o.charge[id] && p->nextof[id] == (uint32_t)(e >> 32);
}

/* Drop stale entries by rebuilding, once they outnumber the live ones. */
static void compact(struct opt *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->hn; i++)
        if (valid(p, p->heap[i]))
            p->heap[k++] = p->heap[i];
    p->hn = k;
    for (size_t i = k / 2 + 1; i-- > 0;)
        down(p->heap, p->hn, i);
}

static bool push(struct opt *p, uint32_t id, uint32_t next)
{
    if (p->hn == p->hcap) {
        if (p->hn > 2 * (size_t)p->ncached + 1024) {
            compact(p);
        }
        if (p->hn == p->hcap) {
            size_t cap = p->hcap ? p->hcap * 2 : 1024;
            uint64_t *h = realloc(p->heap, cap * sizeof(*h));
            if (!h)
                return false;
            p->heap = h;
            p->hcap = cap;
        }
    }
    p->nextof[id] = next;
    p->heap[p->hn] = (uint64_t)next << 32 | id;
    up(p->heap, p->hn++);
    return true;
}

static void opt_drop(struct opt *p, uint32_t id)
{
    objtab_evict(&p->o, id);
    p->ncached--;
}

/* The request after i for the same object, if it could hit a copy that
 * expires at exp (0 = never) and has i's size. */
static uint32_t useful_next(const struct cs_trace *tr, uint32_t i, uint32_t exp)
{
    uint32_t j = tr->r[i].next;
    if (j == CS_NONE || tr->r[j].size != tr->r[i].size || (exp && tr->r[j].t >= exp))
        return CS_NONE;
    return j;
}

static bool opt_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct opt *p = pp;
    const struct cs_req *q = &tr->r[i];
    uint32_t id = q->id;
    if (objtab_fresh(&p->o, q)) {
        uint32_t nx = useful_next(tr, i, p->o.exp[id]);
        if (nx == CS_NONE)
            opt_drop(p, id);          /* never useful again: free it now */
        else if (!push(p, id, nx))
            abort();
        return true;
    }
    if (p->o.charge[id])
        opt_drop(p, id);
    uint32_t exp = q->ttl ? q->t + q->ttl : 0;
    uint32_t nx = useful_next(tr, i, exp);
    if (nx == CS_NONE || q->size > CS_ITEM_MAX || q->size > p->o.cap)
        return false;
    objtab_admit(&p->o, q, q->size);
    p->ncached++;
    if (!push(p, id, nx))
        abort();
    while (p->o.used > p->o.cap) {
        uint64_t e = p->heap[0];
        p->heap[0] = p->heap[--p->hn];
        down(p->heap, p->hn, 0);
        if (valid(p, e))
            opt_drop(p, (uint32_t)e);
    }
    return false;
}

static void opt_destroy(void *pp)
{
    struct opt *p = pp;
    objtab_free(&p->o);
    free(p->nextof);
    free(p->heap);
    free(p);
}

const struct cs_policy cs_opt = { "opt", opt_create, opt_access, opt_destroy };
