/*
 * test_store.c — unit tests of the per-worker store (src/store): command
 * semantics, CAS, TTL buckets and proactive reclaim, index growth, large
 * items, memory accounting, eviction keeping hot items. White-box checks
 * include store_int.h. Single-threaded, like the store.
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

static struct store *mk(size_t mem, size_t seg, bool cas)
{
    struct store_config c = {
        .mem_limit = mem, .item_max = 128 * MB, .seg_size = seg, .shard_id = 3, .use_cas = cas,
    };
    struct store *s = store_create(&c);
    assert_non_null(s);
    store_clock(s, 1000);
    return s;
}

static int put(struct store *s, enum store_mode m, const char *k, const char *v,
               uint32_t flags, uint32_t exp, uint64_t cas_in, uint64_t *cas_out)
{
    return store_put(s, m, k, strlen(k), v, strlen(v), flags, exp, cas_in, cas_out);
}

static void expect_val(struct store *s, const char *k, const char *v)
{
    struct item_view iv;
    assert_int_equal(store_get(s, k, strlen(k), &iv), ST_OK);
    assert_int_equal(iv.vlen, strlen(v));
    assert_memory_equal(iv.val, v, iv.vlen);
    assert_int_equal(iv.klen, strlen(k));
    assert_memory_equal(iv.key, k, iv.klen);
}

static void expect_miss(struct store *s, const char *k)
{
    struct item_view iv;
    assert_int_equal(store_get(s, k, strlen(k), &iv), ST_MISS);
}


/* ---------------------------------------------------------------------------- */

