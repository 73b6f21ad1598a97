/* hgrm.c - .hgrm percentile distribution (see hgrm.h). The walk follows
 * HdrHistogram's percentile iteration: reporting levels get denser as they
 * approach 100% (5 ticks per halving of the distance), each level reported at
 * the first bucket whose cumulative count reaches it, then one last line at
 * 100%. A bucket's value is its highest equivalent value, clamped to the
 * recorded max. No state. */
#include <math.h>
#include "hgrm.h"

#define HGRM_TICKS_PER_HALF 5
#define HGRM_UNIT_NS 1e6   /* milliseconds */

static double value_ms(const struct hist *h, unsigned i)
{
    uint64_t v = hist_bucket_high(i);
    if (v > h->max)
        v = h->max;
    return (double)v / HGRM_UNIT_NS;
}

void hgrm_write(FILE *f, const struct hist *h)
{
    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if (h->count) {
        double level = 0;
        uint64_t cum = 0;
        unsigned last = 0;
        int done = 0;
        for (unsigned i = 0; i < HIST_NBUCKETS && !done; i++) {
            if (!h->b[i])
                continue;
            cum += h->b[i];
            last = i;
            while (100.0 * (double)cum / (double)h->count >= level) {
                fprintf(f, "%12.3f %2.12f %10llu %14.2f\n", value_ms(h, i), level / 100.0,
                        (unsigned long long)cum, 1.0 / (1.0 - level / 100.0));
                if (cum == h->count) {
                    done = 1;
                    break;
                }
                long halvings = (long)(log(100.0 / (100.0 - level)) / log(2.0));
                level += 100.0 / (HGRM_TICKS_PER_HALF * pow(2.0, (double)(halvings + 1)));
            }
        }
        fprintf(f, "%12.3f %2.12f %10llu\n", value_ms(h, last), 1.0, (unsigned long long)h->count);
    }
    /* Standard deviation from bucket midpoints, as HdrHistogram computes it. */
    double mean = h->count ? h->sum / (double)h->count : 0, var = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS && h->count; i++)
        if (h->b[i]) {
            double mid = ((double)hist_bucket_low(i) + (double)hist_bucket_high(i)) / 2.0 - mean;
            var += mid * mid * (double)h->b[i];
        }
    double sd = h->count ? sqrt(var / (double)h->count) : 0;
    unsigned buckets = 1;
    for (uint64_t top = HIST_SUB * 2; top <= h->max && buckets < 64; top <<= 1)
        buckets++;
    fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean / HGRM_UNIT_NS, sd / HGRM_UNIT_NS);
    fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n",
            (double)(h->count ? h->max : 0) / HGRM_UNIT_NS, (unsigned long long)h->count);
    fprintf(f, "#[Buckets = %12u, SubBuckets     = %12u]\n", buckets, 2 * HIST_SUB);
}
