/*
 * tunables.c — the storage of memcached's nominal run-time tunables
 * (proto/tunables.h): set by text commands on any worker, read by
 * `stats settings`.
 */
#include "proto/tunables.h"

struct mc_tunables mc_tunables = {
    .slab_automove = 1,
    .slab_automove_ratio = 0.8,
    .lru_crawler = true,
    .lru_crawler_sleep = 100,
    .lru_crawler_tocrawl = 0,
    .lru_segmented = true,
    .temp_lru = false,
    .temporary_ttl = 61,
};
