/*
 * test_ring.c — the SPSC ring: order, capacity, wrap-around, and a
 * two-thread stress run that passes real messages both ways, as workers do
 * (tests/run-all.sh runs it under TSan too, which checks the memory ordering).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* Two-thread stress run, shaped like the workers' use of their rings: the
 * producer fills a message (sequence number, a payload of varying length and
 * a checksum over both) with plain stores, then pushes the pointer; the
 * consumer pops it, checks every field with plain loads, scribbles over it
 * and hands it back over a second ring for reuse. Only the rings' release
 * stores and acquire loads order those plain accesses, so if either side's
 * ordering were missing the consumer could see a half-written message (or
 * the producer overwrite one still being checked): the checksum catches the
 * first on any machine, and TSan reports both as data races. A pool much
 * smaller than the message count makes every message be reused many times. */
#define STRESS_N    1000000u
#define STRESS_POOL 256u
#define PAYLOAD_MAX 48u

struct stress_msg {
    uint64_t seq;
    uint32_t len;
    uint8_t  payload[PAYLOAD_MAX];
    uint64_t sum;
};

struct stress {
    struct ring work;   /* producer -> consumer: filled messages */
    struct ring back;   /* consumer -> producer: messages free for reuse */
    struct stress_msg pool[STRESS_POOL];
};

static uint64_t msg_sum(const struct stress_msg *m)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ m->seq;
    h = (h ^ m->len) * UINT64_C(1099511628211);
    for (uint32_t i = 0; i < m->len && i < PAYLOAD_MAX; i++)
        h = (h ^ m->payload[i]) * UINT64_C(1099511628211);
    return h;
}

static uint8_t payload_byte(uint64_t seq, uint32_t i) { return (uint8_t)(seq * 131u + i * 7u + 1u); }

/* On a 2-core machine shared with other jobs a pure spin can starve the
 * other side for a whole time slice; yielding now and then keeps the run
 * short without changing what is checked. */
static void backoff(unsigned *spins)
{
    if (++*spins % 256u == 0)
        sched_yield();
}

static void *stress_producer(void *arg)
{
    struct stress *st = arg;
    for (uint64_t seq = 1; seq <= STRESS_N; seq++) {
        struct stress_msg *m;
        unsigned spins = 0;
        while (!(m = ring_pop(&st->back)))
            backoff(&spins);
        m->seq = seq;
        m->len = 1u + (uint32_t)(seq % PAYLOAD_MAX);
        for (uint32_t i = 0; i < m->len; i++)
            m->payload[i] = payload_byte(seq, i);
        m->sum = msg_sum(m);
        spins = 0;
        while (!ring_push(&st->work, m))
            backoff(&spins);
    }
    return NULL;
}

static void test_two_threads(void **state)
{
    struct stress *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    assert_int_equal(ring_init(&st->work, 64), 0);
    assert_int_equal(ring_init(&st->back, STRESS_POOL), 0);
    for (uint32_t i = 0; i < STRESS_POOL; i++)
        assert_true(ring_push(&st->back, &st->pool[i]));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stress_producer, st), 0);
    uint64_t expect = 1;
    unsigned spins = 0;
    while (expect <= STRESS_N) {
        struct stress_msg *m = ring_pop(&st->work);
        if (!m) {
            backoff(&spins);
            continue;
        }
        assert_true(m >= st->pool && m < st->pool + STRESS_POOL);
        assert_int_equal(m->seq, expect);
        assert_int_equal(m->len, 1u + (uint32_t)(expect % PAYLOAD_MAX));
        assert_int_equal(m->sum, msg_sum(m));
        for (uint32_t i = 0; i < m->len; i++)
            assert_int_equal(m->payload[i], payload_byte(expect, i));
        /* Scribble: a producer write not ordered after this one would leave
         * these bytes, and the next use of m would fail its checksum. */
        memset(m, 0xa5, sizeof(*m));
        assert_true(ring_push(&st->back, m));   /* never full: STRESS_POOL slots */
        expect++;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_null(ring_pop(&st->work));
    ring_free(&st->work);
    ring_free(&st->back);
    free(st);
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
