/*
 * test_store_prop.c — randomized property test of the store against a plain
 * reference model (an array indexed by key id). A small store evicts a lot,
 * so a miss is always allowed; but every value the store returns must be the
 * model's current value for that key (with the same flags and exptime), and
 * whatever the store reports stored/replaced/deleted must be consistent with
 * the model. Periodic white-box checks verify the store's bookkeeping.
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

#define NKEYS 3000
#define NOPS  300000

struct ref {
    bool     present;
    uint8_t *val;
    size_t   vlen;
    uint32_t flags, exptime;
};

static struct ref ref[NKEYS];
static uint32_t now = 1000;
static uint64_t rs = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static bool ref_live(unsigned k)
{
    return ref[k].present && (ref[k].exptime == 0 || ref[k].exptime > now);
}

static void ref_drop(unsigned k)
{
    free(ref[k].val);
    ref[k].val = NULL;
    ref[k].present = false;
}

static void ref_set(unsigned k, const void *v, size_t n, uint32_t flags, uint32_t exp)
{
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, v, n);
    free(ref[k].val);
    ref[k] = (struct ref){true, p, n, flags, exp};
}

static void check_view(unsigned k, const struct item_view *iv)
{
    assert_true(ref_live(k));
    assert_int_equal(iv->vlen, ref[k].vlen);
    assert_memory_equal(iv->val, ref[k].val, iv->vlen);
    assert_int_equal(iv->flags, ref[k].flags);
    assert_int_equal(iv->exptime, ref[k].exptime);
}

/* the same rules as the store: decimal u64, optional trailing spaces */
static bool num(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    if (i < n && p[i] == '+')
        i++;
    if (i >= n || p[i] < '0' || p[i] > '9')
        return false;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (v > (UINT64_MAX - (p[i] - '0')) / 10)
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (i < n && !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        return false;
    *out = v;
    return true;
}

static size_t rand_len(void)
{
    uint64_t r = rnd() % 1000;
    if (r < 5)
        return 40000 + rnd() % 260000;  /* large items (segment is 64 KiB) */
    if (r < 60)
        return 500 + rnd() % 20000;
    return rnd() % 500;
}

static uint32_t rand_exp(void)
{
    return rnd() % 10 < 7 ? 0 : now + 1 + (uint32_t)(rnd() % 30);
}

static void test_random_ops(void **state)
{
    struct store_config c = {.mem_limit = 2u << 20, .item_max = 1u << 20, .shard_id = 9,
                             .use_cas = true};
    const char *seed = getenv("STORE_PROP_SEED");     /* to explore other runs */
    if (seed)
        rs ^= strtoull(seed, NULL, 0) * 0x9e3779b97f4a7c15ull;
    struct store *s = store_create(&c);
    assert_non_null(s);
    store_clock(s, now);
    static uint8_t buf[400000];
    char key[32];
    uint64_t hits = 0, counts[16] = {0};

    for (unsigned op = 0; op < NOPS; op++) {
        unsigned k = (unsigned)(rnd() % NKEYS);
        snprintf(key, sizeof(key), "prop:%u", k);
        size_t kl = strlen(key);
        struct item_view iv;
        unsigned what = (unsigned)(rnd() % 100);
        int rc;
        size_t n;
        uint32_t fl = rnd() % 4 == 0 ? (uint32_t)rnd() : 0;
        uint32_t ex;
        uint64_t cas, r;

        if (what < 28) {                                    /* get */
            rc = store_get(s, key, kl, &iv);
            if (rc == ST_OK) {
                check_view(k, &iv);
                hits++;
            } else {
                ref_drop(k);
            }
            counts[0]++;
        } else if (what < 31) {                             /* peek */
            if (store_peek(s, key, kl, &iv) == ST_OK)
                check_view(k, &iv);
            else
                ref_drop(k);
        } else if (what < 50) {                             /* set */
            n = rand_len();
            for (size_t i = 0; i < n; i += 8)
                buf[i] = (uint8_t)rnd();
            if (rnd() % 8 == 0)
                n = (size_t)snprintf((char *)buf, 32, "%llu", (unsigned long long)(rnd() >> (rnd() % 64)));
            ex = rand_exp();
            rc = store_put(s, SM_SET, key, kl, buf, n, fl, ex, 0, NULL);
            if (rc == ST_OK)
                ref_set(k, buf, n, fl, ex);
            else {
                assert_true(rc == ST_NO_MEMORY || rc == ST_TOO_LARGE);
                ref_drop(k);
            }
        } else if (what < 55) {                             /* add */
            n = rnd() % 300;
            memset(buf, 'a' + (int)(op % 26), n);
            ex = rand_exp();
            rc = store_put(s, SM_ADD, key, kl, buf, n, fl, ex, 0, NULL);
            if (rc == ST_OK)
                ref_set(k, buf, n, fl, ex);
            else
                assert_true(rc == ST_NOT_STORED && ref_live(k));
        } else if (what < 60) {                             /* replace */
            n = rnd() % 300;
            memset(buf, 'r', n);
            ex = rand_exp();
            rc = store_put(s, SM_REPLACE, key, kl, buf, n, fl, ex, 0, NULL);
            if (rc == ST_OK) {
                assert_true(ref_live(k));
                ref_set(k, buf, n, fl, ex);
            } else {
                ref_drop(k);
            }
        } else if (what < 66) {                             /* append / prepend */
            bool app = rnd() & 1;
            n = rnd() % 200;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)('0' + rnd() % 10);
            rc = store_put(s, app ? SM_APPEND : SM_PREPEND, key, kl, buf, n, 0, 0, 0, NULL);
            if (rc == ST_OK) {
                assert_true(ref_live(k));
                size_t on = ref[k].vlen;
                uint8_t *nv = malloc(on + n + 1);
                if (app) {
                    memcpy(nv, ref[k].val, on);
                    memcpy(nv + on, buf, n);
                } else {
                    memcpy(nv, buf, n);
                    memcpy(nv + n, ref[k].val, on);
                }
                ref_set(k, nv, on + n, ref[k].flags, ref[k].exptime);
                free(nv);
            } else {
                ref_drop(k);
            }
        } else if (what < 71) {                             /* cas */
            if (store_peek(s, key, kl, &iv) != ST_OK) {
                ref_drop(k);
                rc = store_put(s, SM_CAS, key, kl, "x", 1, 0, 0, 12345, NULL);
                assert_int_equal(rc, ST_NOT_FOUND);
                continue;
            }
            check_view(k, &iv);
            bool good = rnd() % 3 != 0;
            cas = good ? store_view_cas(s, &iv) : store_view_cas(s, &iv) + 1;
            n = rnd() % 300;
            memset(buf, 'c', n);
            ex = rand_exp();
            uint64_t nc = 0;
            rc = store_put(s, SM_CAS, key, kl, buf, n, fl, ex, cas, &nc);
            if (good) {
                assert_int_equal(rc, ST_OK);
                assert_true(nc != cas && nc != 0);
                ref_set(k, buf, n, fl, ex);
            } else {
                assert_int_equal(rc, ST_EXISTS);
            }
        } else if (what < 76) {                             /* delete */
            rc = store_delete(s, key, kl, 0);
            if (rc == ST_OK)
                assert_true(ref_live(k));
            ref_drop(k);
        } else if (what < 82) {                             /* incr / decr */
            bool inc = rnd() & 1;
            uint64_t d = rnd() % 3 == 0 ? rnd() : rnd() % 100;
            rc = store_arith(s, key, kl, inc, d, &r, NULL);
            if (rc == ST_MISS) {
                ref_drop(k);
            } else {
                assert_true(ref_live(k));
                uint64_t v;
                bool isnum = num(ref[k].val, ref[k].vlen, &v);
                if (rc == ST_NON_NUMERIC) {
                    assert_false(isnum);
                } else {
                    assert_int_equal(rc, ST_OK);
                    assert_true(isnum);
                    v = inc ? v + d : (v > d ? v - d : 0);
                    assert_int_equal(r, v);
                    /* the store's exact text is checked by later reads;
                     * its number must parse back to v */
                    assert_int_equal(store_peek(s, key, kl, &iv), ST_OK);
                    uint64_t back;
                    assert_true(num((const uint8_t *)iv.val, iv.vlen, &back));
                    assert_int_equal(back, v);
                    ref_set(k, iv.val, iv.vlen, ref[k].flags, ref[k].exptime);
                }
            }
        } else if (what < 88) {                             /* touch */
            ex = rand_exp();
            uint64_t before = 0;
            if (store_peek(s, key, kl, &iv) == ST_OK)
                before = store_view_cas(s, &iv);
            rc = store_touch(s, key, kl, ex);
            if (rc == ST_OK) {
                assert_true(ref_live(k));
                ref[k].exptime = ex;
                assert_int_equal(store_peek(s, key, kl, &iv), ST_OK);
                assert_int_equal(store_view_cas(s, &iv), before);   /* touch keeps the CAS */
            } else {
                ref_drop(k);
            }
        } else if (what < 93) {                             /* gat */
            ex = rand_exp();
            rc = store_gat(s, key, kl, ex, &iv);
            if (rc == ST_OK) {
                assert_true(ref_live(k));
                ref[k].exptime = ex;
                check_view(k, &iv);
            } else {
                ref_drop(k);
            }
        } else if (what < 95) {                             /* meta bits */
            rc = store_set_mbits(s, key, kl, ITEM_STALE, ITEM_WIN_SENT);
            if (rc == ST_OK)
                assert_true(ref_live(k));
            else
                ref_drop(k);
        } else if (what < 97) {                             /* time passes */
            now += (uint32_t)(rnd() % 4);
            store_clock(s, now);
        } else if (what < 99) {
            store_maintain(s, (unsigned)(rnd() % 8) + 1);
        } else if (rnd() % 500 == 0) {                      /* flush_all */
            store_flush(s);
            for (unsigned i = 0; i < NKEYS; i++)
                ref_drop(i);
        }
        check_mem(s);
        if (op % 20000 == 0)
            check_consistency(s);
    }
    check_consistency(s);
    /* a final sweep: every key the store still has matches the model */
    unsigned present = 0;
    for (unsigned k = 0; k < NKEYS; k++) {
        struct item_view iv;
        snprintf(key, sizeof(key), "prop:%u", k);
        if (store_peek(s, key, strlen(key), &iv) == ST_OK) {
            check_view(k, &iv);
            present++;
        }
    }
    struct store_stats st;
    store_get_stats(s, &st);
    print_message("  %u ops: %llu get hits of %llu, %u keys present at end, evictions %llu, "
                  "merged %llu, reclaimed segs %llu, large %llu\n",
                  NOPS, (unsigned long long)hits, (unsigned long long)counts[0], present,
                  (unsigned long long)st.evictions, (unsigned long long)st.merged_items,
                  (unsigned long long)st.reclaim_segments, (unsigned long long)st.large_items);
    assert_true(st.evictions > 0);
    for (unsigned k = 0; k < NKEYS; k++)
        ref_drop(k);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
