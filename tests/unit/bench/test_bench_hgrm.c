/* test_bench_hgrm.c - percore-bench's .hgrm output: HdrHistogram's header, one
 * row per reporting level (percentiles and counts ascending, values
 * non-decreasing and within a bucket of the true percentile, the levels
 * HdrHistogram's iteration visits), a last 100% row and the footer.
 * Single-threaded; writes to a temporary file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../../../bench/percore-bench/hist.h"
#include "../../../bench/percore-bench/hgrm.h"

static void test_distribution(void **st)
{
    (void)st;
    struct hist *h = malloc(sizeof *h);
    hist_init(h);
    for (uint64_t us = 1; us <= 10000; us++)   /* 1 us .. 10 ms, uniform */
        hist_record(h, us * 1000);
    FILE *f = tmpfile();
    hgrm_write(f, h);
    rewind(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "Value"));
    assert_non_null(strstr(line, "1/(1-Percentile)"));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "\n");
    double prev_v = -1, prev_p = -1;
    unsigned long long prev_c = 0;
    int rows = 0, last = 0, footer = 0;
    double p50 = -1, p99 = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            footer++;
            continue;
        }
        assert_false(last);   /* nothing after the 100% row but the footer */
        double v, p, inv;
        unsigned long long c;
        int n = sscanf(line, "%lf %lf %llu %lf", &v, &p, &c, &inv);
        assert_true(n == 4 || n == 3);
        assert_true(v >= prev_v && p > prev_p && c >= prev_c);
        if (n == 3) {
            assert_true(p == 1.0 && c == 10000);
            assert_true(fabs(v - 10.0) < 1e-9);
            last = 1;
        } else {
            assert_true(fabs(inv - 1.0 / (1.0 - p)) < 0.01 * inv + 0.01);
            if (p50 < 0 && p >= 0.5)
                p50 = v;
            if (p99 < 0 && p >= 0.99)
                p99 = v;
        }
        prev_v = v, prev_p = p, prev_c = c;
        rows++;
    }
    assert_true(last);
    assert_int_equal(footer, 3);
    /* HdrHistogram's levels: 0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5 ... */
    assert_true(rows > 30 && rows < 200);
    assert_true(fabs(p50 - 5.0) <= 5.0 / 64);
    assert_true(fabs(p99 - 9.9) <= 9.9 / 64);
    fclose(f);
    free(h);
}

static void test_levels(void **st)
{
    (void)st;
    struct hist *h = malloc(sizeof *h);
    hist_init(h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(h, v);
    FILE *f = tmpfile();
    hgrm_write(f, h);
    rewind(f);
    char line[256];
    const double want[] = { 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.775, 0.8 };
    size_t k = 0;
    fgets(line, sizeof line, f);
    fgets(line, sizeof line, f);
    while (k < sizeof want / sizeof want[0] && fgets(line, sizeof line, f)) {
        double v, p;
        assert_int_equal(sscanf(line, "%lf %lf", &v, &p), 2);
        assert_true(fabs(p - want[k]) < 1e-9);
        k++;
    }
    assert_int_equal(k, sizeof want / sizeof want[0]);
    fclose(f);
    free(h);
}

static void test_empty(void **st)
{
    (void)st;
    struct hist *h = malloc(sizeof *h);
    hist_init(h);
    FILE *f = tmpfile();
    hgrm_write(f, h);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char line[256];
    int footer = 0;
    while (fgets(line, sizeof line, f))
        footer += line[0] == '#';
    assert_int_equal(footer, 3);
    fclose(f);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
