/*
 * ring.c — allocation of the SPSC rings (see ring.h). Called by the main
 * thread before workers start.
 */
#include <stdlib.h>
#include "util/ring.h"

int ring_init(struct ring *r, uint32_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)))
        return -1;
    r->slots = calloc(capacity, sizeof(void *));
    if (!r->slots)
        return -1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->head_cache = r->tail_cache = 0;
    r->mask = capacity - 1;
    return 0;
}

void ring_free(struct ring *r)
{
    free(r->slots);
    r->slots = NULL;
}
