/*
 * test_ring.c — the SPSC ring: order, capacity, wrap-around, and a
 * two-thread stress run (run it under TSan to check the memory ordering).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "util/ring.h"

static void test_order_and_capacity(void **state)
{
    struct ring r;
    assert_int_equal(ring_init(&r, 8), 0);
    assert_null(ring_pop(&r));
    for (uintptr_t i = 1; i <= 8; i++)
        assert_true(ring_push(&r, (void *)i));
    assert_false(ring_push(&r, (void *)9));
    for (uintptr_t i = 1; i <= 8; i++)
        assert_ptr_equal(ring_pop(&r), (void *)i);
    assert_null(ring_pop(&r));
    assert_true(ring_empty(&r));
    ring_free(&r);
}

static void test_wraparound(void **state)
{
    struct ring r;
    assert_int_equal(ring_init(&r, 4), 0);
    uintptr_t next_in = 1, next_out = 1;
    for (int round = 0; round < 1000; round++) {
        int n = round % 4 + 1;
        for (int i = 0; i < n; i++)
            assert_true(ring_push(&r, (void *)next_in++));
        for (int i = 0; i < n; i++)
            assert_ptr_equal(ring_pop(&r), (void *)next_out++);
    }
    ring_free(&r);
}

static void test_bad_capacity(void **state)
{
    struct ring r;
    assert_int_equal(ring_init(&r, 6), -1);
    assert_int_equal(ring_init(&r, 1), -1);
}

#define STRESS_N 2000000u

static void *producer(void *arg)
{
    struct ring *r = arg;
    for (uintptr_t i = 1; i <= STRESS_N; i++)
        while (!ring_push(r, (void *)i))
            ;
    return NULL;
}

static void test_two_threads(void **state)
{
    struct ring r;
    assert_int_equal(ring_init(&r, 64), 0);
    pthread_t t;
    pthread_create(&t, NULL, producer, &r);
    uintptr_t expect = 1;
    while (expect <= STRESS_N) {
        void *p = ring_pop(&r);
        if (p) {
            assert_ptr_equal(p, (void *)expect);
            expect++;
        }
    }
    pthread_join(t, NULL);
    assert_null(ring_pop(&r));
    ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_capacity),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_bad_capacity),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
