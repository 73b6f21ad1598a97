/*
 * lat_hist.h — per-worker request latency histograms (issue 17): one
 * log-linear histogram per command class and path (executed where it
 * arrived, or forwarded to the key's owner and back). Each worker owns its
 * `struct lat_table` and is its only writer (relaxed load + store, as
 * util/stats.h); `stats latency` and the /metrics thread read every
 * worker's table with relaxed loads and merge on read.
 *
 * Values are ticks of lat_ticks(): the TSC where it is invariant (one
 * instruction, no system call), CLOCK_MONOTONIC nanoseconds elsewhere.
 * lat_tick_ns() converts at read time, so the hot path never divides.
 * Buckets: values below 128 exactly, then 128 buckets per power of two, so
 * a bucket is at most 1/128 (0.8%) of its lower bound wide. Fixed memory,
 * nothing allocated while recording.
 */
#ifndef PERCORE_LAT_HIST_H
#define PERCORE_LAT_HIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "util/stats.h"
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define LAT_SUB_BITS 7
#define LAT_SUB      (1u << LAT_SUB_BITS)
#define LAT_EXP_MAX  37                      /* 2^38 ticks: about 90 s at 3 GHz */
#define LAT_NBUCKETS ((LAT_EXP_MAX - LAT_SUB_BITS + 2) * LAT_SUB)

/* Command classes, in the order `stats latency` prints them. */
#define LAT_CLASSES(X) \
    X(get) X(set) X(delete) X(incr_decr) X(touch) X(meta_get) X(meta_set) \
    X(binary) X(other)

enum lat_class {
#define LAT_ENUM(n) LAT_##n,
    LAT_CLASSES(LAT_ENUM)
#undef LAT_ENUM
    LAT_NCLASSES
};

enum lat_path { LAT_LOCAL, LAT_FORWARDED, LAT_NPATHS };

extern const char *const lat_class_names[LAT_NCLASSES];
extern const char *const lat_path_names[LAT_NPATHS];

struct lat_hist {
    _Atomic uint64_t sum;                  /* ticks */
    _Atomic uint64_t b[LAT_NBUCKETS];
};

struct lat_table {
    struct lat_hist h[LAT_NCLASSES][LAT_NPATHS];
};

/* Measured once at start-up (main thread, before workers): whether the TSC
 * is usable and its rate against CLOCK_MONOTONIC. */
void lat_clock_setup(void);
extern bool lat_use_tsc;

static inline uint64_t lat_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_expect(lat_use_tsc, 1))
        return __rdtsc();
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds per tick (1.0 without the TSC); any thread. */
double lat_tick_ns(void);

static inline unsigned lat_index(uint64_t v)
{
    if (v < LAT_SUB)
        return (unsigned)v;
    if (v >= (2ull << LAT_EXP_MAX))
        v = (2ull << LAT_EXP_MAX) - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    return ((e - LAT_SUB_BITS + 1) << LAT_SUB_BITS) +
           (unsigned)((v >> (e - LAT_SUB_BITS)) & (LAT_SUB - 1));
}

/* Lowest and highest tick value that falls in bucket i. */
uint64_t lat_bucket_low(unsigned i);
uint64_t lat_bucket_high(unsigned i);

/* The owner's hot path: one bucket and the sum. */
static inline void lat_record(struct lat_table *t, unsigned cls, unsigned path, uint64_t ticks)
{
    struct lat_hist *h = &t->h[cls][path];
    stat_add(&h->b[lat_index(ticks)], 1);
    stat_add(&h->sum, ticks);
}

/* A histogram merged on read (plain memory, the reader's own). */
struct lat_snap {
    uint64_t count;
    uint64_t sum;                          /* ticks */
    uint64_t b[LAT_NBUCKETS];
};

/* Add one worker's histogram to s (relaxed loads). */
void lat_snap_add(struct lat_snap *s, const struct lat_hist *h);
/* dst += src, bucket by bucket. */
void lat_snap_merge(struct lat_snap *dst, const struct lat_snap *src);
/* s -= base, bucket by bucket (a reset's baseline; never below zero). */
void lat_snap_sub(struct lat_snap *s, const struct lat_snap *base);
/* Value in ticks at quantile q (0..1]: the upper bound of the bucket
 * holding the ceil(q * count)-th sample; 0 when empty. q = 1: the max. */
uint64_t lat_snap_quantile(const struct lat_snap *s, double q);
/* For each of n ascending bounds le[k] (ticks), the samples in buckets whose
 * upper bound is at most le[k] (a Prometheus bucket, within a bucket's 0.8%). */
void lat_snap_cumulative(const struct lat_snap *s, const uint64_t *le, unsigned n, uint64_t *out);

#endif