static void test_basic(void **state)
{
    struct store *s = mk(8 * MB, 0, true);
    struct item_view iv;
    uint64_t c1, c2;
    expect_miss(s, "a");
    assert_int_equal(put(s, SM_SET, "a", "hello", 7, 0, 0, &c1), ST_OK);
    assert_int_equal(store_get(s, "a", 1, &iv), ST_OK);
    assert_int_equal(iv.flags, 7);
    assert_int_equal(iv.exptime, 0);
    assert_int_equal(store_view_cas(s, &iv), c1);
    assert_true(c1 != 0);
    assert_int_equal(c1 >> 56, 3);   /* shard id */
    assert_int_equal(iv.mbits, 0);   /* before this access */
    assert_int_equal(store_get(s, "a", 1, &iv), ST_OK);
    assert_int_equal(iv.mbits & ITEM_FETCHED, ITEM_FETCHED);
    assert_int_equal(put(s, SM_SET, "a", "world!", 0, 0, 0, &c2), ST_OK);
    assert_true(c2 != c1);
    expect_val(s, "a", "world!");
    /* empty value */
    assert_int_equal(put(s, SM_SET, "e", "", 0, 0, 0, NULL), ST_OK);
    expect_val(s, "e", "");
    assert_int_equal(store_delete(s, "a", 1, 0), ST_OK);
    expect_miss(s, "a");
    assert_int_equal(store_delete(s, "a", 1, 0), ST_MISS);
    /* peek has no side effects */
    assert_int_equal(put(s, SM_SET, "p", "v", 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_peek(s, "p", 1, &iv), ST_OK);
    assert_int_equal(store_peek(s, "p", 1, &iv), ST_OK);
    assert_int_equal(iv.mbits & ITEM_FETCHED, 0);
    /* 250-byte key */
    char k[251];
    memset(k, 'k', 250);
    k[250] = 0;
    assert_int_equal(put(s, SM_SET, k, "long", 0, 0, 0, NULL), ST_OK);
    expect_val(s, k, "long");
    check_consistency(s);
    store_destroy(s);
}

static void test_modes(void **state)
{
    struct store *s = mk(8 * MB, 0, true);
    uint64_t c1, c2, c3;
    assert_int_equal(put(s, SM_ADD, "k", "1", 5, 0, 0, &c1), ST_OK);
    assert_int_equal(put(s, SM_ADD, "k", "2", 0, 0, 0, NULL), ST_NOT_STORED);
    expect_val(s, "k", "1");
    assert_int_equal(put(s, SM_REPLACE, "nope", "x", 0, 0, 0, NULL), ST_NOT_STORED);
    assert_int_equal(put(s, SM_APPEND, "nope", "x", 0, 0, 0, NULL), ST_NOT_STORED);
    assert_int_equal(put(s, SM_PREPEND, "nope", "x", 0, 0, 0, NULL), ST_NOT_STORED);
    expect_miss(s, "nope");
    assert_int_equal(put(s, SM_REPLACE, "k", "abc", 9, 0, 0, NULL), ST_OK);
    expect_val(s, "k", "abc");
    /* append/prepend keep flags and exptime */
    assert_int_equal(put(s, SM_SET, "ap", "mid", 42, 5000, 0, NULL), ST_OK);
    assert_int_equal(put(s, SM_APPEND, "ap", "END", 1, 0, 0, NULL), ST_OK);
    assert_int_equal(put(s, SM_PREPEND, "ap", "BEG", 2, 0, 0, NULL), ST_OK);
    struct item_view iv;
    assert_int_equal(store_get(s, "ap", 2, &iv), ST_OK);
    assert_int_equal(iv.vlen, 9);
    assert_memory_equal(iv.val, "BEGmidEND", 9);
    assert_int_equal(iv.flags, 42);
    assert_int_equal(iv.exptime, 5000);
    /* cas */
    assert_int_equal(put(s, SM_CAS, "none", "x", 0, 0, 123, NULL), ST_NOT_FOUND);
    assert_int_equal(put(s, SM_SET, "c", "v1", 0, 0, 0, &c1), ST_OK);
    assert_int_equal(put(s, SM_CAS, "c", "v2", 0, 0, c1 + 1, NULL), ST_EXISTS);
    assert_int_equal(put(s, SM_CAS, "c", "v2", 0, 0, c1, &c2), ST_OK);
    assert_true(c2 != c1);
    assert_int_equal(put(s, SM_CAS, "c", "v3", 0, 0, c1, NULL), ST_EXISTS);
    expect_val(s, "c", "v2");
    /* delete with cas */
    assert_int_equal(store_delete(s, "c", 1, c1), ST_EXISTS);
    assert_int_equal(store_delete(s, "c", 1, c2), ST_OK);
    /* mbits */
    assert_int_equal(put(s, SM_SET, "m", "v", 0, 0, 0, &c3), ST_OK);
    assert_int_equal(store_set_mbits(s, "m", 1, ITEM_STALE | ITEM_WIN_SENT, 0), ST_OK);
    assert_int_equal(store_peek(s, "m", 1, &iv), ST_OK);
    assert_int_equal(iv.mbits, ITEM_STALE | ITEM_WIN_SENT);
    assert_int_equal(store_set_mbits(s, "m", 1, 0, ITEM_WIN_SENT), ST_OK);
    assert_int_equal(store_peek(s, "m", 1, &iv), ST_OK);
    assert_int_equal(iv.mbits, ITEM_STALE);
    assert_int_equal(store_view_cas(s, &iv), c3);
    assert_int_equal(store_set_mbits(s, "zz", 2, 1, 0), ST_MISS);
    check_consistency(s);
    store_destroy(s);
}

static void test_no_cas(void **state)
{
    struct store *s = mk(4 * MB, 0, false);
    uint64_t c = 99;
    struct item_view iv;
    assert_int_equal(put(s, SM_SET, "a", "b", 0, 0, 0, &c), ST_OK);
    assert_int_equal(c, 0);
    assert_int_equal(store_get(s, "a", 1, &iv), ST_OK);
    assert_int_equal(store_view_cas(s, &iv), 0);
    store_destroy(s);
}

static void test_arith(void **state)
{
    struct store *s = mk(4 * MB, 0, true);
    uint64_t r, c0, c1;
    assert_int_equal(store_arith(s, "n", 1, true, 1, &r, NULL), ST_MISS);
    assert_int_equal(put(s, SM_SET, "n", "10", 77, 9000, 0, &c0), ST_OK);
    assert_int_equal(store_arith(s, "n", 1, true, 5, &r, &c1), ST_OK);
    assert_int_equal(r, 15);
    assert_true(c1 != c0);
    expect_val(s, "n", "15");
    assert_int_equal(store_arith(s, "n", 1, false, 100, &r, NULL), ST_OK);
    assert_int_equal(r, 0);
    expect_val(s, "n", "0 ");   /* shorter result padded, as memcached does */
    struct item_view iv;
    assert_int_equal(store_peek(s, "n", 1, &iv), ST_OK);
    assert_int_equal(iv.flags, 77);
    assert_int_equal(iv.exptime, 9000);
    assert_int_equal(put(s, SM_SET, "n", "18446744073709551615", 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_arith(s, "n", 1, true, 2, &r, NULL), ST_OK);
    assert_int_equal(r, 1);
    expect_val(s, "n", "1                   ");
    assert_int_equal(put(s, SM_SET, "n", "99", 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_arith(s, "n", 1, true, 1, &r, NULL), ST_OK);
    expect_val(s, "n", "100");
    assert_int_equal(put(s, SM_SET, "n", "12  ", 0, 0, 0, NULL), ST_OK);   /* padded */
    assert_int_equal(store_arith(s, "n", 1, false, 2, &r, NULL), ST_OK);
    assert_int_equal(r, 10);
    /* memcached (strtoull) takes leading blanks and '+', and ignores
     * anything after a blank that follows the digits. */
    const char *good[] = {" 1", "+1", "1 x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(put(s, SM_SET, "g", good[i], 0, 0, 0, NULL), ST_OK);
        assert_int_equal(store_arith(s, "g", 1, true, 1, &r, NULL), ST_OK);
        assert_int_equal(r, 2);
    }
    const char *bad[] = {"abc", "", "-1", "1x", "18446744073709551616", " ", "+"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(put(s, SM_SET, "b", bad[i], 0, 0, 0, NULL), ST_OK);
        assert_int_equal(store_arith(s, "b", 1, true, 1, &r, NULL), ST_NON_NUMERIC);
    }
    check_consistency(s);
    store_destroy(s);
}

static void test_expiry_touch(void **state)
{
    struct store *s = mk(4 * MB, 0, true);
    struct item_view iv;
    uint64_t c;
    assert_int_equal(put(s, SM_SET, "t", "v", 0, 1010, 0, &c), ST_OK);
    store_clock(s, 1009);
    expect_val(s, "t", "v");
    store_clock(s, 1010);
    expect_miss(s, "t");
    /* already expired on arrival */
    assert_int_equal(put(s, SM_SET, "x", "v", 0, 1000, 0, NULL), ST_OK);
    expect_miss(s, "x");
    /* add over an expired item works */
    assert_int_equal(put(s, SM_ADD, "t", "new", 0, 0, 0, NULL), ST_OK);
    expect_val(s, "t", "new");
    /* touch from 0 to non-zero relocates but keeps the CAS */
    assert_int_equal(put(s, SM_SET, "u", "val", 3, 0, 0, &c), ST_OK);
    assert_int_equal(store_touch(s, "u", 1, 1100), ST_OK);
    assert_int_equal(store_peek(s, "u", 1, &iv), ST_OK);
    assert_int_equal(store_view_cas(s, &iv), c);
    assert_int_equal(iv.exptime, 1100);
    assert_int_equal(iv.flags, 3);
    /* touch in place keeps the CAS too */
    assert_int_equal(store_touch(s, "u", 1, 1200), ST_OK);
    assert_int_equal(store_touch(s, "u", 1, 0), ST_OK);
    assert_int_equal(store_peek(s, "u", 1, &iv), ST_OK);
    assert_int_equal(store_view_cas(s, &iv), c);
    assert_int_equal(iv.exptime, 0);
    assert_int_equal(put(s, SM_CAS, "u", "v2", 0, 0, c, NULL), ST_OK);
    assert_int_equal(store_touch(s, "nope", 4, 0), ST_MISS);
    /* gat: returns the item with the new exptime, mbits as before */
    assert_int_equal(put(s, SM_SET, "g", "gv", 0, 0, 0, &c), ST_OK);
    assert_int_equal(store_gat(s, "g", 1, 1050, &iv), ST_OK);
    assert_int_equal(iv.exptime, 1050);
    assert_int_equal(iv.mbits, 0);
    assert_int_equal(store_view_cas(s, &iv), c);
    assert_int_equal(iv.vlen, 2);
    assert_memory_equal(iv.val, "gv", 2);
    assert_int_equal(store_gat(s, "g", 1, 1060, &iv), ST_OK);
    assert_int_equal(iv.mbits, ITEM_FETCHED);
    store_clock(s, 1060);
    assert_int_equal(store_gat(s, "g", 1, 0, &iv), ST_MISS);
    check_consistency(s);
    store_destroy(s);
}

/* TTLs in every tier of buckets, expiring one tier after another: the
 * reclaim walk, which visits only buckets holding segments, finds each
 * (also past the end of the ring of buckets, from where the last walk
 * stopped), and the class stats still list the emptied buckets' counts. */
static void test_ttl_reclaim_sparse_buckets(void **state)
{
    struct store *s = mk(8 * MB, 64 * KB, true);
    static const uint32_t ttls[] = {9, 3000, 40000, 600000, 9000000};
    enum { PER = 300, N = sizeof ttls / sizeof ttls[0] };
    char key[32], val[150];
    memset(val, 'v', sizeof(val));
    for (unsigned t = 0; t < N; t++)
        for (int i = 0; i < PER; i++) {
            snprintf(key, sizeof(key), "t%u:%d", t, i);
            assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0, ttls[t], 0,
                                       NULL), ST_OK);
        }
    assert_int_equal(store_put(s, SM_SET, "forever", 7, val, 100, 0, 0, 0, NULL), ST_OK);
    check_consistency(s);
    struct store_class_stats before[64];
    unsigned nbefore = store_get_class_stats(s, before, 64);
    for (unsigned t = 0; t < N; t++) {
        store_clock(s, ttls[t]);
        while (store_maintain(s, 100))
            ;
        struct store_stats st;
        store_get_stats(s, &st);
        assert_int_equal(st.expired_reclaimed, (t + 1) * PER);
        assert_int_equal(st.curr_items, (N - 1 - t) * PER + 1);
        check_consistency(s);
    }
    struct item_view iv;
    assert_int_equal(store_get(s, "forever", 7, &iv), ST_OK);
    struct store_class_stats after[64];
    unsigned nafter = store_get_class_stats(s, after, 64);
    assert_int_equal(nafter, nbefore);   /* emptied classes keep their set counts */
    /* The walk's charge: one unit per 64 buckets looked at, one circle
     * (977 buckets: 15 units) whether it starts on a bucket holding
     * segments or on an empty one before them. */
    static const uint32_t later[] = {40960, 450560};   /* buckets 500 and 700 */
    for (unsigned t = 0; t < 2; t++) {
        snprintf(key, sizeof(key), "later%u", t);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 100, 0,
                                   ttls[N - 1] + later[t], 0, NULL), ST_OK);
    }
    bool more = false;
    s->maint_bucket = 10;
    assert_int_equal(ttl_reclaim_scan(s, 64, &more), 15);
    assert_false(more);
    assert_int_equal(ttl_reclaim_scan(s, 64, &more), 15);   /* from a busy bucket now */
    assert_false(more);
    store_destroy(s);
}

