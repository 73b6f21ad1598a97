/* hist.h - log-linear latency histogram (HdrHistogram-like) for percore-bench.
 * Values are unsigned 64-bit (nanoseconds in practice). Every bucket is at most
 * 1/128 of its lower bound wide, so any reported percentile is within 0.8% of the
 * true value. Owned by one thread while recording; merged by main() at the end. */
#ifndef PB_HIST_H
#define PB_HIST_H
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_NBUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t b[HIST_NBUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at percentile p (0..100]: the highest value equivalent to the bucket
 * holding the ceil(p/100*count)-th smallest sample, clamped to [min, max].
 * Returns 0 for an empty histogram. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
/* Bucket helpers (exposed for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);
uint64_t hist_bucket_high(unsigned idx);
#endif
