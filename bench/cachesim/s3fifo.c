/*
 * s3fifo.c — S3-FIFO (Yang et al., SOSP '23): a small FIFO S (10% of the
 * bytes) where new objects start, a main FIFO M, and a ghost FIFO G of ids
 * recently dropped from S. An object leaving S moves to M if it was read
 * while in S (here: at least once), else its id goes to G; a miss whose id
 * is still in G goes straight to M. M is a FIFO with reinsertion: a 2-bit
 * counter per object, bumped on a hit, decremented instead of evicting.
 * G holds as many ids as M could hold objects of the cached objects' mean
 * size (a sequence number per id says whether it is still inside that
 * window). Charges key + value bytes.
 * Single-threaded.
 */
#include <stdlib.h>

#include "objtab.h"

enum { IN_NONE, IN_S, IN_M };

struct s3 {
    struct objtab o;
    struct dlist  s, m;
    uint64_t small_cap;
    uint64_t gseq;
    uint64_t *ghost;      /* G insertion number per id, 0 = never */
};

static void *s3_create(uint64_t cap, const struct cs_trace *tr)
{
    struct s3 *p = calloc(1, sizeof(*p));
    if (!p || !objtab_init(&p->o, cap, tr->nobj) ||
        !(p->ghost = calloc(tr->nobj ? tr->nobj : 1, sizeof(*p->ghost)))) {
        if (p)
            objtab_free(&p->o);
        free(p);
        return NULL;
    }
    dl_init(&p->s, &p->o);
    dl_init(&p->m, &p->o);
    p->small_cap = cap / 10;
    return p;
}

static void s3_drop(struct s3 *p, uint32_t id)
{
    dl_remove(p->o.where[id] == IN_S ? &p->s : &p->m, id, p->o.charge[id]);
    p->o.where[id] = IN_NONE;
    objtab_evict(&p->o, id);
}

/* One step of eviction: frees an object or moves one (S -> M, M tail ->
 * M head); the counters only go down, so repeated steps terminate. */
static void s3_step(struct s3 *p)
{
    if (p->s.n && (p->s.bytes > p->small_cap || !p->m.n)) {
        uint32_t v = p->s.tail;
        uint32_t c = p->o.charge[v];
        dl_remove(&p->s, v, c);
        if (p->o.flag[v] >= 1) {
            p->o.flag[v] = 0;
            p->o.where[v] = IN_M;
            dl_push_head(&p->m, v, c);
        } else {
            p->ghost[v] = ++p->gseq;
            p->o.where[v] = IN_NONE;
            objtab_evict(&p->o, v);
        }
        return;
    }
    uint32_t v = p->m.tail;
    uint32_t c = p->o.charge[v];
    dl_remove(&p->m, v, c);
    if (p->o.flag[v]) {
        p->o.flag[v]--;
        dl_push_head(&p->m, v, c);
    } else {
        p->o.where[v] = IN_NONE;
        objtab_evict(&p->o, v);
    }
}

static bool s3_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct s3 *p = pp;
    const struct cs_req *q = &tr->r[i];
    uint32_t id = q->id;
    if (objtab_fresh(&p->o, q)) {
        if (p->o.flag[id] < 3)
            p->o.flag[id]++;
        return true;
    }
    if (p->o.charge[id])
        s3_drop(p, id);
    if (q->size > CS_ITEM_MAX || q->size > p->o.cap)
        return false;
    uint64_t n = p->s.n + p->m.n;
    uint64_t window = p->o.used ? (p->o.cap - p->small_cap) * n / p->o.used : 0;
    bool ghost = p->ghost[id] && p->gseq - p->ghost[id] < window;
    objtab_admit(&p->o, q, q->size);
    p->o.flag[id] = 0;
    p->o.where[id] = ghost ? IN_M : IN_S;
    dl_push_head(ghost ? &p->m : &p->s, id, q->size);
    while (p->o.used > p->o.cap)
        s3_step(p);
    return false;
}

static void s3_destroy(void *pp)
{
    struct s3 *p = pp;
    objtab_free(&p->o);
    free(p->ghost);
    free(p);
}

const struct cs_policy cs_s3fifo = { "s3fifo", s3_create, s3_access, s3_destroy };