/* Items of one TTL go to the same segments; once they all expired,
 * store_maintain frees those segments whole; an item touched to live longer
 * is relocated with its CAS. */
static void test_ttl_reclaim(void **state)
{
    struct store *s = mk(8 * MB, 64 * KB, true);
    struct store_stats st0, st1, st2;
    char key[32], val[200];
    memset(val, 'v', sizeof(val));
    store_get_stats(s, &st0);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "ttl:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 150, 0, 1100, 0, NULL),
                         ST_OK);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "keep:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 150, 0, 0, 0, NULL), ST_OK);
    }
    uint64_t ctouch;
    struct item_view iv;
    assert_int_equal(store_peek(s, "ttl:7", 5, &iv), ST_OK);
    ctouch = store_view_cas(s, &iv);
    assert_int_equal(store_touch(s, "ttl:7", 5, 5000), ST_OK);
    store_get_stats(s, &st1);
    assert_true(st1.segs_used >= st0.segs_used + 6);
    assert_int_equal(st1.curr_items, 2200);
    store_clock(s, 1099);
    while (store_maintain(s, 100))
        ;
    store_get_stats(s, &st2);
    assert_int_equal(st2.reclaim_segments, 0);
    store_clock(s, 1100);
    while (store_maintain(s, 100))
        ;
    store_get_stats(s, &st2);
    assert_true(st2.reclaim_segments >= 5);
    assert_true(st2.segs_used <= st0.segs_used + 2);
    assert_int_equal(st2.expired_reclaimed, 1999);
    assert_int_equal(st2.expired_unfetched, 1999);
    assert_int_equal(st2.curr_items, 201);
    assert_int_equal(st2.evictions, 0);
    assert_int_equal(store_get(s, "ttl:7", 5, &iv), ST_OK);
    assert_int_equal(store_view_cas(s, &iv), ctouch);
    assert_int_equal(iv.exptime, 5000);
    assert_int_equal(store_get(s, "keep:199", 8, &iv), ST_OK);
    assert_int_equal(iv.vlen, 150);
    assert_memory_equal(iv.val, val, 150);
    check_consistency(s);
    /* per-class stats: the never-expiring bucket and the relocated item's */
    struct store_class_stats cs[8];
    unsigned nc = store_get_class_stats(s, cs, 8);
    assert_true(nc >= 1);
    uint64_t items = 0;
    bool never = false;
    for (unsigned i = 0; i < nc; i++) {
        items += cs[i].live_items;
        assert_true(cs[i].mem_bytes == cs[i].segments * 64 * KB);
        assert_true(cs[i].live_bytes + cs[i].dead_bytes == cs[i].mem_bytes);
        if (cs[i].ttl_min == 0 && cs[i].ttl_max == 0)
            never = true;
    }
    assert_true(never);
    assert_int_equal(items, 201);
    /* TTL bucket mapping: width grows with TTL */
    assert_int_equal(ttl_bucket_of(s, 0), TTL_NEVER);
    assert_int_equal(ttl_bucket_of(s, 1100 + 7), ttl_bucket_of(s, 1100));
    assert_true(ttl_bucket_of(s, 1100 + 100000) < ttl_bucket_of(s, 1100 + 200000));
    store_destroy(s);
}

