/* test_bench_dist.c - unit tests of percore-bench's distributions: exponential
 * mean/variance, Zipf rank frequencies against the exact law for several skews,
 * uniform keys, and the size distributions (fixed, range, ETC). Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../../bench/percore-bench/dist.h"

static void test_exponential_moments(void **st)
{
    (void)st;
    struct rng r;
    rng_seed(&r, 1);
    const int n = 1000000;
    const double mean = 250.0;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double x = rng_exp(&r, mean);
        assert_true(x >= 0);
        s += x;
        s2 += x * x;
    }
    double m = s / n, var = s2 / n - m * m;
    /* standard error of the mean is mean/sqrt(n) = 0.25: allow 5 sigma */
    assert_true(fabs(m - mean) < 5 * mean / sqrt(n));
    assert_true(fabs(var / (mean * mean) - 1.0) < 0.02);
}

static void test_uniform_below(void **st)
{
    (void)st;
    struct rng r;
    rng_seed(&r, 3);
    int counts[10] = { 0 };
    for (int i = 0; i < 100000; i++) {
        uint64_t k = rng_below(&r, 10);
        assert_true(k < 10);
        counts[k]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(abs(counts[i] - 10000) < 500); /* 5 sigma = 5*sqrt(9000) */
    double d = rng_double(&r);
    assert_true(d >= 0 && d < 1);
}

static void check_zipf(uint64_t n, double s, int samples)
{
    struct zipf z;
    zipf_init(&z, n, s);
    struct rng r;
    rng_seed(&r, (uint64_t)(s * 1000) + n);
    uint32_t *cnt = calloc(n + 1, sizeof *cnt);
    for (int i = 0; i < samples; i++) {
        uint64_t k = zipf_sample(&z, &r);
        assert_true(k >= 1 && k <= n);
        cnt[k]++;
    }
    /* exact pmf: P(k) = k^-s / H(n,s) */
    double H = 0;
    for (uint64_t k = 1; k <= n; k++)
        H += pow((double)k, -s);
    /* each of the 20 most popular ranks within 5 sigma of its binomial mean */
    for (uint64_t k = 1; k <= 20 && k <= n; k++) {
        double p = pow((double)k, -s) / H;
        double mu = p * samples, sd = sqrt(samples * p * (1 - p));
        assert_true(fabs(cnt[k] - mu) < 5 * sd + 1);
    }
    /* and a chi-square over log-spaced rank groups */
    double chi = 0;
    int groups = 0;
    for (uint64_t lo = 1; lo <= n; lo *= 2) {
        uint64_t hi = lo * 2 - 1 < n ? lo * 2 - 1 : n;
        double p = 0, c = 0;
        for (uint64_t k = lo; k <= hi; k++) {
            p += pow((double)k, -s) / H;
            c += cnt[k];
        }
        double e = p * samples;
        chi += (c - e) * (c - e) / e;
        groups++;
    }
    /* chi-square with groups-1 dof: mean ~groups, far below 3x that unless wrong */
    assert_true(chi < 3.0 * groups + 10);
    assert_true(fabs(zipf_pmf_exact(n, s, 1) - 1.0 / H) < 1e-12);
    free(cnt);
}

static void test_zipf_099(void **st) { (void)st; check_zipf(10000, 0.99, 1000000); }
static void test_zipf_05(void **st) { (void)st; check_zipf(1000, 0.5, 500000); }
static void test_zipf_12(void **st) { (void)st; check_zipf(100000, 1.2, 1000000); }
static void test_zipf_1(void **st) { (void)st; check_zipf(5000, 1.0, 500000); }

static void test_keygen(void **st)
{
    (void)st;
    struct keygen g;
    struct rng r;
    rng_seed(&r, 5);
    keygen_init(&g, KD_ZIPF, 1000, 0.99);
    uint64_t zero = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t k = keygen_next(&g, &r);
        assert_true(k < 1000);
        zero += k == 0;
    }
    assert_true(zero > 10000); /* the hottest key gets ~13% at s=0.99, n=1000 */
    keygen_init(&g, KD_UNIFORM, 1000, 0);
    zero = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t k = keygen_next(&g, &r);
        assert_true(k < 1000);
        zero += k == 0;
    }
    assert_true(zero < 200);
}

static void test_sizes(void **st)
{
    (void)st;
    struct sizespec sp;
    assert_int_equal(sizespec_parse(&sp, "100", 1, 1000), 0);
    assert_int_equal(sp.kind, SZ_FIXED);
    assert_int_equal(sizespec_for(&sp, 12345, 1), 100);
    assert_int_equal(sizespec_parse(&sp, "10-20", 1, 1000), 0);
    assert_int_equal(sp.kind, SZ_UNIFORM);
    double sum = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        uint32_t v = sizespec_for(&sp, i, 7);
        assert_true(v >= 10 && v <= 20);
        assert_int_equal(v, sizespec_for(&sp, i, 7)); /* deterministic per key */
        sum += v;
    }
    assert_true(fabs(sum / 100000 - 15.0) < 0.05);
    assert_int_not_equal(sizespec_parse(&sp, "20-10", 1, 1000), 0);
    assert_int_not_equal(sizespec_parse(&sp, "x", 1, 1000), 0);
    assert_int_not_equal(sizespec_parse(&sp, "5-", 1, 1000), 0);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void test_etc_values(void **st)
{
    (void)st;
    /* generalized Pareto, scale 214.476, shape 0.348238: check quantiles */
    struct sizespec sp;
    assert_int_equal(sizespec_parse(&sp, "etc", 1, 1000000), 0);
    const int n = 200000;
    uint32_t *v = malloc(n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = sizespec_for(&sp, (uint64_t)i, 11);
    qsort(v, n, sizeof *v, cmp_u32);
    const double qs[] = { 0.25, 0.5, 0.9, 0.99 };
    for (int j = 0; j < 4; j++) {
        double want = gpd_quantile(qs[j], 0, ETC_VAL_SCALE, ETC_VAL_SHAPE);
        double got = v[(int)(qs[j] * n)];
        assert_true(fabs(got - want) / want < 0.05);
    }
    /* median has the closed form scale/shape*(2^shape-1) ~ 168 */
    double med = ETC_VAL_SCALE / ETC_VAL_SHAPE * (pow(2, ETC_VAL_SHAPE) - 1);
    assert_true(fabs(med - 168.2) < 1);
    /* mean scale/(1-shape) ~ 329 (clamping at 1 MB changes it little) */
    double m = sizespec_mean(&sp);
    assert_true(m > 329.07 * 0.9 && m < 329.07 * 1.1);
    free(v);
    /* ETC keys: GEV(30.8, 8.2, 0.079), mostly 20-70 bytes */
    assert_int_equal(sizespec_parse(&sp, "etc", 8, 250), 0);
    sp.key = 1;
    double ks = 0;
    for (int i = 0; i < 100000; i++) {
        uint32_t k = sizespec_for(&sp, (uint64_t)i, 3);
        assert_true(k >= 8 && k <= 250);
        ks += k;
    }
    double want_med = gev_quantile(0.5, ETC_KEY_MU, ETC_KEY_SIGMA, ETC_KEY_SHAPE);
    assert_true(want_med > 30 && want_med < 36);
    assert_true(ks / 100000 > 30 && ks / 100000 < 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_moments),
        cmocka_unit_test(test_uniform_below),
        cmocka_unit_test(test_zipf_099),
        cmocka_unit_test(test_zipf_05),
        cmocka_unit_test(test_zipf_12),
        cmocka_unit_test(test_zipf_1),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_etc_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
