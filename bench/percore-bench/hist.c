/* hist.c - log-linear histogram, see hist.h. No shared state: each struct hist is
 * owned by the thread that records into it. */
#include "hist.h"
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    unsigned m = (unsigned)(v >> shift); /* in [SUB, 2*SUB) */
    return HIST_SUB + shift * HIST_SUB + (m - HIST_SUB);
}

uint64_t hist_bucket_low(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned shift = (idx - HIST_SUB) / HIST_SUB;
    uint64_t m = HIST_SUB + (idx - HIST_SUB) % HIST_SUB;
    return m << shift;
}

uint64_t hist_bucket_high(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned shift = (idx - HIST_SUB) / HIST_SUB;
    return hist_bucket_low(idx) + ((1ull << shift) - 1);
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
    if (!n)
        return;
    h->b[hist_index(v)] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_record(struct hist *h, uint64_t v)
{
    hist_record_n(h, v, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (!h->count)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p < 0)
        p = 0;
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