/* Segments are committed as they are used; mem_used counts them exactly. */
static void test_segments(void **state)
{
    struct store *s = mk(128 * MB, 0, true);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.seg_size, 256 * KB);       /* 128 MiB / 512 */
    assert_true(st.segs_total >= 500 && st.segs_total <= 512);
    assert_int_equal(st.segs_used, 1);            /* the spare */
    assert_int_equal(s->seg_fresh, 1);
    size_t base = st.mem_used;
    char key[32], val[1000];
    memset(val, 'x', sizeof(val));
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "seg:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, sizeof(val), 0, 0, 0, NULL),
                         ST_OK);
    }
    store_get_stats(s, &st);
    assert_true(st.segs_used >= 5 && st.segs_used <= 6);
    assert_int_equal(s->seg_fresh, st.segs_used);
    assert_int_equal(st.mem_used, base + (st.segs_used - 1) * st.seg_size
                                      + st.index_bytes - 64 * 64);
    /* smaller stores: 512 segments, at least 64 KiB each */
    struct store *s1 = mk(64 * MB, 0, true);
    store_get_stats(s1, &st);
    assert_int_equal(st.seg_size, 128 * KB);
    store_destroy(s1);
    s1 = mk(16 * MB, 0, true);
    store_get_stats(s1, &st);
    assert_int_equal(st.seg_size, 64 * KB);
    store_destroy(s1);
    /* configured segment size is honoured */
    struct store *s2 = mk(16 * MB, 128 * KB, true);
    store_get_stats(s2, &st);
    assert_int_equal(st.seg_size, 128 * KB);
    store_destroy(s2);
    /* tiny shards still work, with smaller segments */
    struct store *s3 = mk(256 * KB, 0, true);
    store_get_stats(s3, &st);
    assert_true(st.seg_size <= 16 * KB);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "tiny:%d", i);
        assert_int_equal(store_put(s3, SM_SET, key, strlen(key), val, 100, 0, 0, 0, NULL), ST_OK);
        check_mem(s3);
    }
    check_consistency(s3);
    store_destroy(s3);
    store_destroy(s);
}

/* The index grows one bucket at a time; every key stays reachable while it
 * does, and per-item overhead stays small. */
