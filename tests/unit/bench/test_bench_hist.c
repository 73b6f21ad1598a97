/* test_bench_hist.c - unit tests of percore-bench's log-linear histogram:
 * bucket layout, bounded relative error of percentiles, merge. Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include "../../../bench/percore-bench/hist.h"
#include "../../../bench/percore-bench/dist.h"

static void test_buckets_contiguous(void **st)
{
    (void)st;
    for (unsigned i = 0; i + 1 < HIST_NBUCKETS; i++) {
        assert_true(hist_bucket_low(i) <= hist_bucket_high(i));
        assert_int_equal(hist_bucket_high(i) + 1, hist_bucket_low(i + 1));
    }
    assert_int_equal(hist_bucket_high(HIST_NBUCKETS - 1), UINT64_MAX);
}

static void test_index_roundtrip_and_error(void **st)
{
    (void)st;
    struct rng r;
    rng_seed(&r, 42);
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng_next(&r) >> (rng_next(&r) % 64);
        unsigned idx = hist_index(v);
        assert_true(idx < HIST_NBUCKETS);
        assert_true(hist_bucket_low(idx) <= v && v <= hist_bucket_high(idx));
        /* bucket width relative to its values is at most 1/128 */
        double width = (double)(hist_bucket_high(idx) - hist_bucket_low(idx));
        if (v >= HIST_SUB)
            assert_true(width / (double)v <= 1.0 / HIST_SUB);
        else
            assert_true(width == 0);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_percentiles(uint64_t *vals, size_t n)
{
    struct hist *h = malloc(sizeof *h);
    hist_init(h);
    for (size_t i = 0; i < n; i++)
        hist_record(h, vals[i]);
    qsort(vals, n, sizeof *vals, cmp_u64);
    const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99 };
    for (size_t j = 0; j < sizeof ps / sizeof *ps; j++) {
        size_t rank = (size_t)ceil(ps[j] / 100.0 * (double)n);
        uint64_t exact = vals[rank - 1];
        uint64_t got = hist_percentile(h, ps[j]);
        double rel = fabs((double)got - (double)exact) / (double)(exact ? exact : 1);
        assert_true(rel <= 0.01);
        assert_true(got >= exact); /* highest equivalent value */
    }
    assert_int_equal(hist_percentile(h, 100), vals[n - 1]);
    assert_int_equal(h->max, vals[n - 1]);
    assert_int_equal(h->min, vals[0]);
    assert_int_equal(h->count, n);
    free(h);
}

static void test_percentiles_exponential(void **st)
{
    (void)st;
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    struct rng r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < n; i++)
        v[i] = 1000 + (uint64_t)rng_exp(&r, 50000); /* ns: 1 us + exp(50 us) */
    check_percentiles(v, n);
    free(v);
}

static void test_percentiles_heavy_tail(void **st)
{
    (void)st;
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof *v);
    struct rng r;
    rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) /* log-uniform over 1 ns .. 1e12 ns */
        v[i] = (uint64_t)exp(rng_double(&r) * log(1e12));
    check_percentiles(v, n);
    free(v);
}

static void test_merge_and_empty(void **st)
{
    (void)st;
    struct hist *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    hist_init(a);
    hist_init(b);
    assert_int_equal(hist_percentile(a, 99), 0);
    for (uint64_t i = 1; i <= 1000; i++)
        hist_record(a, i * 1000);
    for (uint64_t i = 1001; i <= 2000; i++)
        hist_record(b, i * 1000);
    hist_merge(a, b);
    assert_int_equal(a->count, 2000);
    assert_int_equal(a->min, 1000);
    assert_int_equal(a->max, 2000000);
    uint64_t p50 = hist_percentile(a, 50);
    assert_true(p50 >= 1000000 && p50 <= 1000000 * 1.01);
    assert_true(fabs(hist_mean(a) - 1000500.0) < 1);
    hist_record_n(a, 5, 3);
    assert_int_equal(a->count, 2003);
    assert_int_equal(a->min, 5);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_contiguous),
        cmocka_unit_test(test_index_roundtrip_and_error),
        cmocka_unit_test(test_percentiles_exponential),
        cmocka_unit_test(test_percentiles_heavy_tail),
        cmocka_unit_test(test_merge_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
