/*
 * ghost.c — S3-FIFO's ghost queue: a fixed table of 8-bit fingerprints of
 * keys that probation dropped unread. A key written again while its ghost
 * is still there was dropped too early (its reuse distance is longer than
 * probation's stay): it starts with a frequency of 1, so the next probation
 * eviction promotes it instead of dropping it again. Without this, a key
 * that is reused every few minutes under a big working set misses on every
 * reuse, as under FIFO.
 *
 * Direct mapped (slot = low hash bits, fingerprint = top 8 bits): adding
 * overwrites whatever was in the slot, so a ghost lives about as long as
 * the table has slots worth of later drops: a recency window without a
 * queue. A false positive (at most 1 in 128 new keys) only promotes one
 * item that did not earn it. The table is sized at create (GHOST_MEM_DIV:
 * one byte per 256 bytes of -m, ~0.4%, about half as many slots as
 * 120-byte items the cache holds) and counted in the store's fixed memory;
 * bench/cachesim found 16-bit fingerprints and 2 or 4 times the slots no
 * better. State belongs to the store's worker thread.
 */
#include <stdlib.h>

#include "store/store_int.h"

#define GHOST_MEM_DIV 256

size_t ghost_slots_for(size_t mem)
{
    size_t n = 64;
    while (n * 2 <= mem / GHOST_MEM_DIV)
        n *= 2;
    return n;
}

bool ghost_setup(struct store *s, size_t slots)
{
    s->ghost = calloc(slots, sizeof(*s->ghost));
    s->ghost_mask = (uint32_t)(slots - 1);
    return s->ghost != NULL;
}

void ghost_teardown(struct store *s)
{
    free(s->ghost);
    s->ghost = NULL;
}

void ghost_reset(struct store *s)
{
    memset(s->ghost, 0, ((size_t)s->ghost_mask + 1) * sizeof(*s->ghost));
}

static inline uint8_t ghost_fp(uint64_t h)
{
    return (uint8_t)((h >> 56) | 1);   /* 0 marks an empty slot */
}

void ghost_add(struct store *s, uint64_t h)
{
    s->ghost[h & s->ghost_mask] = ghost_fp(h);
}

bool ghost_take(struct store *s, uint64_t h)
{
    uint8_t *g = &s->ghost[h & s->ghost_mask];
    if (*g != ghost_fp(h))
        return false;
    *g = 0;
    s->ghost_hits++;
    return true;
}
