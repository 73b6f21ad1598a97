/*
 * topk.h — a worker's hot keys: a space-saving top-K (Metwally et al.) fed
 * by a sample of the requests the worker executes (about one in
 * `interval`, at random intervals so no request pattern aliases with it).
 * The owning worker writes it under `lock`, which it only ever try-locks (a
 * sample that finds a reader copying is dropped); `stats hotkeys` and the
 * /metrics thread copy it under the lock, and a reset clears it under it.
 */
#ifndef PERCORE_TOPK_H
#define PERCORE_TOPK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "util/hash.h"

#define TOPK_SLOTS  64
#define TOPK_SAMPLE_DEFAULT 128   /* mean interval between sampled requests */

struct topk_entry {
    uint64_t count;        /* sampled hits (space-saving estimate, an upper bound) */
    uint64_t err;          /* count's possible over-estimate */
    uint32_t hash;
    uint8_t  klen;
    char     key[KEY_MAX_LENGTH];
};

struct topk {
    uint32_t countdown;    /* owner only: requests until the next sample */
    uint32_t rng;          /* owner only */
    uint32_t interval;     /* mean requests per sample; set before the owner starts */
    pthread_mutex_t lock;
    uint64_t sampled;      /* samples taken (under lock) */
    unsigned n;
    uint32_t hash[TOPK_SLOTS];   /* e[i].hash, packed: a sample scans these, not 64 entries */
    uint64_t min_count;          /* no slot holds less (a lower bound: least() checks) */
    unsigned min_at;             /* where least() looks first */
    struct topk_entry e[TOPK_SLOTS];
};

int  topk_init(struct topk *t, uint32_t seed, uint32_t interval);
void topk_fini(struct topk *t);
/* Owner: count one sampled request for key (dropped when a reader holds the lock). */
void topk_sample(struct topk *t, const char *key, size_t klen);

/* Owner's hot path: a decrement and a branch, except once per sample. */
static inline void topk_note(struct topk *t, const char *key, size_t klen)
{
    if (__builtin_expect(--t->countdown != 0, 1))
        return;
    topk_sample(t, key, klen);
}

/* Any thread: copy the entries (returns how many) and the samples taken.
 * An entry's count times t->interval estimates the key's requests. */
unsigned topk_copy(struct topk *t, struct topk_entry *out, uint64_t *sampled);
/* Any thread: forget everything. */
void topk_clear(struct topk *t);

#endif
