/*
 * test_store_ghost.c — the ghost table (src/store/ghost.c) and the segment
 * walk (seg.c, seg_walk_*): a ghost is found once, lost to a colliding add
 * or a flush, and counted in the store's memory; a key that probation
 * dropped unread and that is written again starts as read once, so the
 * next probation eviction promotes it; the walk visits exactly the items
 * not marked dead, with the slot the index holds for each. Single-threaded.
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

static void test_ghost_table(void **state)
{
    struct store *s = mk_evict_store(4 * MB, 64 * KB);
    size_t slots = (size_t)s->ghost_mask + 1;
    assert_int_equal(slots, ghost_slots_for(4 * MB));
    assert_true(slots >= 64 && (slots & (slots - 1)) == 0);
    /* a 1-byte slot per 256 bytes of -m at most, and inside the limit */
    assert_true(slots * sizeof(*s->ghost) <= 4 * MB / 256);
    assert_true(s->fixed_bytes >= slots * sizeof(*s->ghost));
    check_mem(s);

    uint64_t h = UINT64_C(0x123456789abcdef0);
    assert_false(ghost_take(s, h));
    ghost_add(s, h);
    assert_false(ghost_take(s, h ^ (UINT64_C(1) << 60)));   /* same slot, other fingerprint */
    assert_true(ghost_take(s, h));
    assert_false(ghost_take(s, h));                          /* taken once */

    /* a later add to the same slot replaces it */
    ghost_add(s, h);
    ghost_add(s, h ^ (UINT64_C(1) << 62));                   /* same slot */
    assert_false(ghost_take(s, h));
    assert_true(ghost_take(s, h ^ (UINT64_C(1) << 62)));

    ghost_add(s, h);
    store_flush(s);
    assert_false(ghost_take(s, h));
    store_destroy(s);
}

static unsigned freq_of(struct store *s, const char *key)
{
    struct item it;
    uint16_t *slot = index_find(s, key, strlen(key), store_hash(key, strlen(key)), &it);
    assert_non_null(slot);
    return slot_freq(slot);
}

/* One-hit wonders until every key "PREFIX:0..n-1" but `allow` is gone
 * (written first, so they leave first): drops after theirs, which could
 * overwrite their ghosts, are then few. */
static void flood_until_gone(struct store *s, int round, const char *prefix, int n, int allow)
{
    char key[32], val[100];
    struct item_view iv;
    memset(val, 'w', sizeof(val));
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof(key), "wonder:%d:%d", round, i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        if (i % 64)
            continue;
        int left = 0;
        for (int k = 0; k < n && left <= allow; k++) {
            snprintf(key, sizeof(key), "%s:%d", prefix, k);
            left += store_peek(s, key, strlen(key), &iv) == ST_OK;
        }
        if (left <= allow)
            return;
    }
    fail_msg("%s keys never left", prefix);
}

/* Keys written once and never read leave with probation; written again
 * soon after, they find their ghost, start at frequency 1 and outlive the
 * next flood unread (promoted), while keys without a ghost do not. */
static void test_ghost_readmits(void **state)
{
    struct store *s = mk_evict_store(4 * MB, 64 * KB);
    char key[32], val[100];
    memset(val, 'g', sizeof(val));
    struct item_view iv;
    enum { N = 2000 };
    static bool hit[N];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "back:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
    }
    flood_until_gone(s, 0, "back", N, 0);
    int hits = 0, false_hits = 0;
    for (int i = 0; i < N; i++) {
        uint64_t h0 = s->ghost_hits;
        snprintf(key, sizeof(key), "back:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        hit[i] = s->ghost_hits == h0 + 1;
        hits += hit[i];
        assert_int_equal(freq_of(s, key), hit[i] ? 1 : 0);
        /* a key never seen finds a ghost only by fingerprint collision */
        h0 = s->ghost_hits;
        snprintf(key, sizeof(key), "new:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        false_hits += s->ghost_hits != h0;
        assert_int_equal(freq_of(s, key), s->ghost_hits != h0 ? 1 : 0);
    }
    print_message("  ghost hits %d of %d, false ones %d of %d\n", hits, N, false_hits, N);
    assert_true(false_hits <= N / 64);
    /* the drops after theirs (the rest of the flood, and the wonders the
     * writes just above push out) overwrite some ghosts: with 16k slots and
     * ~3k such drops, about 1 - e^(-3/16) of them */
    assert_true(hits >= N * 3 / 4);
    flood_until_gone(s, 1, "new", N, false_hits);   /* those were promoted */
    int back = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "back:%d", i);
        back += hit[i] && store_peek(s, key, strlen(key), &iv) == ST_OK;
    }
    print_message("  after the second flood: %d of %d re-admitted keys stayed\n", back, hits);
    assert_true(back >= hits * 95 / 100);
    check_consistency(s);
    check_mem(s);
    store_destroy(s);
}

/* The walk yields every item not marked dead, in write order, each with
 * the index slot that points at it. */
static void test_seg_walk(void **state)
{
    struct store *s = mk_evict_store(2 * MB, 64 * KB);
    char key[32], val[100];
    memset(val, 's', sizeof(val));
    const int N = 300;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "walk:%03d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 10 + i % 50, 0, 0, 0, NULL), ST_OK);
    }
    for (int i = 0; i < N; i += 3) {            /* a third deleted, a third overwritten */
        snprintf(key, sizeof(key), "walk:%03d", i);
        assert_int_equal(store_delete(s, key, strlen(key), 0), ST_OK);
        snprintf(key, sizeof(key), "walk:%03d", i + 1);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 7, 0, 0, 0, NULL), ST_OK);
    }
    struct item_view iv;
    assert_int_equal(store_peek(s, "walk:002", 8, &iv), ST_OK);
    uint32_t id = iv.loc;
    struct seg_walk w;
    uint32_t n = 0, bytes = 0, last_off = 0;
    for (seg_walk_start(&w, s, id, true); seg_walk_next(&w);) {
        assert_false(w.it.bits & IB_DEAD);
        assert_non_null(w.slot);
        assert_int_equal(e_seg(s, slot_get(w.slot)), id);
        assert_int_equal(e_off(s, slot_get(w.slot)), w.off);
        assert_true(n == 0 || w.off > last_off);
        last_off = w.off;
        assert_true(w.h == store_hash(w.it.key, w.it.klen));
        n++;
        bytes += w.it.size;
    }
    assert_int_equal(n, s->segs[id].live_items);
    assert_int_equal(bytes, s->segs[id].live_bytes);
    assert_int_equal(n, N - N / 3);
    /* without find_slot: the same items, no lookups */
    uint32_t n2 = 0;
    for (seg_walk_start(&w, s, id, false); seg_walk_next(&w);) {
        assert_null(w.slot);
        n2++;
    }
    assert_int_equal(n2, n);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ghost_table),
        cmocka_unit_test(test_ghost_readmits),
        cmocka_unit_test(test_seg_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
