/*
 * trace.c — the in-memory request trace: appending requests, then one
 * backward pass that links each request to the next one for the same
 * object (what Belady's OPT needs) and sums the footprint. Owned by the
 * simulator's single thread.
 */
#include <stdlib.h>
#include <string.h>

#include "cachesim.h"

bool cs_trace_push(struct cs_trace *tr, uint32_t t, uint32_t id, uint32_t size, uint32_t ttl)
{
    if (tr->n == tr->cap) {
        uint32_t cap = tr->cap ? tr->cap * 2 : 1u << 16;
        if (cap < tr->cap)
            return false;
        struct cs_req *r = realloc(tr->r, (size_t)cap * sizeof(*r));
        if (!r)
            return false;
        tr->r = r;
        tr->cap = cap;
    }
    tr->r[tr->n++] = (struct cs_req){ .t = t, .id = id, .size = size ? size : 1, .ttl = ttl,
                                      .next = CS_NONE };
    if (id >= tr->nobj)
        tr->nobj = id + 1;
    return true;
}

void cs_trace_finish(struct cs_trace *tr)
{
    uint32_t *last = malloc((size_t)(tr->nobj ? tr->nobj : 1) * sizeof(*last));
    if (!last)
        abort();
    memset(last, 0xff, (size_t)tr->nobj * sizeof(*last));
    tr->footprint = 0;
    for (uint32_t i = tr->n; i-- > 0;) {
        struct cs_req *q = &tr->r[i];
        if (last[q->id] == CS_NONE)
            tr->footprint += q->size;
        q->next = last[q->id];
        last[q->id] = i;
    }
    free(last);
}

void cs_trace_free(struct cs_trace *tr)
{
    free(tr->r);
    memset(tr, 0, sizeof(*tr));
}