static void test_index_growth(void **state)
{
    struct store *s = mk(64 * MB, 0, true);
    struct store_stats st;
    char key[32];
    char val[100];
    memset(val, 'v', sizeof(val));
    bool saw_expanding = false;
    unsigned p0;
    store_get_stats(s, &st);
    p0 = (unsigned)st.hash_power;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%016d", i);   /* 20 bytes */
        assert_int_equal(store_put(s, SM_SET, key, 20, val, 100, 0, 0, 0, NULL), ST_OK);
        if (i % 997 == 0) {
            store_get_stats(s, &st);
            if (st.hash_expanding)
                saw_expanding = true;
            /* lookups during growth: every key so far */
            for (int j = 0; j <= i; j += (i / 200) + 1) {
                struct item_view iv;
                snprintf(key, sizeof(key), "key:%016d", j);
                assert_int_equal(store_get(s, key, 20, &iv), ST_OK);
            }
        }
    }
    store_get_stats(s, &st);
    assert_true(saw_expanding);
    assert_true(st.hash_power >= p0 + 8);
    assert_int_equal(st.curr_items, N);
    assert_int_equal(st.evictions, 0);
    for (int j = 0; j < N; j++) {
        struct item_view iv;
        snprintf(key, sizeof(key), "key:%016d", j);
        assert_int_equal(store_get(s, key, 20, &iv), ST_OK);
        assert_int_equal(iv.vlen, 100);
    }
    double hdr = (double)(st.bytes - (uint64_t)N * 120) / N;
    double idx = (double)st.index_bytes / N;
    print_message("  per item: header %.2f B + index %.2f B = %.2f B (20 B key, 100 B value)\n",
                  hdr, idx, hdr + idx);
    assert_true(hdr + idx <= 11.0);
    check_consistency(s);
    /* maintain advances growth without writes */
    store_destroy(s);
}

