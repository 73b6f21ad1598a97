/*
 * test_topk.c — the sampled space-saving top-K: a key with a large share of
 * a skewed stream is found with a count near its sampled share; entries
 * stay within TOPK_SLOTS; a clear empties it; a held lock drops samples
 * instead of waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_hot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
