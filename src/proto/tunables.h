/*
 * tunables.h — memcached's run-time tunables for machinery percore does not
 * have (slab mover, LRU maintainer, LRU crawler). The text commands that set
 * them (`slabs automove`, `lru mode|temp_ttl`, `lru_crawler ...`) store the
 * value so that `stats settings` shows what memcached would; nothing else
 * reads them. Process-wide: any worker writes, the stats reader reads,
 * relaxed atomics (each value stands alone).
 */
#ifndef PERCORE_TUNABLES_H
#define PERCORE_TUNABLES_H

#include <stdatomic.h>
#include <stdbool.h>

struct mc_tunables {
    atomic_int    slab_automove;        /* slabs automove <0|1|2> */
    _Atomic double slab_automove_ratio; /* slabs automove ratio <f> */
    atomic_bool   lru_crawler;          /* lru_crawler enable|disable */
    atomic_uint   lru_crawler_sleep;    /* lru_crawler sleep <us> */
    atomic_uint   lru_crawler_tocrawl;  /* lru_crawler tocrawl <n> */
    atomic_bool   lru_segmented;        /* lru mode segmented|flat */
    atomic_bool   temp_lru;             /* lru temp_ttl <n>: n >= 0 */
    atomic_int    temporary_ttl;
};

/* memcached 1.6.18's defaults until a command changes them. */
extern struct mc_tunables mc_tunables;

#define TUNE_GET(f) atomic_load_explicit(&mc_tunables.f, memory_order_relaxed)
#define TUNE_SET(f, v) atomic_store_explicit(&mc_tunables.f, (v), memory_order_relaxed)

#endif