/* Items bigger than a segment live in their own allocation. */
static void test_large(void **state)
{
    struct store *s = mk(16 * MB, 256 * KB, true);
    struct store_stats st;
    size_t n = 3 * MB + 17;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 31 + 7);
    uint64_t c;
    assert_int_equal(store_put(s, SM_SET, "big", 3, big, n, 5, 0, 0, &c), ST_OK);
    store_get_stats(s, &st);
    assert_int_equal(st.large_items, 1);
    struct item_view iv;
    assert_int_equal(store_get(s, "big", 3, &iv), ST_OK);
    assert_int_equal(iv.vlen, n);
    assert_memory_equal(iv.val, big, n);
    assert_int_equal(store_view_cas(s, &iv), c);
    assert_int_equal(iv.flags, 5);
    /* touch of a large item is in place: same CAS */
    assert_int_equal(store_touch(s, "big", 3, 5000), ST_OK);
    assert_int_equal(store_peek(s, "big", 3, &iv), ST_OK);
    assert_int_equal(store_view_cas(s, &iv), c);
    /* append to a large item */
    assert_int_equal(store_put(s, SM_APPEND, "big", 3, "tail", 4, 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_get(s, "big", 3, &iv), ST_OK);
    assert_int_equal(iv.vlen, n + 4);
    assert_memory_equal(iv.val, big, n);
    assert_memory_equal(iv.val + n, "tail", 4);
    assert_int_equal(iv.exptime, 5000);
    store_get_stats(s, &st);
    assert_int_equal(st.large_items, 1);
    size_t used_with = st.mem_used;
    struct store_class_stats cs[4];
    unsigned nc = store_get_class_stats(s, cs, 4);
    assert_true(nc >= 1 && cs[nc - 1].large);
    assert_int_equal(cs[nc - 1].segments, 1);
    assert_true(cs[nc - 1].mem_bytes >= n + 4 && cs[nc - 1].mem_bytes < n + 4 + 8192);
    /* overwrite with a small value frees the allocation */
    assert_int_equal(store_put(s, SM_SET, "big", 3, "small", 5, 0, 0, 0, NULL), ST_OK);
    store_get_stats(s, &st);
    assert_int_equal(st.large_items, 0);
    assert_true(st.mem_used + 2 * MB <= used_with);
    /* too large for item_max: refused, old value removed */
    struct store_config cfg = {.mem_limit = 16 * MB, .item_max = 1 * MB, .shard_id = 1,
                               .use_cas = true};
    struct store *s2 = store_create(&cfg);
    store_clock(s2, 1000);
    assert_int_equal(store_put(s2, SM_SET, "k", 1, "old", 3, 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_put(s2, SM_SET, "k", 1, big, 1 * MB, 0, 0, 0, NULL), ST_TOO_LARGE);
    expect_miss(s2, "k");
    /* larger than memory: no memory, old value removed */
    assert_int_equal(store_put(s2, SM_SET, "k", 1, "old", 3, 0, 0, 0, NULL), ST_OK);
    store_destroy(s2);
    cfg.item_max = 128 * MB;
    cfg.mem_limit = 2 * MB;
    s2 = store_create(&cfg);
    store_clock(s2, 1000);
    assert_int_equal(store_put(s2, SM_SET, "k", 1, "old", 3, 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_put(s2, SM_SET, "k", 1, big, 3 * MB, 0, 0, 0, NULL), ST_NO_MEMORY);
    expect_miss(s2, "k");
    check_mem(s2);
    store_destroy(s2);
    /* many large items: old ones get evicted, memory stays in bounds */
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof(k), "L%d", i);
        big[0] = (char)i;
        assert_int_equal(store_put(s, SM_SET, k, strlen(k), big, 2 * MB, 0, 0, 0, NULL), ST_OK);
        check_mem(s);
        assert_int_equal(store_get(s, k, strlen(k), &iv), ST_OK);
        assert_int_equal(iv.val[0], (char)i);
    }
    store_get_stats(s, &st);
    assert_true(st.large_items >= 4 && st.large_items <= 7);
    assert_true(st.evictions >= 13);
    check_consistency(s);
    /* 128 MiB item */
    cfg.mem_limit = 200 * MB;
    s2 = store_create(&cfg);
    store_clock(s2, 1000);
    char *huge = calloc(1, 128 * MB - 8);
    huge[12345] = 'z';
    assert_int_equal(store_put(s2, SM_SET, "huge", 4, huge, 128 * MB - 8, 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_get(s2, "huge", 4, &iv), ST_OK);
    assert_int_equal(iv.vlen, 128 * MB - 8);
    assert_int_equal(iv.val[12345], 'z');
    free(huge);
    store_destroy(s2);
    free(big);
    store_destroy(s);
}

/* Random sizes in a small store: mem_used never exceeds the limit and the
 * bookkeeping stays exact through evictions. */
static void test_mem_limit(void **state)
{
    struct store *s = mk(2 * MB, 0, true);
    char key[32];
    static char val[200000];
    memset(val, 'q', sizeof(val));
    uint64_t r = 88172645463325252ull;
    for (int i = 0; i < 40000; i++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        snprintf(key, sizeof(key), "m:%u", (unsigned)(r % 20000));
        size_t vl = (r >> 20) % 100 == 0 ? (r >> 32) % sizeof(val) : (r >> 32) % 3000;
        uint32_t exp = (r >> 40) % 4 == 0 ? 1000 + (uint32_t)((r >> 44) % 100) : 0;
        int rc = store_put(s, SM_SET, key, strlen(key), val, vl, 0, exp, 0, NULL);
        assert_int_equal(rc, ST_OK);
        check_mem(s);
        if (i % 5000 == 0) {
            store_clock(s, 1000 + (uint32_t)(i / 500));
            store_maintain(s, 10);
            check_consistency(s);
        }
    }
    struct store_stats st;
    store_get_stats(s, &st);
    assert_true(st.evictions > 0);
    assert_true(st.evicted_segments > 0);
    check_consistency(s);
    store_flush(s);
    store_get_stats(s, &st);
    assert_int_equal(st.curr_items, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.segs_used, 1);
    expect_miss(s, "m:1");
    assert_int_equal(store_put(s, SM_SET, "after", 5, "x", 1, 0, 0, 0, NULL), ST_OK);
    expect_val(s, "after", "x");
    check_consistency(s);
    store_destroy(s);
}

/* cache_memlimit: lowering the limit evicts down to it in maintenance
 * slices, a write meanwhile evicts no more than one window; raising it
 * again lets the store fill up to the new limit; the limit is clamped to
 * [store_limit_min, the creation limit]. */
static void test_set_limit(void **state)
{
    struct store *s = mk(8 * MB, 64 * KB, true);
    static char val[1500];
    memset(val, 'v', sizeof val);
    char key[32];
    for (int i = 0; i < 8000; i++) {
        snprintf(key, sizeof key, "s:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, sizeof val, 0, 0, 0, NULL),
                         ST_OK);
    }
    struct store_stats st, st2;
    store_get_stats(s, &st);
    assert_true(st.mem_used > 7 * MB);
    check_consistency(s);

    assert_int_equal(store_set_limit(s, 3 * MB), 3 * MB);
    /* a write right after: held to the memory in use, evicts one window at most */
    assert_int_equal(store_put(s, SM_SET, "w", 1, val, sizeof val, 0, 0, 0, NULL), ST_OK);
    store_get_stats(s, &st2);
    assert_true(st2.evicted_segments - st.evicted_segments <= 8);
    assert_true(st2.mem_used > 6 * MB);
    check_mem(s);

    unsigned slices = 0;
    while (store_maintain(s, 64)) {
        slices++;
        assert_true(slices < 10000);
        check_mem(s);
    }
    assert_true(slices > 4);   /* the shrink ran in slices, not in one call */
    store_get_stats(s, &st);
    assert_true(st.mem_used <= 3 * MB);
    assert_int_equal(st.mem_limit, 3 * MB);
    assert_true(st.curr_items > 0 && st.curr_items < 3000);
    check_consistency(s);
    for (int i = 0; i < 8000; i++) {   /* writes stay within the new limit */
        snprintf(key, sizeof key, "t:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, sizeof val, 0, 0, 0, NULL),
                         ST_OK);
        if (i % 500 == 0)
            check_mem(s);
    }
    store_get_stats(s, &st);
    assert_true(st.mem_used <= 3 * MB);

    /* raise again: fills past the old limit; clamps */
    assert_int_equal(store_set_limit(s, 8 * MB), 8 * MB);
    for (int i = 0; i < 8000; i++) {
        snprintf(key, sizeof key, "u:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, sizeof val, 0, 0, 0, NULL),
                         ST_OK);
    }
    store_get_stats(s, &st);
    assert_true(st.mem_used > 6 * MB);
    check_mem(s);
    check_consistency(s);
    assert_int_equal(store_set_limit(s, 100 * MB), 8 * MB);
    assert_int_equal(store_set_limit(s, 1), store_limit_min(s));
    while (store_maintain(s, 64))
        ;
    check_mem(s);
    check_consistency(s);
    store_destroy(s);
}

/* A small hot set read often survives a long stream of one-off writes. */
static void test_evict_keeps_hot(void **state)
{
    struct store *s = mk(4 * MB, 64 * KB, true);
    char key[32], val[200];
    memset(val, 'h', sizeof(val));
    struct item_view iv;
    const int HOT = 1000;
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 200, 0, 0, 0, NULL), ST_OK);
    }
    int hits = 0, tries = 0;
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "cold:%d", i);
        assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 200, 0, 0, 0, NULL), ST_OK);
        snprintf(key, sizeof(key), "hot:%d", i % HOT);
        tries++;
        if (store_get(s, key, strlen(key), &iv) == ST_OK)
            hits++;
        else
            store_put(s, SM_SET, key, strlen(key), val, 200, 0, 0, 0, NULL);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    print_message("  hot-set hit ratio %.4f, merged %llu, evicted %llu\n",
                  (double)hits / tries, (unsigned long long)st.merged_items,
                  (unsigned long long)st.evictions);
    assert_true(hits > tries * 0.97);
    assert_true(st.merged_items > 0);
    check_consistency(s);
    store_destroy(s);
}

