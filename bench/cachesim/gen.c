/*
 * gen.c — synthetic request traces for the simulator: Zipf key popularity
 * (ranks scattered over the key space by a multiplicative permutation, so
 * popularity is not key order), optionally mixed with a scan, with a
 * popularity shift, or with per-key TTLs. Deterministic for a given seed.
 * Runs on the simulator's single thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachesim.h"

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double unit(uint64_t *s)
{
    return (double)(xs(s) >> 11) / (double)(UINT64_C(1) << 53);
}

static uint32_t draw(const double *cdf, uint32_t n, double u)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* TTL-heavy mix, fixed per key: 30% live 10 s, 30% 60 s, 20% 300 s, 20% never. */
static uint32_t ttl_of(uint32_t id)
{
    uint32_t h = id * 2654435761u;
    h ^= h >> 15;
    unsigned p = h % 10;
    return p < 3 ? 10 : p < 6 ? 60 : p < 8 ? 300 : 0;
}

bool cs_generate(const struct cs_gen *g, struct cs_trace *tr, char *err, size_t errlen)
{
    bool scan = !strcmp(g->kind, "scan"), shift = !strcmp(g->kind, "shift");
    bool ttl = !strcmp(g->kind, "ttl");
    if (!scan && !shift && !ttl && strcmp(g->kind, "zipf")) {
        snprintf(err, errlen, "unknown workload '%s' (zipf, scan, shift, ttl)", g->kind);
        return false;
    }
    if (g->keys < 2 || g->requests == 0 || g->rate == 0 || g->alpha < 0) {
        snprintf(err, errlen, "bad workload parameters");
        return false;
    }
    /* the multiplier must be coprime with the key count to permute it */
    uint64_t mul = 2654435761u;
    if (g->keys % mul == 0) {
        snprintf(err, errlen, "--keys must not be a multiple of %llu", (unsigned long long)mul);
        return false;
    }
    double *cdf = malloc((size_t)g->keys * sizeof(*cdf));
    if (!cdf) {
        snprintf(err, errlen, "out of memory for the Zipf table");
        return false;
    }
    double sum = 0;
    for (uint32_t i = 0; i < g->keys; i++)
        cdf[i] = sum += pow((double)i + 1, -g->alpha);
    for (uint32_t i = 0; i < g->keys; i++)
        cdf[i] /= sum;

    uint64_t s = g->seed ? g->seed : 1;
    uint32_t scan_pos = 0, epoch = 0;
    uint32_t shift_by = g->keys / 10 ? g->keys / 10 : 1;
    bool ok = true;
    /* like percore-bench --warmup: every key set once, in id order */
    for (uint32_t id = 0; g->prefill && id < g->keys && ok; id++)
        ok = cs_trace_push(tr, 0, id, g->size, ttl ? ttl_of(id) : 0);
    for (uint32_t i = 0; i < g->requests && ok; i++) {
        uint32_t t = i / g->rate, id;
        if (scan && unit(&s) < g->scan_frac) {
            /* the scan walks its own key space once around: one-hit wonders */
            id = g->keys + scan_pos;
            scan_pos = scan_pos + 1 < g->scan_keys ? scan_pos + 1 : 0;
        } else {
            uint32_t rank = draw(cdf, g->keys, unit(&s));
            if (shift && g->shift_every)
                epoch = i / g->shift_every;
            /* a shift moves the hot ranks onto other keys */
            uint64_t r = g->hot_first ? rank : (uint64_t)rank * mul;
            id = (uint32_t)((r + (uint64_t)epoch * shift_by) % g->keys);
        }
        ok = cs_trace_push(tr, t, id, g->size, ttl ? ttl_of(id) : 0);
    }
    free(cdf);
    if (!ok) {
        snprintf(err, errlen, "out of memory for the trace");
        return false;
    }
    if (!strcmp(g->kind, "zipf"))
        snprintf(tr->name, sizeof(tr->name), "zipf-%.2f", g->alpha);
    else if (scan)
        snprintf(tr->name, sizeof(tr->name), "scan-%.2f", g->scan_frac);
    else
        snprintf(tr->name, sizeof(tr->name), "%s", g->kind);
    cs_trace_finish(tr);
    return true;
}
