/*
 * test_lat_hist.c — the latency histogram's buckets (every value lands in
 * the bucket whose bounds hold it, buckets are contiguous and at most 1/128
 * of their lower bound wide), quantiles against a sorted reference, the
 * cumulative counts /metrics prints, and a reset's baseline subtraction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "util/lat_hist.h"

static void test_buckets(void **state)
{
    (void)state;
    for (unsigned i = 0; i + 1 < LAT_NBUCKETS; i++) {
        assert_true(lat_bucket_high(i) + 1 == lat_bucket_low(i + 1));
        uint64_t lo = lat_bucket_low(i), hi = lat_bucket_high(i);
        assert_int_equal(lat_index(lo), i);
        assert_int_equal(lat_index(hi), i);
        if (lo >= LAT_SUB)
            assert_true((hi - lo + 1) * LAT_SUB <= lo);
    }
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 100000; k++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint64_t v = x >> (x & 63);
        unsigned i = lat_index(v);
        assert_true(i < LAT_NBUCKETS);
        if (i + 1 < LAT_NBUCKETS)
            assert_true(v >= lat_bucket_low(i) && v <= lat_bucket_high(i));
        else
            assert_true(v >= lat_bucket_low(i));   /* the last bucket takes the rest */
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_quantiles(void **state)
{
    (void)state;
    struct lat_table *t = calloc(1, sizeof *t);
    struct lat_snap *s = calloc(1, sizeof *s), *base = calloc(1, sizeof *base);
    enum { N = 20000 };
    uint64_t *ref = malloc(N * sizeof *ref);
    uint64_t x = 12345;
    for (int k = 0; k < N; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ref[k] = 100 + (x >> 40) % 5000000;   /* 100 ticks .. 5M ticks */
        lat_record(t, LAT_get, LAT_FORWARDED, ref[k]);
    }
    qsort(ref, N, sizeof *ref, cmp_u64);
    lat_snap_add(s, &t->h[LAT_get][LAT_FORWARDED]);
    assert_int_equal(s->count, N);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t want = ref[(size_t)(qs[k] * N + 0.999999) - 1];
        uint64_t got = lat_snap_quantile(s, qs[k]);
        assert_true(got >= want);
        assert_true(got - want <= want / LAT_SUB + 1);
    }
    uint64_t le[] = { 1000, 100000, 1000000, UINT64_MAX - 1 }, out[4];
    lat_snap_cumulative(s, le, 4, out);
    for (int k = 0; k < 4; k++) {
        uint64_t exact = 0;
        for (int j = 0; j < N; j++)
            exact += ref[j] <= le[k];
        assert_true(out[k] <= exact);                       /* whole buckets only */
        uint64_t near = 0;
        for (int j = 0; j < N; j++)
            near += ref[j] <= le[k] - le[k] / LAT_SUB;
        assert_true(out[k] >= near);
    }
    assert_int_equal(out[3], N);
    /* A reset's baseline: only what came after it. */
    *base = *s;
    lat_record(t, LAT_get, LAT_FORWARDED, 7);
    memset(s, 0, sizeof *s);
    lat_snap_add(s, &t->h[LAT_get][LAT_FORWARDED]);
    lat_snap_sub(s, base);
    assert_int_equal(s->count, 1);
    assert_int_equal(s->sum, 7);
    assert_int_equal(lat_snap_quantile(s, 1.0), 7);
    free(ref); free(t); free(s); free(base);
}

static void test_clock(void **state)
{
    (void)state;
    lat_clock_setup();
    double r = lat_tick_ns();
    assert_true(r > 0.01 && r < 100.0);
    uint64_t a = lat_ticks(), b = lat_ticks();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
