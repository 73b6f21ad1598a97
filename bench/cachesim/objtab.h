/*
 * objtab.h — what every simulated policy keeps per object (indexed by the
 * trace's dense ids: charged bytes, expiry, a list position) and the
 * doubly linked list the list-based policies share. Owned by the policy
 * instance, on the simulator's single thread.
 */
#ifndef CACHESIM_OBJTAB_H
#define CACHESIM_OBJTAB_H

#include "cachesim.h"

#define CS_ITEM_MAX (1u << 20)   /* larger objects are never cached (memcached's -I) */

/* Doubly linked list of ids; head = newest. */
struct dlist {
    uint32_t *prev, *next;
    uint32_t  head, tail;
    uint64_t  bytes;
    uint32_t  n;
};

struct objtab {
    uint64_t cap, used;
    uint32_t *charge;     /* bytes charged while cached, 0 = not cached */
    uint32_t *size;       /* size it was cached with */
    uint32_t *exp;        /* expiry (seconds), 0 = never */
    uint8_t  *flag;       /* policy-specific bits / counters */
    uint8_t  *where;      /* policy-specific list membership */
    uint32_t *prev, *next;   /* storage for up to one dlist per object */
};

bool objtab_init(struct objtab *o, uint64_t cap, uint32_t nobj);
void objtab_free(struct objtab *o);
void dl_init(struct dlist *l, struct objtab *o);
void dl_push_head(struct dlist *l, uint32_t id, uint32_t bytes);
void dl_remove(struct dlist *l, uint32_t id, uint32_t bytes);

/* Whether request i finds its object cached and fresh; a stale or resized
 * copy must be dropped first (the caller does it, as only it knows its lists). */
static inline bool objtab_fresh(const struct objtab *o, const struct cs_req *q)
{
    uint32_t id = q->id;
    return o->charge[id] && o->size[id] == q->size && (!o->exp[id] || q->t < o->exp[id]);
}

static inline void objtab_admit(struct objtab *o, const struct cs_req *q, uint32_t charge)
{
    o->charge[q->id] = charge;
    o->size[q->id] = q->size;
    o->exp[q->id] = q->ttl ? q->t + q->ttl : 0;
    o->used += charge;
}

static inline void objtab_evict(struct objtab *o, uint32_t id)
{
    o->used -= o->charge[id];
    o->charge[id] = 0;
}

#endif
