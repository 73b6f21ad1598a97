/*
 * clock.h — "relative seconds", the time unit of the store, and memcached's
 * exptime rules. The process start instant is written once by main() before
 * workers start; every worker keeps its own cached `now` (worker.h).
 */
#ifndef PERCORE_CLOCK_H
#define PERCORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Relative time starts here so that "now - 1" is always a valid, past,
 * non-zero expiry (0 means "never"). */
#define CLOCK_REL_BASE 1000u
/* memcached: exptimes above 30 days are absolute unix times. */
#define EXPTIME_REL_MAX (60 * 60 * 24 * 30)

void clock_setup(void);
/* Warm restart: continue the relative seconds of a process that started
 * at unix time `started` (as clock_started() returned there), so that the
 * exptimes it stored keep their meaning and the time spent down counts
 * against them. Main thread, before workers start. */
void clock_rebase(time_t started);
/* Current relative second (monotonic). */
uint32_t clock_rel_now(void);
/* The same, of a CLOCK_MONOTONIC reading the caller already has. */
uint32_t clock_rel_at(const struct timespec *mono);
/* Nanoseconds from that reading until the relative second next changes. */
uint64_t clock_ns_to_next(const struct timespec *mono);
/* Unix time of process start (for converting absolute exptimes). */
time_t clock_started(void);
/* Convert a client exptime into a store exptime (0 = never). */
uint32_t clock_exptime(int64_t exptime, uint32_t now);

/* Monotonic microseconds, for measuring (vDSO: no system call). */
static inline uint64_t clock_ts_us(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000u + (uint64_t)ts->tv_nsec / 1000u;
}

static inline uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return clock_ts_us(&ts);
}

#endif
