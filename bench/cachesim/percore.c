/*
 * percore.c — the real thing: each request goes to an instance of
 * percore's own store (src/store, linked in), given the cache size as its
 * memory limit, which covers the index and item headers too. A get, and on
 * a miss a set with the request's TTL (fill on miss), as bench/hit_ratio.sh
 * drives the server. The store's clock follows the trace's seconds, and
 * store_maintain() runs once per simulated second as the worker runs it at
 * least once a second (its idle-time calls are not modelled: a saturated
 * worker has none). Keys are 20 bytes (8 when an object is smaller than
 * 21 bytes), the value the rest of the object's size. Single-threaded: the
 * store belongs to this thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "objtab.h"

struct pc {
    struct store *s;
    uint32_t now;
};

static char zeros[CS_ITEM_MAX];

static void *pc_create(uint64_t cap, const struct cs_trace *tr)
{
    struct pc *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    struct store_config cfg = { .mem_limit = cap, .item_max = CS_ITEM_MAX, .use_cas = true };
    p->s = store_create(&cfg);
    if (!p->s) {
        free(p);
        return NULL;
    }
    p->now = 1;
    store_clock(p->s, 1);
    return p;
}

static bool pc_access(void *pp, const struct cs_trace *tr, uint32_t i)
{
    struct pc *p = pp;
    const struct cs_req *q = &tr->r[i];
    uint32_t now = q->t + 1;
    if (now != p->now) {
        p->now = now;
        store_clock(p->s, now);
        store_maintain(p->s, 64);
    }
    char key[24];
    uint32_t klen = q->size > 20 ? 20 : 8;
    snprintf(key, sizeof(key), klen == 20 ? "k%019u" : "k%07x", q->id);
    uint32_t vlen = q->size > klen ? q->size - klen : 0;
    struct item_view iv;
    if (store_get(p->s, key, klen, &iv) == ST_OK && iv.vlen == vlen)
        return true;
    if (q->size > CS_ITEM_MAX)
        return false;
    store_put(p->s, SM_SET, key, klen, zeros, vlen, 0, q->ttl ? now + q->ttl : 0, 0, NULL);
    return false;
}

static void pc_destroy(void *pp)
{
    struct pc *p = pp;
    store_destroy(p->s);
    free(p);
}

const struct cs_policy cs_percore = { "percore", pc_create, pc_access, pc_destroy };
