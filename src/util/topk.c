/*
 * topk.c — space-saving hot-key counting (see topk.h). Sampling state is
 * the owner's; entries are written by the owner under a try-locked mutex
 * and read or cleared by others under it.
 */
#include <string.h>
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

void topk_sample(struct topk *t, const char *key, size_t klen)
{
    t->countdown = next_interval(t);
    if (klen == 0 || klen > KEY_MAX_LENGTH || pthread_mutex_trylock(&t->lock) != 0)
        return;
    t->sampled++;
    uint32_t h = key_hash(key, klen);
    unsigned min = 0;
    for (unsigned i = 0; i < t->n; i++) {
        struct topk_entry *e = &t->e[i];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            e->count++;
            pthread_mutex_unlock(&t->lock);
            return;
        }
        if (e->count < t->e[min].count)
            min = i;
    }
    struct topk_entry *e;
    uint64_t floor = 0;
    if (t->n < TOPK_SLOTS) {
        e = &t->e[t->n++];
    } else {
        /* Space-saving: the least counted key gives way, and its count
         * becomes the newcomer's possible over-estimate. */
        e = &t->e[min];
        floor = e->count;
    }
    e->count = floor + 1;
    e->err = floor;
    e->hash = h;
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
    pthread_mutex_unlock(&t->lock);
}