/* Overwriting a small key set many times leaves dead bytes that compaction
 * reclaims without evicting live items. */
static void test_dead_bytes(void **state)
{
    struct store *s = mk(4 * MB, 64 * KB, true);
    char key[32], val[300];
    for (int round = 0; round < 100; round++) {
        memset(val, 'a' + round % 26, sizeof(val));
        for (int i = 0; i < 2000; i++) {
            snprintf(key, sizeof(key), "d:%d", i);
            assert_int_equal(store_put(s, SM_SET, key, strlen(key), val, 300, 0, 0, 0, NULL),
                             ST_OK);
        }
    }
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.curr_items, 2000);
    assert_int_equal(st.evictions, 0);
    assert_true(st.evicted_segments > 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "d:%d", i);
        memset(val, 'a' + 99 % 26, sizeof(val));
        val[299] = 0;
        struct item_view iv;
        assert_int_equal(store_get(s, key, strlen(key), &iv), ST_OK);
        assert_memory_equal(iv.val, val, 299);
    }
    check_consistency(s);
    store_destroy(s);
}

/* Two instances in one process do not share anything. */
static void test_two_instances(void **state)
{
    struct store_config c = {.mem_limit = 4 * MB, .item_max = MB, .shard_id = 1, .use_cas = true};
    struct store *a = store_create(&c);
    c.shard_id = 2;
    struct store *b = store_create(&c);
    uint64_t ca, cb;
    store_clock(a, 1000);
    store_clock(b, 2000);
    assert_int_equal(put(a, SM_SET, "k", "A", 0, 0, 0, &ca), ST_OK);
    assert_int_equal(put(b, SM_SET, "k", "B", 0, 0, 0, &cb), ST_OK);
    assert_true(ca != cb);
    expect_val(a, "k", "A");
    expect_val(b, "k", "B");
    assert_int_equal(put(a, SM_SET, "t", "x", 0, 1500, 0, NULL), ST_OK);
    expect_val(a, "t", "x");   /* b's clock does not matter */
    store_destroy(a);
    expect_val(b, "k", "B");
    store_destroy(b);
}

/* Replies by reference: a pinned item's bytes stay readable and unchanged
 * through delete, overwrite, eviction and flush; the memory stays counted
 * (held) until the last unpin, and is reused after. */
static void test_pins(void **state)
{
    (void)state;
    struct store *s = mk(4 * MB, 64 * KB, true);
    /* a segment item and a large item */
    char big[200 * KB];
    memset(big, 'B', sizeof big);
    assert_int_equal(put(s, SM_SET, "small", "hello world", 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_put(s, SM_SET, "big", 3, big, sizeof big, 0, 0, 0, NULL), ST_OK);
    struct item_view a, b;
    assert_int_equal(store_get(s, "small", 5, &a), ST_OK);
    assert_int_equal(store_get(s, "big", 3, &b), ST_OK);
    store_pin(s, a.loc);
    store_pin(s, b.loc);
    store_pin(s, b.loc);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.pins, 3);
    size_t used_before = st.mem_used;

    /* overwrite the large item, delete the small one, then fill the store
     * far past its limit so eviction and flush run over the pinned memory */
    assert_int_equal(store_put(s, SM_SET, "big", 3, "x", 1, 0, 0, 0, NULL), ST_OK);
    assert_int_equal(store_delete(s, "small", 5, 0), ST_OK);
    char v[1000];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 20000; i++) {
        char k[32];
        snprintf(k, sizeof k, "fill%d", i);
        store_put(s, SM_SET, k, strlen(k), v, sizeof v, 0, 0, 0, NULL);
    }
    store_flush(s);
    assert_memory_equal(a.val, "hello world", 11);
    for (size_t i = 0; i < sizeof big; i++)
        if (b.val[i] != 'B')
            fail_msg("pinned large value changed at %zu", i);
    store_get_stats(s, &st);
    assert_true(st.held_bytes >= sizeof big);
    assert_true(st.mem_used <= 4 * MB);
    check_mem(s);
    check_consistency(s);

    store_unpin(s, a.loc);
    store_unpin(s, b.loc);
    store_get_stats(s, &st);
    assert_true(st.held_bytes > 0);    /* one pin of the large item left */
    store_unpin(s, b.loc);
    store_get_stats(s, &st);
    assert_int_equal(st.pins, 0);
    assert_int_equal(st.held_bytes, 0);
    assert_true(st.mem_used <= used_before);
    /* the memory is usable again */
    for (int i = 0; i < 5000; i++) {
        char k[32];
        snprintf(k, sizeof k, "again%d", i);
        assert_int_equal(store_put(s, SM_SET, k, strlen(k), v, sizeof v, 0, 0, 0, NULL), ST_OK);
    }
    check_mem(s);
    check_consistency(s);
    store_destroy(s);
}

