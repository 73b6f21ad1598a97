/*
 * lat_hist.c — the latency histograms' clock and their read side (see
 * lat_hist.h). lat_use_tsc and the calibration are written once by the main
 * thread before workers start; the read functions work on the reader's own
 * copies.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "util/lat_hist.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

const char *const lat_class_names[LAT_NCLASSES] = {
#define LAT_NAME(n) #n,
    LAT_CLASSES(LAT_NAME)
#undef LAT_NAME
};
const char *const lat_path_names[LAT_NPATHS] = { "local", "forwarded" };

bool lat_use_tsc;
static uint64_t cal_tsc0, cal_ns0;      /* start of the long calibration interval */
static double   cal_ns_per_tick = 1.0;  /* from the short one at start-up */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The kernel's verdict: an invariant TSC shows as constant_tsc and
 * nonstop_tsc in /proc/cpuinfo (it also covers hypervisors that hide the
 * CPUID bit, and valgrind, whose synthetic CPUID does). */
static bool cpuinfo_says_invariant(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0)
            found = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
    fclose(f);
    return found;
}

/* An invariant TSC ticks at one rate in every power state and on every
 * core: CPUID 0x80000007, EDX bit 8. Without it, clock_gettime. */
static bool tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000007u) {
        __cpuid(0x80000007u, a, b, c, d);
        if ((d >> 8) & 1)
            return true;
    }
    return cpuinfo_says_invariant();
#else
    return false;
#endif
}

void lat_clock_setup(void)
{
    lat_use_tsc = tsc_invariant();
    if (!lat_use_tsc)
        return;
    /* A 5 ms calibration now; readers later refine it over the whole uptime. */
    uint64_t n0 = mono_ns(), t0 = lat_ticks(), n1, t1;
    do {
        n1 = mono_ns();
        t1 = lat_ticks();
    } while (n1 - n0 < 5000000u);
    cal_ns_per_tick = t1 > t0 ? (double)(n1 - n0) / (double)(t1 - t0) : 1.0;
    cal_tsc0 = t0;
    cal_ns0 = n0;
}

double lat_tick_ns(void)
{
    if (!lat_use_tsc)
        return 1.0;
    uint64_t n = mono_ns(), t = lat_ticks();
    if (n - cal_ns0 < 1000000000u || t <= cal_tsc0)
        return cal_ns_per_tick;
    return (double)(n - cal_ns0) / (double)(t - cal_tsc0);
}

uint64_t lat_bucket_low(unsigned i)
{
    if (i < LAT_SUB)
        return i;
    unsigned e = (i >> LAT_SUB_BITS) + LAT_SUB_BITS - 1;
    uint64_t m = (i & (LAT_SUB - 1)) + LAT_SUB;
    return m << (e - LAT_SUB_BITS);
}

uint64_t lat_bucket_high(unsigned i)
{
    if (i + 1 >= LAT_NBUCKETS)
        return UINT64_MAX;
    return lat_bucket_low(i + 1) - 1;
}

void lat_snap_add(struct lat_snap *s, const struct lat_hist *h)
{
    for (unsigned i = 0; i < LAT_NBUCKETS; i++) {
        uint64_t v = stat_get(&h->b[i]);
        s->b[i] += v;
        s->count += v;
    }
    s->sum += stat_get(&h->sum);
}

void lat_snap_merge(struct lat_snap *dst, const struct lat_snap *src)
{
    for (unsigned i = 0; i < LAT_NBUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
}

void lat_snap_sub(struct lat_snap *s, const struct lat_snap *base)
{
    s->count = 0;
    for (unsigned i = 0; i < LAT_NBUCKETS; i++) {
        s->b[i] = s->b[i] > base->b[i] ? s->b[i] - base->b[i] : 0;
        s->count += s->b[i];
    }
    s->sum = s->sum > base->sum ? s->sum - base->sum : 0;
}

uint64_t lat_snap_quantile(const struct lat_snap *s, double q)
{
    if (s->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)s->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    unsigned last = 0;
    for (unsigned i = 0; i < LAT_NBUCKETS; i++) {
        if (!s->b[i])
            continue;
        last = i;
        seen += s->b[i];
        if (seen >= rank)
            return lat_bucket_high(i);
    }
    return lat_bucket_high(last);
}

void lat_snap_cumulative(const struct lat_snap *s, const uint64_t *le, unsigned n, uint64_t *out)
{
    uint64_t seen = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < LAT_NBUCKETS && k < n; i++) {
        while (k < n && lat_bucket_high(i) > le[k])
            out[k++] = seen;
        seen += s->b[i];
    }
    while (k < n)
        out[k++] = seen;
}
