/*
 * test_index.c — property test of the store's hash index (store/index.c)
 * against a plain model: random sets, overwrites, deletes, gets, growth
 * steps and flushes on stores too big to evict, over many seeds, checking
 * every answer against the model and, every few hundred operations, the
 * index's structure: every entry in the chain of one of its two candidate
 * buckets, every overflow bucket either linked exactly once and not empty
 * or on the free list, the item count. Variants freeze the table's size
 * (long overflow chains, the cuckoo step on every full pair) and use a
 * store large enough that entries borrow meta bits for their location
 * (fewer tag bits, more tag collisions). Single-threaded.
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

static uint64_t rs;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void check_index(struct store *s)
{
    struct index *x = &s->idx;
    uint8_t *seen = calloc(x->ovf_hwm + 1, 1);
    assert_non_null(seen);
    uint64_t linked = 0;
    for (size_t b = 0; b < x->nb; b++)
        for (uint32_t j = x->prim[b].next; j; j = x->ovf[j - 1].next) {
            assert_true(j <= x->ovf_hwm);
            assert_int_equal(seen[j], 0);
            seen[j] = 1;
            linked++;
            unsigned n = 0;
            for (int i = 0; i < IDX_SLOTS; i++)
                n += x->ovf[j - 1].meta[i] != 0;
            assert_true(n > 0);
        }
    uint64_t nfree = 0;
    for (uint32_t j = x->ovf_free; j; j = x->ovf[j - 1].next) {
        assert_int_equal(seen[j], 0);
        seen[j] = 1;
        nfree++;
    }
    assert_int_equal(nfree, x->ovf_nfree);
    assert_int_equal(linked + nfree, x->ovf_hwm);
    assert_true(x->ovf_hwm <= x->ovf_commit);
    assert_true(x->nb <= x->nb_commit && x->nb >= ((size_t)1 << x->level) &&
                x->nb < ((size_t)2 << x->level));
    free(seen);
    check_consistency(s);   /* candidates, tags, counts (test_store_check.h) */
}

static void key_of(char *buf, size_t cap, unsigned k)
{
    /* lengths 1..40, so items differ in size and keys in length */
    snprintf(buf, cap, "%u:%.*s", k, (int)(k % 37), "abcdefghijklmnopqrstuvwxyz0123456789x");
}

struct variant {
    size_t   mem;
    bool     freeze;     /* the table never grows past its first buckets */
    unsigned nkeys, nops;
};

static void run(const struct variant *v, uint64_t seed)
{
    rs = seed * UINT64_C(0x9e3779b97f4a7c15) | 1;
    struct store_config c = { .mem_limit = v->mem, .item_max = 1u << 20, .use_cas = true };
    struct store *s = store_create(&c);
    assert_non_null(s);
    if (v->freeze)
        s->idx.nb_max = s->idx.nb;
    uint32_t *ver = calloc(v->nkeys, sizeof(*ver));   /* 0: absent */
    uint64_t live = 0;
    char key[64], val[256], got[256];
    for (unsigned op = 0; op < v->nops; op++) {
        unsigned k = (unsigned)(rnd() % v->nkeys);
        key_of(key, sizeof key, k);
        size_t kl = strlen(key);
        unsigned r = (unsigned)(rnd() % 1000);
        struct item_view iv;
        if (r < 500) {
            uint32_t nv = (uint32_t)(rnd() % 1000000) + 1;
            int n = snprintf(val, sizeof val, "%u/%u/", k, nv);
            size_t vl = (size_t)n + nv % 150;
            memset(val + n, 'a' + (int)(nv % 26), vl - (size_t)n);
            assert_int_equal(store_put(s, SM_SET, key, kl, val, vl, nv, 0, 0, NULL), ST_OK);
            live += ver[k] == 0;
            ver[k] = nv;
        } else if (r < 700) {
            int st = store_delete(s, key, kl, 0);
            assert_int_equal(st == ST_OK, ver[k] != 0);
            live -= ver[k] != 0;
            ver[k] = 0;
        } else if (r < 990) {
            int st = store_get(s, key, kl, &iv);
            assert_int_equal(st == ST_OK, ver[k] != 0);
            if (st == ST_OK) {
                assert_int_equal(iv.flags, ver[k]);
                int n = snprintf(got, sizeof got, "%u/%u/", k, ver[k]);
                assert_true(iv.vlen >= (uint32_t)n);
                assert_memory_equal(iv.val, got, (size_t)n);
            }
        } else if (r < 999) {
            store_maintain(s, 64);
        } else if (rnd() % 8 == 0) {
            store_flush(s);
            memset(ver, 0, v->nkeys * sizeof(*ver));
            live = 0;
        }
        if (op % 509 == 0) {
            assert_int_equal(s->idx.nitems, live);
            check_index(s);
        }
    }
    for (unsigned k = 0; k < v->nkeys; k++) {
        struct item_view iv;
        key_of(key, sizeof key, k);
        assert_int_equal(store_get(s, key, strlen(key), &iv) == ST_OK, ver[k] != 0);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.curr_items, live);
    check_index(s);
    free(ver);
    store_destroy(s);
}

/* growing table, 64 MiB: splits while items come and go */
static void test_index_model_growing(void **state)
{
    struct variant v = { 64u << 20, false, 20000, 60000 };
    for (uint64_t seed = 1; seed <= 40; seed++)
        run(&v, seed);
}

/* 64 primary buckets for up to 3000 keys: overflow chains, displacement,
 * unlinking emptied overflow buckets */
static void test_index_model_frozen(void **state)
{
    struct variant v = { 64u << 20, true, 3000, 30000 };
    for (uint64_t seed = 100; seed <= 140; seed++)
        run(&v, seed);
}

/* a 16 GiB store (address space only): location bits spill into meta, the
 * tag shrinks to 8 bits, tag collisions are common */
static void test_index_model_wide(void **state)
{
    struct store_config c = { .mem_limit = (size_t)16 << 30, .use_cas = true };
    struct store *s = store_create(&c);
    assert_non_null(s);
    assert_true(s->idx.loc_bits > 32);
    assert_int_equal(s->idx.tag_bits + s->idx.loc_bits, 44);
    store_destroy(s);
    struct variant v = { (size_t)16 << 30, true, 3000, 20000 };
    for (uint64_t seed = 200; seed <= 210; seed++)
        run(&v, seed);
}

/* fill to 300k items with no deletes: the load a fill reaches */
static void test_index_load(void **state)
{
    struct store_config c = { .mem_limit = 128u << 20, .use_cas = true };
    struct store *s = store_create(&c);
    char key[32], val[100];
    memset(val, 'v', sizeof val);
    const unsigned N = 300000;
    for (unsigned i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%016u", i);
        assert_int_equal(store_put(s, SM_SET, key, 20, val, 100, 0, 0, 0, NULL), ST_OK);
    }
    double per = (double)index_bytes(s) / N;
    print_message("  index: %.2f B per item, %zu primary + %u overflow buckets\n", per,
                  s->idx.nb, s->idx.ovf_hwm - s->idx.ovf_nfree);
    assert_true(per <= 8.0);
    check_index(s);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_model_growing),
        cmocka_unit_test(test_index_model_frozen),
        cmocka_unit_test(test_index_model_wide),
        cmocka_unit_test(test_index_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
