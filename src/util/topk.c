/*
 * topk.c — space-saving hot-key counting (see topk.h). Sampling state is
 * the owner's; entries are written by the owner under a try-locked mutex
 * and read or cleared by others under it.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "util/topk.h"

static uint32_t next_interval(struct topk *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 17;
    t->rng ^= t->rng << 5;
    return 1 + t->rng % (2 * t->interval - 1);   /* 1 .. 2 * interval - 1, mean interval */
}

int topk_init(struct topk *t, uint32_t seed, uint32_t interval)
{
    memset(t, 0, sizeof *t);
    t->rng = seed ? seed : 0x9e3779b9u;
    t->interval = interval ? interval : 1;
    t->countdown = next_interval(t);
    return pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -1;
}

void topk_fini(struct topk *t)
{
    pthread_mutex_destroy(&t->lock);
}

/* The slot whose packed hash is h, from 'from' on (TOPK_SLOTS if none). */
static unsigned hash_find(const struct topk *t, uint32_t h, unsigned from)
{
#if !defined(__SSE2__)
    for (unsigned i = from; i < t->n; i++)
        if (t->hash[i] == h)
            return i;
    return TOPK_SLOTS;
#else
    __m128i want = _mm_set1_epi32((int)h);
    for (unsigned i = from & ~3u; i < t->n; i += 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)&t->hash[i]);
        unsigned m = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, want)));
        m &= ~0u << (from > i ? from - i : 0);
        if (m) {
            unsigned j = i + (unsigned)__builtin_ctz(m);
            return j < t->n ? j : TOPK_SLOTS;
        }
    }
    return TOPK_SLOTS;
#endif
}

/* A slot holding the least count. Counts only grow, so the least count
 * only grows: the cursor walks on from the last answer and a whole walk is
 * needed only when no slot holds the old least count any more (the many
 * ties at the bottom make that rare). */
static unsigned least(struct topk *t)
{
    for (unsigned k = 0; k < t->n; k++) {
        unsigned i = (t->min_at + k) % t->n;
        if (t->e[i].count == t->min_count)
            return t->min_at = i;
    }
    unsigned min = 0;
    for (unsigned i = 1; i < t->n; i++)
        if (t->e[i].count < t->e[min].count)
            min = i;
    t->min_count = t->e[min].count;
    return t->min_at = min;
}

void topk_sample(struct topk *t, const char *key, size_t klen)
{
    t->countdown = next_interval(t);
    if (klen == 0 || klen > KEY_MAX_LENGTH || pthread_mutex_trylock(&t->lock) != 0)
        return;
    t->sampled++;
    uint32_t h = key_hash(key, klen);
    /* The hashes are packed, so a sample compares four at a time instead of
     * visiting 64 entries of 290 bytes (it was a hundredth of a get). */
    for (unsigned i = hash_find(t, h, 0); i < TOPK_SLOTS; i = hash_find(t, h, i + 1)) {
        struct topk_entry *e = &t->e[i];
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
            e->count++;
            pthread_mutex_unlock(&t->lock);
            return;
        }
    }
    struct topk_entry *e;
    uint64_t floor = 0;
    if (t->n < TOPK_SLOTS) {
        e = &t->e[t->n++];
        t->min_count = 0;   /* the newcomer's 1 may be the least: look again */
    } else {
        /* Space-saving: the least counted key gives way, and its count
         * becomes the newcomer's possible over-estimate. */
        e = &t->e[least(t)];
        floor = e->count;
    }
    e->count = floor + 1;
    e->err = floor;
    e->hash = h;
    t->hash[e - t->e] = h;
    e->klen = (uint8_t)klen;
    memcpy(e->key, key, klen);
    pthread_mutex_unlock(&t->lock);
}

unsigned topk_copy(struct topk *t, struct topk_entry *out, uint64_t *sampled)
{
    pthread_mutex_lock(&t->lock);
    unsigned n = t->n;
    memcpy(out, t->e, n * sizeof *out);
    if (sampled)
        *sampled = t->sampled;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void topk_clear(struct topk *t)
{
    pthread_mutex_lock(&t->lock);
    t->n = 0;
    t->sampled = 0;
    t->min_count = 0;
    t->min_at = 0;
    pthread_mutex_unlock(&t->lock);
}
