/* test_bench_schedule.c - unit tests of percore-bench's open-loop schedule:
 * Poisson arrivals (exponential gaps with the right mean and variance, counts per
 * window with variance ~ mean), independence from when requests are actually
 * taken (no coordinated omission), limits and the count of never-sent arrivals.
 * Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include "../../../bench/percore-bench/schedule.h"

static void test_gaps_exponential(void **st)
{
    (void)st;
    struct sched s;
    const double rate = 50000; /* mean gap 20 us */
    sched_init(&s, rate, 1000000000ull, 1, UINT64_MAX);
    uint64_t prev = 1000000000ull;
    const int n = 500000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t = sched_take(&s);
        assert_true(t >= prev);
        double g = (double)(t - prev);
        sum += g;
        sum2 += g * g;
        prev = t;
    }
    double m = sum / n, var = sum2 / n - m * m;
    assert_true(fabs(m - 20000.0) < 5 * 20000.0 / sqrt(n) + 1);
    assert_true(fabs(sqrt(var) / m - 1.0) < 0.02); /* coefficient of variation 1 */
}

static void test_counts_poisson(void **st)
{
    (void)st;
    struct sched s;
    const double rate = 100000;
    sched_init(&s, rate, 0, 2, UINT64_MAX);
    /* arrivals per 1 ms window: Poisson(100): mean 100, variance 100 */
    const int windows = 20000;
    double sum = 0, sum2 = 0;
    for (int w = 0; w < windows; w++) {
        uint64_t end = (uint64_t)(w + 1) * 1000000ull;
        double c = (double)sched_drain_before(&s, end);
        sum += c;
        sum2 += c * c;
    }
    double m = sum / windows, var = sum2 / windows - m * m;
    assert_true(fabs(m - 100) < 0.5);
    assert_true(fabs(var / m - 1) < 0.1); /* index of dispersion 1 */
}

static void test_schedule_ignores_send_time(void **st)
{
    (void)st;
    /* Two schedules with the same seed give the same times no matter when (or how
     * late) the arrivals are taken: lateness never shifts later arrivals. */
    struct sched a, b;
    sched_init(&a, 1000, 5000, 9, UINT64_MAX);
    sched_init(&b, 1000, 5000, 9, UINT64_MAX);
    uint64_t ta[1000];
    for (int i = 0; i < 1000; i++)
        ta[i] = sched_take(&a);
    for (int i = 0; i < 1000; i++) {
        /* b's caller "falls behind": it only looks after a long pause */
        assert_true(sched_peek(&b) == ta[i]);
        assert_int_equal(sched_take(&b), ta[i]);
    }
    /* about rate * time arrivals */
    assert_true(ta[999] > 5000 + 900000000ull && ta[999] < 5000 + 1100000000ull);
}

static void test_limit_and_drain(void **st)
{
    (void)st;
    struct sched s;
    sched_init(&s, 1e6, 0, 4, 10);
    for (int i = 0; i < 10; i++)
        assert_true(sched_peek(&s) != UINT64_MAX);
    for (int i = 0; i < 10; i++)
        sched_take(&s);
    assert_true(sched_peek(&s) == UINT64_MAX);
    assert_int_equal(sched_drain_before(&s, UINT64_MAX - 1), 0);
    sched_init(&s, 1e6, 0, 4, UINT64_MAX);
    uint64_t n = sched_drain_before(&s, 1000000000ull); /* 1 s at 1e6/s */
    assert_true(n > 1000000 - 5000 && n < 1000000 + 5000);
    assert_true(sched_peek(&s) >= 1000000000ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaps_exponential),
        cmocka_unit_test(test_counts_poisson),
        cmocka_unit_test(test_schedule_ignores_send_time),
        cmocka_unit_test(test_limit_and_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
