/*
 * hash.h — the key hash and the slot table that map a key to its owning
 * worker. Pure functions plus a table written once at start-up (before any
 * worker runs) and read-only afterwards, so every thread may read it.
 *
 * The hash is FNV-1a (32-bit) over at most 250 bytes: cheap, and simple
 * enough to run unchanged inside the eBPF steering program (src/bpf), which
 * must pick the same owner. tests/unit/net/test_steer_hash.c proves both
 * agree (it runs the loaded program on real sockets); tests/unit/util/
 * test_hash.c checks the hash itself against published FNV-1a vectors.
 */
#ifndef PERCORE_HASH_H
#define PERCORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 1024u
/* memcached's key length limit. The parsers refuse longer keys and the
 * store never holds one, so the hash (here and in src/bpf) covers a whole key. */
#define KEY_MAX_LENGTH 250u

static inline uint32_t key_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = 2166136261u;
    if (len > KEY_MAX_LENGTH)
        len = KEY_MAX_LENGTH;
    size_t i = 0;
#ifndef __bpf__
    /* The same bytes in the same order, four per round: the loop's own
     * counting was half the cost of hashing a 32-byte key. (The eBPF
     * program keeps the plain loop its verifier is happy with.) */
    for (; i + 4 <= len; i += 4) {
        h = (h ^ p[i]) * 16777619u;
        h = (h ^ p[i + 1]) * 16777619u;
        h = (h ^ p[i + 2]) * 16777619u;
        h = (h ^ p[i + 3]) * 16777619u;
    }
#endif
    for (; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t key_slot(uint32_t hash)
{
    /* Fold the high bits in: FNV's low bits alone are weak for short keys. */
    return (hash ^ (hash >> 16)) & (SLOT_COUNT - 1);
}

/* slot -> worker, filled by slots_init() before workers start. */
extern uint8_t slot_owner[SLOT_COUNT];

void slots_init(unsigned nworkers);

static inline unsigned key_owner(const void *key, size_t len)
{
    return slot_owner[key_slot(key_hash(key, len))];
}

#endif
