/*
 * test_store_sim.c — cache quality: a Zipf(0.99) get-then-set-on-miss
 * workload run against the store and against LRU caches of the same byte
 * budget (one charged memcached's per-item cost, one charged nothing but
 * key + value). Prints all three hit ratios; the store must beat the
 * memcached-cost LRU. Single-threaded.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"

#define NKEYS   200000
#define WARM    500000
#define MEASURE 1500000
#define KLEN    20
#define VLEN    100
#define BUDGET  (4u * 1024 * 1024)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double *zipf_cdf(unsigned n, double alpha)
{
    double *cdf = malloc(n * sizeof(*cdf));
    double sum = 0;
    for (unsigned i = 0; i < n; i++) {
        sum += 1.0 / pow(i + 1, alpha);
        cdf[i] = sum;
    }
    for (unsigned i = 0; i < n; i++)
        cdf[i] /= sum;
    return cdf;
}

static unsigned zipf_draw(const double *cdf, unsigned n)
{
    double u = (double)(next_rand() >> 11) / (double)(1ull << 53);
    unsigned lo = 0, hi = n - 1;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* scatter ranks over the key space so popularity is not key order */
    return (unsigned)(((uint64_t)lo * 2654435761u) % n);
}

/* LRU over key ids with a fixed cost per item. */
struct lru {
    uint32_t *prev, *next;
    uint8_t  *in;
    uint32_t  head, tail, n, cap;
};

static void lru_init(struct lru *l, unsigned nkeys, size_t budget, size_t cost)
{
    l->prev = calloc(nkeys, 4);
    l->next = calloc(nkeys, 4);
    l->in = calloc(nkeys, 1);
    l->head = l->tail = UINT32_MAX;
    l->n = 0;
    l->cap = (uint32_t)(budget / cost);
}

static void lru_unlink(struct lru *l, uint32_t k)
{
    if (l->prev[k] != UINT32_MAX) l->next[l->prev[k]] = l->next[k]; else l->head = l->next[k];
    if (l->next[k] != UINT32_MAX) l->prev[l->next[k]] = l->prev[k]; else l->tail = l->prev[k];
}

static void lru_front(struct lru *l, uint32_t k)
{
    l->prev[k] = UINT32_MAX;
    l->next[k] = l->head;
    if (l->head != UINT32_MAX) l->prev[l->head] = k; else l->tail = k;
    l->head = k;
}

static bool lru_access(struct lru *l, uint32_t k)
{
    if (l->in[k]) {
        lru_unlink(l, k);
        lru_front(l, k);
        return true;
    }
    if (l->n == l->cap) {
        uint32_t v = l->tail;
        lru_unlink(l, v);
        l->in[v] = 0;
        l->n--;
    }
    l->in[k] = 1;
    l->n++;
    lru_front(l, k);
    return false;
}

static void lru_free(struct lru *l)
{
    free(l->prev);
    free(l->next);
    free(l->in);
}

static void test_zipf_hit_ratio(void **state)
{
    double *cdf = zipf_cdf(NKEYS, 0.99);
    struct store_config c = {.mem_limit = BUDGET, .item_max = 1 << 20, .shard_id = 0,
                             .use_cas = true};
    struct store *s = store_create(&c);
    assert_non_null(s);
    store_clock(s, 1000);
    /* memcached 1.6: 48-byte header with CAS + key + 1 + value + 2 = 171 B,
     * stored in the 192-byte slab class; its hash table is outside -m. */
    struct lru mc, ideal;
    lru_init(&mc, NKEYS, BUDGET, 192);
    lru_init(&ideal, NKEYS, BUDGET, KLEN + VLEN);
    char key[KLEN + 1], val[VLEN];
    memset(val, 'v', sizeof(val));
    uint64_t hs = 0, hm = 0, hi = 0;
    for (unsigned i = 0; i < WARM + MEASURE; i++) {
        unsigned k = zipf_draw(cdf, NKEYS);
        snprintf(key, sizeof(key), "key:%016u", k);
        struct item_view iv;
        bool hit = store_get(s, key, KLEN, &iv) == ST_OK;
        if (!hit) {
            memcpy(val, key, KLEN);
            assert_int_equal(store_put(s, SM_SET, key, KLEN, val, VLEN, 0, 0, 0, NULL), ST_OK);
        } else {
            assert_memory_equal(iv.val, key, KLEN);
        }
        bool h1 = lru_access(&mc, k), h2 = lru_access(&ideal, k);
        if (i >= WARM) {
            hs += hit;
            hm += h1;
            hi += h2;
        }
        if (i % 100000 == 0)
            store_clock(s, 1000 + i / 100000);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    double rs = (double)hs / MEASURE, rm = (double)hm / MEASURE, ri = (double)hi / MEASURE;
    print_message("  Zipf(0.99) %u keys, %u KiB: store %.4f (%llu items), "
                  "LRU memcached-cost %.4f (%u items), LRU zero-overhead %.4f (%u items)\n",
                  NKEYS, BUDGET / 1024, rs, (unsigned long long)st.curr_items, rm, mc.cap, ri,
                  ideal.cap);
    print_message("  store: mem_used %llu / %llu, index %llu B, merged %llu, evicted %llu\n",
                  (unsigned long long)st.mem_used, (unsigned long long)st.mem_limit,
                  (unsigned long long)st.index_bytes, (unsigned long long)st.merged_items,
                  (unsigned long long)st.evictions);
    assert_true(st.mem_used <= st.mem_limit);
    assert_true(rs >= rm);
    lru_free(&mc);
    lru_free(&ideal);
    free(cdf);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zipf_hit_ratio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
