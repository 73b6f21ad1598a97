/*
 * test_topk.c — the sampled space-saving top-K: a key with a large share of
 * a skewed stream is found with a count near its sampled share; entries
 * stay within TOPK_SLOTS; a clear empties it; a held lock drops samples
 * instead of waiting; against exact counts, every entry keeps the
 * space-saving bounds and every key above 1/TOPK_SLOTS of the stream is in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "util/topk.h"

static void test_finds_hot(void **state)
{
    (void)state;
    struct topk t;
    assert_int_equal(topk_init(&t, 7, 64), 0);
    char key[32];
    unsigned hot = 0;
    for (unsigned i = 0; i < 200000; i++) {
        int n;
        if (i % 4 == 0) {
            n = snprintf(key, sizeof key, "hot");
            hot++;
        } else {
            n = snprintf(key, sizeof key, "cold%u", i % 10000);
        }
        topk_note(&t, key, (size_t)n);
    }
    struct topk_entry e[TOPK_SLOTS];
    uint64_t sampled = 0;
    unsigned n = topk_copy(&t, e, &sampled);
    assert_true(n <= TOPK_SLOTS);
    assert_true(sampled > 200000 / 64 * 8 / 10 && sampled < 200000 / 64 * 12 / 10);
    unsigned best = 0;
    for (unsigned i = 1; i < n; i++)
        if (e[i].count > e[best].count)
            best = i;
    assert_int_equal(e[best].klen, 3);
    assert_memory_equal(e[best].key, "hot", 3);
    uint64_t est = e[best].count * 64;
    assert_true(est > hot * 8 / 10 && est < hot * 12 / 10 + e[best].err * 64);
    topk_clear(&t);
    assert_int_equal(topk_copy(&t, e, &sampled), 0);
    assert_int_equal(sampled, 0);
    /* A reader holding the lock: samples are dropped, never waited for. */
    pthread_mutex_lock(&t.lock);
    for (unsigned i = 0; i < 1000; i++)
        topk_note(&t, "k", 1);
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(topk_copy(&t, e, &sampled), 0);
    topk_fini(&t);
}

/* Every request sampled (interval 1), 2,000 keys of skewed popularity,
 * long enough that replacement runs (and with it least()'s cursor). */
static void test_space_saving_bounds(void **state)
{
    (void)state;
    enum { KEYS = 2000, N = 300000 };
    static uint64_t truth[KEYS];
    memset(truth, 0, sizeof truth);
    struct topk t;
    assert_int_equal(topk_init(&t, 11, 1), 0);
    uint64_t x = 88172645463325252ull;
    char key[32];
    for (unsigned i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* KEYS * u^4: key 0 about 15% of the stream, a long tail of rare keys */
        double u = (double)(x >> 11) / 9007199254740992.0;
        unsigned k = (unsigned)(KEYS * u * u * u * u);
        int n = snprintf(key, sizeof key, "key:%u", k);
        truth[k]++;
        topk_note(&t, key, (size_t)n);
    }
    struct topk_entry e[TOPK_SLOTS];
    uint64_t sampled = 0;
    unsigned n = topk_copy(&t, e, &sampled);
    assert_int_equal(n, TOPK_SLOTS);
    assert_int_equal(sampled, N);
    uint64_t sum = 0;
    static bool seen[KEYS];
    memset(seen, 0, sizeof seen);
    for (unsigned i = 0; i < n; i++) {
        unsigned k;
        char buf[KEY_MAX_LENGTH + 1];
        memcpy(buf, e[i].key, e[i].klen);
        buf[e[i].klen] = 0;
        assert_int_equal(sscanf(buf, "key:%u", &k), 1);
        assert_false(seen[k]);   /* one entry per key */
        seen[k] = true;
        sum += e[i].count;
        assert_true(e[i].count >= truth[k]);
        assert_true(e[i].count - e[i].err <= truth[k]);
    }
    assert_int_equal(sum, N);   /* a newcomer takes over the evicted count */
    /* Only a least-counted entry gives way: each error was the least count
     * then, and the least count never falls. */
    uint64_t least = e[0].count;
    for (unsigned i = 1; i < n; i++)
        least = e[i].count < least ? e[i].count : least;
    for (unsigned i = 0; i < n; i++)
        assert_true(e[i].err <= least);
    unsigned heavy = 0;
    for (unsigned k = 0; k < KEYS; k++)
        if (truth[k] > N / TOPK_SLOTS) {
            assert_true(seen[k]);
            heavy++;
        }
    assert_true(heavy >= 3);   /* keys 0-2: the guarantee above was put to the test */
    topk_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_hot),
        cmocka_unit_test(test_space_saving_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