/* flush_all's hold: writes up to the end of the held second succeed and are
 * flushed at once (memcached's oldest_live); the next second they stay. */
static void test_flush_hold(void **state)
{
    (void)state;
    struct store *s = mk(8 * MB, 64 * KB, true);
    assert_int_equal(put(s, SM_SET, "a", "1", 0, 0, 0, NULL), ST_OK);
    store_flush(s);
    store_flush_hold(s, 1000);
    expect_miss(s, "a");
    assert_int_equal(put(s, SM_SET, "b", "1", 0, 0, 0, NULL), ST_OK);
    expect_miss(s, "b");
    assert_int_equal(put(s, SM_ADD, "b", "1", 0, 0, 0, NULL), ST_OK);
    assert_int_equal(put(s, SM_REPLACE, "b", "1", 0, 0, 0, NULL), ST_NOT_STORED);
    assert_int_equal(put(s, SM_CAS, "b", "1", 0, 0, 1, NULL), ST_NOT_FOUND);
    expect_miss(s, "b");
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.curr_items, 0);
    store_clock(s, 1001);
    assert_int_equal(put(s, SM_SET, "c", "1", 0, 0, 0, NULL), ST_OK);
    expect_val(s, "c", "1");
    store_flush_hold(s, 0);
    store_destroy(s);
}

struct walk_seen {
    unsigned n, never, ttl, large;
    uint8_t seen[300];
};

static bool walk_cb(void *arg, const struct store_walk_item *it)
{
    struct walk_seen *w = arg;
    int k = atoi(it->key + 1);
    assert_true(k >= 0 && k < 300);
    assert_int_equal(w->seen[k], 0);
    w->seen[k] = 1;
    w->n++;
    if (it->cls == 62) {
        assert_int_equal(it->exptime, 0);
        w->never++;
    } else if (it->cls == 63) {
        w->large++;
    } else {
        assert_true(it->cls >= 1 && it->cls <= 61 && it->exptime != 0);
        w->ttl++;
    }
    return true;
}

/* store_walk: every live item once, expired and deleted ones not, a budget
 * of segments at a time; classes are memcached's ids 1..63. */
static void test_walk(void **state)
{
    (void)state;
    struct store *s = mk(16 * MB, 64 * KB, true);
    char key[16], big[40000];
    memset(big, 'b', sizeof big);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if (i % 50 == 0)
            assert_int_equal(store_put(s, SM_SET, key, strlen(key), big, sizeof big, 0, 0, 0,
                                       NULL), ST_OK);
        else
            assert_int_equal(put(s, SM_SET, key, "value-value-value", 0,
                                 i % 3 ? 0 : 1000 + 100 + (uint32_t)i, 0, NULL), ST_OK);
    }
    assert_int_equal(store_delete(s, "k1", 2, 0), ST_OK);
    assert_int_equal(put(s, SM_SET, "k2", "gone", 0, 999, 0, NULL), ST_OK);   /* expired */
    struct walk_seen w = {0};
    uint32_t cursor = 0;
    unsigned turns = 0;
    while (!store_walk(s, &cursor, 1, walk_cb, &w))
        turns++;
    assert_true(turns > 1);
    assert_int_equal(w.n, 298);
    assert_int_equal(w.large, 6);
    assert_int_equal(w.seen[1] + w.seen[2], 0);
    assert_true(w.never > 0 && w.ttl > 0);
    struct store_class_stats cs[STORE_CLASSES_MAX];
    unsigned nc = store_get_class_stats(s, cs, STORE_CLASSES_MAX);
    uint64_t live = 0;
    for (unsigned i = 0; i < nc; i++) {
        assert_true(cs[i].id >= 1 && cs[i].id <= 63);
        live += cs[i].live_items;
    }
    assert_int_equal(live, 299);   /* class stats count the expired k2 until reclaimed */
    assert_int_equal(cs[nc - 1].id, 63);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_no_cas),
        cmocka_unit_test(test_arith),
        cmocka_unit_test(test_expiry_touch),
        cmocka_unit_test(test_ttl_reclaim),
        cmocka_unit_test(test_ttl_reclaim_sparse_buckets),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_index_growth),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_mem_limit),
        cmocka_unit_test(test_evict_keeps_hot),
        cmocka_unit_test(test_dead_bytes),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_set_limit),
        cmocka_unit_test(test_flush_hold),
        cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
