/*
 * ring.h — a bounded single-producer single-consumer ring of pointers, one
 * per ordered pair of workers. The producer thread owns `tail` and its cached
 * view of `head`; the consumer thread owns `head` and its cached `tail`.
 * Indices are published with release stores and read with acquire loads, so
 * the pointed-to message is fully written before the consumer sees it.
 */
#ifndef PERCORE_RING_H
#define PERCORE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_CACHELINE 64

struct ring {
    _Alignas(RING_CACHELINE) _Atomic uint32_t head;  /* consumer writes */
    uint32_t tail_cache;                             /* consumer's view */
    _Alignas(RING_CACHELINE) _Atomic uint32_t tail;  /* producer writes */
    uint32_t head_cache;                             /* producer's view */
    _Alignas(RING_CACHELINE) uint32_t mask;
    void **slots;
};

int  ring_init(struct ring *r, uint32_t capacity /* power of two */);
void ring_free(struct ring *r);

static inline bool ring_push(struct ring *r, void *p)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache > r->mask) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache > r->mask)
            return false;
    }
    r->slots[t & r->mask] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

static inline void *ring_pop(struct ring *r)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return NULL;
    }
    void *p = r->slots[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

/* Consumer-side check used before sleeping (after a seq_cst fence). */
static inline bool ring_empty(struct ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) ==
           atomic_load_explicit(&r->tail, memory_order_acquire);
}

#endif
