/*
 * test_store_churn.c — overwrite churn on a store that is not logically
 * full: a working set smaller than the memory limit, overwritten many
 * times in random order, fills the segments with dead (overwritten) bytes.
 * Making room must then reclaim those dead bytes, never drop a live item:
 * no eviction, every key still readable with its latest value. (Seen live
 * in bench/write_stall.sh's not-full instance: ~280 items evicted.)
 * Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_int.h"
#include "test_store_check.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* keys x ~123 B of items in mem; rounds x keys uniform random overwrites,
 * each value naming its write number; no gets (as write_stall.sh's
 * not-full phase), so every item stays unread in probation. */
static void churn(size_t mem, size_t seg, unsigned keys, unsigned rounds)
{
    struct store *s = mk_evict_store(mem, seg);
    uint32_t *ver = calloc(keys, sizeof(*ver));
    assert_non_null(ver);
    char key[32], val[100];
    memset(val, 'v', sizeof(val));
    for (unsigned i = 0; i < keys; i++) {
        snprintf(key, sizeof(key), "churn:%014u", i);
        memcpy(val, &i, 4);
        assert_int_equal(store_put(s, SM_SET, key, 20, val, 100, 0, 0, 0, NULL), ST_OK);
    }
    uint64_t n = (uint64_t)keys * rounds;
    for (uint64_t w = 1; w <= n; w++) {
        unsigned i = (unsigned)(rnd() % keys);
        ver[i] = (uint32_t)w;
        snprintf(key, sizeof(key), "churn:%014u", i);
        memcpy(val, &ver[i], 4);
        assert_int_equal(store_put(s, SM_SET, key, 20, val, 100, 0, 0, 0, NULL), ST_OK);
        if (w % 200000 == 0)
            check_consistency(s);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    /* it did have to make room: the log went round several times */
    assert_true(st.evicted_segments > 0 || st.merged_items > 0);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.curr_items, keys);
    for (unsigned i = 0; i < keys; i++) {
        struct item_view iv;
        snprintf(key, sizeof(key), "churn:%014u", i);
        assert_int_equal(store_get(s, key, 20, &iv), ST_OK);
        uint32_t v;
        memcpy(&v, iv.val, 4);
        assert_int_equal(v, ver[i] ? ver[i] : i);
    }
    check_consistency(s);
    free(ver);
    store_destroy(s);
}

/* write_stall.sh's not-full instance, scaled down: a fifth of -m. */
static void test_churn_fifth(void **state)
{
    churn(16 * MB, 0, 25000, 20);
}

/* Half of -m live, the rest dead: still room for every key. */
static void test_churn_half(void **state)
{
    churn(8 * MB, 64 * KB, 30000, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_fifth),
        cmocka_unit_test(test_churn_half),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
