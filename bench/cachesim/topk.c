/*
 * topk.c — the best a cache can do without knowing the order of requests:
 * it knows how often each object is requested over the whole trace and
 * keeps the most requested ones that fit (Aho, Denning and Ullman's A0).
 * When requests are independent draws from fixed popularities (every
 * generated Zipf trace), no policy that does not see the future misses
 * less in expectation, so its distance from OPT bounds what any online
 * policy, percore's included, can reach on such a trace. An object not
 * kept is never admitted; one kept misses on its first request and after
 * it expires. Charges key + value bytes. Single-threaded.
 */
#include <stdlib.h>

#include "objtab.h"

struct topk {
    uint8_t  *keep;    /* per object: among the most requested */
    uint8_t  *in;      /* admitted */
    uint32_t *exp;     /* expiry second of the admitted copy, 0 = never */
};

static const uint32_t *sort_count;

static int by_count_desc(const void *a, const void *b)
{
    uint32_t x = sort_count[*(const uint32_t *)a], y = sort_count[*(const uint32_t *)b];
    if (x != y)
        return x < y ? 1 : -1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static void topk_destroy(void *pp);

static void *topk_create(uint64_t cap, const struct cs_trace *tr)
{
    size_t n = tr->nobj ? tr->nobj : 1;
    struct topk *p = calloc(1, sizeof(*p));
    uint32_t *count = calloc(n, sizeof(*count));
    uint32_t *size = calloc(n, sizeof(*size));
    uint32_t *ids = malloc(n * sizeof(*ids));
    if (p) {
        p->keep = calloc(n, 1);
        p->in = calloc(n, 1);
        p->exp = calloc(n, sizeof(*p->exp));
    }
    if (!p || !count || !size || !ids || !p->keep || !p->in || !p->exp) {
        if (p)
            topk_destroy(p);
        free(count);
        free(size);
        free(ids);
        return NULL;
    }
    for (uint32_t i = 0; i < tr->n; i++) {
        count[tr->r[i].id]++;
        size[tr->r[i].id] = tr->r[i].size;
    }
    for (uint32_t i = 0; i < tr->nobj; i++)
        ids[i] = i;
    sort_count = count;
    qsort(ids, tr->nobj, sizeof(*ids), by_count_desc);
    /* Most requested first, each one that still fits (with equal sizes,
     * exactly the top cap/size). */
    uint64_t used = 0;
    for (uint32_t k = 0; k < tr->nobj && count[ids[k]] > 1; k++) {
        uint32_t id = ids[k];
        if (size[id] <= CS_ITEM_MAX && used + size[id] <= cap) {
            p->keep[id] = 1;
            used += size[id];
        }
    }
    free(count);
    free(size);
    free(ids);
    return p;
}

static bool topk_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct topk *p = pp;
    const struct cs_req *q = &tr->r[i];
    if (!p->keep[q->id])
        return false;
    if (p->in[q->id] && (p->exp[q->id] == 0 || q->t < p->exp[q->id]))
        return true;
    p->in[q->id] = 1;
    p->exp[q->id] = q->ttl ? q->t + q->ttl : 0;
    return false;
}

static void topk_destroy(void *pp)
{
    struct topk *p = pp;
    free(p->keep);
    free(p->in);
    free(p->exp);
    free(p);
}

const struct cs_policy cs_topk = { "topk", topk_create, topk_access, topk_destroy };
