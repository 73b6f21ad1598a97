/*
 * test_store_probation.c — the probation queue (src/store/probation.c):
 * one-hit wonders never push read items out (probation is then most of
 * the store, as in S3-FIFO: main only shrinks when probation is under its
 * share), the bookkeeping agrees with the segments, and a promoted item
 * keeps its value, flags, exptime and CAS. Single-threaded.
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

/* nprob counts the segments marked probation; every sealed one has a
 * valid queue entry (so none is stuck outside the queue). */
static void check_prob(struct store *s)
{
    uint32_t n = 0, sealed = 0;
    for (uint32_t id = 0; id < s->nsegs; id++) {
        struct seg *g = &s->segs[id];
        if (!g->prob)
            continue;
        assert_true(g->state == SEG_OPEN || g->state == SEG_SEALED);
        n++;
        sealed += g->state == SEG_SEALED;
    }
    assert_int_equal(n, s->nprob);
    uint32_t valid = 0;
    for (uint32_t i = 0; i < s->probq_n; i++) {
        struct probq_ent *q = &s->probq[(s->probq_head + i) % s->probq_cap];
        const struct seg *g = &s->segs[q->id];
        valid += g->prob && g->state == SEG_SEALED && g->serial == q->serial;
    }
    assert_int_equal(valid, sealed);
}

/* A hot set, each key read once after its write, then a flood of
 * one-hit wonders 20 times the cache: the hot keys all stay, because they
 * were promoted out of probation and the flood never leaves it. */
static void test_one_hit_wonders_stay_in_probation(void **state)
{
    struct store *s = mk_evict_store(4 * MB, 64 * KB);
    char key[32], val[100];
    memset(val, 'v', sizeof(val));
    struct item_view iv;
    const int HOT = 8000;   /* ~1 MiB of items in a 4 MiB store */
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 7, 0, 0, NULL), ST_OK);
    }
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        assert_int_equal(store_get(s, key, strlen(key), &iv), ST_OK);
    }
    for (int i = 0; i < 600000; i++) {
        snprintf(key, sizeof(key), "wonder:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        if (i % 4096 == 0) {
            check_prob(s);
            check_mem(s);
        }
    }
    int present = 0;
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        present += store_peek(s, key, strlen(key), &iv) == ST_OK;
    }
    print_message("  hot keys present after the flood: %d of %d\n", present, HOT);
    assert_true(present >= HOT * 99 / 100);
    check_consistency(s);
    check_prob(s);
    store_destroy(s);
}

/* An item promoted out of probation is the same item: value, flags,
 * exptime and CAS unchanged. */
static void test_promotion_keeps_item(void **state)
{
    struct store *s = mk_evict_store(2 * MB, 64 * KB);
    char key[32], val[100];
    struct item_view iv;
    uint64_t cas[200];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "keep:%d", i);
        memset(val, 'a' + i % 26, sizeof(val));
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 1000u + (unsigned)i,
                                   i % 2 ? 5000 : 0, 0, &cas[i]), ST_OK);
        assert_int_equal(store_get(s, key, strlen(key), &iv), ST_OK);
    }
    uint64_t merged0 = s->c.merged_items;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "fill:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
    }
    print_message("  merged %llu -> %llu, evicted %llu\n", (unsigned long long)merged0,
                  (unsigned long long)s->c.merged_items, (unsigned long long)s->c.evictions);
    /* the half without an exptime were moved (the others' bucket never
     * sealed its open segment: nothing else was written there) */
    assert_true(s->c.merged_items >= merged0 + 100);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "keep:%d", i);
        assert_int_equal(store_peek(s, key, strlen(key), &iv), ST_OK);
        assert_int_equal(iv.vlen, 100);
        assert_int_equal(iv.val[0], 'a' + i % 26);
        assert_int_equal(iv.val[99], 'a' + i % 26);
        assert_int_equal(iv.flags, 1000u + (unsigned)i);
        assert_int_equal(iv.exptime, i % 2 ? 5000 : 0);
        assert_int_equal(store_view_cas(s, &iv), cas[i]);
        /* and a cas with it still works */
        assert_int_equal(store_put(s, SM_CAS, key, strlen(key), "x", 1, 0, 0, cas[i], NULL), ST_OK);
    }
    check_consistency(s);
    check_prob(s);
    store_destroy(s);
}

/* The header of key's item, for its bits. */
static uint8_t item_bits(struct store *s, const char *key)
{
    struct item_view iv;
    assert_int_equal(store_peek(s, key, strlen(key), &iv), ST_OK);
    return seg_loc_ptr(s, iv.loc, iv.off)[1];
}

/* A CAS nobody was handed needs no field when the item moves: it may
 * change, unseen. One handed out, by a write's cas_out or by
 * store_view_cas (gets, mg c, binary get), is kept in an 8-byte field. */
static void test_promotion_cas_field_only_when_seen(void **state)
{
    struct store *s = mk_evict_store(2 * MB, 64 * KB);
    char key[32], val[100];
    memset(val, 'c', sizeof(val));
    struct item_view iv;
    uint64_t cas[300];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "c:%d", i);
        /* a third written with the CAS returned, a third viewed, a third unseen */
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0,
                                   i % 3 == 0 ? &cas[i] : NULL), ST_OK);
        assert_int_equal(store_get(s, key, strlen(key), &iv), ST_OK);
        if (i % 3 == 1)
            cas[i] = store_view_cas(s, &iv);
        assert_int_equal(item_bits(s, key) & IB_CAS, 0);
    }
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "fill:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
    }
    /* all 300 were read, so promoted out of probation, not dropped */
    assert_true(s->c.merged_items >= 300);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "c:%d", i);
        uint8_t bits = item_bits(s, key);
        if (i % 3 == 2) {
            /* moved without a field, its CAS now that of its new place */
            assert_int_equal(bits & (IB_CAS | IB_CASSEEN), 0);
            continue;
        }
        assert_int_equal(bits & IB_CAS, IB_CAS);
        assert_int_equal(store_peek(s, key, strlen(key), &iv), ST_OK);
        assert_int_equal(store_view_cas(s, &iv), cas[i]);
    }
    /* every CAS still unique */
    uint64_t seen[300];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "c:%d", i);
        assert_int_equal(store_peek(s, key, strlen(key), &iv), ST_OK);
        seen[i] = store_view_cas(s, &iv);
        for (int j = 0; j < i; j++)
            assert_true(seen[j] != seen[i]);
    }
    check_consistency(s);
    check_prob(s);
    store_destroy(s);
}

/* flush_all empties probation too; the store then fills and evicts again. */
static void test_flush_resets(void **state)
{
    struct store *s = mk_evict_store(1 * MB, 16 * KB);
    char key[32], val[100];
    memset(val, 'z', sizeof(val));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 30000; i++) {
            snprintf(key, sizeof(key), "r%d:%d", round, i);
            assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        }
        check_prob(s);
        check_mem(s);
        store_flush(s);
        assert_int_equal(s->nprob, 0);
        check_prob(s);
    }
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_hit_wonders_stay_in_probation),
        cmocka_unit_test(test_promotion_keeps_item),
        cmocka_unit_test(test_promotion_cas_field_only_when_seen),
        cmocka_unit_test(test_flush_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
